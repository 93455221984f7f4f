//! What the gateway knows of one request between Pingora's hooks.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::proxy::Session;

use crate::route::Destination;
use crate::state::AppState;
use crate::tokens::AccessRecord;
use crate::upstream_pool::{Attempts, UpstreamPool};

/// Per-request state, read by the later hooks.
pub struct RequestContext {
    /// The configuration this request is served by, from start to end,
    /// whatever a reload swaps in meanwhile.
    pub(super) state: Arc<AppState>,
    pub(super) started: Instant,
    pub(super) destination: Destination,
    /// Set once the bearer token checked out.
    pub(super) identity: Option<AccessRecord>,
    /// The client's or ours; see [`crate::forwarding::request_id`].
    pub(super) request_id: HeaderValue,
    /// The checked `path[?query]` when it differs from the target that came
    /// in (normalized, or absolute-form made origin-form): what the
    /// upstream receives. `None`: the target as it came.
    pub(super) rewritten_target: Option<String>,
    /// The socket peer, whether it is a trusted proxy, and the client's
    /// address behind it: found once, in `early_request_filter`.
    pub(super) peer: IpAddr,
    pub(super) peer_trusted: bool,
    pub(super) client_address: IpAddr,
    /// The upstream server this request is on (counted in flight until the
    /// context is dropped), the ones that failed it, its retries.
    pub(super) upstream: Attempts,
    /// When the last upstream server was chosen, for its response time.
    pub(super) upstream_started: Option<Instant>,
    /// How long the token check and the upstream's response head took,
    /// for the access line.
    pub(super) auth_time: Option<std::time::Duration>,
    pub(super) upstream_time: Option<std::time::Duration>,
}

impl RequestContext {
    pub(super) fn new(state: Arc<AppState>) -> Self {
        RequestContext {
            state,
            started: Instant::now(),
            destination: Destination::NoRoute,
            identity: None,
            request_id: HeaderValue::from_static("-"),
            rewritten_target: None,
            peer: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            peer_trusted: false,
            client_address: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            upstream: Attempts::default(),
            upstream_started: None,
            auth_time: None,
            upstream_time: None,
        }
    }

    /// The target the upstream receives: the checked one, byte for byte.
    pub(super) fn target<'a>(&'a self, request: &'a RequestHeader) -> &'a [u8] {
        match &self.rewritten_target {
            Some(target) => target.as_bytes(),
            None => request.raw_path(),
        }
    }

    /// The path routing read: the checked one, or for a refused target the
    /// raw one (for the access log), never with its query, which can carry
    /// credentials.
    pub(super) fn path<'a>(&'a self, request: &'a RequestHeader) -> Cow<'a, str> {
        let target = self.target(request);
        let path = &target[..target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len())];
        String::from_utf8_lossy(path)
    }

    pub(super) fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }
}

/// Metric label for where a request went.
pub(super) fn route_label(state: &AppState, destination: Destination) -> &str {
    match destination {
        Destination::TokenEndpoint => "oauth_token",
        Destination::RevokeEndpoint => "oauth_revoke",
        Destination::IntrospectEndpoint => "oauth_introspect",
        Destination::MetadataEndpoint => "oauth_metadata",
        Destination::InvalidPath => "invalid_path",
        Destination::AmbiguousPath => "ambiguous_path",
        Destination::ServerOptions => "server_options",
        Destination::ManagementEndpoint => "oauth_management",
        Destination::ReservedPath => "oauth_other",
        Destination::NoRoute => "no_route",
        Destination::Proxy { route } => state.router.routes.get(route).name.as_str(),
    }
}

/// The upstream pool of a proxied destination.
pub(super) fn upstream_of(state: &AppState, destination: Destination) -> Option<&UpstreamPool> {
    match destination {
        Destination::Proxy { route } => {
            let index = state.router.routes.get(route).upstream;
            Some(&state.upstreams[index])
        }
        _ => None,
    }
}

/// The connection is TLS: the HTTPS listener's, whatever HTTP version.
pub(super) fn is_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// The socket peer's address.
pub(super) fn peer_address(session: &Session) -> IpAddr {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}
