//! Which server of an upstream a request goes to: round robin over the
//! addresses resolved at startup, with the upstream's timeouts and TLS.

use std::sync::atomic::{AtomicUsize, Ordering};

use pingora::upstreams::peer::HttpPeer;

use crate::config::Upstream;

/// An upstream's servers, chosen round robin.
pub struct UpstreamPool {
    upstream: Upstream,
    next: AtomicUsize,
}

impl UpstreamPool {
    pub fn new(upstream: Upstream) -> Self {
        UpstreamPool {
            upstream,
            next: AtomicUsize::new(0),
        }
    }

    /// The next server, as a peer with the upstream's settings.
    pub fn next_peer(&self) -> HttpPeer {
        let servers = &self.upstream.servers;
        let index = self.next.fetch_add(1, Ordering::Relaxed) % servers.len();
        let mut peer = HttpPeer::new(servers[index], self.upstream.tls, self.upstream.sni.clone());
        peer.options.connection_timeout = Some(self.upstream.connect_timeout);
        peer.options.read_timeout = Some(self.upstream.read_timeout);
        peer
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;

    fn upstream(servers: &[&str], tls: bool) -> Upstream {
        Upstream {
            name: "app".into(),
            servers: servers.iter().map(|s| s.parse().unwrap()).collect(),
            tls,
            sni: "app.internal".into(),
            connect_timeout: Duration::from_millis(250),
            read_timeout: Duration::from_secs(7),
        }
    }

    #[test]
    fn servers_take_turns() {
        let pool = UpstreamPool::new(upstream(
            &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"],
            false,
        ));
        let chosen: Vec<SocketAddr> = (0..7)
            .map(|_| *pool.next_peer()._address.as_inet().unwrap())
            .collect();
        let expected: Vec<SocketAddr> = [
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "10.0.0.1:80",
            "10.0.0.2:80",
            "10.0.0.3:80",
            "10.0.0.1:80",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(chosen, expected);
    }

    #[test]
    fn peers_carry_the_upstreams_settings() {
        let pool = UpstreamPool::new(upstream(&["10.0.0.1:443"], true));
        let peer = pool.next_peer();
        assert_eq!(peer.sni, "app.internal");
        assert!(peer.is_tls());
        assert_eq!(
            peer.options.connection_timeout,
            Some(Duration::from_millis(250))
        );
        assert_eq!(peer.options.read_timeout, Some(Duration::from_secs(7)));
    }
}
