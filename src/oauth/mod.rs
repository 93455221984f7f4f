//! The authorization server: what portcullis answers under `/oauth`.
//!
//! - [`form`]: the token request body (pure).
//! - [`http`]: method, content type and body limits of the token endpoint.
//! - [`token`]: the token endpoint's grants (RFC 6749 §4.3 password, §6
//!   refresh_token), independent of HTTP: it takes a parsed form and returns
//!   a [`crate::respond::Reply`].

pub mod form;
pub mod http;
pub mod token;

use crate::respond::Reply;

/// An RFC 6749 §5.2 error: a code from the RFC's closed list and a
/// human-readable description. `description` never contains a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: u16, code: &'static str, description: &str) -> Self {
        OAuthError {
            status,
            code,
            description: description.to_string(),
        }
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new(400, "invalid_request", description)
    }

    /// 401: client authentication failed (unknown client).
    pub fn invalid_client(description: &str) -> Self {
        Self::new(401, "invalid_client", description)
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
        let reply = Reply::error(self.status, self.code, &self.description).no_store();
        if self.status == 503 {
            reply.with_header(
                "retry-after",
                crate::respond::RETRY_AFTER_SECONDS.to_string(),
            )
        } else {
            reply
        }
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
    }
}
