//! Reading a request body the gateway answers itself (OAuth endpoints,
//! management API): whole, and never more than a limit.

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use crate::respond::Reply;

/// The whole request body, or a 413 once it passes `limit` bytes. The
/// declared Content-Length is checked first so an oversized body is refused
/// before any of it is read.
pub async fn read_body_capped(session: &mut Session, limit: usize) -> Result<Bytes, Reply> {
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
                tracing::debug!(%error, "could not read the request body");
                session.set_keepalive(None);
                return Err(Reply::error(
                    400,
                    "invalid_request",
                    "the request body could not be read",
                ));
            }
        }
    }
}
