//! The authorization server: what portcullis answers under `/oauth`.
//!
//! - [`form`]: the token request body (pure).
//! - [`client_auth`]: client_secret_basic, client_secret_post, none.
//! - [`revoke`] (RFC 7009), [`introspect`] (RFC 7662), [`metadata`]
//!   (RFC 8414).
//! - [`retry_pair`]: the encrypted pair that makes a refresh retry within
//!   the grace window idempotent.
//! - [`http`]: method, content type and body limits of the token endpoint.
//! - [`token`]: the token endpoint's grants (RFC 6749 §4.3 password, §4.4
//!   client_credentials, §6 refresh_token), independent of HTTP: it takes a
//!   parsed form and returns a [`crate::respond::Reply`].

pub mod client_auth;
pub mod form;
pub mod http;
pub mod introspect;
pub mod metadata;
pub mod retry_pair;
pub mod revoke;
pub mod token;

use crate::config::OAuthConfig;
use crate::lockout::LockoutStore;
use crate::password::PasswordHasher;
use crate::rate_limit::RateLimiter;
use crate::respond::Reply;
use crate::store::Store;
use crate::tokens::TokenStore;

/// What the OAuth endpoints use of the gateway's state, and nothing more.
pub struct OAuthEndpoints<'a> {
    pub store: &'a Store,
    pub tokens: &'a TokenStore,
    pub hasher: &'a PasswordHasher,
    pub lockout: &'a LockoutStore,
    pub rate_limiter: &'a RateLimiter,
    pub config: &'a OAuthConfig,
    /// `server.max_token_request_bytes`.
    pub max_body_bytes: usize,
    /// Every scope a route requires, for the metadata document.
    pub route_scopes: &'a [String],
}

/// An RFC 6749 §5.2 error: a code from the RFC's closed list and a
/// human-readable description. `description` never contains a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
    /// Answer with `WWW-Authenticate: Basic` (client tried HTTP Basic).
    pub basic_challenge: bool,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: u16, code: &'static str, description: &str) -> Self {
        OAuthError {
            status,
            code,
            description: description.to_string(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    pub fn with_basic_challenge(mut self) -> Self {
        self.basic_challenge = true;
        self
    }

    pub fn unauthorized_client(description: &str) -> Self {
        Self::new(400, "unauthorized_client", description)
    }

    /// 429: this username or address is locked after failed sign-ins.
    pub fn locked(retry_after_seconds: u64) -> Self {
        let mut error = Self::new(
            429,
            "temporarily_unavailable",
            &format!(
                "too many failed sign-ins, or attempts in progress; retry in {retry_after_seconds} s"
            ),
        );
        error.retry_after = Some(retry_after_seconds);
        error
    }

    /// 429: this client made more of these grants than its limit allows.
    pub fn rate_limited(grant: &str, retry_after_seconds: u64) -> Self {
        let mut error = Self::new(
            429,
            "temporarily_unavailable",
            &format!("too many {grant} grants for this client; retry in {retry_after_seconds} s"),
        );
        error.retry_after = Some(retry_after_seconds);
        error
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new(400, "invalid_request", description)
    }

    /// 401: client authentication failed. A 401 always names a scheme to
    /// authenticate with (RFC 9110 §15.5.2), so it always carries the
    /// Basic challenge, whichever way the client sent its credentials.
    pub fn invalid_client(description: &str) -> Self {
        Self::new(401, "invalid_client", description).with_basic_challenge()
    }

    /// 403: the client authenticated but may not use this endpoint.
    pub fn forbidden(description: &str) -> Self {
        Self::new(403, "unauthorized_client", description)
    }

    pub fn invalid_grant(description: &str) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    pub fn unsupported_grant_type(description: &str) -> Self {
        Self::new(400, "unsupported_grant_type", description)
    }

    pub fn invalid_scope(description: &str) -> Self {
        Self::new(400, "invalid_scope", description)
    }

    /// 503 with Retry-After: a backend is down or the password pool is full.
    pub fn temporarily_unavailable(description: &str) -> Self {
        Self::new(503, "temporarily_unavailable", description)
    }

    pub fn server_error(description: &str) -> Self {
        Self::new(500, "server_error", description)
    }

    pub fn into_reply(self) -> Reply {
        let mut reply = Reply::error(self.status, self.code, &self.description).no_store();
        let retry_after = match (self.retry_after, self.status) {
            (Some(seconds), _) => Some(seconds),
            (None, 503) => Some(u64::from(crate::respond::RETRY_AFTER_SECONDS)),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            reply = reply.with_header("retry-after", seconds.to_string());
        }
        if self.basic_challenge {
            reply = reply.with_header(
                "www-authenticate",
                format!("Basic realm=\"{}\"", crate::respond::REALM),
            );
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses_follow_rfc_6749_section_5_2() {
        let cases = [
            (OAuthError::invalid_request("x"), 400, "invalid_request"),
            (OAuthError::invalid_client("x"), 401, "invalid_client"),
            (OAuthError::invalid_grant("x"), 400, "invalid_grant"),
            (
                OAuthError::unsupported_grant_type("x"),
                400,
                "unsupported_grant_type",
            ),
            (OAuthError::invalid_scope("x"), 400, "invalid_scope"),
            (
                OAuthError::unauthorized_client("x"),
                400,
                "unauthorized_client",
            ),
            (OAuthError::locked(60), 429, "temporarily_unavailable"),
            (
                OAuthError::temporarily_unavailable("x"),
                503,
                "temporarily_unavailable",
            ),
        ];
        for (error, status, code) in cases {
            let reply = error.into_reply();
            assert_eq!(reply.status, status);
            let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(body["error"], code);
            assert_eq!(reply.header("cache-control"), Some("no-store"));
        }
        let busy = OAuthError::temporarily_unavailable("x").into_reply();
        assert_eq!(busy.header("retry-after"), Some("1"));
        assert_eq!(
            OAuthError::locked(60).into_reply().header("retry-after"),
            Some("60")
        );
        let basic = OAuthError::invalid_client("x")
            .with_basic_challenge()
            .into_reply();
        assert_eq!(
            basic.header("www-authenticate"),
            Some("Basic realm=\"portcullis\"")
        );
    }
}
