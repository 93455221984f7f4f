//! The HTTP side of the OAuth endpoints: method, content type and a bounded
//! form body, then hand the parsed form to the endpoint's logic.

use std::net::IpAddr;

use pingora::proxy::Session;

use super::form::{is_form_content_type, Form};
use super::token::TokenService;
use super::{OAuthEndpoints, OAuthError};
use crate::request_target;
use crate::respond::Reply;
use crate::route::Destination;

/// Answers a request to one of the form-posting endpoints (token,
/// revocation, introspection) or the metadata document, from
/// `client_address` (for the lockout).
pub async fn oauth_request(
    session: &mut Session,
    state: &OAuthEndpoints<'_>,
    destination: Destination,
    client_address: IpAddr,
) -> Reply {
    if destination == Destination::MetadataEndpoint {
        return metadata_request(session, state);
    }
    let form = match read_form(session, state.max_body_bytes).await {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let authorization = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authorization = authorization.as_deref();
    match destination {
        Destination::RevokeEndpoint => {
            super::revoke::revoke(state.store, state.tokens, &form, authorization).await
        }
        Destination::IntrospectEndpoint => {
            super::introspect::introspect(state.store, state.tokens, &form, authorization).await
        }
        _ => {
            TokenService {
                oauth: state,
                client_address,
            }
            .handle(&form, authorization)
            .await
        }
    }
}

fn metadata_request(session: &Session, state: &OAuthEndpoints<'_>) -> Reply {
    let request = session.req_header();
    if request.method != http::Method::GET && request.method != http::Method::HEAD {
        return OAuthError::invalid_request("the metadata document is read with GET")
            .into_reply()
            .with_status(405)
            .with_header("allow", "GET, HEAD");
    }
    let host = request_target::request_host(request);
    super::metadata::metadata(state.config, host, state.route_scopes)
}

/// A POSTed `application/x-www-form-urlencoded` body, or the reply refusing
/// it (405, 400, 413).
async fn read_form(session: &mut Session, limit: usize) -> Result<Form, Reply> {
    if session.req_header().method != http::Method::POST {
        return Err(
            OAuthError::invalid_request("this endpoint accepts POST only")
                .into_reply()
                .with_status(405)
                .with_header("allow", "POST"),
        );
    }
    let content_type = session
        .req_header()
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_form_content_type(content_type) {
        return Err(OAuthError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        )
        .into_reply());
    }
    let body = crate::body::read_body_capped(session, limit).await?;
    Form::parse(&body).map_err(OAuthError::into_reply)
}
