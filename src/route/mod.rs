//! Which handler or upstream a request path belongs to. Pure: no I/O.
//!
//! Routes match by longest path prefix on segment boundaries: `/api` matches
//! `/api` and `/api/users` but not `/apiary`. The table is sorted once at
//! startup so a lookup is one scan that stops at the first hit.
//!
//! The path routed on is the normalized one of [`crate::request_target`].
//! Two more rules keep the route the upstream's route too:
//!
//! - **Case.** A route matches without regard to ASCII case (`/ADMIN/x` is
//!   under `/admin`), because Express, ASP.NET and others route that way.
//!   `case_sensitive: true` on a route says its upstream tells `/Admin` from
//!   `/admin`; it then matches exact case only.
//! - **The strictest reading.** Some upstreams read a path more loosely than
//!   its bytes: Tomcat and Spring drop `;params` from segments
//!   (`/admin;x/users` is `/admin/users`), Windows servers drop trailing dots
//!   and spaces (`/admin./users`). When such a reading lands on a route that
//!   asks for more (a token, or scopes the literal route does not ask for),
//!   or on the gateway's own endpoints, the request is refused
//!   ([`Ambiguous`]) rather than forwarded under the weaker rules.

mod host;
mod readings;
mod table;
#[cfg(test)]
mod tests;

pub use host::{for_matching as host_for_matching, HostPattern};
pub use readings::looser_readings;
use table::prefix_contains;
pub use table::{path_has_prefix, Route, RouteTable};

/// Where the gateway sends a request: answered by portcullis itself, or
/// proxied along a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    TokenEndpoint,
    RevokeEndpoint,
    IntrospectEndpoint,
    /// RFC 8414 metadata, the one endpoint outside the OAuth prefix.
    MetadataEndpoint,
    ManagementEndpoint,
    /// Under the OAuth prefix but no endpoint: answered 404, never forwarded.
    ReservedPath,
    Proxy {
        route: usize,
    },
    NoRoute,
    /// Refused before routing: see [`crate::request_target`].
    InvalidPath,
    /// A looser reading of the path lands on a stricter route: refused.
    AmbiguousPath,
    /// `OPTIONS *`, answered by the gateway.
    ServerOptions,
}

/// A looser reading of the path that some upstreams apply lands somewhere
/// stricter than the literal path: this reading, for the 400's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ambiguous {
    pub reading: String,
}

/// Everything needed to classify a path, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Router {
    pub oauth_prefix: String,
    pub token_path: Option<String>,
    pub revoke_path: Option<String>,
    pub introspect_path: Option<String>,
    pub metadata: bool,
    pub management_path: Option<String>,
    pub routes: RouteTable,
}

/// Where RFC 8414 §3 puts authorization server metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

impl Router {
    /// Where `path` (normalized) on `host` (as [`host_for_matching`] made
    /// it) goes, after checking that no looser reading of the path lands
    /// somewhere stricter.
    pub fn route(&self, host: Option<&str>, path: &str) -> Result<Destination, Ambiguous> {
        let literal = self.classify(host, path);
        let Destination::Proxy { route } = literal else {
            // Answered by the gateway, or 404: nothing is forwarded.
            return Ok(literal);
        };
        let literal_route = self.routes.get(route);
        for reading in looser_readings(path) {
            let stricter = match self.classify(host, &reading) {
                Destination::Proxy { route: other } => {
                    literal_route.is_weaker_than(self.routes.get(other))
                }
                Destination::NoRoute => false,
                _ => true,
            };
            if stricter {
                return Err(Ambiguous { reading });
            }
        }
        Ok(literal)
    }

    /// Where `path` goes on its literal reading. The gateway's own
    /// endpoints are the same on every host.
    pub fn classify(&self, host: Option<&str>, path: &str) -> Destination {
        if self.metadata && path == METADATA_PATH {
            return Destination::MetadataEndpoint;
        }
        // The OAuth prefix is ours in every case: `/OAUTH/x` is never
        // forwarded either.
        if prefix_contains(path, self.oauth_prefix.trim_end_matches('/'), false) {
            let endpoints = [
                (&self.token_path, Destination::TokenEndpoint),
                (&self.revoke_path, Destination::RevokeEndpoint),
                (&self.introspect_path, Destination::IntrospectEndpoint),
            ];
            for (endpoint, destination) in endpoints {
                if endpoint.as_deref() == Some(path) {
                    return destination;
                }
            }
            if let Some(management) = &self.management_path {
                if path_has_prefix(path, management) {
                    return Destination::ManagementEndpoint;
                }
            }
            return Destination::ReservedPath;
        }
        match self.routes.find(host, path) {
            Some((route, _)) => Destination::Proxy { route },
            None => Destination::NoRoute,
        }
    }
}
