//! The active health check: pingora-load-balancing's `HttpHealthCheck`
//! (a GET of `health_check.path` on every address, with the upstream's TLS:
//! the same SNI, CA and client certificate as requests), bounded as a
//! whole by `timeout`, with the expected status.

use std::time::Duration;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use pingora_load_balancing::health_check::{HealthCheck as Check, HttpHealthCheck};
use pingora_load_balancing::Backend;

use super::server::server_of;
use super::tls::PeerTls;
use crate::config::{HealthCheck, Upstream};

pub(super) struct ActiveCheck {
    /// Per entry of `servers`, in order: each server is checked with its
    /// own SNI and Host, so one check per entry.
    http: Vec<HttpHealthCheck>,
    /// The crate bounds connect and read separately; the whole check
    /// (connect, TLS, request, response head and body) must fit in this.
    timeout: Duration,
    upstream: String,
}

impl ActiveCheck {
    /// `tls`: the same CA, client certificate and names as requests use.
    pub fn new(
        upstream: &Upstream,
        check: &HealthCheck,
        tls: Option<&PeerTls>,
    ) -> pingora::Result<Self> {
        let http = upstream
            .servers
            .iter()
            .enumerate()
            .map(|(entry, server)| {
                let host = match tls {
                    Some(tls) => tls.sni(entry).to_string(),
                    None => server.address.host(),
                };
                entry_check(&host, check, tls.map(|tls| (tls, entry)))
            })
            .collect::<pingora::Result<_>>()?;
        Ok(ActiveCheck {
            http,
            timeout: check.timeout,
            upstream: upstream.name.clone(),
        })
    }
}

/// The check of one entry: `host` is its Host header (and with TLS its
/// SNI).
fn entry_check(
    host: &str,
    check: &HealthCheck,
    tls: Option<(&PeerTls, usize)>,
) -> pingora::Result<HttpHealthCheck> {
    let mut http = HttpHealthCheck::new(host, tls.is_some());
    let mut request = RequestHeader::build("GET", check.path.as_bytes(), None)?;
    request.insert_header("Host", host)?;
    request.insert_header("User-Agent", "portcullis-health-check")?;
    http.req = request;
    let placeholder = std::net::SocketAddr::from(([0, 0, 0, 0], 1));
    let mut peer = match tls {
        Some((tls, entry)) => tls.peer(placeholder, entry),
        None => HttpPeer::new(placeholder, false, String::new()),
    };
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
    Ok(http)
}

#[async_trait]
impl Check for ActiveCheck {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let entry = server_of(target).map(|(server, _)| server.entry);
        let Some(http) = entry.and_then(|entry| self.http.get(entry)) else {
            return Error::e_explain(
                ErrorType::InternalError,
                "the health check has no configured server for this address",
            );
        };
        match tokio::time::timeout(self.timeout, http.check(target)).await {
            Ok(result) => result,
            Err(_) => Error::e_explain(
                ErrorType::ReadTimedout,
                "the health check did not finish within timeout_ms",
            ),
        }
    }

    // The same thresholds for every entry.
    fn health_threshold(&self, success: bool) -> usize {
        self.http
            .first()
            .map_or(1, |http| http.health_threshold(success))
    }

    /// What the crate's "becomes healthy/unhealthy" log lines name.
    fn backend_summary(&self, target: &Backend) -> String {
        format!("upstream `{}` server {}", self.upstream, target.addr)
    }
}
