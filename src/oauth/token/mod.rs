//! The token endpoint's grants: RFC 6749 §4.3 (password), §4.4
//! (client_credentials) and §6 (refresh_token), answered per §5.1 and §5.2.
//!
//! Security choices, each a Flask-Sentinel flaw fixed:
//! - an unknown username runs bcrypt against a decoy hash, so it costs the
//!   same time as a wrong password and usernames cannot be probed;
//! - failed sign-ins lock the username and the client address for a growing
//!   time, in the shared token backend, before bcrypt ever runs;
//! - each login is its own session (refresh-token family): logging in on one
//!   device does not log out another;
//! - refresh tokens rotate on every use; presenting a rotated one again
//!   revokes the whole family (RFC 9700 §4.14.2), except a retry within the
//!   grace window, which gets the same new pair.

mod password;
mod refresh;
mod scope;

pub use scope::{normalize_scope, resolve_scope, scope_is_subset, scope_within};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::client_auth::{authenticate_client, presented_client};
use super::form::Form;
use super::{retry_pair, OAuthEndpoints, OAuthError};
use crate::lockout::{LockoutError, Subject};
use crate::metrics::{self, AuthFailure};
use crate::password::PasswordError;
use crate::rate_limit::{Bucket, RateLimitError};
use crate::respond::Reply;
use crate::sessions::{self, Generations};
use crate::store::{Client, GrantType, Session, Store, StoreError, User};
use crate::tokens::{unix_now, AccessRecord, RawToken, TokenStoreError};

/// One token request: the endpoints' view of the state, and who asked.
pub struct TokenService<'a> {
    pub oauth: &'a OAuthEndpoints<'a>,
    /// The client's address, for per-address lockout.
    pub client_address: IpAddr,
}

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        tracing::warn!(%error, "user store error at an OAuth endpoint");
        OAuthError::temporarily_unavailable("the user store is unavailable; retry shortly")
    }
}

impl From<TokenStoreError> for OAuthError {
    fn from(error: TokenStoreError) -> Self {
        tracing::warn!(%error, "token store error at an OAuth endpoint");
        OAuthError::temporarily_unavailable("the token store is unavailable; retry shortly")
    }
}

impl From<RateLimitError> for OAuthError {
    fn from(error: RateLimitError) -> Self {
        tracing::warn!(%error, "rate-limit store error at the token endpoint");
        OAuthError::temporarily_unavailable("the token store is unavailable; retry shortly")
    }
}

impl From<LockoutError> for OAuthError {
    fn from(error: LockoutError) -> Self {
        tracing::warn!(%error, "lockout store error at the token endpoint");
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

/// The client named and authenticated by the request, or the error.
pub async fn require_client(
    store: &Store,
    authorization: Option<&str>,
    form: &Form,
) -> Result<Client, OAuthError> {
    let presented = presented_client(authorization, form)?
        .ok_or_else(|| OAuthError::invalid_request("the parameter `client_id` is missing"))?;
    authenticate_client(store, &presented).await
}

impl TokenService<'_> {
    /// Answers one token request whose body is `form`.
    pub async fn handle(&self, form: &Form, authorization: Option<&str>) -> Reply {
        match self.grant(form, authorization).await {
            Ok(response) => Reply::json(200, &response).no_store(),
            Err(error) => error.into_reply(),
        }
    }

    async fn grant(
        &self,
        form: &Form,
        authorization: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = form.require("grant_type")?;
        let grant = GrantType::parse(grant_type).ok_or_else(|| {
            OAuthError::unsupported_grant_type(&format!(
                "supported grant types: {}",
                GrantType::names()
            ))
        })?;
        let client = require_client(self.oauth.store, authorization, form).await?;
        // client_credentials needs a secret to mean anything: a public
        // client never gets it, whatever its record says.
        let public_machine = grant == GrantType::ClientCredentials
            && client.client_type == crate::store::ClientType::Public;
        if public_machine || !client.allowed_grants.contains(&grant) {
            return Err(OAuthError::unauthorized_client(&format!(
                "this client may not use the {grant_type} grant"
            )));
        }
        if grant == GrantType::ClientCredentials {
            // The client proved its secret: count it now. A refresh is
            // counted once its token checked out (see refresh_grant), or
            // anyone who knows a public client_id could spend its limit.
            self.check_rate_limit(grant, &client).await?;
        }
        match grant {
            GrantType::Password => self.password_grant(&client, form).await,
            GrantType::RefreshToken => self.refresh_grant(&client, form).await,
            GrantType::ClientCredentials => self.client_credentials_grant(&client, form).await,
        }
    }

    /// Refresh and client_credentials grants cost the server no bcrypt, so
    /// nothing else slows a client that calls them in a loop.
    pub(super) async fn check_rate_limit(
        &self,
        grant: GrantType,
        client: &Client,
    ) -> Result<(), OAuthError> {
        let limits = self.oauth.config.rate_limit;
        let limit = match grant {
            GrantType::Password => return Ok(()),
            GrantType::RefreshToken => limits.refresh_token_per_minute,
            GrantType::ClientCredentials => limits.client_credentials_per_minute,
        };
        let bucket = Bucket {
            grant: grant.as_str(),
            client_id: &client.client_id,
        };
        if let Some(wait) = self.oauth.rate_limiter.check(bucket, limit).await? {
            metrics::auth_failure(AuthFailure::RateLimited);
            // Rounded up: a client told 37 s with 37.9 s left would retry
            // into another 429.
            return Err(OAuthError::rate_limited(
                grant.as_str(),
                (wait.as_millis() as u64).div_ceil(1000).max(1),
            ));
        }
        Ok(())
    }

    async fn client_credentials_grant(
        &self,
        client: &Client,
        form: &Form,
    ) -> Result<TokenResponse, OAuthError> {
        let scope = resolve_scope(form.get("scope"), &client.allowed_scopes)?;
        let read_before = Generations::of(None, client);
        let now = unix_now();
        let access_token = RawToken::generate();
        let record = AccessRecord {
            user_id: None,
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            expires_at: now + self.oauth.config.access_token_lifetime.as_secs(),
            session_id: None,
            issued_at: now,
        };
        self.oauth
            .tokens
            .save_access(&access_token, &record)
            .await?;
        let store = self.oauth.store;
        if !sessions::issuance_stands(store, None, &client.client_id, read_before, None).await? {
            self.oauth
                .tokens
                .delete_access(&[access_token.digest()])
                .await?;
            return Err(OAuthError::invalid_client(
                "the client was disabled or removed while the token was issued",
            ));
        }
        metrics::token_issued(GrantType::ClientCredentials.as_str());
        // §4.4.3: no refresh token; the client can always ask again.
        Ok(self.response(access_token, None, scope))
    }

    fn response(
        &self,
        access: RawToken,
        refresh: Option<RawToken>,
        scope: String,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access.as_str().to_string(),
            token_type: "Bearer".into(),
            expires_in: self.oauth.config.access_token_lifetime.as_secs(),
            refresh_token: refresh.map(|t| t.as_str().to_string()),
            scope,
        }
    }

    fn access_record(&self, session: &Session, scope: &str, now: u64) -> AccessRecord {
        AccessRecord {
            user_id: Some(session.user_id.clone()),
            client_id: session.client_id.clone(),
            scope: scope.to_string(),
            expires_at: now + self.oauth.config.access_token_lifetime.as_secs(),
            session_id: Some(session.id.clone()),
            issued_at: now,
        }
    }

    /// [`sessions::issuance_stands`] for a session of `user` with `client`.
    async fn session_issuance_stands(
        &self,
        user: &User,
        client: &Client,
        read_before: Generations,
        session: &Session,
    ) -> Result<bool, OAuthError> {
        let store = self.oauth.store;
        let (user_id, client_id) = (Some(user.id.as_str()), client.client_id.as_str());
        Ok(
            sessions::issuance_stands(store, user_id, client_id, read_before, Some(&session.id))
                .await?,
        )
    }

    async fn start_session(
        &self,
        user: &User,
        client: &Client,
        scope: String,
    ) -> Result<TokenResponse, OAuthError> {
        let read_before = Generations::of(Some(user), client);
        let now = unix_now();
        let access_token = RawToken::generate();
        let refresh_token = RawToken::generate();
        let config = self.oauth.config;
        let sliding = config
            .refresh_token_lifetime
            .min(config.session_max_lifetime);
        let mut session = Session {
            id: crate::store::new_session_id(),
            user_id: user.id.clone(),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            created: now,
            last_used: now,
            refresh_digest: refresh_token.digest().to_hex(),
            refresh_expires_at: now + sliding.as_secs(),
            previous_refresh_digest: None,
            retired_refresh_digests: Vec::new(),
            rotated_at: now,
            retry_pair: None,
            access_tokens: Vec::new(),
        };
        let record = self.access_record(&session, &scope, now);
        session
            .access_tokens
            .push((access_token.digest().to_hex(), record.expires_at));
        self.oauth.store.insert_session(&session).await?;
        self.oauth
            .tokens
            .save_access(&access_token, &record)
            .await?;
        let stands = self
            .session_issuance_stands(user, client, read_before, &session)
            .await?;
        if !stands {
            self.revoke_session(&session).await?;
            return Err(OAuthError::invalid_grant(
                "the account changed during sign-in; sign in again",
            ));
        }
        metrics::token_issued(GrantType::Password.as_str());
        Ok(self.response(access_token, Some(refresh_token), scope))
    }
}
