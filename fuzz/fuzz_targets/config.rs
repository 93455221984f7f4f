//! `gateway.yaml`: the YAML file layer and its validation into the checked
//! configuration, then the router the gateway builds from it.
//!
//! Input: the file's bytes. `serde_yaml` parses them into `FileConfig`;
//! if that succeeds, `validate` runs with the base folder `/nonexistent`
//! and an environment in which every variable is unset. Checks, besides
//! "never panics": a valid configuration routes every path (the route
//! indices the router hands out exist).
//!
//! `validate` reads no files (paths are only joined to the base folder),
//! but it resolves each upstream server with `ToSocketAddrs`, which for a
//! host name is a DNS lookup: slow, and network traffic from a fuzzer. So
//! before validating, every server that is not an `IP:port` literal but
//! has a valid port is replaced by `127.0.0.1:<port>`, as if its name
//! resolved there (keeping the SNI derived from the name). Everything else
//! (literals, and what std refuses before any lookup: no port, a bad port)
//! is validated as written.
#![no_main]

use std::net::SocketAddr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portcullis::config::{Environment, FileConfig};
use portcullis::route::{Destination, Router};

/// No `PORTCULLIS_*` variable is set.
struct NoEnvironment;

impl Environment for NoEnvironment {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}

/// `host:port` with a name for a host: what `ToSocketAddrs` would look up.
fn needs_lookup(server: &str) -> Option<u16> {
    if server.parse::<SocketAddr>().is_ok() {
        return None;
    }
    let (host, port) = server.rsplit_once(':')?;
    if host.contains('\0') {
        return None;
    }
    port.parse().ok()
}

const PATHS: &[&str] = &[
    "/",
    "/admin",
    "/admin/users",
    "/api;x/admin",
    "/oauth/token",
    "/OAUTH/management/api/v1/users",
    "/.well-known/oauth-authorization-server",
    "/public./admin",
];

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = serde_yaml::from_slice::<FileConfig>(data) else {
        return;
    };
    for upstream in file.upstreams.values_mut() {
        // The SNI validate derives from the first server, as written.
        if upstream.sni.is_none()
            && upstream
                .servers
                .first()
                .is_some_and(|s| needs_lookup(s).is_some())
        {
            upstream.sni = upstream.servers[0]
                .rsplit_once(':')
                .map(|(host, _)| host.to_string());
        }
        for server in &mut upstream.servers {
            if let Some(port) = needs_lookup(server) {
                *server = format!("127.0.0.1:{port}");
            }
        }
    }
    let config = match file.validate(Path::new("/nonexistent"), &NoEnvironment) {
        Ok(config) => config,
        Err(errors) => {
            let _ = errors.to_string();
            return;
        }
    };
    let _ = format!("{config:?}");
    let router = Router {
        oauth_prefix: config.oauth.prefix.clone(),
        token_path: config.oauth.token_path.clone(),
        revoke_path: config.oauth.revoke_path.clone(),
        introspect_path: config.oauth.introspect_path.clone(),
        metadata: config.oauth.metadata,
        management_path: config.oauth.management_path.clone(),
        routes: config.routes.clone(),
    };
    for route in config.routes.iter() {
        assert!(route.upstream < config.upstreams.len(), "{route:?}");
    }
    let prefixes = config.routes.iter().map(|route| route.path_prefix.as_str());
    for path in PATHS.iter().copied().chain(prefixes) {
        if let Ok(Destination::Proxy { route }) = router.route(path) {
            let _ = router.routes.get(route);
        }
    }
});
