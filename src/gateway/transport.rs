//! Credentials cross the network only under TLS. The token, revocation and
//! introspection endpoints take passwords, client secrets and tokens, and
//! management the administrator's password; RFC 6749 §2.3.1 and §3.2
//! require TLS for them. So the gateway answers them only for a request
//! that came over TLS: on the HTTPS listener, through a trusted proxy that
//! says it terminated TLS, or anywhere when `oauth.allow_plaintext` says
//! the operator takes care of it. Metadata carries no credential and is
//! answered everywhere.

use http::HeaderMap;

use crate::forwarding;
use crate::respond::Reply;
use crate::route::Destination;

/// How a request reached the gateway.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival<'a> {
    /// On a TLS connection.
    pub tls: bool,
    /// From a peer in `server.trusted_proxies`.
    pub peer_trusted: bool,
    pub headers: &'a HeaderMap,
}

/// Whether `destination` may be answered for a request that arrived so.
pub(super) fn allowed(
    destination: Destination,
    arrival: Arrival<'_>,
    allow_plaintext: bool,
) -> bool {
    !carries_credentials(destination)
        || allow_plaintext
        || arrival.tls
        || (arrival.peer_trusted && proxy_terminated_tls(arrival.headers))
}

fn carries_credentials(destination: Destination) -> bool {
    matches!(
        destination,
        Destination::TokenEndpoint
            | Destination::RevokeEndpoint
            | Destination::IntrospectEndpoint
            | Destination::ManagementEndpoint
    )
}

/// The trusted proxy's own `X-Forwarded-Proto` says `https`.
fn proxy_terminated_tls(headers: &HeaderMap) -> bool {
    forwarding::last_forwarded_proto(headers)
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The answer to a request refused by [`allowed`]. The request itself is
/// not read further: whatever it carried is not acted on.
pub(super) fn refused() -> Reply {
    Reply::error(
        403,
        "invalid_request",
        "this endpoint takes credentials and answers over HTTPS only (RFC 6749 §2.3.1, §3.2): \
         use the HTTPS listener; behind a proxy that terminates TLS, list it in \
         server.trusted_proxies and have it send X-Forwarded-Proto: https; or set \
         oauth.allow_plaintext: true",
    )
    .no_store()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn credentials_need_tls_or_a_trusted_proxys_word_for_it() {
        use Destination::*;
        const HTTPS: &[(&str, &str)] = &[("x-forwarded-proto", "https")];
        const HTTP: &[(&str, &str)] = &[("x-forwarded-proto", "http")];
        const NONE: &[(&str, &str)] = &[];
        // A client in front of a trusted proxy that appends rather than
        // replaces: only the proxy's own (last) value counts.
        const SPOOFED: &[(&str, &str)] = &[("x-forwarded-proto", "https, http")];
        const APPENDED: &[(&str, &str)] = &[("x-forwarded-proto", "http, https")];
        type Case = (
            Destination,
            bool,
            bool,
            &'static [(&'static str, &'static str)],
            bool,
            bool,
        );
        // (destination, tls, peer trusted, headers, allow_plaintext, allowed)
        let cases: &[Case] = &[
            (TokenEndpoint, true, false, NONE, false, true),
            (TokenEndpoint, false, false, NONE, false, false),
            (TokenEndpoint, false, false, HTTPS, false, false),
            (TokenEndpoint, false, true, HTTPS, false, true),
            (TokenEndpoint, false, true, HTTP, false, false),
            (TokenEndpoint, false, true, NONE, false, false),
            (TokenEndpoint, false, true, SPOOFED, false, false),
            (TokenEndpoint, false, true, APPENDED, false, true),
            (TokenEndpoint, false, false, NONE, true, true),
            (RevokeEndpoint, false, false, NONE, false, false),
            (RevokeEndpoint, true, false, NONE, false, true),
            (IntrospectEndpoint, false, false, HTTPS, false, false),
            (IntrospectEndpoint, false, true, HTTPS, false, true),
            (ManagementEndpoint, false, false, NONE, false, false),
            (ManagementEndpoint, false, false, NONE, true, true),
            (ManagementEndpoint, true, false, NONE, false, true),
            (ManagementEndpoint, false, true, HTTPS, false, true),
            (MetadataEndpoint, false, false, NONE, false, true),
            (ReservedPath, false, false, NONE, false, true),
            (ServerOptions, false, false, NONE, false, true),
            (NoRoute, false, false, NONE, false, true),
            (Proxy { route: 0 }, false, false, NONE, false, true),
        ];
        for &(destination, tls, peer_trusted, pairs, allow_plaintext, expected) in cases {
            let headers = headers(pairs);
            let arrival = Arrival {
                tls,
                peer_trusted,
                headers: &headers,
            };
            assert_eq!(
                allowed(destination, arrival, allow_plaintext),
                expected,
                "{destination:?} tls={tls} trusted={peer_trusted} {pairs:?} allow_plaintext={allow_plaintext}"
            );
        }
    }

    #[test]
    fn the_refusal_names_the_ways_out() {
        let reply = refused();
        assert_eq!(reply.status, 403);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"], "invalid_request");
        let description = body["error_description"].as_str().unwrap();
        for named in [
            "HTTPS",
            "server.trusted_proxies",
            "X-Forwarded-Proto",
            "oauth.allow_plaintext",
        ] {
            assert!(description.contains(named), "{description}");
        }
    }
}
