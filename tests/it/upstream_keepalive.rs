//! Keep-alive to upstreams through the real binary: consecutive requests
//! share one pooled upstream connection, `upstreams.<name>.idle_timeout_ms`
//! closes it once idle, and `server.upstream_keepalive_pool_size: 0` keeps
//! none. The upstream numbers its connections and says which one each
//! request came on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;

use crate::harness::*;

/// An HTTP/1.1 upstream that keeps connections alive and answers
/// `connection <n>`, `n` counting the connections it accepted from 1.
async fn start_counting_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let number = accepted.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request: hyper::Request<_>| {
                    let body = Bytes::from(format!("connection {number}"));
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

fn gateway(upstream: SocketAddr, pool_size: usize) -> Gateway {
    let placeholder = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = GatewayConfig {
        upstreams_extra: format!(
            "  counted: {{servers: [\"{upstream}\"], idle_timeout_ms: 300}}\n"
        ),
        ..GatewayConfig::for_address(placeholder)
    }
    .routes("  - {path_prefix: /, upstream: counted, public: true}\n")
    .server(&format!("  upstream_keepalive_pool_size: {pool_size}\n"));
    Gateway::start(&config)
}

/// The upstream connections `n` consecutive requests came on.
async fn connections_of(gateway: &Gateway, n: usize) -> Vec<String> {
    let http = client();
    let mut connections = Vec::new();
    for _ in 0..n {
        let response = http.get(gateway.url("/n")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        connections.push(response.text().await.unwrap());
    }
    connections
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_requests_share_an_upstream_connection_until_it_idles_out() {
    let gateway = gateway(start_counting_upstream().await, 8);
    assert_eq!(
        connections_of(&gateway, 4).await,
        ["connection 1"; 4],
        "one connection for back-to-back requests"
    );
    // Past `idle_timeout_ms` (300 ms) the pooled connection is closed.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        connections_of(&gateway, 2).await,
        ["connection 2"; 2],
        "a new connection after the idle timeout, kept alive in its turn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keepalive_pool_of_zero_connects_for_every_request() {
    let gateway = gateway(start_counting_upstream().await, 0);
    assert_eq!(
        connections_of(&gateway, 3).await,
        ["connection 1", "connection 2", "connection 3"]
    );
}
