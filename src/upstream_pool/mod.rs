//! Which server of an upstream a request goes to, and what its failures
//! teach: the gateway's hooks call in here, and [`Maintenance`] keeps the
//! pools current in the background.
//!
//! A server is usable when its name resolved (`discovery`), its active
//! health check (if any) passes (`health`, run by pingora-load-balancing),
//! and real traffic has not ejected it (`passive`). `balancer` picks among
//! the usable ones. A request that could not connect goes to another
//! server, whatever its method; an idempotent one the upstream reset before
//! answering, up to `retries` times (`attempts`). With no usable server the
//! answer is 503 at once ([`NO_HEALTHY_SERVER`]).

mod attempts;
mod balancer;
mod discovery;
mod health;
mod passive;
mod server;
mod service;
mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use pingora_load_balancing::{Backend, Backends};

pub use attempts::Attempts;
use attempts::SentFailure;
use balancer::{address_of, Balancer, Schedule};
use discovery::NameDiscovery;
pub use discovery::{Resolve, SystemResolver};
use passive::Change;
use server::{server_of, InFlight};
pub use service::Maintenance;
use tls::PeerTls;

use crate::config::{HashOn, Selection, ServerAddress, Upstream};
use crate::metrics;

/// The error type of "no usable server": answered 503 with Retry-After.
pub const NO_HEALTHY_SERVER: &str = "no_healthy_upstream_server";

/// How often the health gauges are brought up to date.
const GAUGE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// One configured upstream.
pub struct UpstreamPool {
    /// `None`: plain HTTP.
    tls: Option<PeerTls>,
    /// `Some` with consistent hashing.
    hash_on: Option<HashOn>,
    /// `portcullis_upstream_duration_seconds` of this upstream.
    response_time: prometheus::Histogram,
    /// The servers as written: the `server` label of the health gauge.
    entries: Vec<String>,
    balancer: Balancer,
    /// What the pool was made from (name, timeouts, retries, ejection): a
    /// reload keeps the pool when these did not change.
    settings: Upstream,
}

impl UpstreamPool {
    /// A pool with no address yet: [`UpstreamPool::resolve`] looks up the
    /// names, and the background loop keeps doing so.
    pub fn new(upstream: Upstream, resolver: Arc<dyn Resolve>) -> pingora::Result<Self> {
        let has_names = upstream
            .servers
            .iter()
            .any(|server| matches!(server.address, ServerAddress::Name { .. }));
        let tls = PeerTls::new(&upstream)?;
        let health_check = match &upstream.health_check {
            Some(check) => Some((
                check.interval,
                Box::new(health::ActiveCheck::new(&upstream, check, tls.as_ref())?) as _,
            )),
            None => None,
        };
        let schedule = Schedule {
            resolve: has_names.then_some(upstream.resolve_interval),
            health_check,
        };
        let discovery = NameDiscovery::new(
            &upstream.name,
            upstream.servers.clone(),
            resolver,
            upstream.resolve_interval,
        );
        let balancer = Balancer::new(
            &upstream.selection,
            Backends::new(Box::new(discovery)),
            schedule,
        );
        metrics::upstream_configured(&upstream.name);
        Ok(UpstreamPool {
            hash_on: match &upstream.selection {
                Selection::ConsistentHash(hash_on) => Some(hash_on.clone()),
                _ => None,
            },
            entries: upstream
                .servers
                .iter()
                .map(|s| s.address.to_string())
                .collect(),
            response_time: crate::metrics::upstream_duration(&upstream.name),
            tls,
            balancer,
            settings: upstream,
        })
    }

    /// Records how long the chosen server took to its response head.
    pub fn responded_after(&self, took: std::time::Duration) {
        self.response_time.observe(took.as_secs_f64());
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The servers as written, as the health gauge labels them.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    pub fn settings(&self) -> &Upstream {
        &self.settings
    }

    /// Looks every name up now (at startup, before serving).
    pub async fn resolve(&self) {
        if let Err(error) = self.balancer.update().await {
            tracing::warn!(upstream = %self.settings.name, %error, "cannot update the upstream's servers");
        }
        self.refresh_gauges();
    }

    /// The server for the next attempt of a request: a usable one that has
    /// not failed this request. `Err` ([`NO_HEALTHY_SERVER`]) when none is.
    pub fn peer(
        &self,
        attempts: &mut Attempts,
        request: &RequestHeader,
        client: IpAddr,
    ) -> pingora::Result<Box<HttpPeer>> {
        let mut buffer = [0; 16];
        let key = self.hash_key(request, client, &mut buffer);
        let now = Instant::now();
        let chosen = self
            .balancer
            .select(key, |backend| accepts(backend, attempts, now));
        let Some((server, address)) = chosen.as_ref().and_then(server_of) else {
            return Err(Error::explain(
                ErrorType::Custom(NO_HEALTHY_SERVER),
                format!("no server of upstream `{}` is usable", self.settings.name),
            )
            .into_up());
        };
        // Replacing the previous attempt's guard ends its in-flight count.
        attempts.current = Some(InFlight::start(server.clone(), address));
        let mut peer = match &self.tls {
            Some(tls) => tls.peer(address, server.entry),
            None => HttpPeer::new(address, false, String::new()),
        };
        peer.options.connection_timeout = Some(self.settings.connect_timeout);
        peer.options.read_timeout = Some(self.settings.read_timeout);
        peer.options.idle_timeout = self.settings.idle_timeout;
        Ok(Box::new(peer))
    }

    /// Pingora could not connect: nothing was sent, so any request may go
    /// to another server, if one is left.
    pub fn connect_failed(&self, attempts: &mut Attempts, mut error: Box<Error>) -> Box<Error> {
        if let Some(current) = attempts.current.take() {
            self.record(&current, false);
            attempts.failed.push(current.address());
        }
        let retry = self.has_another(attempts);
        if retry {
            metrics::upstream_retry(&self.settings.name);
        }
        error.set_retry(retry);
        error
    }

    /// Proxying failed after the connection was made. `replayable`: the
    /// method is idempotent and the body is still buffered; `reused`: the
    /// connection came from Pingora's pool.
    pub fn proxy_failed(
        &self,
        attempts: &mut Attempts,
        mut error: Box<Error>,
        replayable: bool,
        reused: bool,
    ) -> Box<Error> {
        let retries_left = attempts.retries < self.settings.retries;
        let failure = SentFailure::of(
            &mut error,
            reused,
            attempts.responded,
            replayable,
            retries_left,
        );
        if let Some(current) = attempts.current.take() {
            if failure.counts_against_server() {
                self.record(&current, false);
                attempts.failed.push(current.address());
            }
        }
        let retry = failure.retry() && self.has_another(attempts);
        if retry {
            attempts.retries += 1;
            metrics::upstream_retry(&self.settings.name);
        }
        error.set_retry(retry);
        error
    }

    /// The response head arrived: the server answered (a 5xx counts as a
    /// failure), and the request is no longer retried.
    pub fn responded(&self, attempts: &mut Attempts, status: u16) {
        attempts.responded = true;
        if let Some(current) = &attempts.current {
            self.record(current, status < 500);
        }
    }

    /// Lookups and health checks (pingora-load-balancing's loop) and the
    /// health gauges, until shutdown.
    pub async fn maintain(&self, mut shutdown: ShutdownWatch) {
        let balancer_shutdown = shutdown.clone();
        let gauges = async {
            let mut tick = tokio::time::interval(GAUGE_INTERVAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => self.refresh_gauges(),
                    _ = shutdown.changed() => return,
                }
            }
        };
        tokio::join!(self.balancer.run(balancer_shutdown), gauges);
    }

    fn hash_key<'a>(
        &self,
        request: &'a RequestHeader,
        client: IpAddr,
        buffer: &'a mut [u8; 16],
    ) -> &'a [u8] {
        let header = match &self.hash_on {
            None => return &[],
            Some(HashOn::ClientAddress) => None,
            Some(HashOn::Header(name)) => request.headers.get(name),
        };
        if let Some(value) = header {
            return value.as_bytes();
        }
        match client {
            IpAddr::V4(v4) => {
                buffer[..4].copy_from_slice(&v4.octets());
                &buffer[..4]
            }
            IpAddr::V6(v6) => {
                *buffer = v6.octets();
                &buffer[..]
            }
        }
    }

    /// Whether another attempt has a server to go to.
    fn has_another(&self, attempts: &Attempts) -> bool {
        let now = Instant::now();
        self.balancer
            .select(&[], |backend| accepts(backend, attempts, now))
            .is_some()
    }

    fn record(&self, current: &InFlight, success: bool) {
        let change = current
            .server()
            .record(success, Instant::now(), &self.settings.passive);
        let server = current.address();
        match change {
            Change::Ejected => tracing::warn!(
                upstream = %self.settings.name, %server,
                "server ejected for {} ms after failed requests", self.settings.passive.eject.as_millis()
            ),
            Change::Restored => {
                tracing::info!(upstream = %self.settings.name, %server, "server answers again")
            }
            Change::None => return,
        }
        // Rare (a change of state), so the gauge need not wait for its tick.
        self.refresh_gauges();
    }

    /// How many of the configured servers are healthy now, of how many
    /// (for readiness): as the gauge counts them.
    pub fn health(&self) -> (usize, usize) {
        let healthy = self.entry_health().into_iter().filter(|&h| h).count();
        (healthy, self.entries.len())
    }

    /// Per configured entry: at least one of its addresses is usable now.
    fn entry_health(&self) -> Vec<bool> {
        let backends = self.balancer.backends();
        let now = Instant::now();
        let mut healthy = vec![false; self.entries.len()];
        for backend in backends.get_backend().iter() {
            if let Some((server, _)) = server_of(backend) {
                if backends.ready(backend) && server.usable(now) {
                    healthy[server.entry] = true;
                }
            }
        }
        healthy
    }

    /// `portcullis_upstream_server_healthy`, one per configured entry.
    fn refresh_gauges(&self) {
        for (entry, healthy) in self.entries.iter().zip(self.entry_health()) {
            metrics::upstream_server_healthy(&self.settings.name, entry, healthy);
        }
    }
}

/// Usable for this request: not ejected, and not failed it already.
fn accepts(backend: &Backend, attempts: &Attempts, now: Instant) -> bool {
    server_of(backend).is_some_and(|(server, _)| server.usable(now))
        && address_of(backend).is_some_and(|address| !attempts.failed.contains(&address))
}

#[cfg(test)]
mod tests;
