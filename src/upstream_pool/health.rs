//! The active health check: pingora-load-balancing's `HttpHealthCheck`
//! (a GET of `health_check.path` on every address, with the upstream's TLS
//! and SNI), bounded as a whole by `timeout`, with the expected status.

use std::time::Duration;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use pingora_load_balancing::health_check::{HealthCheck as Check, HttpHealthCheck};
use pingora_load_balancing::Backend;

use crate::config::{HealthCheck, Upstream};

pub(super) struct ActiveCheck {
    http: HttpHealthCheck,
    /// The crate bounds connect and read separately; the whole check
    /// (connect, TLS, request, response head and body) must fit in this.
    timeout: Duration,
    upstream: String,
}

impl ActiveCheck {
    pub fn new(upstream: &Upstream, check: &HealthCheck) -> pingora::Result<Self> {
        let host = if upstream.sni.is_empty() {
            upstream
                .servers
                .first()
                .map(|server| server.address.host())
                .unwrap_or_default()
        } else {
            upstream.sni.clone()
        };
        let mut http = HttpHealthCheck::new(&host, upstream.tls);
        let mut request = RequestHeader::build("GET", check.path.as_bytes(), None)?;
        request.insert_header("Host", &host)?;
        request.insert_header("User-Agent", "portcullis-health-check")?;
        http.req = request;
        let mut peer = HttpPeer::new("0.0.0.0:1", upstream.tls, upstream.sni.clone());
        peer.options.connection_timeout = Some(check.timeout);
        peer.options.read_timeout = Some(check.timeout);
        peer.options.write_timeout = Some(check.timeout);
        http.peer_template = peer;
        http.consecutive_success = check.healthy_after as usize;
        http.consecutive_failure = check.unhealthy_after as usize;
        let expected = check.expect_status;
        http.validator = Some(Box::new(move |response: &ResponseHeader| {
            let status = response.status.as_u16();
            if status == expected {
                Ok(())
            } else {
                Error::e_explain(
                    ErrorType::CustomCode("unexpected health check status", status),
                    format!("expected {expected}"),
                )
            }
        }));
        Ok(ActiveCheck {
            http,
            timeout: check.timeout,
            upstream: upstream.name.clone(),
        })
    }
}

#[async_trait]
impl Check for ActiveCheck {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        match tokio::time::timeout(self.timeout, self.http.check(target)).await {
            Ok(result) => result,
            Err(_) => Error::e_explain(
                ErrorType::ReadTimedout,
                "the health check did not finish within timeout_ms",
            ),
        }
    }

    fn health_threshold(&self, success: bool) -> usize {
        self.http.health_threshold(success)
    }

    /// What the crate's "becomes healthy/unhealthy" log lines name.
    fn backend_summary(&self, target: &Backend) -> String {
        format!("upstream `{}` server {}", self.upstream, target.addr)
    }
}
