//! The metrics listener: `/metrics`, `/healthz` and `/readyz`, and 404 for
//! anything else. Readiness follows the stores.

use serde_json::Value;

use crate::harness::*;

async fn ops(gateway: &Gateway, path: &str) -> (u16, String) {
    let response = client()
        .get(format!("http://127.0.0.1:{}{path}", gateway.metrics_port))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_serves_metrics_liveness_and_readiness() {
    let upstream = Upstream::start().await;
    let mut redis = Redis::start();
    let (uri, _) = Mongo::shared().fresh_database_uri();
    let gateway = Gateway::start(&GatewayConfig::shared(&upstream, &redis, &uri));

    let (status, metrics) = ops(&gateway, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE portcullis_connections_active gauge"),
        "{metrics}"
    );
    let (status, body) = ops(&gateway, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"alive"}"#));
    let (status, body) = ops(&gateway, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["store"], "ok");
    assert_eq!(ready["token_store"], "ok");
    assert!(
        ready["upstreams"]["app"]["healthy_servers"]
            .as_u64()
            .unwrap()
            >= 1,
        "{ready}"
    );
    for other in ["/", "/metrics/x", "/anything"] {
        assert_eq!(ops(&gateway, other).await.0, 404, "{other}");
    }

    // Redis gone: not ready (503, saying why), but alive.
    redis.stop();
    let (status, body) = ops(&gateway, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["ready"], false);
    assert!(detail["token_store"]["error"].is_string(), "{detail}");
    assert_eq!(detail["store"], "ok");
    assert_eq!(ops(&gateway, "/healthz").await.0, 200);
    redis.restart();
    let ready = eventually(std::time::Duration::from_secs(5), || async {
        ops(&gateway, "/readyz").await.0 == 200
    })
    .await;
    assert!(ready, "readiness did not come back with Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_without_secrets() {
    let upstream = Upstream::start().await;
    let config = GatewayConfig {
        extra_env: vec![("PORTCULLIS_LOG_FORMAT".into(), "json".into())],
        ..GatewayConfig::new(&upstream)
    };
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    assert_eq!(
        gateway
            .get_status("/orders?id=7", &session.tokens.access_token)
            .await,
        200
    );
    let logs = gateway
        .logs_when(|logs| logs.contains("\"path\":\"/orders\""))
        .await;
    let mut access = None;
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            object["timestamp"].is_string() && object["level"].is_string(),
            "{line}"
        );
        if object["target"] == "portcullis::access" && object["path"] == "/orders" {
            access = Some(object);
        }
    }
    let access = access.expect("an access line for /orders");
    assert_eq!(access["status"], 200);
    assert_eq!(access["method"], "GET");
    assert_eq!(access["route"], "/");
    assert_eq!(access["upstream"], upstream.address.to_string());
    for timing in ["duration", "auth_duration", "upstream_duration"] {
        let value = access[timing].as_str().unwrap_or_default();
        assert!(
            value.ends_with("ms") && value.len() > 2,
            "{timing}: {access}"
        );
    }
    assert_eq!(access["user_id"], session.user_id.as_str());
    assert_eq!(access["request_id"].as_str().map(str::len), Some(32));
    for secret in [&session.tokens.access_token, &session.tokens.refresh_token] {
        assert!(!logs.contains(secret.as_str()), "a token reached the log");
    }
    assert!(!logs.contains("id=7"), "a query reached the log");
}
