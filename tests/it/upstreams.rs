//! Load-balanced upstreams through the real binary: weights, consistent
//! hashing, health checks, passive ejection, retries, 503 when no server
//! is left, and names that do not resolve. (A name that resolves to two
//! addresses is tested in `upstream_pool`'s unit tests, with a resolver
//! table: here `localhost` is only 127.0.0.1.)

use std::time::{Duration, Instant};

use crate::harness::*;

/// A gateway whose catch-all public route goes to the upstream `pool`,
/// configured by `pool` (YAML lines under `pool:`).
fn gateway_with_pool(pool: &str) -> Gateway {
    let placeholder = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = GatewayConfig {
        upstreams_extra: format!("  pool:\n{pool}"),
        ..GatewayConfig::for_address(placeholder)
    }
    .routes("  - {path_prefix: /, upstream: pool, public: true}\n");
    Gateway::start(&config)
}

fn servers(upstreams: &[&Upstream]) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|u| format!("\"{}\"", u.address))
        .collect();
    format!("    servers: [{}]\n", list.join(", "))
}

/// `portcullis_upstream_server_healthy` of `server` in upstream `pool`.
async fn healthy_gauge(gateway: &Gateway, server: &str) -> Option<i64> {
    let metrics = gateway.metrics().await;
    let server_label = format!("server=\"{server}\"");
    metrics
        .lines()
        .find(|line| {
            line.starts_with("portcullis_upstream_server_healthy{")
                && line.contains(&server_label)
                && line.contains("upstream=\"pool\"")
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn retries(gateway: &Gateway, upstream: &str) -> u64 {
    let metrics = gateway.metrics().await;
    let series = format!("portcullis_upstream_retries_total{{upstream=\"{upstream}\"}}");
    metrics
        .lines()
        .find(|line| line.starts_with(&series))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .expect("the retries counter of every upstream is exported")
}

async fn get(gateway: &Gateway, path: &str) -> reqwest::Response {
    client().get(gateway.url(path)).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_gets_no_traffic_and_gets_it_back_once_restarted() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let gateway = gateway_with_pool(&format!(
        "{}    health_check: {{path: /healthz, interval_ms: 200, timeout_ms: 200, healthy_after: 1, unhealthy_after: 1}}\n    passive: {{failures: 1, eject_ms: 1000}}\n",
        servers(&[&a, &b])
    ));
    let http = client();
    for _ in 0..20 {
        assert_eq!(
            http.get(gateway.url("/x")).send().await.unwrap().status(),
            200
        );
    }
    assert!(
        a.count() > 0 && b.count() > 0,
        "{} {}",
        a.count(),
        b.count()
    );
    assert!(a.health_checks() > 0, "the health check runs");

    a.stop().await;
    let a_label = a.address.to_string();
    assert!(
        eventually(Duration::from_secs(5), || async {
            healthy_gauge(&gateway, &a_label).await == Some(0)
        })
        .await,
        "the health check takes the dead server out"
    );
    let b_before = b.count();
    let retries_before = retries(&gateway, "pool").await;
    let started = Instant::now();
    for i in 0..1_000 {
        let response = http.get(gateway.url("/x")).send().await.unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "too slow at {i}"
        );
    }
    assert_eq!(b.count() - b_before, 1_000);
    assert_eq!(
        retries(&gateway, "pool").await,
        retries_before,
        "skipped, not tried and retried"
    );
    assert_eq!(
        healthy_gauge(&gateway, &b.address.to_string()).await,
        Some(1)
    );

    a.restart().await;
    let a_before = a.count();
    assert!(
        eventually(Duration::from_secs(10), || async {
            let status = http.get(gateway.url("/x")).send().await.unwrap().status();
            assert_eq!(status, 200);
            a.count() > a_before
        })
        .await,
        "the restarted server gets traffic again"
    );
    // The gauges are brought up to date twice a second.
    assert!(
        eventually(Duration::from_secs(2), || async {
            healthy_gauge(&gateway, &a_label).await == Some(1)
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_server_down_the_answer_is_a_quick_503() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    a.stop().await;
    b.stop().await;
    // No active check: passive ejection alone (three failures each).
    let gateway = gateway_with_pool(&servers(&[&a, &b]));
    let mut first_503 = None;
    for i in 0..5 {
        let response = get(&gateway, "/x").await;
        match response.status().as_u16() {
            // Both tried and refused: the upstream failed.
            502 => assert_eq!(json(response).await["error"], "bad_gateway"),
            503 => {
                first_503 = Some(i);
                break;
            }
            other => panic!("request {i}: {other}"),
        }
    }
    assert_eq!(first_503, Some(3), "both ejected after three failures");
    for _ in 0..20 {
        let started = Instant::now();
        let response = get(&gateway, "/x").await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = json(response).await;
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(body["request_id"].is_string(), "{body}");
    }
    // Not ready: take the instance out of rotation.
    let ready = client()
        .get(format!("http://127.0.0.1:{}/readyz", gateway.metrics_port))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(json(ready).await["upstreams"]["pool"]["healthy_servers"], 0);
    for server in [&a, &b] {
        let label = server.address.to_string();
        assert!(
            eventually(Duration::from_secs(2), || async {
                healthy_gauge(&gateway, &label).await == Some(0)
            })
            .await,
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_cannot_connect_is_sent_to_the_other_server() {
    let live = Upstream::start().await;
    let dead = format!("127.0.0.1:{}", free_port());
    // Ejection off: every request that picks the dead server first retries.
    let gateway = gateway_with_pool(&format!(
        "    servers: [\"{dead}\", \"{}\"]\n    passive: {{failures: 0}}\n",
        live.address
    ));
    let http = client();
    for i in 0..6 {
        let body = format!("order {i}");
        let response = http
            .post(gateway.url("/orders"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(json(response).await["body_len"], body.len());
        assert_eq!(live.last().body, body.as_bytes());
    }
    assert_eq!(live.count(), 6);
    assert!(
        retries(&gateway, "pool").await >= 3,
        "round robin sends half to the dead server first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_traffic_and_consistent_hashing_keeps_a_key_on_one_server() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let gateway = gateway_with_pool(&format!(
        "    servers: [{{address: \"{}\", weight: 3}}, {{address: \"{}\", weight: 1}}]\n",
        a.address, b.address
    ));
    let http = client();
    for _ in 0..400 {
        assert_eq!(
            http.get(gateway.url("/x")).send().await.unwrap().status(),
            200
        );
    }
    assert!((270..=330).contains(&a.count()), "a: {}", a.count());
    assert_eq!(a.count() + b.count(), 400);

    let servers = [
        Upstream::start().await,
        Upstream::start().await,
        Upstream::start().await,
    ];
    let list: Vec<String> = servers
        .iter()
        .map(|s| format!("\"{}\"", s.address))
        .collect();
    let gateway = gateway_with_pool(&format!(
        "    servers: [{}]\n    selection: consistent_hash\n    hash_on: \"header:X-Tenant\"\n",
        list.join(", ")
    ));
    let mut used = std::collections::BTreeSet::new();
    for tenant in ["acme", "globex", "initech", "umbrella", "hooli", "stark"] {
        let before: Vec<usize> = servers.iter().map(Upstream::count).collect();
        for _ in 0..10 {
            let response = http
                .get(gateway.url("/x"))
                .header("X-Tenant", tenant)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let grew: Vec<usize> = (0..servers.len())
            .filter(|&i| servers[i].count() > before[i])
            .collect();
        assert_eq!(grew.len(), 1, "{tenant} went to {grew:?}");
        assert_eq!(servers[grew[0]].count() - before[grew[0]], 10);
        used.insert(grew[0]);
    }
    assert!(used.len() > 1, "six tenants all on one server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_name_is_a_warning_and_a_503_not_a_failed_start() {
    let app = Upstream::start().await;
    let config = GatewayConfig {
        upstreams_extra: format!(
            "  ghost: {{servers: [\"portcullis-test.invalid:8000\"]}}\n  named: {{servers: [\"localhost:{}\"]}}\n",
            app.address.port()
        ),
        ..GatewayConfig::new(&app)
    }
    .routes(
        "  - {path_prefix: /ghost, upstream: ghost, public: true}\n  - {path_prefix: /named, upstream: named, public: true}\n  - {path_prefix: /, upstream: app, public: true}\n",
    );
    let gateway = Gateway::start(&config);
    let logs = gateway
        .logs_when(|logs| logs.contains("does not resolve"))
        .await;
    let warning = logs
        .lines()
        .find(|line| line.contains("does not resolve"))
        .unwrap_or_else(|| panic!("no warning in:\n{logs}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("portcullis-test.invalid:8000"),
        "{warning}"
    );

    let response = get(&gateway, "/ghost/x").await;
    assert_eq!(response.status(), 503);
    assert_eq!(json(response).await["error"], "temporarily_unavailable");
    assert_eq!(get(&gateway, "/x").await.status(), 200);
    // A name that resolves is used as it resolves.
    assert_eq!(get(&gateway, "/named/x").await.status(), 200);
    assert_eq!(app.last().uri, "/named/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_read_timeout_wins_over_its_upstreams() {
    let app = Upstream::start().await;
    let config = GatewayConfig::new(&app).routes(
        "  - {path_prefix: /, upstream: app, public: true}\n  - {path_prefix: /slow, upstream: app, public: true, read_timeout_ms: 300}\n",
    );
    let gateway = Gateway::start(&config);
    let started = Instant::now();
    let response = get(&gateway, "/slow").await;
    // The echo answers /slow after a second; the upstream allows a minute.
    assert_eq!(response.status(), 502);
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(
        retries(&gateway, "app").await,
        0,
        "a timeout is not retried"
    );
}

/// A server that reads the request and closes the connection unanswered.
async fn resetting_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await;
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_before_the_response_is_retried_for_a_get_never_for_a_post() {
    let live = Upstream::start().await;
    let resetting = resetting_server().await;
    // Ejection off, so that the resetting server keeps being chosen.
    let gateway = gateway_with_pool(&format!(
        "    servers: [\"{resetting}\", \"{}\"]\n    passive: {{failures: 0}}\n",
        live.address
    ));
    let http = client();
    for i in 0..6 {
        let response = http.get(gateway.url("/x")).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {i}");
    }
    assert!(retries(&gateway, "pool").await >= 3);
    assert_eq!(live.count(), 6);

    let mut answered = 0;
    let mut failed = 0;
    for i in 0..6 {
        let response = http
            .post(gateway.url("/orders"))
            .body(format!("order {i}"))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => answered += 1,
            502 => failed += 1,
            other => panic!("POST {i}: {other}"),
        }
    }
    // Strict turns: every second POST meets the resetting server first,
    // and is answered 502 rather than sent again.
    assert_eq!((answered, failed), (3, 3));
    let posts = live.seen().iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts, answered, "no POST was sent twice");
}
