//! What validation reads from outside the file, injected so that tests need
//! not touch the process environment and `check-config` can skip lookups.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What validation reads from outside the file: environment variables, and
/// the addresses upstream names resolve to.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;

    /// The addresses of an upstream `host:port`, by the system resolver.
    fn resolve(&self, server: &str) -> std::io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        server.to_socket_addrs().map(Iterator::collect)
    }
}

/// The process environment, without name resolution: upstream servers are
/// only checked to be of the form `host:port` (`check-config --no-resolve`,
/// for a file written for another network, such as a container's `app:8000`).
pub struct WithoutResolving;

impl Environment for WithoutResolving {
    fn var(&self, name: &str) -> Option<String> {
        ProcessEnvironment.var(name)
    }

    fn resolve(&self, server: &str) -> std::io::Result<Vec<SocketAddr>> {
        let invalid =
            |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, why.to_string());
        if let Ok(address) = server.parse::<SocketAddr>() {
            return Ok(vec![address]);
        }
        let (host, port) = server.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
        let is_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !is_name {
            return Err(invalid("not a host name or IP address"));
        }
        // Never used: the configuration of a check is not served.
        Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))])
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
