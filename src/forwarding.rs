//! The headers that tell the upstream where a request came from, and the
//! request id that follows it through every log. Pure: no I/O.
//!
//! - `X-Forwarded-For` gets the client's peer address appended;
//!   `X-Forwarded-Proto` and `X-Forwarded-Host` are set; RFC 7239
//!   `Forwarded` gets an element of ours; `X-Real-IP` is the client's
//!   address. What a client wrote in these is replaced, unless the peer is
//!   one of `server.trusted_proxies`, whose values are kept and appended to.
//! - `X-Request-Id` is kept when it is well formed, else made here.
//!
//! Their names, and the stripping of client copies, are in
//! [`crate::owned_headers`].

use std::fmt::Write as _;
use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};

/// What the gateway knows of the hop it received a request on.
#[derive(Debug, Clone, Copy)]
pub struct Hop<'a> {
    /// The socket's other end.
    pub peer: IpAddr,
    /// The peer is in `server.trusted_proxies`: its forwarding headers are
    /// believed and extended.
    pub peer_trusted: bool,
    /// The client's address (see [`crate::client_address`]).
    pub client: IpAddr,
    /// `https` on the TLS listener, else `http`.
    pub proto: &'static str,
    /// The request's checked `Host`.
    pub host: Option<&'a str>,
}

/// The values the upstream receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingValues {
    pub x_forwarded_for: String,
    pub x_forwarded_proto: String,
    pub x_forwarded_host: Option<String>,
    /// `None` when `server.forwarded_header` is off.
    pub forwarded: Option<String>,
    pub x_real_ip: String,
}

/// Every line of header `name`, joined by `, ` in order (RFC 9110 §5.3),
/// or `None` if there is none or one is not text.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    let mut out = String::new();
    for line in lines {
        let text = line.to_str().ok()?.trim();
        if text.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(text);
    }
    (!out.is_empty()).then_some(out)
}

/// A trusted peer's single-valued header, when it has exactly one
/// well-formed line.
fn single(headers: &HeaderMap, name: &str, valid: fn(&str) -> bool) -> Option<String> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?.to_str().ok()?.trim();
    (lines.next().is_none() && valid(first)).then(|| first.to_string())
}

fn is_proto(text: &str) -> bool {
    text.eq_ignore_ascii_case("http") || text.eq_ignore_ascii_case("https")
}

fn is_host(text: &str) -> bool {
    crate::request_target::is_valid_host(text.as_bytes()) && !text.is_empty()
}

/// RFC 7239 §6: an IPv6 node is quoted and bracketed.
fn forwarded_node(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

/// Our `Forwarded` element: `for=…;proto=…;host="…"`. The host is quoted
/// because `host:port` is not a token; a checked host has no `"` or `\`.
fn forwarded_element(hop: &Hop<'_>) -> String {
    let mut element = format!("for={};proto={}", forwarded_node(hop.peer), hop.proto);
    if let Some(host) = hop.host.filter(|h| !h.is_empty()) {
        let _ = write!(element, ";host=\"{host}\"");
    }
    element
}

/// The forwarding headers for the upstream, from the client's request.
pub fn forwarding_values(
    headers: &HeaderMap,
    hop: &Hop<'_>,
    emit_forwarded: bool,
) -> ForwardingValues {
    let peer = hop.peer.to_canonical();
    let append = |previous: Option<String>, ours: String| match previous {
        Some(previous) => format!("{previous}, {ours}"),
        None => ours,
    };
    let trusted = |name| hop.peer_trusted.then(|| joined(headers, name)).flatten();
    ForwardingValues {
        x_forwarded_for: append(trusted("x-forwarded-for"), peer.to_string()),
        x_forwarded_proto: hop
            .peer_trusted
            .then(|| single(headers, "x-forwarded-proto", is_proto))
            .flatten()
            .unwrap_or_else(|| hop.proto.to_string()),
        x_forwarded_host: hop
            .peer_trusted
            .then(|| single(headers, "x-forwarded-host", is_host))
            .flatten()
            .or_else(|| hop.host.filter(|h| !h.is_empty()).map(str::to_string)),
        forwarded: emit_forwarded.then(|| {
            append(
                trusted("forwarded"),
                forwarded_element(&Hop { peer, ..*hop }),
            )
        }),
        x_real_ip: hop.client.to_canonical().to_string(),
    }
}

/// The scheme the nearest proxy says the client used: the last
/// `X-Forwarded-Proto` element, across every line. A proxy that appends
/// puts its own after what came in, so only the last one is the trusted
/// peer's; earlier ones may be the client's. `None` when there is none,
/// it is not text, or it is neither `http` nor `https`. Believe it only
/// from a peer in `server.trusted_proxies`.
pub fn last_forwarded_proto(headers: &HeaderMap) -> Option<&str> {
    for line in headers.get_all("x-forwarded-proto").iter().rev() {
        let text = line.to_str().ok()?;
        // Empty list elements are ignored (RFC 9110 §5.6.1.2).
        if let Some(last) = text.rsplit(',').map(str::trim).find(|e| !e.is_empty()) {
            return is_proto(last).then_some(last);
        }
    }
    None
}

/// Longest client-supplied request id that is kept.
pub const MAX_REQUEST_ID_LENGTH: usize = 128;

/// A request id a client may choose: 1 to 128 of letters, digits and
/// `-_.:+/=` (UUIDs, ULIDs, hex, base64, trace ids). Nothing that could
/// break a log line, a header or a JSON string.
pub fn is_valid_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LENGTH
        && id.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
        })
}

/// The request's id: the client's single well-formed `X-Request-Id`, or a
/// new random one (128 bits, 32 hex digits).
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let mut ids = headers.get_all("x-request-id").iter();
    if let (Some(id), None) = (ids.next(), ids.next()) {
        if is_valid_request_id(id.as_bytes()) {
            return id.clone();
        }
    }
    new_request_id()
}

fn new_request_id() -> HeaderValue {
    let random: u128 = rand::random();
    let mut text = [0u8; 32];
    for (at, digit) in text.iter_mut().enumerate() {
        let nibble = (random >> (124 - 4 * at)) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    HeaderValue::from_bytes(&text).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    fn hop(peer: &str, trusted: bool) -> Hop<'static> {
        Hop {
            peer: peer.parse().unwrap(),
            peer_trusted: trusted,
            client: peer.parse().unwrap(),
            proto: "https",
            host: Some("api.example.com"),
        }
    }

    #[test]
    fn untrusted_peers_values_are_replaced() {
        let spoofed = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=1.2.3.4;host=evil.example"),
        ]);
        let values = forwarding_values(&spoofed, &hop("203.0.113.7", false), true);
        assert_eq!(
            values,
            ForwardingValues {
                x_forwarded_for: "203.0.113.7".into(),
                x_forwarded_proto: "https".into(),
                x_forwarded_host: Some("api.example.com".into()),
                forwarded: Some("for=203.0.113.7;proto=https;host=\"api.example.com\"".into()),
                x_real_ip: "203.0.113.7".into(),
            }
        );
    }

    #[test]
    fn trusted_peers_values_are_extended() {
        let incoming = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "10.0.0.5"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "public.example:8443"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        let mut trusted_hop = hop("10.0.0.2", true);
        trusted_hop.client = "198.51.100.1".parse().unwrap();
        let values = forwarding_values(&incoming, &trusted_hop, true);
        assert_eq!(values.x_forwarded_for, "198.51.100.1, 10.0.0.5, 10.0.0.2");
        assert_eq!(values.x_forwarded_proto, "http");
        assert_eq!(
            values.x_forwarded_host.as_deref(),
            Some("public.example:8443")
        );
        assert_eq!(
            values.forwarded.as_deref(),
            Some("for=198.51.100.1, for=10.0.0.2;proto=https;host=\"api.example.com\"")
        );
        assert_eq!(values.x_real_ip, "198.51.100.1");
    }

    #[test]
    fn trusted_peers_bad_values_fall_back_to_ours() {
        let incoming = headers(&[("x-forwarded-proto", "gopher"), ("x-forwarded-host", "a b")]);
        let values = forwarding_values(&incoming, &hop("10.0.0.2", true), false);
        assert_eq!(values.x_forwarded_for, "10.0.0.2");
        assert_eq!(values.x_forwarded_proto, "https");
        assert_eq!(values.x_forwarded_host.as_deref(), Some("api.example.com"));
        assert_eq!(values.forwarded, None);
    }

    #[test]
    fn ipv6_nodes_are_quoted() {
        let mut v6 = hop("2001:db8::1", false);
        v6.host = None;
        let values = forwarding_values(&HeaderMap::new(), &v6, true);
        assert_eq!(
            values.forwarded.as_deref(),
            Some("for=\"[2001:db8::1]\";proto=https")
        );
        assert_eq!(values.x_forwarded_host, None);
        let mapped = forwarding_values(&HeaderMap::new(), &hop("::ffff:192.0.2.9", false), true);
        assert_eq!(mapped.x_forwarded_for, "192.0.2.9");
    }

    #[test]
    fn the_last_forwarded_proto_is_the_nearest_proxys() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["https"], Some("https")),
            (&["HTTPS"], Some("HTTPS")),
            (&[" http "], Some("http")),
            (&["http, https"], Some("https")),
            (&["https, http"], Some("http")),
            (&["https", "http"], Some("http")),
            (&["http", "https"], Some("https")),
            (&["https,", ""], Some("https")),
            (&["gopher"], None),
            (&["https", "gopher"], None),
            (&["https;x"], None),
            (&[""], None),
        ];
        for (values, expected) in cases {
            let pairs: Vec<(&str, &str)> =
                values.iter().map(|v| ("x-forwarded-proto", *v)).collect();
            assert_eq!(
                last_forwarded_proto(&headers(&pairs)),
                *expected,
                "{values:?}"
            );
        }
        let mut opaque = HeaderMap::new();
        opaque.append("x-forwarded-proto", HeaderValue::from_static("https"));
        opaque.append(
            "x-forwarded-proto",
            HeaderValue::from_bytes(b"\xffhttps").unwrap(),
        );
        assert_eq!(
            last_forwarded_proto(&opaque),
            None,
            "not text: not believed"
        );
    }

    #[test]
    fn request_ids() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["abc-123"], Some("abc-123")),
            (
                &["0f8fad5b-d9cb-469f-a165-70867728950e"],
                Some("0f8fad5b-d9cb-469f-a165-70867728950e"),
            ),
            (
                &["Root=1-67891233-abcdef012345678912345678"],
                Some("Root=1-67891233-abcdef012345678912345678"),
            ),
            (&["a b"], None),
            (&["a\"b"], None),
            (&["<script>"], None),
            (&[""], None),
            (&["a", "b"], None),
        ];
        for (values, kept) in cases {
            let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("x-request-id", *v)).collect();
            let id = request_id(&headers(&pairs));
            match kept {
                Some(kept) => assert_eq!(id.to_str().unwrap(), *kept),
                None => {
                    let id = id.to_str().unwrap();
                    assert_eq!(id.len(), 32, "{values:?}");
                    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
                }
            }
        }
        let long = "a".repeat(MAX_REQUEST_ID_LENGTH + 1);
        assert_ne!(
            request_id(&headers(&[("x-request-id", &long)]))
                .to_str()
                .unwrap(),
            long
        );
        assert_ne!(new_request_id(), new_request_id());
    }
}
