//! Which handler or upstream a request path belongs to. Pure: no I/O.
//!
//! Routes match by longest path prefix on segment boundaries: `/api` matches
//! `/api` and `/api/users` but not `/apiary`. The table is sorted once at
//! startup so a lookup is one scan that stops at the first hit.
//!
//! The path routed on is the normalized one of [`crate::request_target`].
//! Two more rules keep the route the upstream's route too:
//!
//! - **Case.** A route matches without regard to ASCII case (`/ADMIN/x` is
//!   under `/admin`), because Express, ASP.NET and others route that way.
//!   `case_sensitive: true` on a route says its upstream tells `/Admin` from
//!   `/admin`; it then matches exact case only.
//! - **The strictest reading.** Some upstreams read a path more loosely than
//!   its bytes: Tomcat and Spring drop `;params` from segments
//!   (`/admin;x/users` is `/admin/users`), Windows servers drop trailing dots
//!   and spaces (`/admin./users`). When such a reading lands on a route that
//!   asks for more (a token, or scopes the literal route does not ask for),
//!   or on the gateway's own endpoints, the request is refused
//!   ([`Ambiguous`]) rather than forwarded under the weaker rules.

use std::borrow::Cow;

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
fn prefix_contains(path: &str, prefix: &str, case_sensitive: bool) -> bool {
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

/// Where the gateway sends a request: answered by portcullis itself, or
/// proxied along a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    TokenEndpoint,
    RevokeEndpoint,
    IntrospectEndpoint,
    /// RFC 8414 metadata, the one endpoint outside the OAuth prefix.
    MetadataEndpoint,
    ManagementEndpoint,
    /// Under the OAuth prefix but no endpoint: answered 404, never forwarded.
    ReservedPath,
    Proxy {
        route: usize,
    },
    NoRoute,
    /// Refused before routing: see [`crate::request_target`].
    InvalidPath,
    /// A looser reading of the path lands on a stricter route: refused.
    AmbiguousPath,
    /// `OPTIONS *`, answered by the gateway.
    ServerOptions,
}

/// A looser reading of the path that some upstreams apply lands somewhere
/// stricter than the literal path: this reading, for the 400's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguous {
    pub reading: String,
}

/// Everything needed to classify a path, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Router {
    pub oauth_prefix: String,
    pub token_path: Option<String>,
    pub revoke_path: Option<String>,
    pub introspect_path: Option<String>,
    pub metadata: bool,
    pub management_path: Option<String>,
    pub routes: RouteTable,
}

/// Where RFC 8414 §3 puts authorization server metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

impl Router {
    /// Where `path` (normalized) goes, after checking that no looser
    /// reading of it lands somewhere stricter.
    pub fn route(&self, path: &str) -> Result<Destination, Ambiguous> {
        let literal = self.classify(path);
        let Destination::Proxy { route } = literal else {
            // Answered by the gateway, or 404: nothing is forwarded.
            return Ok(literal);
        };
        let literal_route = self.routes.get(route);
        for reading in looser_readings(path) {
            let stricter = match self.classify(&reading) {
                Destination::Proxy { route: other } => {
                    literal_route.is_weaker_than(self.routes.get(other))
                }
                Destination::NoRoute => false,
                _ => true,
            };
            if stricter {
                return Err(Ambiguous { reading });
            }
        }
        Ok(literal)
    }

    /// Where `path` goes on its literal reading.
    pub fn classify(&self, path: &str) -> Destination {
        if self.metadata && path == METADATA_PATH {
            return Destination::MetadataEndpoint;
        }
        // The OAuth prefix is ours in every case: `/OAUTH/x` is never
        // forwarded either.
        if prefix_contains(path, self.oauth_prefix.trim_end_matches('/'), false) {
            let endpoints = [
                (&self.token_path, Destination::TokenEndpoint),
                (&self.revoke_path, Destination::RevokeEndpoint),
                (&self.introspect_path, Destination::IntrospectEndpoint),
            ];
            for (endpoint, destination) in endpoints {
                if endpoint.as_deref() == Some(path) {
                    return destination;
                }
            }
            if let Some(management) = &self.management_path {
                if path_has_prefix(path, management) {
                    return Destination::ManagementEndpoint;
                }
            }
            return Destination::ReservedPath;
        }
        match self.routes.find(path) {
            Some((route, _)) => Destination::Proxy { route },
            None => Destination::NoRoute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, upstream: usize) -> Route {
        Route {
            path_prefix: prefix.into(),
            upstream,
            forward_authorization: false,
            public: false,
            required_scopes: Vec::new(),
            case_sensitive: false,
        }
    }

    fn public(prefix: &str, upstream: usize) -> Route {
        Route {
            public: true,
            ..route(prefix, upstream)
        }
    }

    fn scoped(prefix: &str, upstream: usize, scopes: &[&str]) -> Route {
        Route {
            required_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..route(prefix, upstream)
        }
    }

    fn router(routes: Vec<Route>) -> Router {
        Router {
            oauth_prefix: "/oauth".into(),
            token_path: Some("/oauth/token".into()),
            revoke_path: Some("/oauth/revoke".into()),
            introspect_path: Some("/oauth/introspect".into()),
            metadata: true,
            management_path: Some("/oauth/management".into()),
            routes: RouteTable::new(routes),
        }
    }

    /// The upstream index the request is forwarded to, or what it is
    /// answered with instead.
    fn outcome(router: &Router, path: &str) -> String {
        match router.route(path) {
            Ok(Destination::Proxy { route }) => {
                format!("upstream {}", router.routes.get(route).upstream)
            }
            Ok(other) => format!("{other:?}"),
            Err(Ambiguous { reading }) => format!("ambiguous {reading}"),
        }
    }

    #[test]
    fn routes_match_without_regard_to_case_unless_told() {
        let mut exact = route("/Exact", 3);
        exact.case_sensitive = true;
        let table = RouteTable::new(vec![public("/", 0), route("/admin", 1), exact]);
        let cases = [
            ("/admin/users", Some(1)),
            ("/ADMIN/users", Some(1)),
            ("/Admin", Some(1)),
            ("/adminx", Some(0)),
            ("/Exact/x", Some(3)),
            ("/exact/x", Some(0)),
            ("/EXACT", Some(0)),
        ];
        for (path, expected) in cases {
            assert_eq!(
                table.find(path).map(|(_, r)| r.upstream),
                expected,
                "{path}"
            );
        }
    }

    #[test]
    fn looser_readings_of_paths() {
        let cases: &[(&str, &[&str])] = &[
            ("/admin/users", &[]),
            ("/a.b/c", &[]),
            ("/admin;x/users", &["/admin/users"]),
            ("/admin;jsessionid=1", &["/admin"]),
            ("/admin%3Bx/users", &["/admin/users"]),
            ("/admin%3bx/users", &["/admin/users"]),
            ("/;x/admin", &["/admin"]),
            ("/admin./users", &["/admin/users"]),
            ("/admin%20/users", &["/admin/users"]),
            ("/admin.%20./x/", &["/admin/x/"]),
            ("/admin.;x/users", &["/admin./users", "/admin/users"]),
            ("/...", &["/"]),
            ("/public/..;/admin", &["/admin"]),
            ("/public/..;x/admin/users", &["/admin/users"]),
            ("/public/.;x/admin", &["/public/admin"]),
            ("/public/..%20/admin", &["/admin"]),
        ];
        for (path, expected) in cases {
            assert_eq!(looser_readings(path), *expected, "{path}");
        }
    }

    #[test]
    fn the_strictest_reading_decides() {
        let router = router(vec![
            public("/", 0),
            route("/admin", 1),
            scoped("/reports", 2, &["reports:read"]),
            scoped("/reports/all", 2, &["reports:read", "reports:all"]),
            public("/shop", 3),
            public("/shop/cart", 4),
        ]);
        let cases = [
            ("/admin/users", "upstream 1"),
            ("/ADMIN/users", "upstream 1"),
            ("/public/page", "upstream 0"),
            // Tomcat's reading of ;params, IIS's of trailing dots.
            ("/admin;x/users", "ambiguous /admin/users"),
            ("/admin%3Bx/users", "ambiguous /admin/users"),
            ("/admin./users", "ambiguous /admin/users"),
            ("/admin%20/users", "ambiguous /admin/users"),
            ("/;x/admin", "ambiguous /admin"),
            ("/public/..;/admin", "ambiguous /admin"),
            ("/x/..%20/admin/users", "ambiguous /admin/users"),
            // The gateway's own endpoints under a looser reading.
            ("/oauth;x/token", "ambiguous /oauth/token"),
            // Under a route that asks for as much: forwarded.
            ("/admin/users;v=2", "upstream 1"),
            ("/admin/report.", "upstream 1"),
            ("/shop;x/cart", "upstream 0"),
            // More scopes under the looser reading.
            ("/reports/all;x", "ambiguous /reports/all"),
            ("/reports;x", "ambiguous /reports"),
            ("/reports;x/all", "ambiguous /reports/all"),
            // Nothing forwarded: nothing to decide.
            ("/oauth/unknown", "ReservedPath"),
        ];
        for (path, expected) in cases {
            assert_eq!(outcome(&router, path), expected, "{path}");
        }
    }

    #[test]
    fn weaker_routes() {
        let cases = [
            (public("/", 0), route("/a", 0), true),
            (route("/", 0), public("/a", 0), false),
            (route("/", 0), route("/a", 0), false),
            (scoped("/", 0, &["a"]), scoped("/a", 0, &["a", "b"]), true),
            (scoped("/", 0, &["a", "b"]), scoped("/a", 0, &["b"]), false),
            (public("/", 0), public("/a", 1), false),
        ];
        for (literal, other, expected) in cases {
            assert_eq!(
                literal.is_weaker_than(&other),
                expected,
                "{} vs {}",
                literal.path_prefix,
                other.path_prefix
            );
        }
    }

    #[test]
    fn prefix_matching_respects_segments() {
        let cases = [
            ("/api", "/api", true),
            ("/api/", "/api", true),
            ("/api/users", "/api", true),
            ("/apiary", "/api", false),
            ("/", "/", true),
            ("/anything", "/", true),
            ("/api/users", "/api/", true),
            ("/ap", "/api", false),
            ("", "/api", false),
        ];
        for (path, prefix, expected) in cases {
            assert_eq!(
                path_has_prefix(path, prefix),
                expected,
                "{path} under {prefix}"
            );
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let table = RouteTable::new(vec![
            route("/", 0),
            route("/api", 1),
            route("/api/admin/", 2),
        ]);
        let cases = [
            ("/", Some(0)),
            ("/other", Some(0)),
            ("/api", Some(1)),
            ("/api/x", Some(1)),
            ("/api/admin", Some(2)),
            ("/api/admin/users", Some(2)),
            ("/api/administrator", Some(1)),
        ];
        for (path, expected) in cases {
            assert_eq!(
                table.find(path).map(|(_, r)| r.upstream),
                expected,
                "{path}"
            );
        }
    }

    #[test]
    fn no_catch_all_means_no_route() {
        let table = RouteTable::new(vec![route("/api", 0)]);
        assert!(table.find("/other").is_none());
    }

    #[test]
    fn oauth_prefix_is_never_proxied() {
        let router = Router {
            oauth_prefix: "/oauth".into(),
            token_path: Some("/oauth/token".into()),
            revoke_path: Some("/oauth/revoke".into()),
            introspect_path: Some("/oauth/introspect".into()),
            metadata: true,
            management_path: Some("/oauth/management".into()),
            routes: RouteTable::new(vec![route("/", 0)]),
        };
        let cases = [
            ("/oauth/token", Destination::TokenEndpoint),
            ("/oauth/revoke", Destination::RevokeEndpoint),
            ("/oauth/introspect", Destination::IntrospectEndpoint),
            (
                "/.well-known/oauth-authorization-server",
                Destination::MetadataEndpoint,
            ),
            ("/.well-known/other", Destination::Proxy { route: 0 }),
            ("/oauth/token/", Destination::ReservedPath),
            ("/oauth/management", Destination::ManagementEndpoint),
            (
                "/oauth/management/api/v1/users",
                Destination::ManagementEndpoint,
            ),
            ("/oauth", Destination::ReservedPath),
            ("/oauth/anything", Destination::ReservedPath),
            ("/oauthx", Destination::Proxy { route: 0 }),
            ("/OAUTH/token", Destination::ReservedPath),
            ("/OAuth", Destination::ReservedPath),
            ("/data", Destination::Proxy { route: 0 }),
        ];
        for (path, expected) in cases {
            assert_eq!(router.classify(path), expected, "{path}");
        }
    }

    #[test]
    fn disabled_endpoints_stay_reserved() {
        let router = Router {
            oauth_prefix: "/oauth".into(),
            token_path: None,
            revoke_path: None,
            introspect_path: None,
            metadata: false,
            management_path: None,
            routes: RouteTable::new(vec![route("/", 0)]),
        };
        assert_eq!(router.classify("/oauth/token"), Destination::ReservedPath);
        assert_eq!(router.classify("/oauth/revoke"), Destination::ReservedPath);
        assert_eq!(
            router.classify("/.well-known/oauth-authorization-server"),
            Destination::Proxy { route: 0 }
        );
        assert_eq!(
            router.classify("/oauth/management"),
            Destination::ReservedPath
        );
    }
}
