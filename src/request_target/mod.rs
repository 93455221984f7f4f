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

mod host;
#[cfg(test)]
mod tests;

pub use host::{check_host, is_dns_name, is_valid_host, request_host};

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
