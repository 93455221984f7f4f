//! RFC 8414 metadata: a document built from the client's `Host` is kept out
//! of shared caches, a configured issuer's is cacheable by all, and the
//! document never reads the store.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::wire::{send_raw, RawResponse};

const PATH: &str = "/.well-known/oauth-authorization-server";
const ISSUER_WARNING: &str = "oauth.issuer is not set";

/// GET the metadata over plain HTTP with this `Host`.
fn metadata_for_host(gateway: &Gateway, host: &str) -> RawResponse {
    let request = format!("GET {PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    send_raw(gateway.http_port, request.as_bytes()).expect("an answer")
}

fn body(response: &RawResponse) -> serde_json::Value {
    serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{e}: {}", response.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_built_from_the_host_stays_out_of_shared_caches() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let response = metadata_for_host(&gateway, "evil.example");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("cache-control"), Some("private"));
    assert_eq!(response.header("vary"), Some("Host"));
    let document = body(&response);
    assert_eq!(document["issuer"], "https://evil.example");
    assert_eq!(
        document["token_endpoint"],
        "https://evil.example/oauth/token"
    );
    let logs = gateway
        .logs_when(|logs| logs.contains(ISSUER_WARNING))
        .await;
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(ISSUER_WARNING))
        .collect();
    assert_eq!(warnings.len(), 1, "warned once at startup: {logs}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_issuer_is_cacheable_by_all() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream).oauth("  issuer: \"https://auth.example.com/\"\n"),
    );
    let response = metadata_for_host(&gateway, "evil.example");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("cache-control"),
        Some("public, max-age=300")
    );
    assert_eq!(response.header("vary"), None);
    let document = body(&response);
    assert_eq!(document["issuer"], "https://auth.example.com");
    assert_eq!(
        document["introspection_endpoint"],
        "https://auth.example.com/oauth/introspect"
    );
    // The first request's access line is written after the startup lines.
    let logs = gateway
        .logs_when(|logs| logs.contains("portcullis::access"))
        .await;
    assert!(!logs.contains(ISSUER_WARNING), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_answers_while_mongodb_is_down_and_lists_route_scopes() {
    let upstream = Upstream::start().await;
    let mongo = StallingProxy::start(Mongo::shared().address());
    let (_, database) = Mongo::shared().fresh_database_uri();
    let mut config = GatewayConfig {
        routes: Some(
            "  - {path_prefix: /, upstream: app}\n  - {path_prefix: /reports, upstream: app, required_scopes: [reports]}\n"
                .into(),
        ),
        ..GatewayConfig::new(&upstream).mongo(format!(
            "mongodb://127.0.0.1:{}/{database}?directConnection=true",
            mongo.port
        ))
    };
    config.mongodb_timeout_ms = Some(500);
    let gateway = Gateway::start(&config);
    let (client_id, _) = gateway.create_confidential_client("svc", &["--scopes", "read,write"]);

    let before = metadata_for_host(&gateway, "gw.example");
    assert_eq!(before.status, 200);
    assert_eq!(
        body(&before)["scopes_supported"],
        serde_json::json!(["reports"]),
        "the routes' scopes; clients' own are not looked up"
    );

    mongo.stall(true);
    let token = client()
        .post(gateway.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 503, "MongoDB does not answer");
    let asked = Instant::now();
    let during = metadata_for_host(&gateway, "gw.example");
    assert!(
        asked.elapsed() < Duration::from_millis(400),
        "no store wait"
    );
    assert_eq!(during.status, 200, "{}", during.body);
    assert_eq!(body(&during), body(&before));
    mongo.stall(false);
}
