//! The authentication rules of the proxy path. Pure: no I/O, so every rule is
//! a table-driven unit test.
//!
//! - [`parse_bearer`]: RFC 6750 §2.1 `Authorization: Bearer <b64token>`.
//! - [`sanitize_forwarded_headers`]: strips every client-supplied copy of a
//!   header the gateway owns ([`OwnedHeader`]) before it sets its own.

use http::header::{HeaderMap, HeaderName, AUTHORIZATION, CONNECTION};

use crate::owned_headers::OwnedHeader;

/// Why a request carries no usable bearer token. Each maps to one RFC 6750
/// answer in [`crate::respond`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerProblem {
    /// No `Authorization` header, or another scheme: the client did not try
    /// bearer authentication, so the challenge carries no error (§3.1).
    Missing,
    /// More than one `Authorization` header (§3.1 `invalid_request`).
    Duplicated,
    /// `Bearer` with an empty or ill-formed token.
    Malformed,
}

impl BearerProblem {
    /// The `portcullis_auth_failures_total` reason.
    pub fn metric(self) -> crate::metrics::AuthFailure {
        match self {
            BearerProblem::Missing => crate::metrics::AuthFailure::Missing,
            BearerProblem::Duplicated => crate::metrics::AuthFailure::Duplicated,
            BearerProblem::Malformed => crate::metrics::AuthFailure::Malformed,
        }
    }
}

/// The token from the request's single `Authorization: Bearer` header.
pub fn parse_bearer(headers: &HeaderMap) -> Result<&str, BearerProblem> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerProblem::Missing)?;
    if values.next().is_some() {
        return Err(BearerProblem::Duplicated);
    }
    let value = value.to_str().map_err(|_| BearerProblem::Malformed)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerProblem::Missing);
    }
    // RFC 6750: "Bearer" 1*SP b64token. Extra spaces are tolerated between
    // scheme and token (robustness); anything after the token is not.
    let token = rest.trim_start_matches(' ');
    if is_b64token(token) {
        Ok(token)
    } else {
        Err(BearerProblem::Malformed)
    }
}

/// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
/// Bounded in length: no token we issue is longer than 43 characters, and a
/// 1 KiB token is not worth hashing.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && token.len() <= 1024
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// True when `name` spells an identity header (`X-User-Id`, `X-Client-Id`,
/// `X-Scope`) in any case and `_` spelling.
pub fn is_identity_header(name: &str) -> bool {
    OwnedHeader::spelled_by(name).is_some_and(OwnedHeader::is_identity)
}

/// True for every header the gateway owns on the way upstream
/// ([`OwnedHeader`]), in any case and `_` spelling.
pub fn is_gateway_owned_header(name: &str) -> bool {
    OwnedHeader::spelled_by(name).is_some()
}

/// What to do to the client's headers before the upstream gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEdit {
    /// The names to remove, sorted, each once; never their values.
    pub remove: Vec<HeaderName>,
    /// The client asked to upgrade: put back `Connection: upgrade`.
    pub upgrade: bool,
}

/// Prepares client headers for the upstream, before identity is injected,
/// reading `Connection` once:
///
/// 1. Every header whose name folds to one the gateway owns is removed
///    ([`is_gateway_owned_header`]); the caller sets its own values.
/// 2. Hop-by-hop headers named in `Connection` are removed, then
///    `Connection` itself (RFC 9110 §7.6.1); the caller puts back
///    `Connection: upgrade` alone when [`HeaderEdit::upgrade`] says so. This
///    also defeats `Connection: X-User-Id`, which asks the next hop to drop
///    the header the gateway injects.
/// 3. `Authorization` is removed unless the route keeps it.
pub fn sanitize_forwarded_headers(headers: &HeaderMap, keep_authorization: bool) -> HeaderEdit {
    let mut remove: Vec<HeaderName> = Vec::new();
    let mut upgrade = false;
    for value in headers.get_all(CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.eq_ignore_ascii_case("upgrade") {
                upgrade = true;
                continue;
            }
            let connection_option = token.is_empty()
                || ["keep-alive", "close"]
                    .iter()
                    .any(|option| token.eq_ignore_ascii_case(option));
            if connection_option {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                remove.push(name);
            }
        }
    }
    if headers.contains_key(CONNECTION) {
        // Re-set by the caller to `upgrade` alone when the request upgrades.
        remove.push(CONNECTION);
    }
    for name in headers.keys() {
        if is_gateway_owned_header(name.as_str()) {
            remove.push(name.clone());
        }
    }
    if !keep_authorization && headers.contains_key(AUTHORIZATION) {
        remove.push(AUTHORIZATION);
    }
    remove.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    remove.dedup();
    HeaderEdit { remove, upgrade }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;
    use http::HeaderValue;

    #[test]
    fn bearer_parsing_follows_rfc_6750() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<&'a str, BearerProblem>);
        let cases: &[Case] = &[
            (&[], Err(BearerProblem::Missing)),
            (&[("authorization", "Bearer abc")], Ok("abc")),
            (&[("authorization", "bearer abc")], Ok("abc")),
            (&[("authorization", "BEARER abc")], Ok("abc")),
            (&[("authorization", "Bearer  abc")], Ok("abc")),
            (
                &[("authorization", "Bearer a-b.c_d~e+f/g==")],
                Ok("a-b.c_d~e+f/g=="),
            ),
            (
                &[("authorization", "Basic dXNlcjpwYXNz")],
                Err(BearerProblem::Missing),
            ),
            (
                &[("authorization", "Bearer")],
                Err(BearerProblem::Malformed),
            ),
            (
                &[("authorization", "Bearer ")],
                Err(BearerProblem::Malformed),
            ),
            (
                &[("authorization", "Bearer ===")],
                Err(BearerProblem::Malformed),
            ),
            (
                &[("authorization", "Bearer a b")],
                Err(BearerProblem::Malformed),
            ),
            (
                &[("authorization", "Bearer a=b")],
                Err(BearerProblem::Malformed),
            ),
            (
                &[("authorization", "Bearer a,b")],
                Err(BearerProblem::Malformed),
            ),
            (
                &[("authorization", "Bearer abc ")],
                Err(BearerProblem::Malformed),
            ),
            (
                &[("authorization", "Bearerabc")],
                Err(BearerProblem::Missing),
            ),
            (
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Err(BearerProblem::Duplicated),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_bearer(&headers(input)), *expected, "{input:?}");
        }
    }

    #[test]
    fn overlong_and_non_ascii_tokens_are_malformed() {
        let long = format!("Bearer {}", "a".repeat(1025));
        assert_eq!(
            parse_bearer(&headers(&[("authorization", &long)])),
            Err(BearerProblem::Malformed)
        );
        let mut map = HeaderMap::new();
        map.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert_eq!(parse_bearer(&map), Err(BearerProblem::Malformed));
    }

    #[test]
    fn identity_header_spellings_fold_together() {
        let cases = [
            ("X-User-Id", true),
            ("x-user-id", true),
            ("X_User_Id", true),
            ("x_user-id", true),
            ("X-USER-ID", true),
            ("X-Client-Id", true),
            ("x_scope", true),
            ("X-User-Ids", false),
            ("X-User", false),
            ("User-Id", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_identity_header(name), expected, "{name}");
        }
    }

    fn removed(pairs: &[(&str, &str)], keep_authorization: bool) -> Vec<String> {
        sanitize_forwarded_headers(&headers(pairs), keep_authorization)
            .remove
            .into_iter()
            .map(|n| n.as_str().to_string())
            .collect()
    }

    #[test]
    fn sanitizing_removes_spoofs_hop_by_hop_and_credentials() {
        assert_eq!(
            removed(
                &[
                    ("x-user-id", "evil"),
                    ("x_user_id", "evil"),
                    ("X_User-Id", "evil"),
                    ("authorization", "Bearer t"),
                    ("accept", "*/*"),
                ],
                false
            ),
            vec!["authorization", "x-user-id", "x_user-id", "x_user_id"]
        );
        assert_eq!(
            removed(
                &[("connection", "X-User-Id, keep-alive"), ("x-trace", "1")],
                true
            ),
            vec!["connection", "x-user-id"]
        );
        assert_eq!(
            removed(&[("connection", "x-trace"), ("x-trace", "1")], true),
            vec!["connection", "x-trace"]
        );
        assert_eq!(
            removed(&[("authorization", "Bearer t")], true),
            Vec::<String>::new()
        );
        assert_eq!(
            removed(
                &[
                    ("connection", "Upgrade, X_User_Id"),
                    ("upgrade", "websocket")
                ],
                true
            ),
            vec!["connection", "x_user_id"]
        );
    }

    #[test]
    fn upgrade_survives_sanitizing() {
        let cases = [
            ("keep-alive, Upgrade", true),
            ("upgrade", true),
            ("close", false),
            ("X-Upgrade", false),
        ];
        for (connection, upgrade) in cases {
            let edit = sanitize_forwarded_headers(&headers(&[("connection", connection)]), false);
            assert_eq!(edit.upgrade, upgrade, "{connection}");
            assert!(edit.remove.contains(&CONNECTION), "{connection}");
        }
    }
}
