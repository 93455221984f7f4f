//! `routes`: which path prefixes go to which upstream. A prefix must be
//! plain (so it matches a path whether or not it was percent-encoded), must
//! not repeat, and must not lie under the OAuth prefix, which is never
//! proxied.

use std::time::Duration;

use super::{check_path, Problems};
use crate::config::{FileRoute, RouteAuth, Upstream};
use crate::route::{HostPattern, Route};

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
        let host = match route.host.as_deref().map(HostPattern::parse).transpose() {
            Ok(host) => host,
            Err(message) => {
                problems.add(format!("{path}.host"), message);
                None
            }
        };
        let normalized = |p: &str| p.trim_end_matches('/').to_string();
        let same_place = |r: &Route| {
            let (a, b) = (normalized(&r.path_prefix), normalized(&route.path_prefix));
            let same_prefix = if r.case_sensitive && route.case_sensitive {
                a == b
            } else {
                a.eq_ignore_ascii_case(&b)
            };
            same_prefix && r.host == host
        };
        if let Some(earlier) = routes.iter().position(same_place) {
            problems.add(
                format!("{path}.path_prefix"),
                format!(
                    "`{}` on the same host as routes[{earlier}]: this route could never match (it is unreachable)",
                    route.path_prefix
                ),
            );
        }
        let public = match (route.auth, route.public) {
            (None, public) => public,
            (Some(RouteAuth::None), _) => true,
            (Some(RouteAuth::Required), false) => false,
            (Some(RouteAuth::Required), true) => {
                problems.add(
                    format!("{path}.auth"),
                    "`auth: required` and `public: true` contradict each other; keep `auth`",
                );
                false
            }
        };
        let methods = route
            .methods
            .as_deref()
            .map(|names| check_methods(problems, &format!("{path}.methods"), names));
        if route.strip_prefix && route.rewrite_prefix.is_some() {
            problems.add(
                format!("{path}.rewrite_prefix"),
                "set strip_prefix or rewrite_prefix, not both (rewrite_prefix: / strips)",
            );
        }
        if let Some(rewrite) = &route.rewrite_prefix {
            check_route_prefix(problems, &format!("{path}.rewrite_prefix"), rewrite);
            check_path(problems, &format!("{path}.rewrite_prefix"), rewrite);
        }
        let mut timeout = |field: &str, ms: Option<u64>| match ms {
            Some(0) => {
                problems.add(format!("{path}.{field}"), "must be greater than zero");
                None
            }
            ms => ms.map(Duration::from_millis),
        };
        let connect_timeout = timeout("connect_timeout_ms", route.connect_timeout_ms);
        let read_timeout = timeout("read_timeout_ms", route.read_timeout_ms);
        if let Some(name) = &route.name {
            let bounded = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !bounded {
                problems.add(
                    format!("{path}.name"),
                    "1 to 64 visible characters, without quotes or backslashes",
                );
            }
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
        if public && !route.required_scopes.is_empty() {
            problems.add(
                format!("{path}.required_scopes"),
                "a public route takes no token, so it cannot require scopes",
            );
        }
        if let Err(message) = crate::store::validate_scopes(&route.required_scopes) {
            problems.add(format!("{path}.required_scopes"), message);
        }
        routes.push(Route {
            name: route.name.unwrap_or_default(),
            host,
            path_prefix: route.path_prefix,
            upstream: upstream_index,
            forward_authorization: route.forward_authorization,
            public,
            required_scopes: route.required_scopes,
            case_sensitive: route.case_sensitive,
            methods,
            strip_prefix: route.strip_prefix,
            rewrite_prefix: route.rewrite_prefix,
            connect_timeout,
            read_timeout,
        });
    }

    routes
}

/// `methods`: HTTP method names, each once, upper case as RFC 9110 §9.1
/// spells them (methods are case-sensitive: `get` is not GET).
fn check_methods(problems: &mut Problems, yaml_path: &str, names: &[String]) -> Vec<http::Method> {
    if names.is_empty() {
        problems.add(
            yaml_path,
            "list at least one method, or leave `methods` out for all",
        );
    }
    let mut methods = Vec::new();
    for name in names {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase());
        match http::Method::from_bytes(name.as_bytes()) {
            Ok(method) if valid => {
                if methods.contains(&method) {
                    problems.add(yaml_path, format!("`{name}` is listed twice"));
                }
                methods.push(method);
            }
            _ => problems.add(
                yaml_path,
                format!("`{name}` is not a method name in upper case (example: GET, POST)"),
            ),
        }
    }
    methods
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
