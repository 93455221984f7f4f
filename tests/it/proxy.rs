//! The proxy path on the zero-setup defaults (embedded store, memory tokens).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_over_https_with_http2() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;

    let response = client()
        .get(gateway.https_url("/anything?q=1&x=%20y"))
        .bearer_auth(&session.tokens.access_token)
        .header("X-Custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN should pick h2"
    );

    let seen = upstream.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.uri, "/anything?q=1&x=%20y");
    assert_eq!(
        seen.header_values("x-user-id"),
        vec![session.user_id.as_str()]
    );
    assert_eq!(seen.header_values("x-custom"), vec!["kept"]);
    assert!(
        seen.header_values("authorization").is_empty(),
        "Authorization must not be forwarded by default"
    );
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_bodies_are_forwarded_intact() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let body = vec![b'x'; 200 * 1024];
    let response = client()
        .post(gateway.url("/upload"))
        .bearer_auth(&session.tokens.access_token)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.last().body, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let http = client();

    // No credentials: a bare challenge (RFC 6750 §3.1: no error code).
    let response = http.get(gateway.url("/data")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\""
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json(response).await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("Bearer"));

    // Another scheme counts as no bearer credentials.
    let response = http
        .get(gateway.url("/data"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\""
    );

    let cases = [
        ("Bearer unknown-token", "invalid_token"),
        ("Bearer", "invalid_token"),
        ("Bearer a b", "invalid_token"),
        ("bearer ===", "invalid_token"),
    ];
    for (header, code) in cases {
        let response = http
            .get(gateway.url("/data"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{header}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with(&format!(
                "Bearer realm=\"portcullis\", error=\"{code}\", error_description=\""
            )),
            "{header}: {challenge}"
        );
        assert_eq!(json(response).await["error"], code, "{header}");
    }

    // Two Authorization headers, one of them valid: refused as ambiguous.
    let mut headers = HeaderMap::new();
    let valid = format!("Bearer {}", session.tokens.access_token);
    headers.append("authorization", HeaderValue::from_str(&valid).unwrap());
    headers.append("authorization", HeaderValue::from_static("Bearer other"));
    let response = http
        .get(gateway.url("/data"))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_request\""));
    assert_eq!(json(response).await["error"], "invalid_request");

    // The scheme is case-insensitive: this one passes.
    let response = http
        .get(gateway.url("/data"))
        .header(
            "authorization",
            format!("BEARER {}", session.tokens.access_token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.count(),
        1,
        "only the valid request may reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let config = GatewayConfig {
        routes: Some("  - {path_prefix: /, upstream: app}\n  - {path_prefix: /public, upstream: app, public: true}\n".into()),
        ..GatewayConfig::new(&upstream)
    };
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;

    let spoofs = [
        ("X-User-Id", "evil"),
        ("x-user-id", "evil2"),
        ("X_User_Id", "evil3"),
        ("x_user-id", "evil4"),
        ("X-Client-Id", "evil5"),
        ("X_Scope", "admin"),
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in spoofs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    // Asks the next hop to drop the header the gateway injects.
    headers.append(
        "connection",
        HeaderValue::from_static("X-User-Id, X_User_Id, X-Hop"),
    );
    headers.append("x-hop", HeaderValue::from_static("1"));
    headers.append("x-trace", HeaderValue::from_static("1"));

    for path in ["/private", "/public/page"] {
        let mut request = client().get(gateway.url(path)).headers(headers.clone());
        if path == "/private" {
            request = request.bearer_auth(&session.tokens.access_token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let seen = upstream.last();
        let private = path == "/private";
        let expected_user: Vec<&str> = if private {
            vec![session.user_id.as_str()]
        } else {
            vec![]
        };
        let expected_client: Vec<&str> = if private {
            vec![session.client_id.as_str()]
        } else {
            vec![]
        };
        let expected_scope: Vec<&str> = vec![];
        assert_eq!(
            seen.header_values("x-user-id"),
            expected_user,
            "{path}: {:?}",
            seen.headers
        );
        assert_eq!(
            seen.header_values("x-client-id"),
            expected_client,
            "{path}: {:?}",
            seen.headers
        );
        assert_eq!(
            seen.header_values("x-scope"),
            expected_scope,
            "{path}: {:?}",
            seen.headers
        );
        for (name, _) in &seen.headers {
            assert!(
                !name.contains('_'),
                "{path}: spoofed header {name} reached the upstream"
            );
        }
        for value in seen.header_values("connection") {
            assert!(
                !value.to_ascii_lowercase().contains("user"),
                "{path}: Connection: {value}"
            );
        }
        assert!(
            seen.headers.iter().all(|(_, v)| !v.starts_with("evil")),
            "{path}: {:?}",
            seen.headers
        );
        // A header named in Connection is hop-by-hop and is not forwarded.
        assert!(
            seen.header_values("x-hop").is_empty(),
            "{path}: x-hop was named in Connection"
        );
        assert_eq!(
            seen.header_values("x-trace"),
            vec!["1"],
            "{path}: x-trace is an end-to-end header"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pick_upstreams_by_longest_prefix_and_keep_authorization_on_request() {
    let app = Upstream::start().await;
    let admin = Upstream::start().await;
    let config = GatewayConfig {
        upstreams_extra: format!("  admin: {{servers: [\"{}\"]}}\n", admin.address),
        routes: Some(
            "  - {path_prefix: /, upstream: app}\n  - {path_prefix: /admin, upstream: admin, forward_authorization: true}\n  - {path_prefix: /health, upstream: app, public: true}\n"
                .into(),
        ),
        ..GatewayConfig::new(&app)
    };
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let http = client();
    let token = &session.tokens.access_token;

    assert_eq!(gateway.get_status("/admin/users", token).await, 200);
    assert_eq!(admin.count(), 1);
    assert_eq!(
        admin.last().header_values("authorization"),
        vec![format!("Bearer {token}").as_str()]
    );

    assert_eq!(gateway.get_status("/administrator", token).await, 200);
    assert_eq!(app.count(), 1, "/administrator is not under /admin");
    assert!(app.last().header_values("authorization").is_empty());

    let response = http.get(gateway.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200, "public routes need no token");
    assert!(app.last().header_values("x-user-id").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_paths_and_ambiguous_paths_are_answered_by_the_gateway() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let token = &session.tokens.access_token;

    for path in ["/oauth", "/oauth/", "/oauth/other", "/oauth/token/extra"] {
        let response = gateway.get_with_token(path, token).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(json(response).await["error"], "not_found", "{path}");
    }
    for path in [
        "/public/../admin",
        "/a/./b",
        "/a/%2e%2e/b",
        "/a%2fb",
        "//double",
    ] {
        // Sent raw: HTTP libraries would normalise these paths themselves.
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
        let (status, response) = raw_http(gateway.http_port, &request);
        assert_eq!(status, 400, "{path}");
        assert!(
            response.contains("\"error\":\"invalid_request\""),
            "{path}: {response}"
        );
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refused() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream).oauth("  access_token_lifetime_seconds: 1\n"),
    );
    let session = signed_in(&gateway).await;
    let token = &session.tokens.access_token;
    assert_eq!(gateway.get_status("/x", token).await, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = gateway.get_with_token("/x", token).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(upstream.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_a_json_502() {
    let upstream = Upstream::start().await;
    let mut config = GatewayConfig::new(&upstream);
    config.upstream = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let started = std::time::Instant::now();
    let response = gateway
        .get_with_token("/x", &session.tokens.access_token)
        .await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(json(response).await["error"], "bad_gateway");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_failures_and_tokens() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let http = client();
    gateway
        .get_with_token("/x", &session.tokens.access_token)
        .await;
    http.get(gateway.url("/x")).send().await.unwrap();
    gateway.get_with_token("/x", "nope").await;

    let metrics = gateway.metrics().await;
    for line in [
        "portcullis_requests_total{method=\"GET\",route=\"/\",status=\"200\"} 1",
        "portcullis_requests_total{method=\"GET\",route=\"/\",status=\"401\"} 2",
        "portcullis_requests_total{method=\"POST\",route=\"oauth_token\",status=\"200\"} 1",
        "portcullis_auth_decisions_total{outcome=\"allowed\"} 1",
        "portcullis_auth_decisions_total{outcome=\"refused\"} 2",
        "portcullis_token_store_duration_seconds_count{op=\"find\"} 2",
        "portcullis_token_store_duration_seconds_count{op=\"save\"} 1",
        "portcullis_upstream_duration_seconds_count{upstream=\"app\"} 1",
        "portcullis_bcrypt_queue_depth 0",
        "portcullis_build_info{commit=",
        "portcullis_auth_failures_total{reason=\"missing\"} 1",
        "portcullis_auth_failures_total{reason=\"invalid_token\"} 1",
        "portcullis_tokens_issued_total{grant=\"password\"} 1",
        "portcullis_request_duration_seconds_count{route=\"/\"} 3",
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_have_one_line_per_request_and_no_secrets() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    gateway
        .get_with_token("/search?secret_query=hunter2", &session.tokens.access_token)
        .await;
    let refreshed = gateway
        .refresh(&session.client_id, &session.tokens.refresh_token)
        .await;
    assert_eq!(refreshed.status(), 200);
    let access_line_count = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("portcullis::access"))
            .count()
    };
    let logs = gateway.logs_when(|logs| access_line_count(logs) >= 3).await;
    let access_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("portcullis::access"))
        .collect();
    assert_eq!(access_lines.len(), 3, "{logs}");
    let proxied = access_lines.iter().find(|l| l.contains("/search")).unwrap();
    for field in ["method=GET", "status=200", "route=\"/\"", "duration="] {
        assert!(proxied.contains(field), "{field} missing: {proxied}");
    }
    assert!(proxied.contains(&session.user_id));
    for secret in [
        session.tokens.access_token.as_str(),
        session.tokens.refresh_token.as_str(),
        "hunter2",
        "password=pass",
    ] {
        assert!(!logs.contains(secret), "a secret reached the log: {secret}");
    }
}
