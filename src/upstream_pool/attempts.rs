//! One request's dealings with its upstream, kept in the gateway's request
//! context: the server it is on, the servers that failed it, its retries.
//! And the rule of when a failed attempt is tried again.

use std::net::SocketAddr;

use pingora::{Error, ErrorSource, ErrorType, RetryType};

use super::server::InFlight;

/// Per request; starts empty. Dropping it ends the in-flight count.
#[derive(Default)]
pub struct Attempts {
    /// The server the request is on now.
    pub(super) current: Option<InFlight>,
    /// Servers that failed this request: not chosen for it again.
    pub(super) failed: Vec<SocketAddr>,
    /// Retries after (part of) the request was sent.
    pub(super) retries: u32,
    /// A response head arrived: the client may have seen bytes, no retry.
    pub(super) responded: bool,
}

impl Attempts {
    /// The server of the current attempt, if any (for logs).
    pub fn server(&self) -> Option<SocketAddr> {
        self.current.as_ref().map(InFlight::address)
    }
}

/// An error after the connection was made: while sending the request or
/// waiting for or reading the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SentFailure {
    /// The upstream's side failed, not the client's.
    pub upstream_side: bool,
    /// The connection broke (reset, closed), as opposed to a timeout or a
    /// malformed response, which a second try would likely repeat.
    pub broken: bool,
    /// It broke on a pooled connection the upstream had already closed:
    /// says nothing about the server, and is what keepalive races look like.
    pub stale_connection: bool,
    pub responded: bool,
    /// The method is idempotent and the body (if any) is still buffered.
    pub replayable: bool,
    pub retries_left: bool,
}

impl SentFailure {
    /// Reads Pingora's error. Resolves its "retry only if reused" mark,
    /// which must be decided before the error goes on.
    pub fn of(
        error: &mut Error,
        reused: bool,
        responded: bool,
        replayable: bool,
        retries_left: bool,
    ) -> Self {
        let stale_connection = reused && error.retry == RetryType::ReusedOnly;
        error.retry.decide_reuse(reused);
        let broken = error.retry()
            || matches!(
                error.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            );
        SentFailure {
            upstream_side: *error.esource() == ErrorSource::Upstream,
            broken,
            stale_connection,
            responded,
            replayable,
            retries_left,
        }
    }

    /// Counts toward the server's passive ejection.
    pub fn counts_against_server(&self) -> bool {
        self.upstream_side && !self.stale_connection
    }

    /// May be sent again (to another server when there is one): never once
    /// a response began, never a request that is not safe to repeat.
    pub fn retry(&self) -> bool {
        self.upstream_side && self.broken && !self.responded && self.replayable && self.retries_left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(etype: ErrorType, retry: RetryType, source: ErrorSource) -> Box<Error> {
        let mut error = Error::new(etype);
        error.retry = retry;
        error.esource = source;
        error
    }

    #[test]
    fn when_a_sent_request_is_retried() {
        use ErrorSource::{Downstream, Upstream};
        use ErrorType::*;
        let reused_only = RetryType::ReusedOnly;
        let no = RetryType::Decided(false);
        // (error type, Pingora's mark, source, reused, responded, replayable,
        //  retries left) → (retry, counts against the server)
        #[rustfmt::skip]
        let cases = [
            ("reset on a fresh connection", ConnectionClosed, reused_only, Upstream, false, false, true, true, true, true),
            ("reset on a stale pooled connection", ConnectionClosed, reused_only, Upstream, true, false, true, true, true, false),
            ("read error", ReadError, no, Upstream, false, false, true, true, true, true),
            ("write error", WriteError, no, Upstream, false, false, true, true, true, true),
            ("not idempotent (POST)", ConnectionClosed, reused_only, Upstream, false, false, false, true, false, true),
            ("no retries left", ConnectionClosed, reused_only, Upstream, false, false, true, false, false, true),
            ("after the response began", ConnectionClosed, no, Upstream, false, true, true, true, false, true),
            ("a read timeout", ReadTimedout, no, Upstream, false, false, true, true, false, true),
            ("a malformed response", InvalidHTTPHeader, no, Upstream, false, false, true, true, false, true),
            ("the client went away", ConnectionClosed, no, Downstream, false, false, true, true, false, false),
        ];
        for (name, etype, mark, source, reused, responded, replayable, left, retry, counts) in cases
        {
            let mut error = failure(etype, mark, source);
            let seen = SentFailure::of(&mut error, reused, responded, replayable, left);
            assert_eq!(seen.retry(), retry, "{name}: retry");
            assert_eq!(seen.counts_against_server(), counts, "{name}: counts");
            // Decided either way: Pingora panics on an undecided mark.
            assert!(matches!(error.retry, RetryType::Decided(_)), "{name}");
        }
    }
}
