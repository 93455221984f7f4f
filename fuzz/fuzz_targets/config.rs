//! `gateway.yaml`: the YAML file layer and its validation into the checked
//! configuration, then the router the gateway builds from it.
//!
//! Input: the file's bytes. `serde_yaml` parses them into `FileConfig`;
//! if that succeeds, `validate` runs with the base folder `/nonexistent`
//! and an environment in which every variable is unset. Checks, besides
//! "never panics": a valid configuration routes every path (the route
//! indices the router hands out exist).
//!
//! `validate` reads no file but an upstream's `ca_file` and
//! `client_certificate`, which under `/nonexistent` are never there (other
//! paths are only joined to the base folder), and looks up no names: the environment checks upstream servers for the
//! form `host:port` only, as `check-config --no-resolve` does.
#![no_main]

use std::net::SocketAddr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portcullis::config::{Environment, FileConfig, WithoutResolving};
use portcullis::route::Destination;

/// No `PORTCULLIS_*` variable is set.
struct NoEnvironment;

impl Environment for NoEnvironment {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }

    /// Names are checked for form, never looked up: a fuzzer's names
    /// must not reach a resolver.
    fn resolve(&self, server: &str) -> std::io::Result<Vec<SocketAddr>> {
        WithoutResolving.resolve(server)
    }
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
    let Ok(file) = serde_yaml::from_slice::<FileConfig>(data) else {
        return;
    };
    let config = match file.validate(Path::new("/nonexistent"), &NoEnvironment) {
        Ok(config) => config,
        Err(errors) => {
            let _ = errors.to_string();
            return;
        }
    };
    let _ = format!("{config:?}");
    let router = config.router();
    for route in config.routes.iter() {
        assert!(route.upstream < config.upstreams.len(), "{route:?}");
    }
    let prefixes = config.routes.iter().map(|route| route.path_prefix.as_str());
    for path in PATHS.iter().copied().chain(prefixes) {
        if let Ok(Destination::Proxy { route }) = router.route(None, path) {
            let _ = router.routes.get(route);
        }
    }
});
