//! The password grant (RFC 6749 §4.3): the lockout's reservation, one
//! bcrypt, and the session it starts.

use super::*;

impl TokenService<'_> {
    pub(super) async fn password_grant(
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
}
