//! The request headers the proxy path reads: `Authorization: Bearer`,
//! `Connection`, the identity and forwarding headers a client may forge,
//! `X-Forwarded-For` behind trusted proxies, and `X-Request-Id`; and
//! `Authorization: Basic` as the token endpoint and the management page
//! read it.
//!
//! Input: lines separated by `\n`. The first line is the value of one
//! `Authorization` header (bytes a header value cannot hold are dropped,
//! so there always is one); every other line is `name:value`, appended
//! when `http` accepts both. Checks, besides "never panics":
//! - a parsed bearer token is a non-empty b64token of at most 1024 bytes;
//! - sanitizing (without keeping `Authorization`) removes `Authorization`,
//!   `Connection` if present, and every gateway-owned header, sorted and
//!   once each;
//! - the request id and every forwarding value is a valid header value.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use http::header::{AUTHORIZATION, CONNECTION};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::auth::{
    is_gateway_owned_header, is_identity_header, parse_bearer, sanitize_forwarded_headers,
};
use portcullis::client_address::{client_address_of, IpNetwork};
use portcullis::forwarding::{forwarding_values, is_valid_request_id, request_id, Hop};
use portcullis::oauth::client_auth::presented_client;
use portcullis::oauth::form::Form;

/// More header lines add nothing but time.
const MAX_LINES: usize = 64;

const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
const PROXY_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));

static TRUSTED: LazyLock<Vec<IpNetwork>> = LazyLock::new(|| {
    ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]
        .iter()
        .map(|n| n.parse().expect("a valid network"))
        .collect()
});

/// A form whose client_id rarely matches, to reach both Basic branches.
static FORM_WITH_ID: LazyLock<Form> =
    LazyLock::new(|| Form::parse(b"client_id=app").expect("a valid form"));

fn assert_header_value(what: &str, value: &str) {
    assert!(
        HeaderValue::from_str(value).is_ok(),
        "{what} is not a valid header value: {value:?}"
    );
}

fn is_b64token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let authorization: Vec<u8> = first
        .iter()
        .copied()
        .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        .collect();
    let mut headers = HeaderMap::new();
    headers.append(
        AUTHORIZATION,
        HeaderValue::from_bytes(&authorization).expect("filtered to valid value bytes"),
    );
    for line in lines.take(MAX_LINES) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }

    if let Ok(token) = parse_bearer(&headers) {
        assert!(
            !token.is_empty() && token.len() <= 1024 && token.bytes().all(is_b64token_char),
            "accepted bearer token {token:?}"
        );
    }

    let edit = sanitize_forwarded_headers(&headers, false);
    let removed = edit.remove;
    assert!(removed.contains(&AUTHORIZATION), "Authorization kept");
    assert!(
        removed.windows(2).all(|w| w[0].as_str() < w[1].as_str()),
        "not sorted and deduplicated: {removed:?}"
    );
    if headers.contains_key(CONNECTION) {
        assert!(removed.contains(&CONNECTION), "Connection kept");
    }
    for name in headers.keys() {
        let _ = is_identity_header(name.as_str());
        if is_gateway_owned_header(name.as_str()) {
            assert!(removed.contains(name), "gateway-owned {name} kept");
        }
    }
    let kept = sanitize_forwarded_headers(&headers, true);
    assert!(kept.remove.len() <= removed.len());
    assert_eq!(kept.upgrade, edit.upgrade);
    if edit.upgrade {
        assert!(headers.contains_key(CONNECTION), "an upgrade without Connection");
    }

    let id = request_id(&headers);
    assert!(is_valid_request_id(id.as_bytes()), "request id {id:?}");

    for (peer, peer_trusted) in [(PROXY, true), (PROXY_V6, true), (CLIENT, false)] {
        let client = client_address_of(peer, &headers, &TRUSTED);
        if !peer_trusted {
            assert_eq!(
                client, peer,
                "an untrusted peer's X-Forwarded-For was believed"
            );
        }
        for host in [Some("example.com:8443"), None] {
            let hop = Hop {
                peer,
                peer_trusted,
                client,
                proto: "https",
                host,
            };
            let values = forwarding_values(&headers, &hop, true);
            assert_header_value("X-Forwarded-For", &values.x_forwarded_for);
            assert_header_value("X-Forwarded-Proto", &values.x_forwarded_proto);
            if let Some(host) = &values.x_forwarded_host {
                assert_header_value("X-Forwarded-Host", host);
            }
            let forwarded = values.forwarded.expect("asked for Forwarded");
            assert_header_value("Forwarded", &forwarded);
            assert_header_value("X-Real-IP", &values.x_real_ip);
        }
    }

    // Authorization: Basic, as the token endpoint and management read it.
    if let Ok(value) = headers[AUTHORIZATION].to_str() {
        let _ = portcullis::admin_auth::parse_basic(value);
        let _ = presented_client(Some(value), &Form::default());
        let _ = presented_client(Some(value), &FORM_WITH_ID);
    }
});
