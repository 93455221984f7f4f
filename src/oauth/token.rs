//! The token endpoint's grants: RFC 6749 §4.3 (password) and §6
//! (refresh_token), answered per §5.1 and §5.2.
//!
//! Security choices, each a Flask-Sentinel flaw fixed:
//! - an unknown username runs bcrypt against a decoy hash, so it costs the
//!   same time as a wrong password and usernames cannot be probed;
//! - a disabled user gets the same `invalid_grant` as a wrong password;
//! - refresh tokens are single-use (rotation): the old one is gone before the
//!   new pair exists, so two concurrent exchanges cannot both succeed;
//! - each login gets its own pair: logging in on one device does not log out
//!   another.

use std::time::Duration;

use serde::Serialize;

use super::form::Form;
use super::OAuthError;
use crate::metrics;
use crate::password::{PasswordError, PasswordHasher};
use crate::respond::Reply;
use crate::store::{Store, StoreError};
use crate::tokens::{
    unix_now, AccessRecord, IssuedTokens, RawToken, RefreshRecord, TokenStore, TokenStoreError,
};

/// What the token endpoint needs from the gateway.
pub struct TokenService<'a> {
    pub store: &'a Store,
    pub tokens: &'a TokenStore,
    pub hasher: &'a PasswordHasher,
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        tracing::warn!(%error, "user store error at the token endpoint");
        OAuthError::temporarily_unavailable("the user store is unavailable; retry shortly")
    }
}

impl From<TokenStoreError> for OAuthError {
    fn from(error: TokenStoreError) -> Self {
        tracing::warn!(%error, "token store error at the token endpoint");
        OAuthError::temporarily_unavailable("the token store is unavailable; retry shortly")
    }
}

impl From<PasswordError> for OAuthError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Busy => {
                OAuthError::temporarily_unavailable("too many sign-ins in progress; retry shortly")
            }
            PasswordError::Failed(reason) => {
                tracing::error!(%reason, "password check failed");
                OAuthError::server_error("the password check failed")
            }
        }
    }
}

impl TokenService<'_> {
    /// Answers one token request whose body is `form`.
    pub async fn handle(&self, form: &Form) -> Reply {
        match self.grant(form).await {
            Ok(response) => Reply::json(200, &response).no_store(),
            Err(error) => error.into_reply(),
        }
    }

    async fn grant(&self, form: &Form) -> Result<TokenResponse, OAuthError> {
        let grant_type = form.require("grant_type")?;
        match grant_type {
            "password" => self.password_grant(form).await,
            "refresh_token" => self.refresh_grant(form).await,
            _ => Err(OAuthError::unsupported_grant_type(
                "supported grant types: password, refresh_token",
            )),
        }
    }

    /// The client named by `client_id`. Public clients authenticate by id
    /// alone (Flask-Sentinel's model).
    async fn authenticate_client(&self, form: &Form) -> Result<String, OAuthError> {
        let client_id = form.require("client_id")?;
        match self.store.find_client(client_id).await? {
            Some(client) => Ok(client.client_id),
            None => Err(OAuthError::invalid_client("unknown client")),
        }
    }

    async fn password_grant(&self, form: &Form) -> Result<TokenResponse, OAuthError> {
        let client_id = self.authenticate_client(form).await?;
        let username = form.require("username")?;
        let password = form.require("password")?;
        let scope = granted_scope(form.get("scope"))?;

        let user = self.store.find_user_by_username(username).await?;
        let matched = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let user = match user {
            Some(user) if matched && !user.disabled => user,
            _ => {
                metrics::auth_failure("wrong_password");
                return Err(OAuthError::invalid_grant(
                    "the username or password is wrong",
                ));
            }
        };
        self.issue("password", user.id, client_id, scope).await
    }

    async fn refresh_grant(&self, form: &Form) -> Result<TokenResponse, OAuthError> {
        let client_id = self.authenticate_client(form).await?;
        let presented = RawToken::from_client(form.require("refresh_token")?);
        let requested_scope = form.get("scope");
        let record = self
            .tokens
            .take_refresh(&presented.digest())
            .await?
            .ok_or_else(|| {
                metrics::auth_failure("bad_refresh_token");
                OAuthError::invalid_grant("the refresh token is unknown, expired or already used")
            })?;
        if record.client_id != client_id {
            metrics::auth_failure("bad_refresh_token");
            return Err(OAuthError::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        // §6: a requested scope must not exceed the original grant.
        let scope = match requested_scope {
            Some(requested) if !scope_is_subset(requested, &record.scope) => {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the scope originally granted",
                ))
            }
            Some(requested) => normalize_scope(requested),
            None => record.scope.clone(),
        };
        let user = self.store.find_user_by_id(&record.user_id).await?;
        match user {
            Some(user) if !user.disabled => {
                self.issue("refresh_token", user.id, client_id, scope).await
            }
            _ => Err(OAuthError::invalid_grant(
                "the user no longer exists or is disabled",
            )),
        }
    }

    async fn issue(
        &self,
        grant: &'static str,
        user_id: String,
        client_id: String,
        scope: String,
    ) -> Result<TokenResponse, OAuthError> {
        let now = unix_now();
        let issued = IssuedTokens {
            access_token: RawToken::generate(),
            refresh_token: Some(RawToken::generate()),
            access: AccessRecord {
                user_id: Some(user_id.clone()),
                client_id: client_id.clone(),
                scope: scope.clone(),
                expires_at: now + self.access_lifetime.as_secs(),
            },
            refresh: Some(RefreshRecord {
                user_id,
                client_id,
                scope: scope.clone(),
                expires_at: now + self.refresh_lifetime.as_secs(),
            }),
            access_lifetime: self.access_lifetime,
            refresh_lifetime: self.refresh_lifetime,
        };
        self.tokens.save(&issued).await?;
        metrics::token_issued(grant);
        Ok(TokenResponse {
            access_token: issued.access_token.as_str().to_string(),
            token_type: "Bearer",
            expires_in: self.access_lifetime.as_secs(),
            refresh_token: issued.refresh_token.map(|t| t.as_str().to_string()),
            scope,
        })
    }
}

/// Clients have no scopes yet, so any requested scope is unknown
/// (§5.2 `invalid_scope`); none requested grants the empty scope.
fn granted_scope(requested: Option<&str>) -> Result<String, OAuthError> {
    match requested.map(normalize_scope) {
        None => Ok(String::new()),
        Some(scope) if scope.is_empty() => Ok(String::new()),
        Some(scope) => Err(OAuthError::invalid_scope(&format!(
            "unknown scope `{}`",
            scope.split(' ').next().unwrap_or_default()
        ))),
    }
}

/// Space-separated, deduplicated, sorted (RFC 6749 §3.3: order does not
/// matter).
pub fn normalize_scope(scope: &str) -> String {
    let mut parts: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    parts.sort_unstable();
    parts.dedup();
    parts.join(" ")
}

pub fn scope_is_subset(requested: &str, granted: &str) -> bool {
    let granted: Vec<&str> = granted.split(' ').collect();
    requested
        .split(' ')
        .filter(|s| !s.is_empty())
        .all(|s| granted.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(normalize_scope("b a  b"), "a b");
        assert_eq!(normalize_scope(""), "");
        assert!(scope_is_subset("a", "a b"));
        assert!(scope_is_subset("", ""));
        assert!(!scope_is_subset("c", "a b"));
        assert!(!scope_is_subset("a", ""));
        assert_eq!(granted_scope(None).unwrap(), "");
        assert_eq!(granted_scope(Some("  ")).unwrap(), "");
        assert_eq!(
            granted_scope(Some("read")).unwrap_err().code,
            "invalid_scope"
        );
    }
}
