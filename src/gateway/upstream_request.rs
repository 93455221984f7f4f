//! Exactly what the upstream receives: the checked target, the client's
//! headers minus every header the gateway owns, and ours (identity,
//! forwarding, request id). This edits Pingora's upstream copy of the
//! request, made after `request_filter`, so nothing the client sent in a
//! header we own survives it.

use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

use super::RequestContext;
use crate::auth;
use crate::config::ServerConfig;
use crate::forwarding::{self, Hop};
use crate::owned_headers::OwnedHeader;
use crate::request_target;
use crate::route::Route;

pub(super) fn prepare(
    session: &Session,
    upstream_request: &mut RequestHeader,
    ctx: &RequestContext,
    route: &Route,
    server: &ServerConfig,
) -> Result<()> {
    let downstream = session.req_header();
    // Exactly the target that was checked and routed on, with the route's
    // prefix removed or replaced if it says so.
    let target = route.upstream_target(ctx.target(downstream));
    if upstream_request.raw_path() != &*target {
        upstream_request.set_uri(origin_form_uri(&upstream_request.uri, &target)?);
    }
    let edit =
        auth::sanitize_forwarded_headers(&upstream_request.headers, route.forward_authorization);
    for name in &edit.remove {
        upstream_request.remove_header(name);
    }
    if edit.upgrade {
        upstream_request.insert_header(http::header::CONNECTION, "upgrade")?;
    } else if server.upstream_keepalive_pool_size == 0 {
        // A pool of 0 keeps no connection. Pingora 0.9.1 alone would still
        // reuse them: its pool evicts a connection it is handed before it
        // stores it (pingora-pool `ConnectionPool::put`), so with room for
        // none the connection stays. Pingora never pools a connection whose
        // request said `close`.
        upstream_request.insert_header(http::header::CONNECTION, "close")?;
    }
    let mut set = |header: OwnedHeader, value: HeaderValue| {
        upstream_request.insert_header(header.name(), value)
    };
    if let Some(prefix) = route.removed_prefix(ctx.target(downstream)) {
        // What the upstream's links must start with: the prefix as the
        // client sent it (Spring, ASP.NET and others read this header).
        let prefix = String::from_utf8_lossy(prefix);
        set(OwnedHeader::ForwardedPrefix, header_value(&prefix)?)?;
    }
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
        proto: if super::context::is_tls(session) {
            "https"
        } else {
            "http"
        },
        host: request_target::request_host(downstream),
    };
    let values = forwarding::forwarding_values(&downstream.headers, &hop, server.forwarded_header);
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
