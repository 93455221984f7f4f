//! `impl ProxyHttp`: thin Pingora hooks that delegate.
//!
//! - `request_filter` decides: answer it here (OAuth endpoints, 401, 503,
//!   404) and return `Ok(true)`, or let it through to an upstream.
//! - `upstream_peer` picks a server of the route's upstream (round robin).
//! - `upstream_request_filter` strips client identity headers and injects
//!   ours. It edits the upstream copy of the request, which Pingora makes
//!   after `request_filter`, so nothing the client sent survives it.
//! - `logging` records metrics and the access log line for every request,
//!   whoever answered it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};

use crate::app::AppState;
use crate::auth;
use crate::metrics;
use crate::oauth;
use crate::respond::{self, Reply};
use crate::route::{path_is_canonical, Destination};
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
}

/// Metric label for where a request went.
fn route_label(state: &AppState, destination: Destination) -> &str {
    match destination {
        Destination::TokenEndpoint => "oauth_token",
        Destination::RevokeEndpoint => "oauth_revoke",
        Destination::IntrospectEndpoint => "oauth_introspect",
        Destination::MetadataEndpoint => "oauth_metadata",
        Destination::InvalidPath => "invalid_path",
        Destination::ManagementEndpoint => "oauth_management",
        Destination::ReservedPath => "oauth_other",
        Destination::NoRoute => "no_route",
        Destination::Proxy { route } => state.router.routes.get(route).path_prefix.as_str(),
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
            metrics::auth_failure(problem.metric_label());
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
                metrics::auth_failure("invalid_token");
                Err(respond::invalid_token())
            }
            Err(error) => {
                // Fail closed: a request we cannot check is never forwarded.
                metrics::token_store_up(false);
                metrics::auth_failure("token_store_unavailable");
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
        RequestContext {
            started: Instant::now(),
            destination: Destination::NoRoute,
            identity: None,
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> Result<bool> {
        let path = session.req_header().uri.path();
        if !path_is_canonical(path) {
            let reply = Reply::error(
                400,
                "invalid_request",
                "the path has dot segments, encoded slashes or empty segments; send it normalized",
            );
            ctx.destination = Destination::InvalidPath;
            respond::send(session, reply).await?;
            return Ok(true);
        }
        ctx.destination = self.state.router.classify(path);
        let reply = match ctx.destination {
            Destination::ManagementEndpoint if self.serves_management() => {
                crate::management::handle(session, &self.state).await
            }
            _ if self.role == ListenerRole::Management => {
                respond::not_found("this listener serves management only")
            }
            Destination::TokenEndpoint
            | Destination::RevokeEndpoint
            | Destination::IntrospectEndpoint
            | Destination::MetadataEndpoint => {
                oauth::http::oauth_request(session, &self.state, ctx.destination).await
            }
            Destination::ManagementEndpoint | Destination::ReservedPath => {
                respond::not_found("no such OAuth endpoint")
            }
            Destination::NoRoute | Destination::InvalidPath => {
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
                        metrics::auth_failure("insufficient_scope");
                        respond::insufficient_scope(&route.required_scopes)
                    }
                    Err(reply) => reply,
                }
            }
        };
        respond::send(session, reply).await?;
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
        let keep_authorization = self.state.router.routes.get(route).forward_authorization;
        for name in auth::sanitize_forwarded_headers(&upstream_request.headers, keep_authorization)
        {
            upstream_request.remove_header(&name);
        }
        if let Some(value) = auth::upgrade_connection_value(&session.req_header().headers) {
            upstream_request.insert_header(http::header::CONNECTION, value)?;
        }
        if let Some(identity) = &ctx.identity {
            // A client acting for itself (client_credentials) has no user:
            // the upstream then sees X-Client-Id and no X-User-Id.
            if let Some(user_id) = &identity.user_id {
                upstream_request.insert_header("X-User-Id", user_id.as_str())?;
            }
            upstream_request.insert_header("X-Client-Id", identity.client_id.as_str())?;
            if !identity.scope.is_empty() {
                upstream_request.insert_header("X-Scope", identity.scope.as_str())?;
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        _ctx: &mut RequestContext,
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
            if let Err(write_error) = respond::send(session, reply).await {
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
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        let route = route_label(&self.state, ctx.destination);
        metrics::request_done(route, status, elapsed.as_secs_f64());
        let request = session.req_header();
        // The path without its query: queries can carry credentials.
        tracing::info!(
            target: "portcullis::access",
            method = %request.method,
            path = request.uri.path(),
            status,
            duration = %format_args!("{:.3}ms", elapsed.as_secs_f64() * 1000.0),
            route,
            user_id = ctx.identity.as_ref().and_then(|r| r.user_id.as_deref()).unwrap_or("-"),
            error = error.map(|e| e.etype().as_str()).unwrap_or("-"),
        );
    }

    /// Pingora's own error lines describe the request with this: the path
    /// only, as in the access log, since queries can carry credentials.
    fn request_summary(&self, session: &Session, _ctx: &RequestContext) -> String {
        let request = session.req_header();
        format!("{} {}", request.method, request.uri.path())
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestContext, error: &Error) -> bool {
        // Upstream failures are already in the access log line with status
        // 502; Pingora's own ERROR line would repeat it.
        matches!(error.esource(), ErrorSource::Upstream)
    }
}
