//! The one reading of a request that the gateway authorizes and the
//! upstream receives. Pure: no I/O.
//!
//! An authenticating gateway is only as good as the agreement between the
//! path it routes on and the path the upstream serves. If the two read the
//! bytes differently (`/%61dmin` is `/admin` to Flask; `admin/users` is `/`
//! to a parser that gives up), a request authorized as public is served as
//! protected. So the gateway:
//!
//! - accepts origin-form targets (RFC 9112 §3.2.1), asterisk-form for
//!   `OPTIONS *` (§3.2.4), and absolute-form (§3.2.2) whose authority is the
//!   request's `Host`, which it turns into origin-form; everything else is
//!   refused;
//! - normalizes the path as RFC 3986 §6.2.2 says (percent-encoded unreserved
//!   characters decoded, the hex digits of the others upper-cased) and
//!   refuses what different servers would read differently: encoded `/` or
//!   `\`, backslashes, dot segments, empty segments, double encoding, control
//!   characters, invalid or overlong UTF-8;
//! - routes on that normalized path and writes exactly it upstream.
//!
//! A clean path (the common case) is neither copied nor rewritten: one pass
//! over its bytes, no allocation.

use std::fmt;

/// Why a request's target or `Host` is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetProblem {
    /// Not origin-, absolute- or asterisk-form (`admin/users`, `*admin`).
    UnsupportedForm,
    /// `*` with a method other than OPTIONS.
    AsteriskWithoutOptions,
    /// Absolute-form with a scheme other than http or https, userinfo, or an
    /// authority that is not the request's `Host`.
    ForeignAuthority,
    /// `%` not followed by two hex digits.
    MalformedPercentEncoding,
    /// `%2F` or `%5C`: a separator some servers decode and some do not.
    EncodedSeparator,
    /// A raw `\`, which some servers read as `/`.
    Backslash,
    /// `.` or `..` as a segment, raw or encoded.
    DotSegment,
    /// `//` somewhere in the path.
    EmptySegment,
    /// `%25` followed by two hex digits: an encoding of an encoding.
    DoubleEncoding,
    /// A control character (`%00`–`%1F`, `%7F`), raw or encoded.
    ControlCharacter,
    /// Percent-encoded bytes that are not UTF-8, or overlong UTF-8.
    InvalidUtf8,
    /// A byte RFC 3986 does not allow in a path or query (space, `"`, `<`,
    /// `#`, raw non-ASCII, …).
    InvalidCharacter,
    /// More than one `Host` header.
    DuplicateHost,
    /// No `Host` on an HTTP/1.1 request.
    MissingHost,
    /// A `Host` that is not `host[:port]`.
    InvalidHost,
    /// HTTP/2 `:authority` and `Host` name different hosts.
    HostMismatch,
}

impl TargetProblem {
    /// What the client reads in the 400's `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            TargetProblem::UnsupportedForm => {
                "the request-target must be an absolute path (origin-form), an absolute URI for this host, or `*` for OPTIONS"
            }
            TargetProblem::AsteriskWithoutOptions => "the request-target `*` is only for OPTIONS",
            TargetProblem::ForeignAuthority => {
                "an absolute request-target must be http or https, without userinfo, and name the Host of the request"
            }
            TargetProblem::MalformedPercentEncoding => {
                "the path has a `%` that is not followed by two hex digits"
            }
            TargetProblem::EncodedSeparator => {
                "the path has an encoded `/` or `\\` (%2F, %5C); send the path unencoded"
            }
            TargetProblem::Backslash => "the path has a backslash",
            TargetProblem::DotSegment => {
                "the path has `.` or `..` segments; send it normalized"
            }
            TargetProblem::EmptySegment => "the path has an empty segment (`//`)",
            TargetProblem::DoubleEncoding => {
                "the path has a double percent-encoding (%25 followed by hex digits)"
            }
            TargetProblem::ControlCharacter => "the path has a control character",
            TargetProblem::InvalidUtf8 => {
                "the path's percent-encoded bytes are not valid UTF-8"
            }
            TargetProblem::InvalidCharacter => {
                "the request-target has a character that must be percent-encoded"
            }
            TargetProblem::DuplicateHost => "send exactly one Host header",
            TargetProblem::MissingHost => "an HTTP/1.1 request needs a Host header",
            TargetProblem::InvalidHost => "the Host header is not a valid host[:port]",
            TargetProblem::HostMismatch => "the Host header and :authority name different hosts",
        }
    }
}

impl fmt::Display for TargetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A request-target the gateway accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedTarget<'a> {
    /// Origin-form and already normal: routed on and forwarded as it came.
    Clean { path: &'a str },
    /// Normalized or turned into origin-form: routed on and forwarded as
    /// this `path[?query]`. `path_len` is where the path ends in it.
    Rewritten {
        path_and_query: String,
        path_len: usize,
    },
    /// `OPTIONS *`: about the server, answered by the gateway.
    Asterisk,
}

impl CheckedTarget<'_> {
    /// The normalized path, which routing reads.
    pub fn path(&self) -> &str {
        match self {
            CheckedTarget::Clean { path } => path,
            CheckedTarget::Rewritten {
                path_and_query,
                path_len,
            } => &path_and_query[..*path_len],
            CheckedTarget::Asterisk => "*",
        }
    }

    /// The target to write upstream when it differs from what came in.
    pub fn into_rewritten(self) -> Option<String> {
        match self {
            CheckedTarget::Rewritten { path_and_query, .. } => Some(path_and_query),
            _ => None,
        }
    }
}

/// Checks a raw request-target (the bytes of the request line, or HTTP/2
/// `:path`). `host` is the request's checked `Host` (see [`check_host`]),
/// which an absolute-form authority must equal.
pub fn check_target<'a>(
    raw: &'a [u8],
    is_options: bool,
    host: Option<&str>,
) -> Result<CheckedTarget<'a>, TargetProblem> {
    match raw.first() {
        Some(b'/') => check_origin_form(raw),
        Some(b'*') if raw.len() == 1 => {
            if is_options {
                Ok(CheckedTarget::Asterisk)
            } else {
                Err(TargetProblem::AsteriskWithoutOptions)
            }
        }
        _ => check_absolute_form(raw, host),
    }
}

fn check_origin_form(raw: &[u8]) -> Result<CheckedTarget<'_>, TargetProblem> {
    let path_end = raw.iter().position(|&b| b == b'?').unwrap_or(raw.len());
    let (path, query) = raw.split_at(path_end);
    check_query(query)?;
    if !normalize_path(path, None)? {
        // Validated above: every byte is ASCII.
        let path = std::str::from_utf8(path).map_err(|_| TargetProblem::InvalidCharacter)?;
        return Ok(CheckedTarget::Clean { path });
    }
    Ok(rewritten(path, query))
}

/// `http[s]://authority[/path][?query]` for this `Host`, as origin-form.
fn check_absolute_form(
    raw: &[u8],
    host: Option<&str>,
) -> Result<CheckedTarget<'static>, TargetProblem> {
    let scheme_end = raw
        .windows(3)
        .position(|w| w == b"://")
        .ok_or(TargetProblem::UnsupportedForm)?;
    let scheme = &raw[..scheme_end];
    if !scheme.eq_ignore_ascii_case(b"http") && !scheme.eq_ignore_ascii_case(b"https") {
        return Err(TargetProblem::UnsupportedForm);
    }
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let names_this_host = host.is_some_and(|host| authority.eq_ignore_ascii_case(host.as_bytes()));
    if authority.contains(&b'@') || !is_valid_host(authority) || !names_this_host {
        return Err(TargetProblem::ForeignAuthority);
    }
    let rest = &rest[authority_end..];
    let path_end = rest.iter().position(|&b| b == b'?').unwrap_or(rest.len());
    let (path, query) = rest.split_at(path_end);
    check_query(query)?;
    let path: &[u8] = if path.is_empty() { b"/" } else { path };
    normalize_path(path, None)?;
    Ok(rewritten(path, query))
}

/// The normalized `path` followed by `query` (which starts with `?`).
fn rewritten(path: &[u8], query: &[u8]) -> CheckedTarget<'static> {
    let mut out = String::with_capacity(path.len() + query.len());
    // Checked by the caller: cannot fail the second time.
    let _ = normalize_path(path, Some(&mut out));
    let path_len = out.len();
    // check_query let only printable ASCII through.
    out.extend(query.iter().map(|&b| char::from(b)));
    CheckedTarget::Rewritten {
        path_and_query: out,
        path_len,
    }
}

/// The query is forwarded byte for byte; it only has to be printable ASCII
/// without `#` (a fragment is never part of a request-target). Routing never
/// reads it, so the characters RFC 3986 calls unwise (`[`, `|`, …) that real
/// clients send are let through.
fn check_query(query: &[u8]) -> Result<(), TargetProblem> {
    match query
        .iter()
        .find(|&&b| !(0x21..=0x7e).contains(&b) || b == b'#')
    {
        None => Ok(()),
        Some(&b) if b < 0x20 || b == 0x7f => Err(TargetProblem::ControlCharacter),
        Some(_) => Err(TargetProblem::InvalidCharacter),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Allowed raw in a path segment besides unreserved (RFC 3986 `pchar`).
fn is_sub_delim_or_pchar_extra(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@'
    )
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Normalizes `path` (which starts with `/`) into `out` when given, and
/// returns whether normalizing changes it. Called once without `out` to
/// check, and a second time with it only when something changes, so a clean
/// path costs one pass and no allocation.
pub fn normalize_path(path: &[u8], mut out: Option<&mut String>) -> Result<bool, TargetProblem> {
    let mut changed = false;
    let mut segments = SegmentCheck::default();
    let mut utf8 = Utf8Check::default();
    let mut double = DoubleEncodingCheck::default();
    let emit = |text: &[u8], out: &mut Option<&mut String>| {
        if let Some(out) = out.as_deref_mut() {
            // Every emitted byte is ASCII.
            out.extend(text.iter().map(|&b| char::from(b)));
        }
    };
    let mut at = 0;
    while at < path.len() {
        let byte = path[at];
        if byte == b'%' {
            let (high, low) = match (path.get(at + 1), path.get(at + 2)) {
                (Some(&high), Some(&low)) => (high, low),
                _ => return Err(TargetProblem::MalformedPercentEncoding),
            };
            let value = match (hex_value(high), hex_value(low)) {
                (Some(h), Some(l)) => h << 4 | l,
                _ => return Err(TargetProblem::MalformedPercentEncoding),
            };
            at += 3;
            utf8.push(value)?;
            if is_unreserved(value) {
                // RFC 3986 §6.2.2.2: `%61` is `a`.
                changed = true;
                segments.push(value)?;
                double.push_char(value)?;
                emit(&[value], &mut out);
                continue;
            }
            match value {
                b'/' | b'\\' => return Err(TargetProblem::EncodedSeparator),
                0x00..=0x1f | 0x7f => return Err(TargetProblem::ControlCharacter),
                _ => {}
            }
            // RFC 3986 §6.2.2.1: hex digits upper-cased.
            changed |= high.is_ascii_lowercase() || low.is_ascii_lowercase();
            segments.push(b'%')?;
            double.push_encoded(value);
            emit(
                &[
                    b'%',
                    UPPER_HEX[usize::from(value >> 4)],
                    UPPER_HEX[usize::from(value & 0xf)],
                ],
                &mut out,
            );
            continue;
        }
        if byte == b'/' || is_unreserved(byte) || is_sub_delim_or_pchar_extra(byte) {
            utf8.push(byte)?;
            segments.push(byte)?;
            double.push_char(byte)?;
            emit(&[byte], &mut out);
            at += 1;
            continue;
        }
        return Err(match byte {
            b'\\' => TargetProblem::Backslash,
            0x00..=0x1f | 0x7f => TargetProblem::ControlCharacter,
            _ => TargetProblem::InvalidCharacter,
        });
    }
    utf8.finish()?;
    segments.finish()?;
    Ok(changed)
}

/// Tracks the segment being emitted: refuses `//`, `/./` and `/../`. The
/// first byte is the leading `/`; a trailing `/` (empty last segment) is a
/// normal path.
#[derive(Default)]
struct SegmentCheck {
    started: bool,
    length: usize,
    /// Every character of the segment so far was a `.`.
    all_dots: bool,
}

impl SegmentCheck {
    fn push(&mut self, byte: u8) -> Result<(), TargetProblem> {
        if byte == b'/' {
            if self.started {
                self.end_segment(false)?;
            }
            self.started = true;
            self.length = 0;
            self.all_dots = true;
            return Ok(());
        }
        if !self.started {
            return Err(TargetProblem::UnsupportedForm);
        }
        self.length += 1;
        self.all_dots &= byte == b'.';
        Ok(())
    }

    fn end_segment(&self, last: bool) -> Result<(), TargetProblem> {
        match self.length {
            0 if last => Ok(()),
            0 => Err(TargetProblem::EmptySegment),
            1 | 2 if self.all_dots => Err(TargetProblem::DotSegment),
            _ => Ok(()),
        }
    }

    fn finish(&self) -> Result<(), TargetProblem> {
        if !self.started {
            return Err(TargetProblem::UnsupportedForm);
        }
        self.end_segment(true)
    }
}

/// Refuses `%25` followed by two hex digits in the output: a server that
/// decodes twice would read it as another character (`%252e` → `%2e` → `.`).
#[derive(Default)]
struct DoubleEncodingCheck {
    /// Hex digits still to see after an emitted `%25` for it to be one.
    pending: u8,
}

impl DoubleEncodingCheck {
    fn push_char(&mut self, byte: u8) -> Result<(), TargetProblem> {
        if self.pending > 0 && byte.is_ascii_hexdigit() {
            self.pending -= 1;
            if self.pending == 0 {
                return Err(TargetProblem::DoubleEncoding);
            }
        } else {
            self.pending = 0;
        }
        Ok(())
    }

    fn push_encoded(&mut self, value: u8) {
        self.pending = if value == b'%' { 2 } else { 0 };
    }
}

/// Validates the decoded bytes as UTF-8 as they come (RFC 3629 table):
/// overlong forms, surrogates and bytes past U+10FFFF are refused.
#[derive(Default)]
struct Utf8Check {
    /// Continuation bytes still expected.
    needed: u8,
    /// Allowed range of the next continuation byte.
    low: u8,
    high: u8,
}

impl Utf8Check {
    fn push(&mut self, byte: u8) -> Result<(), TargetProblem> {
        if self.needed > 0 {
            if byte < self.low || byte > self.high {
                return Err(TargetProblem::InvalidUtf8);
            }
            self.needed -= 1;
            (self.low, self.high) = (0x80, 0xbf);
            return Ok(());
        }
        (self.needed, self.low, self.high) = match byte {
            0x00..=0x7f => return Ok(()),
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return Err(TargetProblem::InvalidUtf8),
        };
        Ok(())
    }

    fn finish(&self) -> Result<(), TargetProblem> {
        if self.needed == 0 {
            Ok(())
        } else {
            Err(TargetProblem::InvalidUtf8)
        }
    }
}

/// `uri-host [":" port]` (RFC 9110 §7.2), kept to what real hosts use:
/// a registered name of letters, digits, `-`, `.`, `_`, `~`; an IPv4
/// address; or an IPv6 literal in brackets. Empty is allowed, as RFC 9112
/// §3.2 allows it for a target without an authority.
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

#[cfg(test)]
mod tests {
    use super::*;
    use TargetProblem::*;

    fn check(raw: &str) -> Result<String, TargetProblem> {
        check_target(raw.as_bytes(), false, Some("example.com")).map(|t| match t {
            CheckedTarget::Clean { path } => format!("clean {path}"),
            CheckedTarget::Rewritten { path_and_query, .. } => {
                format!("rewritten {path_and_query}")
            }
            CheckedTarget::Asterisk => "asterisk".into(),
        })
    }

    #[test]
    fn targets() {
        let cases: &[(&str, Result<&str, TargetProblem>)] = &[
            ("/", Ok("clean /")),
            ("/admin/users", Ok("clean /admin/users")),
            ("/admin/users/", Ok("clean /admin/users/")),
            ("/a.b/c..d/.e/...", Ok("clean /a.b/c..d/.e/...")),
            ("/api/%20x", Ok("clean /api/%20x")),
            ("/api?q=1&r=%zz[]|", Ok("clean /api")),
            ("/a;b=c,d/e:f@g!$&'()*+", Ok("clean /a;b=c,d/e:f@g!$&'()*+")),
            ("/caf%C3%A9", Ok("clean /caf%C3%A9")),
            ("/%F0%9F%A6%80", Ok("clean /%F0%9F%A6%80")),
            // Normalization (RFC 3986 §6.2.2).
            ("/%61dmin/users", Ok("rewritten /admin/users")),
            ("/%41%44MIN", Ok("rewritten /ADMIN")),
            ("/a%7eb%2D%5f", Ok("rewritten /a~b-_")),
            ("/caf%c3%a9?x=%c3", Ok("rewritten /caf%C3%A9?x=%c3")),
            ("/a%3bb", Ok("rewritten /a%3Bb")),
            ("/100%25", Ok("clean /100%25")),
            ("/100%25x", Ok("clean /100%25x")),
            // Absolute-form for this host becomes origin-form.
            ("http://example.com/admin?x", Ok("rewritten /admin?x")),
            ("HTTPS://EXAMPLE.COM/a%61", Ok("rewritten /aa")),
            ("http://example.com", Ok("rewritten /")),
            ("http://example.com?q", Ok("rewritten /?q")),
            ("http://other.example/admin", Err(ForeignAuthority)),
            ("http://user@example.com/admin", Err(ForeignAuthority)),
            ("ftp://example.com/admin", Err(UnsupportedForm)),
            ("http://example.com/../admin", Err(DotSegment)),
            // Other forms.
            ("admin/users", Err(UnsupportedForm)),
            ("*admin/users", Err(UnsupportedForm)),
            ("*", Err(AsteriskWithoutOptions)),
            ("", Err(UnsupportedForm)),
            ("example.com:443", Err(UnsupportedForm)),
            // Refused paths.
            ("/public/../admin", Err(DotSegment)),
            ("/public/./admin", Err(DotSegment)),
            ("/public/..", Err(DotSegment)),
            ("/public/%2e%2e/admin", Err(DotSegment)),
            ("/public/.%2E/admin", Err(DotSegment)),
            ("/%2e", Err(DotSegment)),
            ("/public%2Fadmin", Err(EncodedSeparator)),
            ("/public%2fadmin", Err(EncodedSeparator)),
            ("/public%5cadmin", Err(EncodedSeparator)),
            ("/public\\admin", Err(Backslash)),
            ("//admin", Err(EmptySegment)),
            ("/a//b", Err(EmptySegment)),
            ("/a%00", Err(ControlCharacter)),
            ("/a%09b", Err(ControlCharacter)),
            ("/a%7f", Err(ControlCharacter)),
            ("/a\tb", Err(ControlCharacter)),
            ("/a b", Err(InvalidCharacter)),
            ("/a#b", Err(InvalidCharacter)),
            ("/a\"b", Err(InvalidCharacter)),
            ("/a{b}", Err(InvalidCharacter)),
            ("/a?b c", Err(InvalidCharacter)),
            ("/a?b\x01", Err(ControlCharacter)),
            ("/a?b#c", Err(InvalidCharacter)),
            ("/a%2", Err(MalformedPercentEncoding)),
            ("/a%", Err(MalformedPercentEncoding)),
            ("/a%zz", Err(MalformedPercentEncoding)),
            ("/a%252e", Err(DoubleEncoding)),
            ("/a%252E%252E", Err(DoubleEncoding)),
            ("/a%25%32%65", Err(DoubleEncoding)),
            ("/a%2541", Err(DoubleEncoding)),
            // UTF-8: overlong, surrogate, truncated, stray continuation.
            ("/%C0%AE", Err(InvalidUtf8)),
            ("/%C1%81", Err(InvalidUtf8)),
            ("/%E0%80%AE", Err(InvalidUtf8)),
            ("/%F0%80%80%AE", Err(InvalidUtf8)),
            ("/%ED%A0%80", Err(InvalidUtf8)),
            ("/%C3", Err(InvalidUtf8)),
            ("/%C3/", Err(InvalidUtf8)),
            ("/%A9", Err(InvalidUtf8)),
            ("/%F5%80%80%80", Err(InvalidUtf8)),
        ];
        for (raw, expected) in cases {
            let expected = expected.map(str::to_string);
            assert_eq!(check(raw), expected, "{raw:?}");
        }
    }

    #[test]
    fn raw_non_ascii_is_refused() {
        for raw in [&b"/caf\xc3\xa9"[..], b"/\xff", b"/a?\xc3\xa9"] {
            assert_eq!(
                check_target(raw, false, Some("h")),
                Err(InvalidCharacter),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn asterisk_form_is_for_options() {
        assert_eq!(check_target(b"*", true, None), Ok(CheckedTarget::Asterisk));
        assert_eq!(check_target(b"*", false, None), Err(AsteriskWithoutOptions));
    }

    #[test]
    fn absolute_form_needs_a_host() {
        assert_eq!(
            check_target(b"http://example.com/", false, None),
            Err(ForeignAuthority)
        );
    }

    /// Host lines, `:authority`, HTTP/1.0, and the expected answer.
    type HostCase<'a> = (
        &'a [&'a str],
        Option<&'a str>,
        bool,
        Result<Option<&'a str>, TargetProblem>,
    );

    #[test]
    fn hosts() {
        let cases: &[HostCase] = &[
            (&["example.com"], None, false, Ok(Some("example.com"))),
            (
                &["example.com:8443"],
                None,
                false,
                Ok(Some("example.com:8443")),
            ),
            (&["127.0.0.1:80"], None, false, Ok(Some("127.0.0.1:80"))),
            (&["[::1]:8443"], None, false, Ok(Some("[::1]:8443"))),
            (&["[::1]"], None, false, Ok(Some("[::1]"))),
            (&[""], None, false, Ok(Some(""))),
            (&[], None, true, Ok(None)),
            (&[], None, false, Err(MissingHost)),
            (&["a", "b"], None, false, Err(DuplicateHost)),
            (&["a", "a"], None, false, Err(DuplicateHost)),
            (&["a b"], None, false, Err(InvalidHost)),
            (&["a/b"], None, false, Err(InvalidHost)),
            (&["user@a"], None, false, Err(InvalidHost)),
            (&["a:"], None, false, Err(InvalidHost)),
            (&["a:80x"], None, false, Err(InvalidHost)),
            (&["a:123456"], None, false, Err(InvalidHost)),
            (&["[::1"], None, false, Err(InvalidHost)),
            (&["[]"], None, false, Err(InvalidHost)),
            (&["[::1]x"], None, false, Err(InvalidHost)),
            // HTTP/2: :authority and Host must agree.
            (&[], Some("example.com"), false, Ok(Some("example.com"))),
            (
                &["EXAMPLE.com"],
                Some("example.com"),
                false,
                Ok(Some("EXAMPLE.com")),
            ),
            (&["other"], Some("example.com"), false, Err(HostMismatch)),
        ];
        for (hosts, authority, http10, expected) in cases {
            let mut iter = hosts.iter().map(|h| h.as_bytes());
            assert_eq!(
                check_host(&mut iter, *authority, *http10),
                *expected,
                "{hosts:?} {authority:?}"
            );
        }
    }

    /// Paths made of the pieces that matter: the letters of a protected
    /// prefix in both cases, dots, separators, `;`, and encodings of all of
    /// these, valid and not.
    fn paths() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let pieces = prop::sample::select(vec![
            "/",
            "a",
            "d",
            "m",
            "i",
            "n",
            "A",
            "D",
            "M",
            ".",
            "..",
            ";",
            "~",
            "-",
            "x",
            "%",
            "%2",
            "%2e",
            "%2E",
            "%61",
            "%41",
            "%64",
            "%3B",
            "%3b",
            "%25",
            "%2F",
            "%5C",
            "%20",
            "%7e",
            "%C3%A9",
            "%c3%a9",
            "%C0%AE",
            "%E2%82%AC",
            "%00",
            "\\",
            " ",
            "?",
            "?q=%41",
        ]);
        prop::collection::vec(pieces, 0..14).prop_map(|pieces| format!("/{}", pieces.concat()))
    }

    /// Full percent-decoding, as Flask and Starlette read a path.
    fn decoded(path: &str) -> String {
        let bytes = path.as_bytes();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'%' {
                let value =
                    (hex_value(bytes[at + 1]).unwrap() << 4) | hex_value(bytes[at + 2]).unwrap();
                out.push(value);
                at += 3;
            } else {
                out.push(bytes[at]);
                at += 1;
            }
        }
        String::from_utf8(out).expect("a checked path decodes to UTF-8")
    }

    proptest::proptest! {
        #[test]
        fn normalizing_is_idempotent(path in paths()) {
            match check_target(path.as_bytes(), false, None) {
                Ok(CheckedTarget::Clean { path: clean }) => proptest::prop_assert_eq!(clean, path.split('?').next().unwrap()),
                Ok(CheckedTarget::Rewritten { path_and_query, path_len }) => {
                    let again = check_target(path_and_query.as_bytes(), false, None);
                    proptest::prop_assert_eq!(again, Ok(CheckedTarget::Clean { path: &path_and_query[..path_len] }));
                }
                Ok(CheckedTarget::Asterisk) => proptest::prop_assert!(false, "{path} is not `*`"),
                Err(_) => {}
            }
        }

        #[test]
        fn routing_the_normalized_path_agrees_with_routing_its_decoded_form(path in paths()) {
            use crate::route::{Route, RouteTable};
            let route = |prefix: &str, upstream: usize| Route {
                path_prefix: prefix.into(),
                upstream,
                forward_authorization: false,
                public: upstream == 0,
                required_scopes: Vec::new(),
                case_sensitive: false,
            };
            let table = RouteTable::new(vec![
                route("/", 0),
                route("/admin", 1),
                route("/ad", 2),
                route("/a.b", 3),
                route("/admin/x~y", 4),
            ]);
            if let Ok(checked) = check_target(path.as_bytes(), false, None) {
                let normalized = checked.path();
                let literal = table.find(normalized).map(|(index, _)| index);
                let framework = table.find(&decoded(normalized)).map(|(index, _)| index);
                proptest::prop_assert_eq!(literal, framework, "{} normalized to {}", path, normalized);
            }
        }
    }

    #[test]
    fn normalizing_is_idempotent_on_examples() {
        for raw in ["/%61dmin", "/caf%c3%a9", "/a%3bb", "/%7e"] {
            let once = check(raw).unwrap();
            let once = once.strip_prefix("rewritten ").unwrap();
            assert_eq!(check(once).unwrap(), format!("clean {once}"), "{raw}");
        }
    }
}
