//! What validation reads from outside the file, injected so that tests need
//! not touch the process environment and `check-config` can skip lookups.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What validation reads from outside the file: environment variables, and
/// (for `check-config` only: the gateway itself resolves names as it runs)
/// the addresses upstream names resolve to.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;

    /// The addresses of an upstream `host:port`, by the system resolver.
    fn resolve(&self, server: &str) -> std::io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        server.to_socket_addrs().map(Iterator::collect)
    }
}

/// The process environment, without name resolution (`check-config
/// --no-resolve`, for a file written for another network, such as a
/// container's `app:8000`): validation checks the form `host:port` anyway.
pub struct WithoutResolving;

impl Environment for WithoutResolving {
    fn var(&self, name: &str) -> Option<String> {
        ProcessEnvironment.var(name)
    }

    fn resolve(&self, server: &str) -> std::io::Result<Vec<SocketAddr>> {
        match super::ServerAddress::parse(server) {
            Ok(super::ServerAddress::Ip(address)) => Ok(vec![address]),
            // Never used: the configuration of a check is not served.
            Ok(super::ServerAddress::Name { port, .. }) => {
                Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))])
            }
            Err(why) => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, why)),
        }
    }
}

pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

impl Environment for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|value| value.to_string())
    }
}
