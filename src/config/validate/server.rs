//! `server`: worker threads, trusted proxies and the limits that keep one
//! client from exhausting the gateway.

use std::time::Duration;

use super::Problems;
use crate::config::{FileServer, ServerConfig};

/// `server`: threads, trusted proxies, the token request limit.
pub(super) fn check_server(problems: &mut Problems, server: FileServer) -> ServerConfig {
    if server.threads == 0 {
        problems.add("server.threads", "must be at least 1");
    }
    let mut trusted_proxies = Vec::new();
    for (i, text) in server.trusted_proxies.iter().enumerate() {
        match text.parse::<crate::client_address::IpNetwork>() {
            Ok(network) => trusted_proxies.push(network),
            Err(_) => problems.add(
                format!("server.trusted_proxies[{i}]"),
                format!("`{text}` is not an address or CIDR network (examples: 10.0.0.0/8, ::1)"),
            ),
        }
    }
    if server.max_token_request_bytes < 256 {
        problems.add(
            "server.max_token_request_bytes",
            "must be at least 256 bytes",
        );
    }
    if server.max_connections == 0 {
        problems.add("server.max_connections", "must be at least 1");
    }
    if server.request_head_timeout_seconds == 0 {
        problems.add(
            "server.request_head_timeout_seconds",
            "must be at least 1 second",
        );
    }
    if server.http2_max_concurrent_streams == 0 {
        problems.add("server.http2_max_concurrent_streams", "must be at least 1");
    }
    ServerConfig {
        threads: server.threads,
        grace_period_seconds: server.grace_period_seconds,
        shutdown_timeout_seconds: server.shutdown_timeout_seconds,
        max_token_request_bytes: server.max_token_request_bytes,
        trusted_proxies,
        connection_limits: crate::connection_guard::ConnectionLimits {
            max_connections: server.max_connections,
            request_head_timeout: Duration::from_secs(server.request_head_timeout_seconds),
        },
        http2_max_concurrent_streams: server.http2_max_concurrent_streams,
        forwarded_header: server.forwarded_header,
        upstream_keepalive_pool_size: server.upstream_keepalive_pool_size,
    }
}
