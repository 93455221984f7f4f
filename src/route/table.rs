//! The proxied routes: each a Host pattern and a path prefix on segment
//! boundaries. An exact host beats a wildcard, which beats no host; within
//! that, the longest prefix wins. Prefixes match ignoring ASCII case unless
//! the route says otherwise.

use std::borrow::Cow;
use std::time::Duration;

use super::host::HostPattern;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// What metrics and logs call the route: its `name`, else its prefix
    /// (with its host). Never a request's path: label values stay bounded.
    pub name: String,
    /// `None`: every host.
    pub host: Option<HostPattern>,
    pub path_prefix: String,
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    pub forward_authorization: bool,
    pub public: bool,
    /// All of these scopes, or 403.
    pub required_scopes: Vec<String>,
    /// Match the prefix by exact case only.
    pub case_sensitive: bool,
    /// `None`: every method. Otherwise another method is answered 405 with
    /// `Allow` and never forwarded; HEAD goes where GET may.
    pub methods: Option<Vec<http::Method>>,
    /// Forward `/api/v1/x` as `/x` (the prefix removed)...
    pub strip_prefix: bool,
    /// ...or with the prefix replaced by this one (`/new/x`).
    pub rewrite_prefix: Option<String>,
    /// Override the upstream's timeouts for this route.
    pub connect_timeout: Option<Duration>,
    pub read_timeout: Option<Duration>,
}

impl Route {
    /// Whether `method` may use this route.
    pub fn allows(&self, method: &http::Method) -> bool {
        let Some(methods) = &self.methods else {
            return true;
        };
        methods.contains(method)
            || (method == http::Method::HEAD && methods.contains(&http::Method::GET))
    }

    /// The `Allow` header of a 405: the methods, HEAD with GET.
    pub fn allow_header(&self) -> String {
        let mut names: Vec<&str> = self
            .methods
            .iter()
            .flatten()
            .map(http::Method::as_str)
            .collect();
        if names.contains(&"GET") && !names.contains(&"HEAD") {
            names.push("HEAD");
        }
        names.join(", ")
    }

    /// The part of `target` the upstream does not see because this route
    /// strips or rewrites it: the matched prefix, as the client wrote it.
    pub fn removed_prefix<'a>(&self, target: &'a [u8]) -> Option<&'a [u8]> {
        if !self.strip_prefix && self.rewrite_prefix.is_none() || self.path_prefix == "/" {
            return None;
        }
        target.get(..self.path_prefix.len())
    }

    /// The target the upstream receives for `target` (a checked
    /// `path[?query]` this route matched): as it is, or with the matched
    /// prefix removed or replaced. The prefix matched on a segment
    /// boundary, so what follows it is empty, `/…` or `?…`.
    pub fn upstream_target<'a>(&self, target: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.strip_prefix && self.rewrite_prefix.is_none() {
            return Cow::Borrowed(target);
        }
        let matched = if self.path_prefix == "/" {
            0
        } else {
            self.path_prefix.len()
        };
        let rest = target.get(matched..).unwrap_or_default();
        let base = self
            .rewrite_prefix
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        let mut out = Vec::with_capacity(base.len() + rest.len() + 1);
        out.extend_from_slice(base.as_bytes());
        if !rest.starts_with(b"/") {
            out.push(b'/');
        }
        out.extend_from_slice(rest);
        Cow::Owned(out)
    }

    /// True when `other` demands something of a request that `self` does
    /// not: a token where `self` is public, or a scope `self` does not
    /// require.
    pub fn is_weaker_than(&self, other: &Route) -> bool {
        if other.public {
            return false;
        }
        self.public
            || other
                .required_scopes
                .iter()
                .any(|scope| !self.required_scopes.contains(scope))
    }

    fn contains(&self, path: &str) -> bool {
        prefix_contains(path, &self.path_prefix, self.case_sensitive)
    }
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Longest prefix first.
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(mut routes: Vec<Route>) -> Self {
        for route in &mut routes {
            if route.path_prefix.len() > 1 {
                let trimmed = route.path_prefix.trim_end_matches('/').to_string();
                route.path_prefix = if trimmed.is_empty() {
                    "/".into()
                } else {
                    trimmed
                };
            }
            if route.name.is_empty() {
                route.name = match &route.host {
                    Some(HostPattern::Exact(name)) => format!("{name}{}", route.path_prefix),
                    Some(HostPattern::Wildcard(suffix)) => {
                        format!("*{suffix}{}", route.path_prefix)
                    }
                    None => route.path_prefix.clone(),
                };
            }
        }
        // The first route that matches is the best: stable, so of two equal
        // keys the one listed first stays first.
        routes.sort_by_key(|route| {
            std::cmp::Reverse((
                HostPattern::specificity(route.host.as_ref()),
                route.path_prefix.len(),
            ))
        });
        RouteTable { routes }
    }

    /// The best route for `host` (as [`super::host::for_matching`] made
    /// it; `None` matches only routes without a host) that contains `path`,
    /// with its index.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<(usize, &Route)> {
        // Prefixes were normalized in `new`: no trimming per request.
        self.routes.iter().enumerate().find(|(_, route)| {
            let host_matches = match (&route.host, host) {
                (None, _) => true,
                (Some(pattern), Some(host)) => pattern.matches(host),
                (Some(_), None) => false,
            };
            host_matches && route.contains(path)
        })
    }

    pub fn get(&self, index: usize) -> &Route {
        &self.routes[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

/// True when `path` equals `prefix` or continues it at a `/` boundary.
/// A prefix of `/` (or the empty string) contains every path. Exact case.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    prefix_contains(path, prefix.trim_end_matches('/'), true)
}

/// [`path_has_prefix`] for a prefix without a trailing `/`, or `/` itself,
/// folding ASCII case unless `case_sensitive`.
pub(super) fn prefix_contains(path: &str, prefix: &str, case_sensitive: bool) -> bool {
    if prefix.is_empty() || prefix == "/" {
        return true;
    }
    let (Some(head), Some(rest)) = (path.get(..prefix.len()), path.get(prefix.len()..)) else {
        return false;
    };
    let same = if case_sensitive {
        head == prefix
    } else {
        head.eq_ignore_ascii_case(prefix)
    };
    same && (rest.is_empty() || rest.starts_with('/'))
}
