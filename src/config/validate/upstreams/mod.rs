//! `upstreams`: the servers routes proxy to. Validation checks their form
//! only; names are looked up by the upstream pool at startup and every
//! `resolve_interval_seconds`, so a container that starts after the gateway
//! is no configuration error (a warning and an unhealthy server until it
//! resolves). `check-config` also resolves them, unless `--no-resolve`
//! ([`Config::check_names_resolve`]).

mod health;
#[cfg(test)]
mod tests;
mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::Problems;
use crate::config::{
    Config, ConfigErrors, ConfigProblem, Environment, FileSelection, FileUpstream,
    FileUpstreamServer, HashOn, Selection, ServerAddress, Upstream, UpstreamServer,
};

/// Weights are relative; the ceiling bounds the round-robin table and the
/// hash ring, both of which grow with the sum of the weights.
pub(super) const MAX_WEIGHT: i64 = 100;
/// Each retry is another full attempt: more would multiply an outage's load.
const MAX_RETRIES: u32 = 5;

/// `upstreams`: each one's servers, selection, checks and limits.
pub(super) fn check_upstreams(
    problems: &mut Problems,
    file: BTreeMap<String, FileUpstream>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Vec<Upstream> {
    if file.is_empty() {
        problems.add(
            "upstreams",
            "at least one upstream is needed (example: `app: {servers: [\"127.0.0.1:3000\"]}`)",
        );
    }
    file.into_iter()
        .map(|(name, upstream)| check_upstream(problems, name, upstream, resolve))
        .collect()
}

fn check_upstream(
    problems: &mut Problems,
    name: String,
    file: FileUpstream,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Upstream {
    let path = format!("upstreams.{name}");
    let servers = check_servers(problems, &path, &file.servers);
    if file.idle_timeout_ms == Some(0) {
        problems.add(
            format!("{path}.idle_timeout_ms"),
            "must be greater than zero; leave it out to keep idle connections",
        );
    }
    if file.connect_timeout_ms == 0 || file.read_timeout_ms == 0 {
        problems.add(&path, "timeouts must be greater than zero");
    }
    if file.retries > MAX_RETRIES {
        problems.add(
            format!("{path}.retries"),
            format!("at most {MAX_RETRIES}: each retry is one more attempt on a failing upstream"),
        );
    }
    if file.resolve_interval_seconds == 0 {
        problems.add(
            format!("{path}.resolve_interval_seconds"),
            "must be at least 1 second",
        );
    }
    let selection = check_selection(problems, &path, file.selection, file.hash_on);
    let health_check = health::check_health_check(problems, &path, file.health_check);
    let passive = health::check_passive(problems, &path, file.passive);
    let tls_keys = tls::FileTlsKeys {
        tls: file.tls,
        sni: file.sni,
        ca_file: file.ca_file,
        client_certificate: file.client_certificate,
    };
    let tls = tls::check_tls(problems, &path, tls_keys, &servers, resolve);
    Upstream {
        name,
        servers,
        tls,
        connect_timeout: Duration::from_millis(file.connect_timeout_ms),
        read_timeout: Duration::from_millis(file.read_timeout_ms),
        selection,
        health_check,
        passive,
        retries: file.retries,
        resolve_interval: Duration::from_secs(file.resolve_interval_seconds),
        idle_timeout: file.idle_timeout_ms.map(Duration::from_millis),
    }
}

/// Each entry is `host:port` with a weight from 1 to [`MAX_WEIGHT`], and
/// appears once.
fn check_servers(
    problems: &mut Problems,
    path: &str,
    file: &[FileUpstreamServer],
) -> Vec<UpstreamServer> {
    if file.is_empty() {
        problems.add(
            format!("{path}.servers"),
            "list at least one `host:port` server",
        );
    }
    let mut servers: Vec<UpstreamServer> = Vec::new();
    for (i, server) in file.iter().enumerate() {
        let here = format!("{path}.servers[{i}]");
        let address = match ServerAddress::parse(&server.address) {
            Ok(address) => address,
            Err(why) => {
                problems.add(
                    here,
                    format!("`{}` is not a `host:port` server ({why})", server.address),
                );
                continue;
            }
        };
        if !(1..=MAX_WEIGHT).contains(&server.weight) {
            problems.add(
                format!("{here}.weight"),
                format!("`{}` is not a weight from 1 to {MAX_WEIGHT}", server.weight),
            );
            continue;
        }
        if servers.iter().any(|known| known.address == address) {
            problems.add(
                here,
                format!("`{address}` is listed twice; give it a weight instead"),
            );
            continue;
        }
        servers.push(UpstreamServer {
            address,
            weight: server.weight as u32,
        });
    }
    servers
}

/// `selection` and, for `consistent_hash` only, `hash_on`.
fn check_selection(
    problems: &mut Problems,
    path: &str,
    selection: FileSelection,
    hash_on: Option<String>,
) -> Selection {
    let hash_on = match (selection, hash_on) {
        (FileSelection::ConsistentHash, None) => HashOn::ClientAddress,
        (FileSelection::ConsistentHash, Some(text)) => parse_hash_on(&text).unwrap_or_else(|| {
            problems.add(
                format!("{path}.hash_on"),
                format!(
                    "`{text}` is neither `client_address` nor `header:<Name>` (example: header:X-Tenant)"
                ),
            );
            HashOn::ClientAddress
        }),
        (_, Some(_)) => {
            problems.add(
                format!("{path}.hash_on"),
                "applies to `selection: consistent_hash` only",
            );
            HashOn::ClientAddress
        }
        (_, None) => HashOn::ClientAddress,
    };
    match selection {
        FileSelection::RoundRobin => Selection::RoundRobin,
        FileSelection::LeastConnections => Selection::LeastConnections,
        FileSelection::ConsistentHash => Selection::ConsistentHash(hash_on),
    }
}

fn parse_hash_on(text: &str) -> Option<HashOn> {
    if text == "client_address" {
        return Some(HashOn::ClientAddress);
    }
    let name = text.strip_prefix("header:")?.trim();
    http::HeaderName::from_bytes(name.as_bytes())
        .ok()
        .map(HashOn::Header)
}

impl Config {
    /// `check-config`'s extra step: every name in `servers` resolves on this
    /// machine now. `serve` does not ask it (it starts with the server out
    /// of rotation and keeps looking), but a check is asked for an answer,
    /// and a name that resolves nowhere is most often a typo.
    pub fn check_names_resolve(&self, env: &dyn Environment) -> Result<(), ConfigErrors> {
        let mut problems = Vec::new();
        for upstream in &self.upstreams {
            for (i, server) in upstream.servers.iter().enumerate() {
                if let ServerAddress::Ip(_) = server.address {
                    continue;
                }
                let text = server.address.to_string();
                let why = match env.resolve(&text) {
                    Ok(addresses) if !addresses.is_empty() => continue,
                    Ok(_) => "no address".to_string(),
                    Err(error) => error.to_string(),
                };
                problems.push(ConfigProblem {
                    path: format!("upstreams.{}.servers[{i}]", upstream.name),
                    message: format!(
                        "`{text}` does not resolve here ({why}); `serve` would start and keep it out of rotation, looking it up every {} s; use --no-resolve for a file written for another network",
                        upstream.resolve_interval.as_secs()
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems))
        }
    }
}
