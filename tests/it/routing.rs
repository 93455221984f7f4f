//! Routes as a production gateway has them: by Host (exact, wildcard, none),
//! then the longest prefix; methods limited with 405 and `Allow`; prefixes
//! stripped or rewritten for the upstream; `auth: none`; and check-config
//! naming routes that could never match.

use crate::harness::*;

/// A raw HTTP/1.1 GET for `path` with this `Host`, and a token if given.
fn get(port: u16, host: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    raw_http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Connection: close\r\n\r\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_then_prefixes_choose_the_upstream() {
    let (default, api, tenants) = (
        Upstream::start().await,
        Upstream::start().await,
        Upstream::start().await,
    );
    let mut config = GatewayConfig::new(&default).routes(
        "  - {path_prefix: /, upstream: app, auth: none}\n\
         \x20 - {host: api.example.com, path_prefix: /, upstream: api, auth: none}\n\
         \x20 - {host: '*.tenants.example.com', path_prefix: /, upstream: tenants, auth: none}\n",
    );
    config.upstreams_extra = format!(
        "  api: {{servers: [\"{}\"]}}\n  tenants: {{servers: [\"{}\"]}}\n",
        api.address, tenants.address
    );
    let gateway = Gateway::start(&config);
    let cases = [
        ("api.example.com", &api, "/a"),
        ("API.Example.com:8080", &api, "/b"),
        ("acme.tenants.example.com", &tenants, "/c"),
        ("tenants.example.com", &default, "/d"),
        ("other.org", &default, "/e"),
    ];
    for (host, upstream, path) in cases {
        let (status, _) = get(gateway.http_port, host, path, None);
        assert_eq!(status, 200, "{host}");
        assert_eq!(upstream.last().uri, path, "{host} went elsewhere");
    }
    assert_eq!((api.count(), tenants.count(), default.count()), (2, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_route_does_not_take_is_405_and_never_forwarded() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(
        "  - {path_prefix: /reports, upstream: app, methods: [GET]}\n\
         \x20 - {path_prefix: /, upstream: app}\n",
    ));
    let session = signed_in(&gateway).await;
    let token = session.tokens.access_token.as_str();
    for method in ["DELETE", "POST", "PUT"] {
        for with_token in [false, true] {
            let authorization = if with_token {
                format!("Authorization: Bearer {token}\r\n")
            } else {
                String::new()
            };
            let (status, response) = raw_http(
                gateway.http_port,
                &format!(
                    "{method} /reports/7 HTTP/1.1\r\nHost: x\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            );
            assert_eq!(status, 405, "{method}: {response}");
            let lower = response.to_ascii_lowercase();
            assert!(lower.contains("\r\nallow: get, head\r\n"), "{response}");
            assert!(response.contains("method_not_allowed"), "{response}");
        }
    }
    assert_eq!(upstream.count(), 0, "a refused method reached the upstream");
    let (status, _) = get(gateway.http_port, "x", "/reports/7", Some(token));
    assert_eq!(status, 200);
    let (status, _) = raw_http(
        gateway.http_port,
        &format!("HEAD /reports/7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);
    // Other routes take every method.
    let response = client()
        .delete(gateway.url("/things/1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_are_stripped_or_rewritten_for_the_upstream() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(
        "  - {path_prefix: /api/v1, upstream: app, strip_prefix: true, auth: none}\n\
         \x20 - {path_prefix: /legacy, upstream: app, rewrite_prefix: /v2/compat, auth: none}\n\
         \x20 - {path_prefix: /, upstream: app}\n",
    ));
    let cases = [
        ("/api/v1/users/7?active=1", "/users/7?active=1"),
        ("/api/v1", "/"),
        ("/API/V1/users", "/users"),
        ("/legacy/orders", "/v2/compat/orders"),
        ("/legacy", "/v2/compat/"),
    ];
    for (sent, received) in cases {
        let (status, _) = get(gateway.http_port, "x", sent, None);
        assert_eq!(status, 200, "{sent}");
        assert_eq!(upstream.last().uri, received, "{sent}");
    }
    // The upstream learns the prefix it was reached under, as sent.
    assert_eq!(
        upstream.last().header_values("x-forwarded-prefix"),
        vec!["/legacy"]
    );
    let (_, _) = get(gateway.http_port, "x", "/API/v1/users", None);
    assert_eq!(
        upstream.last().header_values("x-forwarded-prefix"),
        vec!["/API/v1"]
    );
    // A client's own copy never passes.
    let (_, _) = raw_http(
        gateway.http_port,
        "GET /other-public HTTP/1.1\r\nHost: x\r\nX-Forwarded-Prefix: /evil\r\nConnection: close\r\n\r\n",
    );
    // The catch-all still needs a token: `auth: none` is per route.
    let (status, _) = get(gateway.http_port, "x", "/other", None);
    assert_eq!(status, 401);
}

#[test]
fn check_config_names_routes_that_could_never_match() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.yaml");
    std::fs::write(
        &file,
        "upstreams:\n  app: {servers: [\"127.0.0.1:3000\"]}\nroutes:\n\
         \x20 - {path_prefix: /api, upstream: app}\n\
         \x20 - {path_prefix: /API/, upstream: app}\n\
         \x20 - {host: a.example.com, path_prefix: /api, upstream: app}\n\
         \x20 - {host: 'a.example.com', path_prefix: /api, upstream: app}\n\
         \x20 - {host: 'bad host', path_prefix: /x, upstream: app}\n\
         \x20 - {path_prefix: /m, upstream: app, methods: [get, GET, FETCH!]}\n\
         \x20 - {path_prefix: /p, upstream: app, public: true, auth: required}\n\
         \x20 - {path_prefix: /s, upstream: app, strip_prefix: true, rewrite_prefix: /t}\n",
    )
    .unwrap();
    let output = run_binary(&file, &[], &["check-config", "--no-resolve"], None);
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stderr).to_string();
    for expected in [
        "routes[1].path_prefix",
        "unreachable",
        "routes[3].path_prefix",
        "routes[4].host",
        "routes[5].methods",
        "routes[6].auth",
        "routes[7].rewrite_prefix",
    ] {
        assert!(
            report.contains(expected),
            "{expected} missing in:\n{report}"
        );
    }
    assert!(!report.contains("- routes[2]"), "{report}");
}
