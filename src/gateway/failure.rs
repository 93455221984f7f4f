//! What the client is told when proxying fails, by where the error came
//! from: never Pingora's own text, always the gateway's JSON error. No
//! usable upstream server is 503 with Retry-After, not 502: nothing failed,
//! the request was not sent.

use pingora::prelude::*;

use crate::respond::{self, Reply};
use crate::upstream_pool::NO_HEALTHY_SERVER;

/// The reply for a failed proxy attempt, or `None` when the client's side
/// of the connection is gone and nothing can be written.
pub(super) fn failure_reply(error: &Error) -> Option<Reply> {
    if *error.etype() == ErrorType::Custom(NO_HEALTHY_SERVER) {
        // Nothing was tried: say when to come back, as for our own stores.
        return Some(respond::temporarily_unavailable(
            "no server of this route's upstream is available; retry shortly",
        ));
    }
    if let ErrorType::HTTPStatus(code) = error.etype() {
        return Some(Reply::error(
            *code,
            "request_failed",
            "the request could not be processed",
        ));
    }
    match error.esource() {
        ErrorSource::Upstream => Some(Reply::error(
            502,
            "bad_gateway",
            "the upstream is unreachable or failed",
        )),
        ErrorSource::Downstream => match error.etype() {
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => None,
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
    }
}
