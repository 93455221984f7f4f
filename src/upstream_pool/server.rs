//! What the pool remembers of one server address: which configured entry it
//! came from, how many requests it has in flight, and its passive state.
//! Kept across lookups (see `discovery`), carried in each
//! [`pingora_load_balancing::Backend`]'s `ext`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use pingora_load_balancing::Backend;

use super::passive::{Change, Ejection};
use crate::config::PassivePolicy;

pub(super) struct ServerState {
    /// Index in the upstream's `servers`: the entry whose name gave it.
    pub entry: usize,
    in_flight: AtomicUsize,
    passive: Mutex<Ejection>,
}

impl ServerState {
    pub fn new(entry: usize) -> Self {
        ServerState {
            entry,
            in_flight: AtomicUsize::new(0),
            passive: Mutex::new(Ejection::default()),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn usable(&self, now: Instant) -> bool {
        self.ejection().usable(now)
    }

    pub fn record(&self, success: bool, now: Instant, policy: &PassivePolicy) -> Change {
        self.ejection().record(success, now, policy)
    }

    // A panic elsewhere while holding it leaves a valid state: take it.
    fn ejection(&self) -> std::sync::MutexGuard<'_, Ejection> {
        self.passive.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The state and address of a backend made by `discovery` (all of them).
pub(super) fn server_of(backend: &Backend) -> Option<(&Arc<ServerState>, SocketAddr)> {
    let state = backend.ext.get::<Arc<ServerState>>()?;
    Some((state, *backend.addr.as_inet()?))
}

/// One request on one server, counted in flight until dropped: when the
/// request ends (its context is dropped), or when it moves to another
/// server.
pub struct InFlight {
    server: Arc<ServerState>,
    address: SocketAddr,
}

impl InFlight {
    pub(super) fn start(server: Arc<ServerState>, address: SocketAddr) -> Self {
        server.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { server, address }
    }

    pub(super) fn server(&self) -> &ServerState {
        &self.server
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.server.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counts_until_dropped() {
        let server = Arc::new(ServerState::new(0));
        let address: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let first = InFlight::start(server.clone(), address);
        let second = InFlight::start(server.clone(), address);
        assert_eq!(server.in_flight(), 2);
        drop(first);
        assert_eq!(server.in_flight(), 1);
        drop(second);
        assert_eq!(server.in_flight(), 0);
    }
}
