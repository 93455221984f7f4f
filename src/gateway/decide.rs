//! The one reading of a request: its Host and target checked, then routed.
//! A request the checks refuse, or whose path some upstream would read as
//! a stricter route, is answered 400 here and never reaches a route.

use http::HeaderValue;
use pingora::http::RequestHeader;

use super::RequestContext;
use crate::request_target::{self, CheckedTarget, TargetProblem};
use crate::respond::Reply;
use crate::route::{host_for_matching, Ambiguous, Destination, Router};

/// Where the request goes: its checked target routed, or why it is refused
/// (where it went for the metrics, and the 400). Sets the context's
/// rewritten target.
pub(super) fn decide(
    router: &Router,
    request: &RequestHeader,
    ctx: &mut RequestContext,
) -> Result<Destination, (Destination, Reply)> {
    let (host, checked) = check_request(request).map_err(|problem| {
        let reply = Reply::error(400, "invalid_request", problem.description());
        (Destination::InvalidPath, reply)
    })?;
    if checked == CheckedTarget::Asterisk {
        return Ok(Destination::ServerOptions);
    }
    let host = host.map(host_for_matching);
    let routed = router.route(host.as_deref(), checked.path());
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

/// Checks the request's Host and target: the one reading the gateway acts
/// on (the Host, if the request has one, and the target), or the problem
/// that refuses it.
fn check_request(
    request: &RequestHeader,
) -> Result<(Option<&str>, CheckedTarget<'_>), TargetProblem> {
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
    let target = request_target::check_target(
        request.raw_path(),
        request.method == http::Method::OPTIONS,
        host,
    )?;
    Ok((host, target))
}

/// `OPTIONS *` (RFC 9110 §9.3.7): a question about the server, answered by
/// the gateway, since no route owns `*`.
pub(super) fn server_options() -> Reply {
    Reply {
        status: 204,
        headers: vec![(
            "allow",
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".into(),
        )],
        body: bytes::Bytes::new(),
    }
}
