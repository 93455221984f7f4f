//! The checked layer's constructor: every rule a configuration must
//! satisfy, each problem reported with its YAML path and a hint.
//!
//! [`FileConfig::validate`] is the one entry point. It runs one `check_*`
//! per section, each in its own file below, and each adding to the same
//! [`Problems`] instead of stopping at the first, so an operator sees
//! every mistake in one pass. This file holds that entry point and the
//! small checks several sections share.

mod backends;
mod listeners;
mod management;
mod oauth;
mod routes;
mod server;
mod upstreams;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{Config, ConfigErrors, ConfigProblem, Environment, FileConfig};
use crate::route::RouteTable;

/// Every problem found so far; a check adds to it and goes on.
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// An `IP:port`; names are not accepted here, as listeners bind to addresses.
fn parse_address(problems: &mut Problems, path: &str, text: &str) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            problems.add(
                path,
                format!("`{text}` is not an IP:port address (example: 127.0.0.1:8443)"),
            );
            None
        }
    }
}

/// Endpoint and route paths are compared with request paths, which are
/// always absolute.
fn check_path(problems: &mut Problems, yaml_path: &str, value: &str) {
    if !value.starts_with('/') {
        problems.add(
            yaml_path,
            format!("`{value}` must be an absolute path starting with `/`"),
        );
    }
}

impl FileConfig {
    /// Checks every section and reports every problem at once, each with
    /// its YAML path: an operator fixes the file in one pass.
    pub fn validate(self, base: &Path, env: &dyn Environment) -> Result<Config, ConfigErrors> {
        let mut problems = Problems(Vec::new());
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let (https, http, metrics) =
            listeners::check_listeners(&mut problems, self.listen, &resolve);
        let data_dir = resolve(self.data_dir.unwrap_or_else(|| PathBuf::from("data")));
        let upstreams = upstreams::check_upstreams(&mut problems, self.upstreams, &resolve);
        let oauth = oauth::check_oauth(&mut problems, self.oauth);
        let routes = routes::check_routes(&mut problems, self.routes, &upstreams, &oauth.prefix);
        let store = backends::check_store(&mut problems, self.store, env, &data_dir);
        let tokens = backends::check_tokens(&mut problems, self.tokens, env);
        let server = server::check_server(&mut problems, self.server);
        let management = management::check_management(&mut problems, self.management, env);
        let log_format = self.logging.format;

        if !problems.0.is_empty() {
            return Err(ConfigErrors(problems.0));
        }
        Ok(Config {
            https,
            http,
            metrics,
            data_dir,
            upstreams,
            routes: RouteTable::new(routes),
            oauth,
            store: store.expect("checked above"),
            tokens: tokens.expect("checked above"),
            server,
            management,
            log_format,
        })
    }
}
