//! `impl ProxyHttp`: thin Pingora hooks that delegate.
//!
//! - `early_request_filter` stops the connection's head clock and takes the
//!   request id.
//! - `request_filter` decides, on the one reading of the request that
//!   [`crate::request_target`] accepts: answer it here (400 for a target or
//!   Host it refuses, 403 for credentials over plain HTTP, OAuth endpoints,
//!   401, 503, 404) and return `Ok(true)`, or let it through to an upstream.
//! - `upstream_peer` picks a usable server of the route's upstream (see
//!   [`crate::upstream_pool`]); `fail_to_connect`, `error_while_proxy` and
//!   `upstream_response_filter` tell the pool how the attempt went, which
//!   decides retries and passive ejection.
//! - `upstream_request_filter` writes exactly the checked target, strips
//!   every header the gateway owns from the client's copy, and sets ours
//!   (identity, forwarding, request id). It edits the upstream copy of the
//!   request, which Pingora makes after `request_filter`, so nothing the
//!   client sent survives it.
//! - `response_filter` returns the request id to the client.
//! - `logging` records metrics and the access log line for every request,
//!   whoever answered it, and re-arms the connection's head clock.

mod context;
mod decide;
mod failure;
mod transport;
mod upstream_request;
mod views;

use std::sync::Arc;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::auth;
use crate::connection_guard;
use crate::forwarding;
use crate::metrics::{self, AuthFailure, AuthOutcome};
use crate::oauth;
use crate::owned_headers::OwnedHeader;
use crate::respond::{self, Reply};
use crate::route::Destination;
use crate::state::{AppState, LiveState};
use crate::tokens::{AccessRecord, TokenDigest};
pub use context::RequestContext;
use context::{is_tls, peer_address, route_label, upstream_of};

pub struct Gateway {
    /// Each request takes the configuration running when it starts and
    /// keeps it to the end (see [`crate::state`]).
    pub live: Arc<LiveState>,
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
    /// `data_dir/control.sock`: the management API for the CLI on this
    /// machine (see [`crate::control_socket`]), nothing else.
    Control,
}

impl Gateway {
    fn serves_management(&self, state: &AppState) -> bool {
        match self.role {
            ListenerRole::Management => true,
            ListenerRole::Public => state.config.management.address.is_none(),
            ListenerRole::Control => false,
        }
    }

    /// Whether this service answers `destination` itself rather than with
    /// 404: management where it is served, the rest on the public listeners.
    fn answers(&self, state: &AppState, destination: Destination) -> bool {
        match destination {
            Destination::ManagementEndpoint => self.serves_management(state),
            _ => self.role == ListenerRole::Public,
        }
    }

    /// The refusal of an endpoint that takes credentials, asked for over
    /// plain HTTP (see [`transport`]); checked before the request is read.
    fn plaintext_refusal(&self, session: &Session, ctx: &RequestContext) -> Option<Reply> {
        let arrival = transport::Arrival {
            tls: is_tls(session),
            peer_trusted: ctx.peer_trusted,
            headers: &session.req_header().headers,
        };
        let allow_plaintext = ctx.state.config.oauth.allow_plaintext;
        let refused = self.answers(&ctx.state, ctx.destination)
            && !transport::allowed(ctx.destination, arrival, allow_plaintext);
        refused.then(transport::refused)
    }

    /// Authenticates a request on a protected route: `Ok(record)` to forward,
    /// `Err(reply)` to answer instead.
    async fn authenticate(state: &AppState, session: &Session) -> Result<AccessRecord, Reply> {
        let token = auth::parse_bearer(&session.req_header().headers).map_err(|problem| {
            metrics::auth_failure(problem.metric());
            respond::bearer_problem(problem)
        })?;
        // Hashed where it lies in the header: no copy of the secret.
        let digest = TokenDigest::of(token);
        match state.tokens.find_access(&digest).await {
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
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestContext;

    fn new_ctx(&self) -> RequestContext {
        RequestContext::new(self.live.current())
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        connection_guard::head_complete(session);
        if connection_guard::draining() {
            // The last request of this connection: said in the response.
            session.set_keepalive(None);
        }
        let headers = &session.req_header().headers;
        ctx.request_id = forwarding::request_id(headers);
        let trusted_proxies = &ctx.state.config.server.trusted_proxies;
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
        let state = ctx.state.clone();
        ctx.destination = match decide::decide(&state.router, session.req_header(), ctx) {
            Ok(destination) => destination,
            Err((destination, reply)) => {
                ctx.destination = destination;
                respond::send(session, reply, ctx.request_id()).await?;
                return Ok(true);
            }
        };
        if self.role == ListenerRole::Control {
            let path = ctx.path(session.req_header()).into_owned();
            let view = views::control_view(&state);
            let reply = crate::management::handle_control(session, &view, &path).await;
            respond::send(session, reply, ctx.request_id()).await?;
            return Ok(true);
        }
        if let Some(reply) = self.plaintext_refusal(session, ctx) {
            respond::send(session, reply, ctx.request_id()).await?;
            return Ok(true);
        }
        let reply = match ctx.destination {
            Destination::ManagementEndpoint if self.serves_management(&state) => {
                let path = ctx.path(session.req_header()).into_owned();
                let view = views::management_view(&state);
                crate::management::handle(session, &view, &path, ctx.client_address).await
            }
            _ if self.role == ListenerRole::Management => {
                respond::not_found("this listener serves management only")
            }
            Destination::ServerOptions => decide::server_options(),
            Destination::TokenEndpoint
            | Destination::RevokeEndpoint
            | Destination::IntrospectEndpoint
            | Destination::MetadataEndpoint => {
                let endpoints = views::oauth_endpoints(&state);
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
                let route = state.router.routes.get(route);
                if !route.allows(&session.req_header().method) {
                    // Never forwarded, with or without a token.
                    let reply = Reply::error(
                        405,
                        "method_not_allowed",
                        "this route does not take this method; see Allow",
                    )
                    .with_header("allow", route.allow_header());
                    respond::send(session, reply, ctx.request_id()).await?;
                    return Ok(true);
                }
                if route.public {
                    metrics::auth_decision(AuthOutcome::Public);
                    return Ok(false);
                }
                let checking = std::time::Instant::now();
                let checked = Self::authenticate(&state, session).await;
                ctx.auth_time = Some(checking.elapsed());
                match checked {
                    Ok(record) if record.has_scopes(&route.required_scopes) => {
                        metrics::auth_decision(AuthOutcome::Allowed);
                        ctx.identity = Some(record);
                        return Ok(false);
                    }
                    Ok(_) => {
                        metrics::auth_decision(AuthOutcome::Refused);
                        metrics::auth_failure(AuthFailure::InsufficientScope);
                        respond::insufficient_scope(&route.required_scopes)
                    }
                    Err(reply) => {
                        let outcome = if reply.status == 503 {
                            AuthOutcome::Unavailable
                        } else {
                            AuthOutcome::Refused
                        };
                        metrics::auth_decision(outcome);
                        reply
                    }
                }
            }
        };
        respond::send(session, reply, ctx.request_id()).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<Box<HttpPeer>> {
        let Destination::Proxy { route } = ctx.destination else {
            // request_filter answers every other destination itself.
            return Error::e_explain(InternalError, "no upstream for this destination");
        };
        let route = ctx.state.router.routes.get(route);
        let pool = &ctx.state.upstreams[route.upstream];
        // Called again for each retry; the pool skips servers that failed.
        let mut peer = pool.peer(&mut ctx.upstream, session.req_header(), ctx.client_address)?;
        // A route's own timeouts win over its upstream's.
        if let Some(timeout) = route.connect_timeout {
            peer.options.connection_timeout = Some(timeout);
        }
        if let Some(timeout) = route.read_timeout {
            peer.options.read_timeout = Some(timeout);
        }
        ctx.upstream_started = Some(std::time::Instant::now());
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestContext,
        error: Box<Error>,
    ) -> Box<Error> {
        match upstream_of(&ctx.state, ctx.destination) {
            Some(pool) => pool.connect_failed(&mut ctx.upstream, error),
            None => error,
        }
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        error: Box<Error>,
        ctx: &mut RequestContext,
        client_reused: bool,
    ) -> Box<Error> {
        let error = error.more_context(format!("Peer: {peer}"));
        // Pingora's rule for what may be sent twice: an idempotent method,
        // and a body it still holds whole.
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        match upstream_of(&ctx.state, ctx.destination) {
            Some(pool) => pool.proxy_failed(&mut ctx.upstream, error, replayable, client_reused),
            None => {
                let mut error = error;
                error.set_retry(false);
                error
            }
        }
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestContext,
    ) -> Result<()> {
        if let Some(pool) = upstream_of(&ctx.state, ctx.destination) {
            pool.responded(&mut ctx.upstream, upstream_response.status.as_u16());
            if let Some(started) = ctx.upstream_started {
                let took = started.elapsed();
                ctx.upstream_time = Some(took);
                pool.responded_after(took);
            }
        }
        Ok(())
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
        let route = ctx.state.router.routes.get(route);
        upstream_request::prepare(
            session,
            upstream_request,
            ctx,
            route,
            &ctx.state.config.server,
        )
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
        let reply = failure::failure_reply(error);
        let error_code = reply.as_ref().map_or(0, |r| r.status);
        if let Some(reply) = reply {
            // The connection is not reused after this (below): say so with
            // `Connection: close`, or a client may send its next request on
            // a connection we are closing, and lose it (a POST is not
            // retried by clients).
            session.set_keepalive(None);
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
        if self.role == ListenerRole::Control {
            // The CLI's calls are not client traffic: the audit log has
            // each change, and the request metrics stay the clients'.
            return;
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        let route = route_label(&ctx.state, ctx.destination);
        let method = &session.req_header().method;
        metrics::request_done(route, method, status, elapsed.as_secs_f64());
        let request = session.req_header();
        tracing::info!(
            target: "portcullis::access",
            method = %request.method,
            path = &*ctx.path(request),
            status,
            duration = %Millis(Some(elapsed)),
            route,
            upstream = %Shown(ctx.upstream.server()),
            auth_duration = %Millis(ctx.auth_time),
            upstream_duration = %Millis(ctx.upstream_time),
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

/// A value for the access line, `-` when there is none, formatted only
/// when the line is written.
struct Shown<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Shown<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A duration for the access line, in milliseconds with three decimals
/// (`12.345ms`), from integer microseconds: float formatting was a
/// measurable part of every request's access line.
struct Millis(Option<std::time::Duration>);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(took) = self.0 else {
            return f.write_str("-");
        };
        let micros = took.as_micros();
        write!(f, "{}.{:03}ms", micros / 1000, micros % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::Millis;
    use std::time::Duration;

    #[test]
    fn durations_are_milliseconds_with_three_decimals() {
        let cases = [
            (None, "-"),
            (Some(Duration::ZERO), "0.000ms"),
            (Some(Duration::from_nanos(999)), "0.000ms"),
            (Some(Duration::from_micros(1)), "0.001ms"),
            (Some(Duration::from_micros(12_345)), "12.345ms"),
            (Some(Duration::from_millis(1000)), "1000.000ms"),
            (Some(Duration::from_secs(86_400 * 365)), "31536000000.000ms"),
        ];
        for (took, text) in cases {
            assert_eq!(Millis(took).to_string(), text, "{took:?}");
        }
    }
}
