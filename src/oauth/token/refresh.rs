//! The refresh_token grant (RFC 6749 §6, RFC 9700 §4.14.2): rotation
//! with compare-and-swap, retries within the grace window, and reuse of a
//! rotated token treated as theft.

use super::*;

impl TokenService<'_> {
    pub(super) async fn refresh_grant(
        &self,
        client: &Client,
        form: &Form,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = RawToken::from_client(form.require("refresh_token")?);
        let digest = presented.digest().to_hex();
        let requested_scope = form.get("scope");
        // Two attempts: a lost compare-and-swap means a concurrent refresh
        // with the same token won; the second pass sees it as a retry.
        let mut counted = false;
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
            if !counted {
                self.check_rate_limit(GrantType::RefreshToken, client)
                    .await?;
                counted = true;
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
        let stands = self
            .session_issuance_stands(&user, client, read_before, &session)
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

    pub(super) async fn revoke_session(&self, session: &Session) -> Result<(), OAuthError> {
        sessions::end_session::<OAuthError>(self.oauth.store, self.oauth.tokens, &session.id)
            .await?;
        Ok(())
    }
}
