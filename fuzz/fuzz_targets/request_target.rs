//! Request-target and Host checks, path normalization and routing: what the
//! gateway reads from the request line (or HTTP/2 `:path`) before anything
//! else.
//!
//! Input: the first byte's low bit is `is_options`; the rest is the raw
//! request-target. Checks, besides "never panics":
//! - a `Clean` target is the input's own path, already normal;
//! - a `Rewritten` target's `path_len` is a char boundary, its path starts
//!   with `/`, and checking `path_and_query` again gives `Clean` with the
//!   same path (normalization is idempotent);
//! - the path routing reads is ASCII; routing it, and its looser readings,
//!   never panics;
//! - `check_host` on the raw bytes as a one-line `Host` (and as HTTP/2
//!   `:authority`) only ever accepts a valid host;
//! - `normalize_path` on input starting with `/` agrees between its
//!   checking and its writing pass, and its output is normal.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis::request_target::CheckedTarget;
use portcullis::request_target::{check_host, check_target, is_valid_host, normalize_path};
use portcullis::route::{
    host_for_matching, looser_readings, Destination, HostPattern, Route, RouteTable, Router,
};

const HOST: &str = "example.com";

fn route(prefix: &str, public: bool, scopes: &[&str], case_sensitive: bool) -> Route {
    Route {
        path_prefix: prefix.into(),
        upstream: 0,
        forward_authorization: false,
        public,
        required_scopes: scopes.iter().map(|s| s.to_string()).collect(),
        case_sensitive,
        ..Default::default()
    }
}

/// Routes like a real gateway.yaml: a public root, protected prefixes
/// with scopes, one case-sensitive route, and the OAuth endpoints.
static ROUTER: LazyLock<Router> = LazyLock::new(|| Router {
    oauth_prefix: "/oauth".into(),
    token_path: Some("/oauth/token".into()),
    revoke_path: Some("/oauth/revoke".into()),
    introspect_path: Some("/oauth/introspect".into()),
    metadata: true,
    management_path: Some("/oauth/management".into()),
    routes: RouteTable::new(vec![
        route("/", true, &[], false),
        route("/admin", false, &[], false),
        route("/api", false, &["read"], false),
        route("/api/admin/", false, &["read", "admin"], false),
        route("/Private", false, &["private"], true),
        Route {
            host: Some(HostPattern::parse("*.example.com").unwrap()),
            ..route("/", false, &["tenant"], false)
        },
    ]),
});

fn check_routing(host: Option<&str>, path: &str) {
    assert!(path.is_ascii(), "routing reads a non-ASCII path: {path:?}");
    let host = host.map(host_for_matching);
    if let Ok(Destination::Proxy { route }) = ROUTER.route(host.as_deref(), path) {
        // Panics if the index is out of range.
        let _ = ROUTER.routes.get(route);
    }
    for reading in looser_readings(path) {
        assert_ne!(reading, path, "a looser reading equal to the path");
        let _ = ROUTER.classify(host.as_deref(), &reading);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let is_options = flags & 1 == 1;

    match check_target(raw, is_options, Some(HOST)) {
        Ok(CheckedTarget::Clean { path }) => {
            assert!(
                raw.starts_with(path.as_bytes()),
                "a clean path that is not the input's: {path:?}"
            );
            assert_eq!(normalize_path(path.as_bytes(), None), Ok(false), "{path:?}");
            check_routing(Some(HOST), path);
        }
        Ok(CheckedTarget::Rewritten {
            path_and_query,
            path_len,
        }) => {
            assert!(
                path_len <= path_and_query.len() && path_and_query.is_char_boundary(path_len),
                "path_len {path_len} is not a char boundary of {path_and_query:?}"
            );
            let path = &path_and_query[..path_len];
            assert!(path.starts_with('/'), "{path_and_query:?}");
            assert!(
                !path.contains('?'),
                "the rewritten path runs into the query: {path_and_query:?}"
            );
            match check_target(path_and_query.as_bytes(), is_options, Some(HOST)) {
                Ok(CheckedTarget::Clean { path: again }) => {
                    assert_eq!(again, path, "normalizing {raw:?} twice changes the path")
                }
                other => {
                    panic!("normalizing {raw:?} gave {path_and_query:?}, which checks as {other:?}")
                }
            }
            check_routing((flags & 2 == 2).then_some("a.example.com:8443"), path);
        }
        Ok(CheckedTarget::Asterisk) => {
            assert!(is_options && raw == b"*", "asterisk-form for {raw:?}");
        }
        Err(problem) => {
            let _ = problem.description();
        }
    }

    // The same bytes as a request's one Host line, alone and beside a
    // matching :authority; and as :authority alone.
    let checked_host = check_host(&mut std::iter::once(raw), None, false);
    if let Ok(host) = checked_host {
        let host = host.expect("one Host line gives a host");
        assert!(is_valid_host(host.as_bytes()), "{host:?}");
        assert_eq!(host.as_bytes(), raw);
        // A checked host is what an absolute-form target must name.
        let _ = check_target(b"http://example.com/a", is_options, Some(host));
    }
    let _ = check_host(&mut std::iter::once(raw), Some(HOST), false);
    if let Ok(authority) = std::str::from_utf8(raw) {
        let _ = check_host(&mut std::iter::empty(), Some(authority), flags & 2 == 2);
    }

    if raw.first() == Some(&b'/') {
        let checked = normalize_path(raw, None);
        let mut out = String::new();
        let written = normalize_path(raw, Some(&mut out));
        assert_eq!(checked, written, "the two passes disagree on {raw:?}");
        match written {
            Ok(false) => assert_eq!(out.as_bytes(), raw, "an unchanged path was rewritten"),
            Ok(true) => {
                assert_ne!(out.as_bytes(), raw, "a changed path came out the same");
                assert_eq!(
                    normalize_path(out.as_bytes(), None),
                    Ok(false),
                    "{raw:?} normalizes to {out:?}, which is not normal"
                );
            }
            Err(_) => {}
        }
    }
});
