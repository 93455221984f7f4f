//! The proxied routes: each a path prefix on segment boundaries, matched
//! longest first, ignoring ASCII case unless the route says otherwise.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path_prefix: String,
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    pub forward_authorization: bool,
    pub public: bool,
    /// All of these scopes, or 403.
    pub required_scopes: Vec<String>,
    /// Match the prefix by exact case only.
    pub case_sensitive: bool,
}

impl Route {
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
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.path_prefix.len()));
        RouteTable { routes }
    }

    /// The route with the longest prefix that contains `path`, with its index.
    pub fn find(&self, path: &str) -> Option<(usize, &Route)> {
        // Prefixes were normalized in `new`: no trimming per request.
        self.routes
            .iter()
            .enumerate()
            .find(|(_, route)| route.contains(path))
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
