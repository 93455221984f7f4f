//! Management: an admin page and a JSON API at `oauth.management_path`.
//!
//! Safe by default, where Flask-Sentinel's page was open to anyone and
//! showed password hashes:
//! - no administrator configured → 404 naming the settings; never open;
//! - HTTP Basic for the administrator, with lockout ([`admin_auth`]);
//! - state-changing requests need a JSON body, a same-origin `Origin` when
//!   one is sent, and from a browser (any request with `Origin`) the page's
//!   CSRF token; a cross-site form can do none of these;
//! - hashes and secrets are never returned (a client secret once, at
//!   creation);
//! - every action is an audit event on target `portcullis::audit`.
//!
//! - [`api`]: the JSON endpoints, independent of HTTP plumbing.
//! - [`page`]: the self-contained page and its security headers.

use crate::admin_auth;
pub mod api;
pub mod page;

use std::net::IpAddr;

use pingora::proxy::Session;

use crate::accounts::Accounts;
use crate::lockout::{LockoutPolicy, LockoutStore};
use crate::request_target;
use crate::respond::Reply;

/// What management uses of the gateway's state, and nothing more.
pub struct Management<'a> {
    /// None: no administrator configured; every path answers 404.
    pub admin: Option<&'a admin_auth::AdminAuth>,
    /// `oauth.management_path`.
    pub base_path: &'a str,
    pub accounts: Accounts<'a>,
    pub lockout: &'a LockoutStore,
    /// Per username, per address.
    pub lockout_policies: [&'a LockoutPolicy; 2],
}

/// Request bodies of the management API are small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub const API_PREFIX: &str = "/api/v1";

fn disabled() -> Reply {
    crate::respond::not_found(
        "management is not enabled: set management.username and management.password_hash in gateway.yaml, \
         or PORTCULLIS_ADMIN_USERNAME and PORTCULLIS_ADMIN_PASSWORD",
    )
}

/// Answers a request for `path` (normalized, under the management path)
/// from `address`.
pub async fn handle(
    session: &mut Session,
    view: &Management<'_>,
    path: &str,
    address: IpAddr,
) -> Reply {
    let Some(admin) = view.admin else {
        return disabled();
    };
    let rest = path.strip_prefix(view.base_path).unwrap_or_default();
    let method = session.req_header().method.clone();

    if rest.is_empty() || rest == "/" {
        return page::page(&method);
    }
    let Some(endpoint) = rest.strip_prefix(API_PREFIX) else {
        return crate::respond::not_found("no such management page");
    };

    let headers = session.req_header().headers.clone();
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(reply) = admin
        .check(
            authorization,
            address,
            view.accounts.hasher,
            view.lockout,
            view.lockout_policies,
        )
        .await
    {
        return reply;
    }

    let mutating = !matches!(method, http::Method::GET | http::Method::HEAD);
    let body = if mutating {
        let host = request_target::request_host(session.req_header()).unwrap_or_default();
        if let Err(reply) = check_same_origin(&headers, host, admin) {
            return reply;
        }
        match crate::body::read_body_capped(session, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(reply) => return reply,
        }
    } else {
        bytes::Bytes::new()
    };
    let request = api_request(session, method, endpoint, body, admin.username(), address);
    api::Api {
        accounts: &view.accounts,
        admin: Some(admin),
    }
    .handle(request)
    .await
}

/// Who the audit log names for changes made through the control socket.
pub const CONTROL_ACTOR: &str = "control-socket";

/// Answers a request on the control socket: the JSON API at `path`
/// (`/api/v1/…`), with no sign-in and no browser defences. Opening the
/// socket (mode 0600, in `data_dir`) is the credential, and no browser
/// can reach a Unix socket. Served whether or not an administrator is
/// configured: the CLI works on every deployment.
pub async fn handle_control(session: &mut Session, view: &Management<'_>, path: &str) -> Reply {
    let Some(endpoint) = path.strip_prefix(API_PREFIX) else {
        return crate::respond::not_found("the control socket serves the management API only");
    };
    let method = session.req_header().method.clone();
    let body = if matches!(method, http::Method::GET | http::Method::HEAD) {
        bytes::Bytes::new()
    } else {
        match crate::body::read_body_capped(session, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(reply) => return reply,
        }
    };
    let nowhere = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
    let request = api_request(session, method, endpoint, body, CONTROL_ACTOR, nowhere);
    api::Api {
        accounts: &view.accounts,
        admin: view.admin,
    }
    .handle(request)
    .await
}

/// The API's view of one request: what was asked, by whom, from where.
fn api_request(
    session: &Session,
    method: http::Method,
    endpoint: &str,
    body: bytes::Bytes,
    actor: &str,
    address: IpAddr,
) -> api::ApiRequest {
    api::ApiRequest {
        method,
        endpoint: endpoint.to_string(),
        query: session
            .req_header()
            .uri
            .query()
            .unwrap_or_default()
            .to_string(),
        body,
        actor: actor.to_string(),
        address,
    }
}

/// CSRF defences for POST, PATCH and DELETE (see the module comment).
/// `host` is the request's `Host`, or over HTTP/2 its `:authority`, where
/// browsers send no `Host`.
fn check_same_origin(
    headers: &http::HeaderMap,
    host: &str,
    admin: &admin_auth::AdminAuth,
) -> Result<(), Reply> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let is_json = content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(Reply::error(
            415,
            "invalid_request",
            "send a JSON body with Content-Type: application/json",
        ));
    }
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
        return Err(Reply::error(
            403,
            "forbidden",
            "cross-origin requests are refused",
        ));
    }
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !admin.csrf_token_matches(token) {
        return Err(Reply::error(
            403,
            "forbidden",
            "missing or wrong X-CSRF-Token (GET api/v1/whoami gives it)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdminCredentials, AdminSecret};

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn csrf_rules() {
        let key =
            admin_auth::CsrfKey::load(Some(&"k".repeat(32)), std::path::Path::new(".")).unwrap();
        let admin = admin_auth::AdminAuth::new(
            &AdminCredentials {
                username: "admin".into(),
                secret: AdminSecret::BcryptHash("$2b$04$x".into()),
            },
            4,
            &key,
        )
        .unwrap();
        let token = admin.csrf_token().to_string();
        let status_at = |host: &str, pairs: &[(&'static str, &str)]| {
            check_same_origin(&headers(pairs), host, &admin)
                .err()
                .map(|r| r.status)
        };
        let status = |pairs: &[(&'static str, &str)]| status_at("gw.example:8443", pairs);
        let json = ("content-type", "application/json");
        assert_eq!(status(&[json]), None, "no Origin: not a browser");
        assert_eq!(
            status(&[("content-type", "application/x-www-form-urlencoded")]),
            Some(415)
        );
        assert_eq!(status(&[("content-type", "text/plain")]), Some(415));
        assert_eq!(
            status(&[json, ("origin", "https://evil.example")]),
            Some(403)
        );
        assert_eq!(
            status(&[json, ("origin", "https://gw.example:8443")]),
            Some(403),
            "no token"
        );
        let same_origin = [
            json,
            ("origin", "https://gw.example:8443"),
            ("x-csrf-token", &token),
        ];
        assert_eq!(status(&same_origin), None);
        assert_eq!(
            status_at("", &same_origin),
            Some(403),
            "no host to compare with"
        );
        assert_eq!(
            status(&[json, ("origin", "null"), ("x-csrf-token", &token)]),
            Some(403)
        );
    }
}
