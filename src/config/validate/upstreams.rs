//! `upstreams`: the servers routes proxy to, resolved and checked once at
//! startup, so a typo is a configuration problem rather than a failure on
//! every request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::Problems;
use crate::config::{Environment, FileUpstream, Upstream};

/// `upstreams`: each resolved once, at startup.
pub(super) fn check_upstreams(
    problems: &mut Problems,
    file: BTreeMap<String, FileUpstream>,
    env: &dyn Environment,
) -> Vec<Upstream> {
    let mut upstreams = Vec::new();
    if file.is_empty() {
        problems.add(
            "upstreams",
            "at least one upstream is needed (example: `app: {servers: [\"127.0.0.1:3000\"]}`)",
        );
    }
    for (name, upstream) in file {
        let path = format!("upstreams.{name}");
        if upstream.servers.is_empty() {
            problems.add(
                format!("{path}.servers"),
                "list at least one `host:port` server",
            );
        }
        let servers: Vec<SocketAddr> = upstream
            .servers
            .iter()
            .enumerate()
            .filter_map(|(i, server)| {
                resolve_server(problems, &format!("{path}.servers[{i}]"), server, env)
            })
            .collect();
        if upstream.connect_timeout_ms == 0 || upstream.read_timeout_ms == 0 {
            problems.add(&path, "timeouts must be greater than zero");
        }
        let sni = upstream.sni.unwrap_or_else(|| {
            upstream
                .servers
                .first()
                .and_then(|s| s.rsplit_once(':').map(|(host, _)| host.to_string()))
                .unwrap_or_default()
        });
        upstreams.push(Upstream {
            name,
            servers,
            tls: upstream.tls,
            sni,
            connect_timeout: Duration::from_millis(upstream.connect_timeout_ms),
            read_timeout: Duration::from_millis(upstream.read_timeout_ms),
        });
    }

    upstreams
}

/// Upstream servers are resolved once, at startup: a name that does not
/// resolve is a configuration problem, not a per-request failure.
fn resolve_server(
    problems: &mut Problems,
    path: &str,
    server: &str,
    env: &dyn Environment,
) -> Option<SocketAddr> {
    match env.resolve(server) {
        Ok(addresses) => addresses.first().copied().or_else(|| {
            problems.add(path, format!("`{server}` resolves to no address"));
            None
        }),
        Err(error) => {
            problems.add(
                path,
                format!("`{server}` is not a reachable host:port ({error})"),
            );
            None
        }
    }
}
