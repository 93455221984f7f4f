//! The HTTP side of the token endpoint: method, content type and a bounded
//! body, then hand the parsed form to [`super::token::TokenService`].

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use super::form::{is_form_content_type, Form};
use super::token::TokenService;
use super::OAuthError;
use crate::app::AppState;
use crate::respond::Reply;

/// Answers a request to the token endpoint.
pub async fn token_request(session: &mut Session, state: &AppState) -> Reply {
    if session.req_header().method != http::Method::POST {
        return OAuthError::invalid_request("the token endpoint accepts POST only")
            .into_reply()
            .with_status(405)
            .with_header("allow", "POST");
    }
    let content_type = session
        .req_header()
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_form_content_type(content_type) {
        return OAuthError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        )
        .into_reply();
    }
    let body = match read_body_capped(session, state.config.server.max_token_request_bytes).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let form = match Form::parse(&body) {
        Ok(form) => form,
        Err(error) => return error.into_reply(),
    };
    TokenService {
        store: &state.store,
        tokens: &state.tokens,
        hasher: &state.hasher,
        access_lifetime: state.config.oauth.access_token_lifetime,
        refresh_lifetime: state.config.oauth.refresh_token_lifetime,
    }
    .handle(&form)
    .await
}

/// The whole request body, or a 413 once it passes `limit` bytes. The
/// declared Content-Length is checked first so an oversized body is refused
/// before any of it is read.
async fn read_body_capped(session: &mut Session, limit: usize) -> Result<Bytes, Reply> {
    let too_large = || {
        Reply::error(
            413,
            "invalid_request",
            &format!("the request body is larger than {limit} bytes"),
        )
        .no_store()
    };
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        // The body is left unread: the connection cannot be reused.
        session.set_keepalive(None);
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    session.set_keepalive(None);
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(error) => {
                tracing::debug!(%error, "could not read the token request body");
                session.set_keepalive(None);
                return Err(
                    OAuthError::invalid_request("the request body could not be read").into_reply(),
                );
            }
        }
    }
}
