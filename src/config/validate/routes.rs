//! `routes`: which path prefixes go to which upstream. A prefix must be
//! plain (so it matches a path whether or not it was percent-encoded), must
//! not repeat, and must not lie under the OAuth prefix, which is never
//! proxied.

use super::{check_path, Problems};
use crate::config::{FileRoute, Upstream};
use crate::route::Route;

/// `routes`: each names a known upstream, lies outside the OAuth prefix and
/// is listed once.
pub(super) fn check_routes(
    problems: &mut Problems,
    file: Vec<FileRoute>,
    upstreams: &[Upstream],
    oauth_prefix: &str,
) -> Vec<Route> {
    // `/` stands for "no prefix" here: routes may then lie anywhere but
    // under the endpoint paths themselves.
    let prefix = if oauth_prefix == "/" {
        ""
    } else {
        oauth_prefix
    };
    let mut routes = Vec::new();
    if file.is_empty() {
        problems.add(
            "routes",
            "at least one route is needed (example: `- {path_prefix: /, upstream: app}`)",
        );
    }
    for (i, route) in file.into_iter().enumerate() {
        let path = format!("routes[{i}]");
        check_path(problems, &format!("{path}.path_prefix"), &route.path_prefix);
        let Some(upstream_index) = upstreams.iter().position(|u| u.name == route.upstream) else {
            let known: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
            problems.add(
                format!("{path}.upstream"),
                format!(
                    "no upstream named `{}` (known: {})",
                    route.upstream,
                    known.join(", ")
                ),
            );
            continue;
        };
        check_route_prefix(problems, &format!("{path}.path_prefix"), &route.path_prefix);
        let normalized = |p: &str| p.trim_end_matches('/').to_string();
        let same_prefix = |r: &Route| {
            let (a, b) = (normalized(&r.path_prefix), normalized(&route.path_prefix));
            if r.case_sensitive && route.case_sensitive {
                a == b
            } else {
                a.eq_ignore_ascii_case(&b)
            }
        };
        if routes.iter().any(same_prefix) {
            problems.add(
                format!("{path}.path_prefix"),
                format!("`{}` is listed twice", route.path_prefix),
            );
        }
        if !prefix.is_empty() && crate::route::path_has_prefix(&route.path_prefix, prefix) {
            problems.add(
                format!("{path}.path_prefix"),
                format!(
                    "`{}` lies under oauth.prefix `{prefix}`, which is never proxied",
                    route.path_prefix
                ),
            );
        }
        if route.public && !route.required_scopes.is_empty() {
            problems.add(
                format!("{path}.required_scopes"),
                "a public route takes no token, so it cannot require scopes",
            );
        }
        if let Err(message) = crate::store::validate_scopes(&route.required_scopes) {
            problems.add(format!("{path}.required_scopes"), message);
        }
        routes.push(Route {
            path_prefix: route.path_prefix,
            upstream: upstream_index,
            forward_authorization: route.forward_authorization,
            public: route.public,
            required_scopes: route.required_scopes,
            case_sensitive: route.case_sensitive,
        });
    }

    routes
}

/// A route prefix is matched against normalized paths, so it must be one
/// itself, and made of characters that mean the same encoded or not:
/// letters, digits, `-`, `.`, `_`, `~` and `/`.
fn check_route_prefix(problems: &mut Problems, yaml_path: &str, prefix: &str) {
    if !prefix.starts_with('/') {
        return; // check_path said so.
    }
    let plain = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'));
    let normal = matches!(
        crate::request_target::normalize_path(prefix.as_bytes(), None),
        Ok(false)
    );
    if !plain || !normal {
        problems.add(
            yaml_path,
            format!("`{prefix}` must be a plain path: letters, digits, `-`, `.`, `_`, `~` between single slashes, without `.` or `..` segments"),
        );
    }
}
