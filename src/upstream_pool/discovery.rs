//! Which addresses an upstream has: every address each configured name
//! resolves to, looked up at startup and then every `resolve_interval` by
//! the load balancer's loop (this is its `ServiceDiscovery`).
//!
//! A name that does not resolve is a warning, not an error: containers
//! start in any order. Until it resolves it has no address, so it gets no
//! traffic; once it resolved, a failed lookup keeps the last addresses
//! (a resolver hiccup must not empty the upstream).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::l4::socket::SocketAddr as PeerAddress;
use pingora_load_balancing::discovery::ServiceDiscovery;
use pingora_load_balancing::Backend;

use super::server::ServerState;
use crate::config::{ServerAddress, UpstreamServer};

/// Looks names up; injected so that tests can make a name resolve to
/// several addresses (here `localhost` is only 127.0.0.1).
#[async_trait]
pub trait Resolve: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system's resolver (getaddrinfo, on Tokio's blocking pool).
pub struct SystemResolver;

#[async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// A lookup that hangs must not stall the loop, which also runs the
/// health checks.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The latest lookup of one entry of `servers`.
#[derive(Default)]
struct Lookup {
    addresses: Vec<SocketAddr>,
    /// The last lookup failed (logged once, when it starts failing).
    failing: bool,
}

pub(super) struct NameDiscovery {
    upstream: String,
    servers: Vec<UpstreamServer>,
    resolver: Arc<dyn Resolve>,
    interval: Duration,
    lookups: Mutex<Vec<Lookup>>,
    /// Per address, kept across lookups: in-flight counts and passive
    /// state survive a re-resolution that finds the same address.
    states: Mutex<HashMap<SocketAddr, Arc<ServerState>>>,
}

impl NameDiscovery {
    pub fn new(
        upstream: &str,
        servers: Vec<UpstreamServer>,
        resolver: Arc<dyn Resolve>,
        interval: Duration,
    ) -> Self {
        let lookups = servers.iter().map(|_| Lookup::default()).collect();
        NameDiscovery {
            upstream: upstream.to_string(),
            servers,
            resolver,
            interval,
            lookups: Mutex::new(lookups),
            states: Mutex::new(HashMap::new()),
        }
    }

    async fn look_up(&self, address: &ServerAddress) -> std::io::Result<Vec<SocketAddr>> {
        match address {
            ServerAddress::Ip(address) => Ok(vec![*address]),
            ServerAddress::Name { host, port } => {
                tokio::time::timeout(LOOKUP_TIMEOUT, self.resolver.resolve(host, *port))
                    .await
                    .unwrap_or_else(|_| {
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the lookup timed out",
                        ))
                    })
            }
        }
    }

    /// Takes one round of results, logging the entries that start or stop
    /// failing.
    fn remember(&self, results: Vec<std::io::Result<Vec<SocketAddr>>>) {
        let mut lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        for ((lookup, result), server) in lookups.iter_mut().zip(results).zip(&self.servers) {
            match result {
                Ok(addresses) if !addresses.is_empty() => {
                    if lookup.failing {
                        tracing::info!(upstream = %self.upstream, server = %server.address, ?addresses, "the name resolves again");
                    }
                    *lookup = Lookup {
                        addresses,
                        failing: false,
                    };
                }
                failed => {
                    let error = failed.map_or_else(|e| e.to_string(), |_| "no address".into());
                    if !lookup.failing {
                        let kept = if lookup.addresses.is_empty() {
                            "it gets no traffic until it resolves"
                        } else {
                            "its last addresses stay in use"
                        };
                        tracing::warn!(upstream = %self.upstream, server = %server.address, %error, "the name does not resolve; {kept}; looked up again every {} s", self.interval.as_secs());
                    }
                    lookup.failing = true;
                }
            }
        }
    }

    /// The backends for the remembered addresses; an address two entries
    /// share belongs to the first.
    fn backends(&self) -> BTreeSet<Backend> {
        let lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = HashSet::new();
        let mut backends = BTreeSet::new();
        for (entry, (lookup, server)) in lookups.iter().zip(&self.servers).enumerate() {
            for &address in &lookup.addresses {
                if !seen.insert(address) {
                    continue;
                }
                let state = states
                    .entry(address)
                    .and_modify(|state| {
                        if state.entry != entry {
                            *state = Arc::new(ServerState::new(entry));
                        }
                    })
                    .or_insert_with(|| Arc::new(ServerState::new(entry)))
                    .clone();
                let mut backend = Backend {
                    addr: PeerAddress::Inet(address),
                    weight: server.weight as usize,
                    ext: Default::default(),
                };
                backend.ext.insert(state);
                backends.insert(backend);
            }
        }
        states.retain(|address, _| seen.contains(address));
        backends
    }
}

#[async_trait]
impl ServiceDiscovery for NameDiscovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let mut results = Vec::with_capacity(self.servers.len());
        for server in &self.servers {
            results.push(self.look_up(&server.address).await);
        }
        self.remember(results);
        Ok((self.backends(), HashMap::new()))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::server::server_of;
    use super::*;

    /// Names from a table, changeable between lookups.
    #[derive(Default)]
    pub struct TableResolver(pub Mutex<HashMap<String, Vec<SocketAddr>>>);

    impl TableResolver {
        pub fn set(&self, host: &str, addresses: &[&str]) {
            let addresses = addresses.iter().map(|a| a.parse().unwrap()).collect();
            self.0.lock().unwrap().insert(host.to_string(), addresses);
        }
    }

    #[async_trait]
    impl Resolve for TableResolver {
        async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            match self.0.lock().unwrap().get(host) {
                Some(addresses) => Ok(addresses
                    .iter()
                    .map(|a| SocketAddr::new(a.ip(), port))
                    .collect()),
                None => Err(std::io::Error::other("no such name")),
            }
        }
    }

    fn discovery(servers: &[(&str, u32)], resolver: Arc<TableResolver>) -> NameDiscovery {
        let servers = servers
            .iter()
            .map(|&(address, weight)| UpstreamServer {
                address: ServerAddress::parse(address).unwrap(),
                weight,
            })
            .collect();
        NameDiscovery::new("app", servers, resolver, Duration::from_secs(30))
    }

    async fn found(discovery: &NameDiscovery) -> Vec<(String, usize, usize)> {
        let (backends, _) = discovery.discover().await.unwrap();
        backends
            .iter()
            .map(|b| {
                let (state, address) = server_of(b).unwrap();
                (address.to_string(), b.weight, state.entry)
            })
            .collect()
    }

    #[tokio::test]
    async fn every_address_of_a_name_is_a_backend_with_its_weight() {
        let resolver = Arc::new(TableResolver::default());
        resolver.set("app", &["10.0.0.1:0", "10.0.0.2:0"]);
        let discovery = discovery(&[("app:8000", 3), ("10.0.0.9:80", 1)], resolver);
        assert_eq!(
            found(&discovery).await,
            [
                ("10.0.0.1:8000".to_string(), 3, 0),
                ("10.0.0.2:8000".to_string(), 3, 0),
                ("10.0.0.9:80".to_string(), 1, 1),
            ]
        );
    }

    #[tokio::test]
    async fn names_come_and_go_and_a_failed_lookup_keeps_the_last_addresses() {
        let resolver = Arc::new(TableResolver::default());
        let discovery = discovery(&[("app:8000", 1), ("10.0.0.9:80", 1)], resolver.clone());
        // Not resolvable at startup: only the address is in use.
        assert_eq!(found(&discovery).await.len(), 1);
        resolver.set("app", &["10.0.0.1:0"]);
        assert_eq!(found(&discovery).await.len(), 2);
        let (backends, _) = discovery.discover().await.unwrap();
        let kept = server_of(backends.first().unwrap()).unwrap().0.clone();
        // The name moves: the new address replaces the old one.
        resolver.set("app", &["10.0.0.2:0"]);
        let now = found(&discovery).await;
        assert_eq!(now[0].0, "10.0.0.2:8000");
        // The lookup fails: the last addresses stay.
        resolver.0.lock().unwrap().clear();
        assert_eq!(found(&discovery).await, now);
        // The same address keeps its state across lookups.
        resolver.set("app", &["10.0.0.1:0"]);
        let (backends, _) = discovery.discover().await.unwrap();
        let again = server_of(backends.first().unwrap()).unwrap().0.clone();
        assert!(
            !Arc::ptr_eq(&kept, &again),
            "a removed address starts afresh"
        );
        let (backends, _) = discovery.discover().await.unwrap();
        let same = server_of(backends.first().unwrap()).unwrap().0.clone();
        assert!(Arc::ptr_eq(&again, &same));
    }

    #[tokio::test]
    async fn an_address_two_entries_share_belongs_to_the_first() {
        let resolver = Arc::new(TableResolver::default());
        resolver.set("app", &["10.0.0.9:0"]);
        let discovery = discovery(&[("10.0.0.9:80", 2), ("app:80", 5)], resolver);
        assert_eq!(found(&discovery).await, [("10.0.0.9:80".to_string(), 2, 0)]);
    }
}
