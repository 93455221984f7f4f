//! The metrics listener's three paths, for the operator and the
//! orchestrator, never for clients (keep this port off the public network):
//!
//! - `/metrics`: every metric, in Prometheus's text format;
//! - `/healthz`: the process is alive and serving (a liveness probe);
//! - `/readyz`: the stores answer and every upstream has a healthy server,
//!   with the detail as JSON; 503 when not (a readiness probe: take the
//!   instance out of rotation, don't restart it).
//!
//! Anything else is 404.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, TextEncoder};
use serde_json::{json, Value};

use crate::state::{AppState, LiveState};

/// Each readiness check answers within this, or counts as failed.
const CHECK_WITHIN: Duration = Duration::from_secs(1);

pub struct OpsApp {
    /// Readiness is of the configuration running now.
    pub live: Arc<LiveState>,
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .expect("a valid response")
}

fn json_reply(status: u16, value: &Value) -> Response<Vec<u8>> {
    reply(status, "application/json", value.to_string().into_bytes())
}

#[async_trait]
impl ServeHttp for OpsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/metrics" => {
                let encoder = TextEncoder::new();
                let mut body = Vec::new();
                match encoder.encode(&prometheus::gather(), &mut body) {
                    Ok(()) => reply(200, encoder.format_type(), body),
                    Err(error) => json_reply(500, &json!({"error": error.to_string()})),
                }
            }
            "/healthz" => json_reply(200, &json!({"status": "alive"})),
            "/readyz" => {
                let (ready, detail) = readiness(&self.live.current()).await;
                json_reply(if ready { 200 } else { 503 }, &detail)
            }
            _ => json_reply(
                404,
                &json!({"error": "not_found", "error_description": "this listener serves /metrics, /healthz and /readyz"}),
            ),
        }
    }
}

/// Whether the instance can serve, and why not: each store's answer and
/// each upstream's healthy servers.
pub async fn readiness(state: &AppState) -> (bool, Value) {
    let store = check(state.store.ping()).await;
    let tokens = check(state.tokens.ping()).await;
    let mut ready = store.is_ok() && tokens.is_ok();
    let mut upstreams = serde_json::Map::new();
    for (name, healthy, servers) in upstream_health(state) {
        ready &= healthy > 0;
        upstreams.insert(
            name,
            json!({"healthy_servers": healthy, "servers": servers}),
        );
    }
    let detail = json!({
        "ready": ready,
        "store": outcome(&store),
        "token_store": outcome(&tokens),
        "upstreams": upstreams,
    });
    (ready, detail)
}

/// Each upstream's name, healthy servers and servers.
fn upstream_health(state: &AppState) -> Vec<(String, usize, usize)> {
    state
        .upstreams
        .iter()
        .map(|pool| {
            let (healthy, servers) = pool.health();
            (pool.name().to_string(), healthy, servers)
        })
        .collect()
}

async fn check<E: std::fmt::Display>(
    answer: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_WITHIN, answer).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_WITHIN:?}")),
    }
}

fn outcome(result: &Result<(), String>) -> Value {
    match result {
        Ok(()) => json!("ok"),
        Err(error) => json!({"error": error}),
    }
}
