//! `impl ProxyHttp`: thin Pingora hooks that delegate.
//!
//! - `early_request_filter` stops the connection's head clock and takes the
//!   request id.
//! - `request_filter` decides, on the one reading of the request that
//!   [`crate::request_target`] accepts: answer it here (400 for a target or
//!   Host it refuses, OAuth endpoints, 401, 503, 404) and return `Ok(true)`,
//!   or let it through to an upstream.
//! - `upstream_peer` picks a server of the route's upstream (round robin).
//! - `upstream_request_filter` writes exactly the checked target, strips
//!   every header the gateway owns from the client's copy, and sets ours
//!   (identity, forwarding, request id). It edits the upstream copy of the
//!   request, which Pingora makes after `request_filter`, so nothing the
//!   client sent survives it.
//! - `response_filter` returns the request id to the client.
//! - `logging` records metrics and the access log line for every request,
//!   whoever answered it, and re-arms the connection's head clock.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::auth;
use crate::connection_guard;
use crate::forwarding::{self, Hop};
use crate::metrics::{self, AuthFailure};
use crate::oauth;
use crate::owned_headers::OwnedHeader;
use crate::request_target::{self, CheckedTarget, TargetProblem};
use crate::respond::{self, Reply};
use crate::route::{Ambiguous, Destination};
use crate::state::AppState;
use crate::tokens::{AccessRecord, TokenDigest};

pub struct Gateway {
    pub state: Arc<AppState>,
    pub role: ListenerRole,
}

/// Which listeners a gateway service answers on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerRole {
    /// The public listeners: proxy and OAuth, and management unless it has
    /// a listener of its own.
    Public,
    /// `management.address`: management only.
    Management,
}

/// Per-request state, read by the later hooks.
pub struct RequestContext {
    started: Instant,
    destination: Destination,
    /// Set once the bearer token checked out.
    identity: Option<AccessRecord>,
    /// The client's or ours; see [`forwarding::request_id`].
    request_id: HeaderValue,
    /// The checked `path[?query]` when it differs from the target that came
    /// in (normalized, or absolute-form made origin-form): what the
    /// upstream receives. `None`: the target as it came.
    rewritten_target: Option<String>,
    /// The socket peer, whether it is a trusted proxy, and the client's
    /// address behind it: found once, in `request_filter`.
    peer: IpAddr,
    peer_trusted: bool,
    client_address: IpAddr,
}

impl RequestContext {
    /// The path routing read: the checked one, or for a refused target the
    /// raw one (for the access log), never with its query, which can carry
    /// credentials.
    fn path<'a>(&'a self, request: &'a RequestHeader) -> std::borrow::Cow<'a, str> {
        let target = match &self.rewritten_target {
            Some(target) => target.as_bytes(),
            None => request.raw_path(),
        };
        let path = &target[..target
            .iter()
            .position(|&b| b == b'?')
            .unwrap_or(target.len())];
        String::from_utf8_lossy(path)
    }

    fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }
}

/// Metric label for where a request went.
fn route_label(state: &AppState, destination: Destination) -> &str {
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
        Destination::Proxy { route } => state.router.routes.get(route).path_prefix.as_str(),
    }
}

/// The socket peer's address.
pub fn peer_address(session: &Session) -> IpAddr {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// What the OAuth endpoints see of the state.
fn oauth_endpoints(state: &AppState) -> oauth::http::OAuthEndpoints<'_> {
    oauth::http::OAuthEndpoints {
        store: &state.store,
        tokens: &state.tokens,
        hasher: &state.hasher,
        lockout: &state.lockout,
        config: &state.config.oauth,
        max_body_bytes: state.config.server.max_token_request_bytes,
        route_scopes: &state.route_scopes,
    }
}

/// What management sees of the state.
fn management_view(state: &AppState) -> crate::management::Management<'_> {
    crate::management::Management {
        admin: state.admin.as_ref(),
        base_path: state
            .config
            .oauth
            .management_path
            .as_deref()
            .unwrap_or_default(),
        accounts: state.accounts(),
        lockout: &state.lockout,
        lockout_policies: [
            &state.config.oauth.lockout,
            &state.config.oauth.address_lockout,
        ],
    }
}

/// The request's `Host`, or HTTP/2 `:authority`, as checked in
/// `request_filter`.
fn request_host(request: &RequestHeader) -> Option<&str> {
    match request.headers.get(http::header::HOST) {
        Some(host) => host.to_str().ok(),
        None => request.uri.authority().map(|a| a.as_str()),
    }
}

/// Checks the request's Host and target: the one reading the gateway acts
/// on, or the problem that refuses it.
fn check_request(request: &RequestHeader) -> Result<CheckedTarget<'_>, TargetProblem> {
    let mut hosts = request
        .headers
        .get_all(http::header::HOST)
        .iter()
        .map(HeaderValue::as_bytes);
    let host = request_target::check_host(
        &mut hosts,
        request.uri.authority().map(|a| a.as_str()),
        request.version == http::Version::HTTP_10,
    )?;
    request_target::check_target(
        request.raw_path(),
        request.method == http::Method::OPTIONS,
        host,
    )
}

/// `OPTIONS *` (RFC 9110 §9.3.7): a question about the server, answered by
/// the gateway, since no route owns `*`.
fn server_options() -> Reply {
    Reply {
        status: 204,
        headers: vec![(
            "allow",
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".into(),
        )],
        body: bytes::Bytes::new(),
    }
}

impl Gateway {
    fn serves_management(&self) -> bool {
        match self.role {
            ListenerRole::Management => true,
            ListenerRole::Public => self.state.config.management.address.is_none(),
        }
    }

    /// Authenticates a request on a protected route: `Ok(record)` to forward,
    /// `Err(reply)` to answer instead.
    async fn authenticate(&self, session: &Session) -> Result<AccessRecord, Reply> {
        let token = auth::parse_bearer(&session.req_header().headers).map_err(|problem| {
            metrics::auth_failure(problem.metric());
            respond::bearer_problem(problem)
        })?;
        // Hashed where it lies in the header: no copy of the secret.
        let digest = TokenDigest::of(token);
        match self.state.tokens.find_access(&digest).await {
            Ok(Some(record)) => {
                metrics::token_store_up(true);
                Ok(record)
            }
            Ok(None) => {
                metrics::token_store_up(true);
                metrics::auth_failure(AuthFailure::InvalidToken);
                Err(respond::invalid_token())
            }
            Err(error) => {
                // Fail closed: a request we cannot check is never forwarded.
                metrics::token_store_up(false);
                metrics::auth_failure(AuthFailure::TokenStoreUnavailable);
                tracing::warn!(%error, "token store unavailable; answering 503");
                Err(respond::temporarily_unavailable(
                    "the token store is unavailable; retry shortly",
                ))
            }
        }
    }

    /// Where the request goes: its checked target routed, or why it is
    /// refused (where it went for the metrics, and the 400). Sets the
    /// context's rewritten target.
    fn decide(
        &self,
        session: &Session,
        ctx: &mut RequestContext,
    ) -> Result<Destination, (Destination, Reply)> {
        let checked = check_request(session.req_header()).map_err(|problem| {
            let reply = Reply::error(400, "invalid_request", problem.description());
            (Destination::InvalidPath, reply)
        })?;
        if checked == CheckedTarget::Asterisk {
            return Ok(Destination::ServerOptions);
        }
        let routed = self.state.router.route(checked.path());
        ctx.rewritten_target = checked.into_rewritten();
        routed.map_err(|Ambiguous { reading }| {
            tracing::debug!(%reading, "refused an ambiguous path");
            let reply = Reply::error(
                400,
                "invalid_request",
                "the path is ambiguous: some servers read it as a path with stricter access rules (for example without `;` parameters or trailing dots); send it in its plain form",
            );
            (Destination::AmbiguousPath, reply)
        })
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestContext;

    fn new_ctx(&self) -> RequestContext {
        RequestContext {
            started: Instant::now(),
            destination: Destination::NoRoute,
            identity: None,
            request_id: HeaderValue::from_static("-"),
            rewritten_target: None,
            peer: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            peer_trusted: false,
            client_address: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        connection_guard::head_complete(session);
        let headers = &session.req_header().headers;
        ctx.request_id = forwarding::request_id(headers);
        let trusted_proxies = &self.state.config.server.trusted_proxies;
        ctx.peer = peer_address(session).to_canonical();
        ctx.peer_trusted = trusted_proxies
            .iter()
            .any(|network| network.contains(ctx.peer));
        ctx.client_address =
            crate::client_address::client_address_of(ctx.peer, headers, trusted_proxies);
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<bool> {
        ctx.destination = match self.decide(session, ctx) {
            Ok(destination) => destination,
            Err((destination, reply)) => {
                ctx.destination = destination;
                respond::send(session, reply, ctx.request_id()).await?;
                return Ok(true);
            }
        };
        let reply = match ctx.destination {
            Destination::ManagementEndpoint if self.serves_management() => {
                let path = ctx.path(session.req_header()).into_owned();
                let view = management_view(&self.state);
                crate::management::handle(session, &view, &path, ctx.client_address).await
            }
            _ if self.role == ListenerRole::Management => {
                respond::not_found("this listener serves management only")
            }
            Destination::ServerOptions => server_options(),
            Destination::TokenEndpoint
            | Destination::RevokeEndpoint
            | Destination::IntrospectEndpoint
            | Destination::MetadataEndpoint => {
                let endpoints = oauth_endpoints(&self.state);
                oauth::http::oauth_request(session, &endpoints, ctx.destination, ctx.client_address)
                    .await
            }
            Destination::ManagementEndpoint | Destination::ReservedPath => {
                respond::not_found("no such OAuth endpoint")
            }
            Destination::NoRoute | Destination::InvalidPath | Destination::AmbiguousPath => {
                respond::not_found("no route matches this path")
            }
            Destination::Proxy { route } => {
                let route = self.state.router.routes.get(route);
                if route.public {
                    return Ok(false);
                }
                match self.authenticate(session).await {
                    Ok(record) if record.has_scopes(&route.required_scopes) => {
                        ctx.identity = Some(record);
                        return Ok(false);
                    }
                    Ok(_) => {
                        metrics::auth_failure(AuthFailure::InsufficientScope);
                        respond::insufficient_scope(&route.required_scopes)
                    }
                    Err(reply) => reply,
                }
            }
        };
        respond::send(session, reply, ctx.request_id()).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<Box<HttpPeer>> {
        let Destination::Proxy { route } = ctx.destination else {
            // request_filter answers every other destination itself.
            return Error::e_explain(InternalError, "no upstream for this destination");
        };
        let upstream = &self.state.upstreams[self.state.router.routes.get(route).upstream];
        Ok(Box::new(upstream.next_peer()))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        let Destination::Proxy { route } = ctx.destination else {
            return Error::e_explain(InternalError, "not a proxied destination");
        };
        let downstream = session.req_header();
        // Exactly the target that was checked and routed on.
        let checked = match &ctx.rewritten_target {
            Some(target) => target.as_bytes(),
            None => downstream.raw_path(),
        };
        if upstream_request.raw_path() != checked {
            upstream_request.set_uri(origin_form_uri(&upstream_request.uri, checked)?);
        }
        let keep_authorization = self.state.router.routes.get(route).forward_authorization;
        let edit = auth::sanitize_forwarded_headers(&upstream_request.headers, keep_authorization);
        for name in &edit.remove {
            upstream_request.remove_header(name);
        }
        if edit.upgrade {
            upstream_request.insert_header(http::header::CONNECTION, "upgrade")?;
        }
        let mut set = |header: OwnedHeader, value: HeaderValue| {
            upstream_request.insert_header(header.name(), value)
        };
        if let Some(identity) = &ctx.identity {
            // A client acting for itself (client_credentials) has no user:
            // the upstream then sees X-Client-Id and no X-User-Id.
            if let Some(user_id) = &identity.user_id {
                set(OwnedHeader::UserId, header_value(user_id)?)?;
            }
            set(OwnedHeader::ClientId, header_value(&identity.client_id)?)?;
            if !identity.scope.is_empty() {
                set(OwnedHeader::Scope, header_value(&identity.scope)?)?;
            }
        }
        let hop = Hop {
            peer: ctx.peer,
            peer_trusted: ctx.peer_trusted,
            client: ctx.client_address,
            proto: if session.digest().is_some_and(|d| d.ssl_digest.is_some()) {
                "https"
            } else {
                "http"
            },
            host: request_host(downstream),
        };
        let server = &self.state.config.server;
        let values =
            forwarding::forwarding_values(&downstream.headers, &hop, server.forwarded_header);
        set(
            OwnedHeader::ForwardedFor,
            header_value(&values.x_forwarded_for)?,
        )?;
        set(
            OwnedHeader::ForwardedProto,
            header_value(&values.x_forwarded_proto)?,
        )?;
        if let Some(host) = &values.x_forwarded_host {
            set(OwnedHeader::ForwardedHost, header_value(host)?)?;
        }
        if let Some(forwarded) = &values.forwarded {
            set(OwnedHeader::Forwarded, header_value(forwarded)?)?;
        }
        set(OwnedHeader::RealIp, header_value(&values.x_real_ip)?)?;
        set(OwnedHeader::RequestId, ctx.request_id.clone())?;
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        upstream_response.insert_header(OwnedHeader::RequestId.name(), ctx.request_id.clone())?;
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        ctx: &mut RequestContext,
    ) -> FailToProxy {
        let reply = match error.etype() {
            ErrorType::HTTPStatus(code) => Some(Reply::error(
                *code,
                "request_failed",
                "the request could not be processed",
            )),
            _ => match error.esource() {
                ErrorSource::Upstream => Some(Reply::error(
                    502,
                    "bad_gateway",
                    "the upstream is unreachable or failed",
                )),
                ErrorSource::Downstream => match error.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => {
                        None
                    }
                    _ => Some(Reply::error(
                        400,
                        "invalid_request",
                        "the request could not be read",
                    )),
                },
                ErrorSource::Internal | ErrorSource::Unset => Some(Reply::error(
                    500,
                    "server_error",
                    "the gateway failed to process the request",
                )),
            },
        };
        let error_code = reply.as_ref().map_or(0, |r| r.status);
        if let Some(reply) = reply {
            if let Err(write_error) = respond::send(session, reply, ctx.request_id()).await {
                tracing::debug!(%write_error, "could not write the error response");
            }
        }
        FailToProxy {
            error_code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(
        &self,
        session: &mut Session,
        error: Option<&Error>,
        ctx: &mut RequestContext,
    ) {
        connection_guard::request_done(session);
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        let route = route_label(&self.state, ctx.destination);
        metrics::request_done(route, status, elapsed.as_secs_f64());
        let request = session.req_header();
        tracing::info!(
            target: "portcullis::access",
            method = %request.method,
            path = &*ctx.path(request),
            status,
            duration = %format_args!("{:.3}ms", elapsed.as_secs_f64() * 1000.0),
            route,
            user_id = ctx.identity.as_ref().and_then(|r| r.user_id.as_deref()).unwrap_or("-"),
            request_id = ctx.request_id(),
            error = error.map(|e| e.etype().as_str()).unwrap_or("-"),
        );
    }

    /// Pingora's own error lines describe the request with this: the path
    /// only, as in the access log, since queries can carry credentials.
    fn request_summary(&self, session: &Session, ctx: &RequestContext) -> String {
        let request = session.req_header();
        format!("{} {}", request.method, ctx.path(request))
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestContext, error: &Error) -> bool {
        // Upstream failures are already in the access log line with status
        // 502; Pingora's own ERROR line would repeat it.
        matches!(error.esource(), ErrorSource::Upstream)
    }
}

/// A header value from text the gateway made or stored (ids, scopes,
/// addresses): never a control character, but checked all the same.
fn header_value(text: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(text).or_err(
        InternalError,
        "a value for the upstream is not a header value",
    )
}

/// `uri` with its path and query replaced by `target`, keeping an HTTP/2
/// request's scheme and authority (Pingora sets the upstream `Host` from
/// them).
fn origin_form_uri(uri: &http::Uri, target: &[u8]) -> Result<http::Uri> {
    let mut parts = http::uri::Parts::default();
    parts.scheme = uri.scheme().cloned();
    parts.authority = uri.authority().cloned();
    parts.path_and_query = Some(
        http::uri::PathAndQuery::try_from(target)
            .or_err(InternalError, "checked target is not a valid URI path")?,
    );
    http::Uri::from_parts(parts).or_err(InternalError, "checked target does not form a URI")
}
