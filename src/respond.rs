//! The one writer of responses the gateway makes itself (401s, 503s, the
//! token endpoint). Handlers build a [`Reply`] (pure data, easy to test) and
//! [`send`] writes it to the Pingora session.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde::Serialize;

use crate::auth::BearerProblem;

/// The realm in every `WWW-Authenticate` challenge.
pub const REALM: &str = "portcullis";

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl Reply {
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        let body = serde_json::to_vec(body).expect("response bodies serialize");
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: Bytes::from(body),
        }
    }

    /// `{"error": code, "error_description": description}`, the shape of both
    /// RFC 6749 §5.2 and RFC 6750 §3 error bodies.
    pub fn error(status: u16, code: &str, description: &str) -> Self {
        Reply::json(
            status,
            &ErrorBody {
                error: code,
                error_description: description,
            },
        )
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Token responses and errors carry credentials or say something about
    /// them: never cache (RFC 6749 §5.1).
    pub fn no_store(self) -> Self {
        self.with_header("cache-control", "no-store")
            .with_header("pragma", "no-cache")
    }
}

/// RFC 6750 §3 challenge for a request without a usable bearer token.
pub fn bearer_problem(problem: BearerProblem) -> Reply {
    match problem {
        BearerProblem::Missing => Reply::error(
            401,
            "unauthorized",
            "this resource needs an access token: send `Authorization: Bearer <token>`",
        )
        .with_header("www-authenticate", format!("Bearer realm=\"{REALM}\"")),
        BearerProblem::Duplicated => bearer_error(
            400,
            "invalid_request",
            "send exactly one Authorization header",
        ),
        BearerProblem::Malformed => bearer_error(
            401,
            "invalid_token",
            "the access token is malformed: expected `Authorization: Bearer <token>`",
        ),
    }
}

/// 401 for a well-formed token that is unknown, expired or revoked.
pub fn invalid_token() -> Reply {
    bearer_error(
        401,
        "invalid_token",
        "the access token is unknown, expired or revoked",
    )
}

fn bearer_error(status: u16, code: &str, description: &str) -> Reply {
    Reply::error(status, code, description).with_header(
        "www-authenticate",
        format!("Bearer realm=\"{REALM}\", error=\"{code}\", error_description=\"{description}\""),
    )
}

/// 403 for a valid token without the route's scopes (RFC 6750 §3.1).
pub fn insufficient_scope(required: &[String]) -> Reply {
    let scope = required.join(" ");
    Reply::error(
        403,
        "insufficient_scope",
        "the access token lacks a scope this resource requires",
    )
    .with_header(
        "www-authenticate",
        format!(
            "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", error_description=\"the access token lacks a scope this resource requires\", scope=\"{scope}\""
        ),
    )
}

/// The token store or user store cannot answer: fail closed.
pub fn temporarily_unavailable(description: &str) -> Reply {
    Reply::error(503, "temporarily_unavailable", description)
        .with_header("retry-after", RETRY_AFTER_SECONDS.to_string())
}

pub fn not_found(description: &str) -> Reply {
    Reply::error(404, "not_found", description)
}

impl Reply {
    /// The reply as sent for request `request_id`: with an `X-Request-Id`
    /// header, and the id in the body of an error (the
    /// `{"error": …}` shape of [`Reply::error`]), so that a client's report
    /// of a failure names its log line. A checked request id has no
    /// character that needs escaping in JSON.
    pub fn for_request(mut self, request_id: &str) -> Reply {
        const ERROR_OPENING: &[u8] = b"{\"error\":";
        let is_error = self.body.starts_with(ERROR_OPENING)
            && self.header("content-type") == Some("application/json");
        if is_error && crate::forwarding::is_valid_request_id(request_id.as_bytes()) {
            let mut body = Vec::with_capacity(self.body.len() + request_id.len() + 16);
            body.extend_from_slice(&self.body[..self.body.len() - 1]);
            body.extend_from_slice(b",\"request_id\":\"");
            body.extend_from_slice(request_id.as_bytes());
            body.extend_from_slice(b"\"}");
            self.body = Bytes::from(body);
        }
        self.with_header("x-request-id", request_id)
    }
}

/// Writes `reply` as the whole response to request `request_id`.
pub async fn send(session: &mut Session, reply: Reply, request_id: &str) -> pingora::Result<()> {
    let reply = reply.for_request(request_id);
    let mut header = ResponseHeader::build(reply.status, Some(reply.headers.len() + 2))?;
    for (name, value) in &reply.headers {
        header.insert_header(*name, value.as_str())?;
    }
    header.insert_header("content-length", reply.body.len().to_string())?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head_only || reply.body.is_empty())
        .await?;
    if !head_only && !reply.body.is_empty() {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing = bearer_problem(BearerProblem::Missing);
        assert_eq!(missing.status, 401);
        assert_eq!(
            missing.header("WWW-Authenticate"),
            Some("Bearer realm=\"portcullis\"")
        );

        let malformed = bearer_problem(BearerProblem::Malformed);
        assert_eq!(malformed.status, 401);
        assert!(malformed.header("www-authenticate").unwrap().starts_with(
            "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\""
        ));

        let duplicated = bearer_problem(BearerProblem::Duplicated);
        assert_eq!(duplicated.status, 400);
        assert!(duplicated
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\""));

        let unknown = invalid_token();
        let body: serde_json::Value = serde_json::from_slice(&unknown.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(unknown.header("content-type"), Some("application/json"));
    }

    #[test]
    fn errors_name_their_request() {
        let reply = not_found("nothing here").for_request("req-1");
        assert_eq!(reply.header("x-request-id"), Some("req-1"));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"], "not_found");
        assert_eq!(body["error_description"], "nothing here");
        assert_eq!(body["request_id"], "req-1");

        let success = Reply::json(200, &serde_json::json!({"ok": true})).for_request("req-2");
        assert_eq!(&success.body[..], br#"{"ok":true}"#);
        assert_eq!(success.header("x-request-id"), Some("req-2"));
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let reply = temporarily_unavailable("down");
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("1"));
    }

    #[test]
    fn descriptions_have_no_quotes_that_would_break_the_challenge() {
        for reply in [
            bearer_problem(BearerProblem::Malformed),
            bearer_problem(BearerProblem::Duplicated),
            invalid_token(),
        ] {
            let challenge = reply.header("www-authenticate").unwrap();
            assert_eq!(challenge.matches('"').count() % 2, 0, "{challenge}");
            assert!(!challenge.contains('\\'), "{challenge}");
        }
    }
}
