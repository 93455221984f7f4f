//! The looser readings of a path that some upstreams apply: Tomcat and
//! Spring drop `;params`, Windows servers drop trailing dots and spaces.
//! [`super::Router::route`] refuses a request when one of them lands on a
//! stricter route than the literal path.

use std::borrow::Cow;

/// The looser readings of `path` that some upstreams apply (see the module
/// comment), each differing from `path`. Empty for the common path, which
/// has no `;` and no segment ending in `.` or an encoded space: no
/// allocation then.
pub fn looser_readings(path: &str) -> Vec<String> {
    let has_params = path.contains(';') || contains_ignore_case(path, "%3B");
    let has_trailing = path
        .split('/')
        .any(|segment| segment.ends_with('.') || segment.ends_with("%20"));
    if !has_params && !has_trailing {
        return Vec::new();
    }
    let mut readings: Vec<String> = Vec::new();
    let mut add = |reading: String| {
        if reading != path && !readings.contains(&reading) {
            readings.push(reading);
        }
    };
    let without_params = if has_params {
        rebuild(path, drop_params)
    } else {
        Cow::Borrowed(path)
    };
    add(without_params.to_string());
    add(rebuild(path, drop_trailing_dots_and_spaces).into_owned());
    add(rebuild(&without_params, drop_trailing_dots_and_spaces).into_owned());
    readings
}

fn contains_ignore_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `segment;params` → `segment` (`;` raw or as `%3B`).
fn drop_params(segment: &str) -> &str {
    let raw = segment.find(';').unwrap_or(segment.len());
    let encoded = segment
        .as_bytes()
        .windows(3)
        .position(|w| w.eq_ignore_ascii_case(b"%3B"))
        .unwrap_or(segment.len());
    &segment[..raw.min(encoded)]
}

/// `admin.` or `admin%20` → `admin`; `..%20` → `..`, which a server that
/// trims the space then reads as a dot segment.
fn drop_trailing_dots_and_spaces(mut segment: &str) -> &str {
    while let Some(rest) = segment.strip_suffix("%20") {
        segment = rest;
    }
    if segment == "." || segment == ".." {
        return segment;
    }
    loop {
        if let Some(rest) = segment.strip_suffix('.') {
            segment = rest;
        } else if let Some(rest) = segment.strip_suffix("%20") {
            segment = rest;
        } else {
            return segment;
        }
    }
}

/// `path` with `edit` applied to every segment, then read as the servers
/// that apply such readings do: segments it empties dropped, and segments
/// it turns into `.` or `..` resolved (Tomcat reads `/public/..;/admin` as
/// `/admin`).
fn rebuild<'a>(path: &'a str, edit: fn(&str) -> &str) -> Cow<'a, str> {
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        match edit(segment) {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            edited => segments.push(edited),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Cow::Owned(out)
}
