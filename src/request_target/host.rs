//! The request's one `Host` (RFC 9110 §7.2, RFC 9112 §3.2, RFC 9113
//! §8.3.1): exactly one, a plain `host[:port]`, the same as HTTP/2's
//! `:authority`.

use super::TargetProblem;

/// `uri-host [":" port]` (RFC 9110 §7.2), kept to what real hosts use:
/// a registered name of letters, digits, `-`, `.`, `_`, `~`; an IPv4
/// address; or an IPv6 literal in brackets. Empty is allowed, as RFC 9112
/// §3.2 allows it for a target without an authority.
/// A DNS host name as configurations write them (RFC 1123 §2.1): labels of
/// letters, digits and inner `-`, 1 to 63 bytes each, 253 in all.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

pub fn is_valid_host(host: &[u8]) -> bool {
    let (name, port) = match host.first() {
        Some(b'[') => match host.iter().position(|&b| b == b']') {
            Some(close) => {
                let literal = &host[1..close];
                let literal_ok = !literal.is_empty()
                    && literal
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
                if !literal_ok {
                    return false;
                }
                (&host[..0], &host[close + 1..])
            }
            None => return false,
        },
        _ => match host.iter().position(|&b| b == b':') {
            Some(colon) => (&host[..colon], &host[colon..]),
            None => (host, &host[host.len()..]),
        },
    };
    let name_ok = name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => {
            !digits.is_empty() && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit)
        }
        Some(_) => false,
    };
    name_ok && port_ok
}

/// The request's one host, from `Host` and, on HTTP/2, `:authority`
/// (`uri_authority`). `Ok(None)` only for an HTTP/1.0 request without one.
pub fn check_host<'a>(
    hosts: &mut dyn Iterator<Item = &'a [u8]>,
    uri_authority: Option<&'a str>,
    is_http10: bool,
) -> Result<Option<&'a str>, TargetProblem> {
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(TargetProblem::DuplicateHost);
    }
    let host = match (host, uri_authority) {
        (Some(host), Some(authority)) => {
            if !host.eq_ignore_ascii_case(authority.as_bytes()) {
                return Err(TargetProblem::HostMismatch);
            }
            host
        }
        (Some(host), None) => host,
        (None, Some(authority)) => authority.as_bytes(),
        (None, None) if is_http10 => return Ok(None),
        (None, None) => return Err(TargetProblem::MissingHost),
    };
    if !is_valid_host(host) {
        return Err(TargetProblem::InvalidHost);
    }
    // Validated: ASCII only.
    std::str::from_utf8(host)
        .map(Some)
        .map_err(|_| TargetProblem::InvalidHost)
}

/// The host a request was sent to: its `Host`, or, without one, the URI's
/// authority, which is where HTTP/2's `:authority` lands (browsers send no
/// `Host` over HTTP/2). After [`check_host`] accepted the request the two
/// agree, so this is the checked host.
pub fn request_host(request: &http::request::Parts) -> Option<&str> {
    match request.headers.get(http::header::HOST) {
        Some(host) => host.to_str().ok(),
        None => request.uri.authority().map(|a| a.as_str()),
    }
}
