//! Which handler or upstream a request path belongs to. Pure: no I/O.
//!
//! Routes match by longest path prefix on segment boundaries: `/api` matches
//! `/api` and `/api/users` but not `/apiary`. The table is sorted once at
//! startup so a lookup is one scan that stops at the first hit.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub path_prefix: String,
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    pub forward_authorization: bool,
    pub public: bool,
    /// All of these scopes, or 403.
    pub required_scopes: Vec<String>,
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
            .find(|(_, route)| path_has_trimmed_prefix(path, &route.path_prefix))
    }

    pub fn get(&self, index: usize) -> &Route {
        &self.routes[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

/// True when `path` equals `prefix` or continues it at a `/` boundary.
/// A prefix of `/` (or the empty string) contains every path.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    path_has_trimmed_prefix(path, prefix.trim_end_matches('/'))
}

/// [`path_has_prefix`] for a prefix without a trailing `/`, or `/` itself.
fn path_has_trimmed_prefix(path: &str, prefix: &str) -> bool {
    if prefix.is_empty() || prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// True when `path` has one meaning for us and for any upstream: no dot
/// segments, no encoded `.`, `/` or `\\`, no backslash, no empty segment.
/// A path that an upstream could normalise differently from us (say
/// `/public/../admin`) could otherwise ride a public route past
/// authentication, so the gateway refuses it rather than guessing.
pub fn path_is_canonical(path: &str) -> bool {
    if !path.starts_with('/') || path.contains('\\') || path.contains("//") {
        return false;
    }
    // Percent-encoded dot, slash, backslash or NUL, in either case. One
    // pass: this runs on every request.
    let bytes = path.as_bytes();
    let encoded_separator = bytes.iter().enumerate().any(|(at, &byte)| {
        byte == b'%'
            && matches!(
                (
                    bytes.get(at + 1),
                    bytes.get(at + 2).map(u8::to_ascii_lowercase)
                ),
                (Some(b'2'), Some(b'e' | b'f'))
                    | (Some(b'5'), Some(b'c'))
                    | (Some(b'0'), Some(b'0'))
            )
    });
    if encoded_separator {
        return false;
    }
    !path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
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
    /// Refused before routing: see [`path_is_canonical`].
    InvalidPath,
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
    pub fn classify(&self, path: &str) -> Destination {
        if self.metadata && path == METADATA_PATH {
            return Destination::MetadataEndpoint;
        }
        if path_has_prefix(path, &self.oauth_prefix) {
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
    fn ambiguous_paths_are_not_canonical() {
        let cases = [
            ("/", true),
            ("/api/users", true),
            ("/api/users/", true),
            ("/a.b/c..d/.e", true),
            ("/api/%20x", true),
            ("/public/../admin", false),
            ("/public/./admin", false),
            ("/public/..", false),
            ("/public/%2e%2e/admin", false),
            ("/public%2Fadmin", false),
            ("/public%5cadmin", false),
            ("/public\\admin", false),
            ("//admin", false),
            ("/a//b", false),
            ("/a%00", false),
            ("/public/%2E%2E/admin", false),
            ("/public%5Cadmin", false),
            ("/a%2", true),
            ("/a%", true),
            ("/a%25%32%65", true),
            ("*", false),
            ("", false),
        ];
        for (path, expected) in cases {
            assert_eq!(path_is_canonical(path), expected, "{path}");
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
