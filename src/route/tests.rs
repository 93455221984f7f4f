use super::*;

/// Each path finds the route of the upstream given, or none.
fn assert_upstreams(table: &RouteTable, cases: &[(&str, Option<usize>)]) {
    for (path, expected) in cases {
        assert_eq!(
            table.find(None, path).map(|(_, r)| r.upstream),
            *expected,
            "{path}"
        );
    }
}

fn route(prefix: &str, upstream: usize) -> Route {
    Route {
        path_prefix: prefix.into(),
        upstream,
        forward_authorization: false,
        public: false,
        required_scopes: Vec::new(),
        case_sensitive: false,
        ..Default::default()
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
    match router.route(None, path) {
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
    assert_upstreams(&table, &cases);
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
    assert_upstreams(&table, &cases);
}

#[test]
fn no_catch_all_means_no_route() {
    let table = RouteTable::new(vec![route("/api", 0)]);
    assert!(table.find(None, "/other").is_none());
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
        assert_eq!(router.classify(None, path), expected, "{path}");
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
    assert_eq!(
        router.classify(None, "/oauth/token"),
        Destination::ReservedPath
    );
    assert_eq!(
        router.classify(None, "/oauth/revoke"),
        Destination::ReservedPath
    );
    assert_eq!(
        router.classify(None, "/.well-known/oauth-authorization-server"),
        Destination::Proxy { route: 0 }
    );
    assert_eq!(
        router.classify(None, "/oauth/management"),
        Destination::ReservedPath
    );
}

fn on_host(host: &str, prefix: &str, upstream: usize) -> Route {
    Route {
        host: Some(HostPattern::parse(host).unwrap()),
        ..route(prefix, upstream)
    }
}

#[test]
fn an_exact_host_beats_a_wildcard_which_beats_no_host_then_the_longest_prefix() {
    let table = RouteTable::new(vec![
        route("/", 0),
        route("/api", 1),
        on_host("*.example.com", "/", 2),
        on_host("api.example.com", "/", 3),
        on_host("*.example.com", "/api/v2", 4),
    ]);
    let cases: [(Option<&str>, &str, Option<usize>); 9] = [
        (None, "/api/x", Some(1)),
        (Some("other.org"), "/api/x", Some(1)),
        (Some("other.org"), "/x", Some(0)),
        (Some("www.example.com"), "/api/x", Some(2)),
        (Some("www.example.com"), "/api/v2/x", Some(4)),
        (Some("api.example.com"), "/api/v2/x", Some(3)),
        (Some("api.example.com"), "/", Some(3)),
        (Some("example.com"), "/api", Some(1)),
        (Some("a.b.example.com"), "/", Some(2)),
    ];
    for (host, path, expected) in cases {
        assert_eq!(
            table.find(host, path).map(|(_, r)| r.upstream),
            expected,
            "{host:?} {path}"
        );
    }
    let names: Vec<&str> = table.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"api.example.com/"), "{names:?}");
    assert!(names.contains(&"*.example.com/api/v2"), "{names:?}");
}

#[test]
fn methods_limit_a_route_and_head_goes_with_get() {
    let limited = Route {
        methods: Some(vec![http::Method::GET, http::Method::POST]),
        ..route("/api", 0)
    };
    let cases = [
        (http::Method::GET, true),
        (http::Method::HEAD, true),
        (http::Method::POST, true),
        (http::Method::DELETE, false),
        (http::Method::OPTIONS, false),
    ];
    for (method, allowed) in cases {
        assert_eq!(limited.allows(&method), allowed, "{method}");
        assert!(route("/", 0).allows(&method));
    }
    assert_eq!(limited.allow_header(), "GET, POST, HEAD");
}

#[test]
fn prefixes_are_stripped_or_rewritten_for_the_upstream() {
    let strip = Route {
        strip_prefix: true,
        ..route("/api/v1", 0)
    };
    let rewrite = Route {
        rewrite_prefix: Some("/internal/".into()),
        ..route("/api/v1", 0)
    };
    let root = Route {
        rewrite_prefix: Some("/app".into()),
        ..route("/", 0)
    };
    let cases: [(&Route, &str, &str); 9] = [
        (&strip, "/api/v1/x", "/x"),
        (&strip, "/api/v1", "/"),
        (&strip, "/api/v1?q=1", "/?q=1"),
        (&strip, "/API/v1/users/7?a=b", "/users/7?a=b"),
        (&rewrite, "/api/v1/x", "/internal/x"),
        (&rewrite, "/api/v1", "/internal/"),
        (&root, "/x/y", "/app/x/y"),
        (&root, "/", "/app/"),
        (&route("/api", 0), "/api/x?y", "/api/x?y"),
    ];
    for (route, target, expected) in cases {
        let out = route.upstream_target(target.as_bytes());
        assert_eq!(String::from_utf8_lossy(&out), expected, "{target}");
    }
}
