//! Table tests of the target, path and Host rules, and properties of the
//! normalization (idempotent; routing it agrees with routing its decoded
//! form).

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

#[test]
fn the_request_host_is_host_else_the_authority() {
    let parts = |uri: &str, host: Option<&str>| {
        let mut request = http::Request::builder().uri(uri);
        if let Some(host) = host {
            request = request.header(http::header::HOST, host);
        }
        request.body(()).unwrap().into_parts().0
    };
    let cases = [
        (
            parts("/x", Some("gw.example:8443")),
            Some("gw.example:8443"),
        ),
        // HTTP/2 from a browser: `:authority`, no Host.
        (
            parts("https://gw.example:8443/x", None),
            Some("gw.example:8443"),
        ),
        (
            parts("https://gw.example:8443/x", Some("gw.example:8443")),
            Some("gw.example:8443"),
        ),
        (parts("/x", None), None),
    ];
    for (request, expected) in &cases {
        assert_eq!(request_host(request), *expected, "{:?}", request.uri);
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
            ..Default::default()
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
            let literal = table.find(None, normalized).map(|(index, _)| index);
            let framework = table.find(None, &decoded(normalized)).map(|(index, _)| index);
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
