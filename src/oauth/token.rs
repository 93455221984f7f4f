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
        self.check_rate_limit(grant, &client).await?;
        match grant {
            GrantType::Password => self.password_grant(&client, form).await,
            GrantType::RefreshToken => self.refresh_grant(&client, form).await,
            GrantType::ClientCredentials => self.client_credentials_grant(&client, form).await,
        }
    }

    /// Refresh and client_credentials grants cost the server no bcrypt, so
    /// nothing else slows a client that calls them in a loop.
    async fn check_rate_limit(&self, grant: GrantType, client: &Client) -> Result<(), OAuthError> {
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
            return Err(OAuthError::rate_limited(
                grant.as_str(),
                wait.as_secs().max(1),
            ));
        }
        Ok(())
    }

    async fn password_grant(
        &self,
        client: &Client,
        form: &Form,
    ) -> Result<TokenResponse, OAuthError> {
        let username = form.require("username")?;
        let password = form.require("password")?;
        let scope = resolve_scope(form.get("scope"), &client.allowed_scopes)?;

        let subjects = [
            Subject::Username(username),
            Subject::Address(self.client_address),
        ];
        let policies = [
            &self.oauth.config.lockout,
            &self.oauth.config.address_lockout,
        ];
        // Reserved before bcrypt, in the lockout's own atomic step: however
        // many guesses arrive at once, at most `max_failures` get a bcrypt.
        for (index, (subject, policy)) in subjects.iter().zip(policies).enumerate() {
            let refused = match self.oauth.lockout.reserve(*subject, policy).await {
                Ok(refused) => refused,
                Err(error) => {
                    self.release_attempts(&subjects[..index]).await;
                    return Err(error.into());
                }
            };
            if let Some(wait) = refused {
                self.release_attempts(&subjects[..index]).await;
                metrics::auth_failure(AuthFailure::LockedOut);
                // Rounded up: a client told "1" for 1.9 s would retry too soon.
                return Err(OAuthError::locked(
                    (wait.as_millis() as u64).div_ceil(1000).max(1),
                ));
            }
        }

        let user = match self.check_password(username, password).await {
            Ok(Some(user)) => user,
            Ok(None) => {
                metrics::auth_failure(AuthFailure::WrongPassword);
                for (subject, policy) in subjects.iter().zip(policies) {
                    if let Some(lock) = self.oauth.lockout.record_failure(*subject, policy).await? {
                        let subject = self.oauth.lockout.log_name(*subject).await;
                        tracing::warn!(
                            %subject,
                            lock_seconds = lock.as_secs(),
                            "too many failed sign-ins; locked"
                        );
                    }
                }
                return Err(OAuthError::invalid_grant(
                    "the username or password is wrong",
                ));
            }
            Err(error) => {
                // Neither a failure nor a success: the attempt just ends.
                self.release_attempts(&subjects).await;
                return Err(error);
            }
        };
        self.oauth.lockout.reset(subjects[0]).await?;
        self.oauth.lockout.release(subjects[1]).await?;
        self.start_session(&user, client, scope).await
    }

    /// The user whose password this is, enabled; `None` for a wrong
    /// password, an unknown user or a disabled one (the same answer, after
    /// the same bcrypt, so none of them can be told apart).
    async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, OAuthError> {
        let user = self.oauth.store.find_user_by_username(username).await?;
        let matched = self
            .oauth
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        Ok(user.filter(|user| matched && !user.disabled))
    }

    /// Ends reserved attempts that neither failed nor succeeded. Best
    /// effort: an attempt not released leaves flight by itself after
    /// [`crate::lockout::IN_FLIGHT_TTL`].
    async fn release_attempts(&self, subjects: &[Subject<'_>]) {
        for subject in subjects {
            if let Err(error) = self.oauth.lockout.release(*subject).await {
                tracing::warn!(%error, "could not release a sign-in attempt");
            }
        }
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
        let stands = sessions::issuance_stands(
            self.oauth.store,
            Some(&user.id),
            &client.client_id,
            read_before,
            Some(&session.id),
        )
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

    async fn refresh_grant(
        &self,
        client: &Client,
        form: &Form,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = RawToken::from_client(form.require("refresh_token")?);
        let digest = presented.digest().to_hex();
        let requested_scope = form.get("scope");
        // Two attempts: a lost compare-and-swap means a concurrent refresh
        // with the same token won; the second pass sees it as a retry.
        for _ in 0..2 {
            let session = self
                .oauth
                .store
                .find_session_by_refresh(&digest)
                .await?
                .filter(|s| s.client_id == client.client_id)
                .ok_or_else(|| {
                    metrics::auth_failure(AuthFailure::BadRefreshToken);
                    OAuthError::invalid_grant("the refresh token is unknown, expired or revoked")
                })?;
            if session.refresh_digest != digest {
                return self.reused_refresh_token(&session, &presented).await;
            }
            if let Some(rotated) = self
                .rotate(client, session, &presented, requested_scope)
                .await?
            {
                return Ok(rotated);
            }
        }
        Err(OAuthError::temporarily_unavailable(
            "the refresh token is being used concurrently; retry",
        ))
    }

    /// Rotates the session's refresh token. `Ok(None)` when a concurrent
    /// rotation won the race.
    async fn rotate(
        &self,
        client: &Client,
        session: Session,
        presented: &RawToken,
        requested_scope: Option<&str>,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let now = unix_now();
        let session_end = sessions::session_end(&session, self.oauth.config.session_max_lifetime);
        if session.refresh_expires_at <= now || session_end <= now {
            self.revoke_session(&session).await?;
            return Err(OAuthError::invalid_grant(
                "the refresh token has expired; sign in again",
            ));
        }
        let user = match self.oauth.store.find_user_by_id(&session.user_id).await? {
            Some(user) if !user.disabled => user,
            _ => {
                self.revoke_session(&session).await?;
                return Err(OAuthError::invalid_grant(
                    "the user no longer exists or is disabled",
                ));
            }
        };
        let read_before = Generations::of(Some(&user), client);
        // §6: a narrower scope may be asked for; the session keeps its own.
        let asked = match requested_scope {
            Some(requested) if !scope_is_subset(requested, &session.scope) => {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the scope originally granted",
                ))
            }
            Some(requested) => normalize_scope(requested),
            None => session.scope.clone(),
        };
        // And never more than the client may have now: narrowing a client
        // takes effect at its sessions' next refresh.
        let scope = scope_within(&asked, &client.allowed_scopes);

        let access_token = RawToken::generate();
        let refresh_token = RawToken::generate();
        let record = self.access_record(&session, &scope, now);
        let response = self.response(access_token.clone(), Some(refresh_token.clone()), scope);
        let sealed = retry_pair::seal(
            presented.as_str(),
            &serde_json::to_vec(&response).expect("responses serialize"),
        );
        let (rotated, dropped) = sessions::rotated(
            &session,
            sessions::Rotation {
                now,
                refresh_lifetime: self.oauth.config.refresh_token_lifetime,
                session_end,
                refresh: refresh_token.digest(),
                access: (access_token.digest(), record.expires_at),
                retry_pair: sealed,
            },
        );

        if !self
            .oauth
            .store
            .replace_session(&rotated, &session.refresh_digest)
            .await?
        {
            return Ok(None);
        }
        let tokens = self.oauth.tokens;
        tokens.delete_access(&dropped).await?;
        tokens.save_access(&access_token, &record).await?;
        let stands = sessions::issuance_stands(
            self.oauth.store,
            Some(&user.id),
            &client.client_id,
            read_before,
            Some(&session.id),
        )
        .await?;
        if !stands {
            // Revoked while rotating: the revocation may have listed the
            // session before this token joined it.
            tokens.delete_access(&[access_token.digest()]).await?;
            self.revoke_session(&rotated).await?;
            return Err(OAuthError::invalid_grant(
                "the session was revoked during the refresh; sign in again",
            ));
        }
        metrics::token_issued(GrantType::RefreshToken.as_str());
        Ok(Some(response))
    }

    /// The presented token is one the session rotated away: the latest one,
    /// retried within the grace window, gets the pair already issued;
    /// anything else is treated as theft and the whole family is revoked.
    async fn reused_refresh_token(
        &self,
        session: &Session,
        presented: &RawToken,
    ) -> Result<TokenResponse, OAuthError> {
        let within_grace = sessions::is_retry_within_grace(
            session,
            &presented.digest(),
            unix_now(),
            self.oauth.config.refresh_grace,
        );
        let retried = session
            .retry_pair
            .as_deref()
            .filter(|_| within_grace)
            .and_then(|sealed| retry_pair::open(presented.as_str(), sealed))
            .and_then(|bytes| serde_json::from_slice::<TokenResponse>(&bytes).ok());
        if let Some(response) = retried {
            return Ok(response);
        }
        metrics::auth_failure(AuthFailure::RefreshTokenReuse);
        tracing::warn!(
            session = %session.id,
            user_id = %session.user_id,
            client_id = %session.client_id,
            "a rotated refresh token was presented again; revoking the session"
        );
        self.revoke_session(session).await?;
        Err(OAuthError::invalid_grant(
            "the refresh token was already used; the session is revoked, sign in again",
        ))
    }

    async fn revoke_session(&self, session: &Session) -> Result<(), OAuthError> {
        sessions::end_session::<OAuthError>(self.oauth.store, self.oauth.tokens, &session.id)
            .await?;
        Ok(())
    }
}

/// The scope to grant: what was asked for, if the client may have all of
/// it (else `invalid_scope`), or everything the client may have when
/// nothing was asked for (RFC 6749 §3.3 lets the server pick a default).
pub fn resolve_scope(requested: Option<&str>, allowed: &[String]) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        let mut all: Vec<&str> = allowed.iter().map(String::as_str).collect();
        all.sort_unstable();
        all.dedup();
        return Ok(all.join(" "));
    };
    let requested = normalize_scope(requested);
    if let Some(unknown) = requested
        .split(' ')
        .find(|s| !s.is_empty() && !allowed.iter().any(|a| a == s))
    {
        return Err(OAuthError::invalid_scope(&format!(
            "the scope `{unknown}` is unknown or not allowed for this client"
        )));
    }
    Ok(requested)
}

/// Space-separated, deduplicated, sorted (RFC 6749 §3.3: order does not
/// matter).
pub fn normalize_scope(scope: &str) -> String {
    let mut parts: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    parts.sort_unstable();
    parts.dedup();
    parts.join(" ")
}

/// The scopes of `scope` that are in `allowed`, in order.
pub fn scope_within(scope: &str, allowed: &[String]) -> String {
    scope
        .split(' ')
        .filter(|s| !s.is_empty() && allowed.iter().any(|a| a == s))
        .collect::<Vec<_>>()
        .join(" ")
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

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scope_resolution() {
        let allowed = strings(&["write", "read"]);
        let cases: [(Option<&str>, Result<&str, &str>); 6] = [
            (None, Ok("read write")),
            (Some("read"), Ok("read")),
            (Some("write  read read"), Ok("read write")),
            (Some("admin"), Err("invalid_scope")),
            (Some("read admin"), Err("invalid_scope")),
            (Some(" "), Ok("")),
        ];
        for (requested, expected) in cases {
            let got = resolve_scope(requested, &allowed).map_err(|e| e.code);
            assert_eq!(
                got.as_ref().map(String::as_str).map_err(|e| *e),
                expected,
                "{requested:?}"
            );
        }
        assert_eq!(resolve_scope(None, &[]).unwrap(), "");
        assert_eq!(
            resolve_scope(Some("read"), &[]).unwrap_err().code,
            "invalid_scope"
        );
    }

    #[test]
    fn scope_subsets() {
        assert_eq!(normalize_scope("b a  b"), "a b");
        assert!(scope_is_subset("a", "a b"));
        assert!(scope_is_subset("", ""));
        assert!(!scope_is_subset("c", "a b"));
        assert!(!scope_is_subset("a", ""));
        let allowed = strings(&["a", "c"]);
        let cases = [("a b c", "a c"), ("b", ""), ("", ""), ("c a", "c a")];
        for (scope, expected) in cases {
            assert_eq!(scope_within(scope, &allowed), expected, "{scope}");
        }
    }
}
