//! Choosing a server: pingora-load-balancing's `LoadBalancer` keeps the
//! membership (from `discovery`) and the active health, and its weighted
//! round robin and Ketama ring choose. Least connections is ours, on top of
//! the same membership: the crate has none.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pingora::server::ShutdownWatch;
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::selection::{BackendIter, BackendSelection, Consistent, RoundRobin};
use pingora_load_balancing::{Backend, Backends, LoadBalancer};

use super::server::server_of;
use crate::config::Selection;

/// Steps through the algorithm's order before the plain scan: enough to
/// find a usable server among many unusable ones in practice, and bounded.
const MAX_ITERATIONS: usize = 256;

/// When the background loop looks names up and checks health.
pub(super) struct Schedule {
    /// `None`: every server is an address, nothing to look up again.
    pub resolve: Option<Duration>,
    /// `None`: no active health check.
    pub health_check: Option<(Duration, Box<dyn HealthCheck + Send + Sync>)>,
}

pub(super) enum Balancer {
    RoundRobin(LoadBalancer<RoundRobin>),
    LeastConnections {
        balancer: LoadBalancer<RoundRobin>,
        /// Where the scan starts, turning, so that ties take turns.
        next: AtomicUsize,
    },
    Consistent(LoadBalancer<Consistent>),
}

impl Balancer {
    pub fn new(selection: &Selection, backends: Backends, schedule: Schedule) -> Self {
        match selection {
            Selection::RoundRobin => Balancer::RoundRobin(scheduled(backends, schedule)),
            Selection::LeastConnections => Balancer::LeastConnections {
                balancer: scheduled(backends, schedule),
                next: AtomicUsize::new(0),
            },
            Selection::ConsistentHash(_) => Balancer::Consistent(scheduled(backends, schedule)),
        }
    }

    /// A server that is healthy and that `accept` takes, by the algorithm;
    /// `key` matters to consistent hashing only.
    pub fn select(&self, key: &[u8], accept: impl Fn(&Backend) -> bool) -> Option<Backend> {
        match self {
            Balancer::RoundRobin(balancer) => first(balancer, key, accept),
            Balancer::Consistent(balancer) => first(balancer, key, accept),
            Balancer::LeastConnections { balancer, next } => {
                least_loaded(balancer.backends(), next, accept)
            }
        }
    }

    pub fn backends(&self) -> &Backends {
        match self {
            Balancer::RoundRobin(balancer) | Balancer::LeastConnections { balancer, .. } => {
                balancer.backends()
            }
            Balancer::Consistent(balancer) => balancer.backends(),
        }
    }

    /// Looks the names up now and rebuilds the selection.
    pub async fn update(&self) -> pingora::Result<()> {
        match self {
            Balancer::RoundRobin(balancer) | Balancer::LeastConnections { balancer, .. } => {
                balancer.update().await
            }
            Balancer::Consistent(balancer) => balancer.update().await,
        }
    }

    /// The crate's own loop of lookups and health checks, until shutdown.
    pub async fn run(&self, shutdown: ShutdownWatch) {
        match self {
            Balancer::RoundRobin(balancer) | Balancer::LeastConnections { balancer, .. } => {
                balancer.run(shutdown, None).await
            }
            Balancer::Consistent(balancer) => balancer.run(shutdown, None).await,
        }
    }
}

fn scheduled<S>(backends: Backends, schedule: Schedule) -> LoadBalancer<S>
where
    S: BackendSelection + 'static,
    S::Iter: BackendIter,
{
    let mut balancer = LoadBalancer::from_backends(backends);
    balancer.update_frequency = schedule.resolve;
    if let Some((interval, check)) = schedule.health_check {
        balancer.set_health_check(check);
        balancer.health_check_frequency = Some(interval);
        // One slow server must not delay the verdict on the others.
        balancer.parallel_health_check = true;
    }
    balancer
}

/// The algorithm's first acceptable choice; failing that within
/// [`MAX_ITERATIONS`] (its fallback order is pseudo-random), the first
/// acceptable server at all, so that one is never missed.
fn first<S>(
    balancer: &LoadBalancer<S>,
    key: &[u8],
    accept: impl Fn(&Backend) -> bool,
) -> Option<Backend>
where
    S: BackendSelection + 'static,
    S::Iter: BackendIter,
{
    balancer
        .select_with(key, MAX_ITERATIONS, |backend, healthy| {
            healthy && accept(backend)
        })
        .or_else(|| {
            let backends = balancer.backends();
            backends
                .get_backend()
                .iter()
                .find(|backend| backends.ready(backend) && accept(backend))
                .cloned()
        })
}

/// The healthy, accepted server with the fewest requests in flight per
/// unit of weight.
fn least_loaded(
    backends: &Backends,
    next: &AtomicUsize,
    accept: impl Fn(&Backend) -> bool,
) -> Option<Backend> {
    let all = backends.get_backend();
    let count = all.len().max(1);
    let start = next.fetch_add(1, Ordering::Relaxed) % count;
    let load = |backend: &Backend| server_of(backend).map_or(usize::MAX, |(s, _)| s.in_flight());
    let mut best: Option<&Backend> = None;
    for backend in all.iter().cycle().skip(start).take(all.len()) {
        if !backends.ready(backend) || !accept(backend) {
            continue;
        }
        // a/wa < b/wb, without division: weights are at most 100.
        let lighter = best.is_none_or(|best| {
            load(backend).saturating_mul(best.weight) < load(best).saturating_mul(backend.weight)
        });
        if lighter {
            best = Some(backend);
        }
    }
    best.cloned()
}

/// The address of a backend `discovery` made.
pub(super) fn address_of(backend: &Backend) -> Option<SocketAddr> {
    backend.addr.as_inet().copied()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::sync::Arc;

    use async_trait::async_trait;
    use pingora_load_balancing::discovery::ServiceDiscovery;

    use super::super::server::{InFlight, ServerState};
    use super::*;
    use crate::config::HashOn;

    struct Fixed(Vec<(&'static str, usize, Arc<ServerState>)>);

    #[async_trait]
    impl ServiceDiscovery for Fixed {
        async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
            let backends = self
                .0
                .iter()
                .map(|(address, weight, state)| {
                    let mut backend = Backend::new_with_weight(address, *weight).unwrap();
                    backend.ext.insert(state.clone());
                    backend
                })
                .collect();
            Ok((backends, HashMap::new()))
        }
    }

    const A: &str = "10.0.0.1:80";
    const B: &str = "10.0.0.2:80";

    fn balancer_of(selection: Selection, servers: &[(&'static str, usize)]) -> Balancer {
        let fixed = Fixed(
            servers
                .iter()
                .enumerate()
                .map(|(i, &(address, weight))| (address, weight, Arc::new(ServerState::new(i))))
                .collect(),
        );
        let schedule = Schedule {
            resolve: None,
            health_check: None,
        };
        let balancer = Balancer::new(&selection, Backends::new(Box::new(fixed)), schedule);
        futures_util::FutureExt::now_or_never(balancer.update())
            .expect("a fixed discovery does not wait")
            .unwrap();
        balancer
    }

    fn picks(balancer: &Balancer, n: usize, key: &[u8]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            let backend = balancer.select(key, |_| true).unwrap();
            *counts
                .entry(address_of(&backend).unwrap().to_string())
                .or_default() += 1;
        }
        counts
    }

    #[test]
    fn round_robin_follows_the_weights() {
        let balancer = balancer_of(Selection::RoundRobin, &[(A, 3), (B, 1)]);
        let counts = picks(&balancer, 400, b"");
        assert_eq!(counts[A], 300);
        assert_eq!(counts[B], 100);
    }

    #[test]
    fn a_refused_server_is_skipped_and_none_is_none() {
        for selection in [
            Selection::RoundRobin,
            Selection::LeastConnections,
            Selection::ConsistentHash(HashOn::ClientAddress),
        ] {
            let balancer = balancer_of(selection.clone(), &[(A, 1), (B, 1)]);
            let a: SocketAddr = A.parse().unwrap();
            for key in 0..50u8 {
                let chosen = balancer
                    .select(&[key], |backend| address_of(backend) != Some(a))
                    .unwrap();
                assert_eq!(address_of(&chosen).unwrap().to_string(), B, "{selection:?}");
            }
            assert!(balancer.select(b"k", |_| false).is_none(), "{selection:?}");
            // No address at all (nothing resolved yet).
            let empty = balancer_of(selection.clone(), &[]);
            assert!(empty.select(b"k", |_| true).is_none(), "{selection:?}");
        }
    }

    #[test]
    fn consistent_hashing_keeps_a_key_on_its_server() {
        let balancer = balancer_of(
            Selection::ConsistentHash(HashOn::ClientAddress),
            &[(A, 1), (B, 1), ("10.0.0.3:80", 1)],
        );
        let mut servers = BTreeSet::new();
        for key in ["tenant-1", "tenant-2", "tenant-3", "tenant-4", "tenant-5"] {
            let counts = picks(&balancer, 20, key.as_bytes());
            assert_eq!(counts.len(), 1, "{key}: {counts:?}");
            servers.extend(counts.into_keys());
        }
        assert!(servers.len() > 1, "every key on one server: {servers:?}");
    }

    #[test]
    fn least_connections_prefers_the_least_loaded_per_weight() {
        let balancer = balancer_of(Selection::LeastConnections, &[(A, 1), (B, 2)]);
        let state = |address: &str| {
            let all = balancer.backends().get_backend();
            let backend = all
                .iter()
                .find(|b| address_of(b).unwrap().to_string() == address)
                .unwrap();
            server_of(backend).unwrap().0.clone()
        };
        let a = state(A);
        let b = state(B);
        // Ties take turns.
        assert_eq!(picks(&balancer, 10, b"").len(), 2);
        // In flight per unit of weight: A 1/1, B 3/2, so A is lighter.
        let _held: Vec<InFlight> = [(&a, A), (&b, B), (&b, B), (&b, B)]
            .into_iter()
            .map(|(state, address)| InFlight::start(state.clone(), address.parse().unwrap()))
            .collect();
        assert_eq!(picks(&balancer, 10, b"")[A], 10);
    }
}
