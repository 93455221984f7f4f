//! Account operations shared by the CLI and the management API: each one
//! keeps the stores consistent and revokes what must be revoked.
//!
//! Changing a user's password, disabling or removing the user revokes every
//! session (refresh-token family) of that user and the access tokens issued
//! in them, so a stolen token dies with the password it came from.

use crate::password::{PasswordError, PasswordHasher};
use crate::sessions;
use crate::store::{
    Client, ClientType, ClientUpdate, Field, GrantType, NewClient, Store, StoreError, User,
    UserUpdate,
};
use crate::tokens::{RawToken, TokenDigest, TokenStore, TokenStoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{message}")]
    Invalid { field: Field, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Tokens(#[from] TokenStoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

impl AccountError {
    fn invalid(field: Field, message: impl Into<String>) -> Self {
        AccountError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Duplicate(what) => AccountError::Duplicate(what),
            StoreError::NotFound(what) => AccountError::NotFound(what),
            StoreError::Invalid { field, message } => AccountError::Invalid { field, message },
            other => AccountError::Store(other),
        }
    }
}

#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub store: &'a Store,
    pub tokens: &'a TokenStore,
    pub hasher: &'a PasswordHasher,
    pub min_password_length: usize,
}

/// A client secret: shown once, stored as `sha256$<hex>`. Secrets are 256
/// random bits, so a fast hash is enough; there is nothing to brute-force.
pub fn hash_client_secret(secret: &str) -> String {
    format!("sha256${}", TokenDigest::of(secret).to_hex())
}

/// Constant-time check of a presented secret against a stored hash.
pub fn client_secret_matches(presented: &str, stored_hash: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(stored_hex) = stored_hash.strip_prefix("sha256$") else {
        return false;
    };
    let Some(stored) = TokenDigest::from_hex(stored_hex) else {
        return false;
    };
    TokenDigest::of(presented).0.ct_eq(&stored.0).into()
}

pub fn check_password_strength(password: &str, min_length: usize) -> Result<(), AccountError> {
    if password.is_empty() || password.chars().count() < min_length {
        return Err(AccountError::invalid(
            Field::Password,
            format!("a password has at least {} characters", min_length.max(1)),
        ));
    }
    if password.len() > 72 {
        // bcrypt reads 72 bytes; a longer password would be silently cut.
        return Err(AccountError::invalid(
            Field::Password,
            "a password has at most 72 bytes",
        ));
    }
    Ok(())
}

impl Accounts<'_> {
    pub async fn create_user(&self, username: &str, password: &str) -> Result<User, AccountError> {
        check_password_strength(password, self.min_password_length)?;
        let hash = self.hasher.hash(password).await?;
        Ok(self.store.create_user(username, &hash).await?)
    }

    /// Sets a new password and revokes every session of the user.
    pub async fn set_password(&self, user_id: &str, password: &str) -> Result<User, AccountError> {
        check_password_strength(password, self.min_password_length)?;
        let hash = self.hasher.hash(password).await?;
        let update = UserUpdate {
            password_hash: Some(hash),
            disabled: None,
        };
        let user = self.updated(user_id, update).await?;
        self.revoke_user_sessions(user_id).await?;
        Ok(user)
    }

    /// Disabling revokes every session of the user.
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) -> Result<User, AccountError> {
        let update = UserUpdate {
            password_hash: None,
            disabled: Some(disabled),
        };
        let user = self.updated(user_id, update).await?;
        if disabled {
            self.revoke_user_sessions(user_id).await?;
        }
        Ok(user)
    }

    async fn updated(&self, user_id: &str, update: UserUpdate) -> Result<User, AccountError> {
        self.store
            .update_user(user_id, update)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("user `{user_id}`")))
    }

    pub async fn remove_user(&self, user_id: &str) -> Result<User, AccountError> {
        let user = self
            .store
            .remove_user(user_id)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("user `{user_id}`")))?;
        self.revoke_user_sessions(user_id).await?;
        Ok(user)
    }

    /// The user with this username, or an error naming it.
    pub async fn user_by_username(&self, username: &str) -> Result<User, AccountError> {
        self.store
            .find_user_by_username(username)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("user `{username}`")))
    }

    /// Revokes every session of a user; returns how many there were. The
    /// generation goes up first, so a sign-in or refresh already in flight
    /// undoes itself (see [`crate::sessions`]).
    pub async fn revoke_user_sessions(&self, user_id: &str) -> Result<usize, AccountError> {
        self.store.bump_user_generation(user_id).await?;
        let ended = self.store.delete_sessions_of_user(user_id).await?;
        sessions::end_access_tokens::<AccountError>(self.tokens, &ended).await?;
        Ok(ended.len())
    }

    /// Revokes one session of a user (refresh token and its access tokens).
    pub async fn revoke_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<(), AccountError> {
        match self.store.find_session(session_id).await? {
            Some(session) if session.user_id == user_id => {
                sessions::end_session::<AccountError>(self.store, self.tokens, session_id).await?;
                Ok(())
            }
            _ => Err(AccountError::NotFound(format!("session `{session_id}`"))),
        }
    }

    /// Creates a client; a confidential one also gets a secret, returned
    /// here once and stored only hashed.
    pub async fn create_client(
        &self,
        name: &str,
        client_type: ClientType,
        grants: Option<Vec<GrantType>>,
        scopes: Vec<String>,
        can_introspect: bool,
    ) -> Result<(Client, Option<String>), AccountError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(AccountError::invalid(
                Field::Name,
                "a client name has 1 to 200 characters",
            ));
        }
        let grants = grants.unwrap_or_else(|| GrantType::defaults(client_type));
        check_grants(client_type, &grants)?;
        let secret = (client_type == ClientType::Confidential).then(RawToken::generate);
        let new = NewClient {
            name: name.to_string(),
            client_type,
            secret_hash: secret.as_ref().map(|s| hash_client_secret(s.as_str())),
            allowed_grants: grants,
            allowed_scopes: scopes,
            can_introspect,
        };
        let client = self.store.create_client(new).await?;
        Ok((client, secret.map(|s| s.as_str().to_string())))
    }

    pub async fn update_client(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> Result<Client, AccountError> {
        let current = self
            .store
            .find_client(client_id)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("client `{client_id}`")))?;
        if let Some(grants) = &update.allowed_grants {
            check_grants(current.client_type, grants)?;
        }
        let disabling = update.disabled == Some(true);
        let client = self
            .store
            .update_client(client_id, update)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("client `{client_id}`")))?;
        if disabling {
            self.revoke_client_tokens(client_id).await?;
        }
        Ok(client)
    }

    /// Removing a client ends its users' sessions with it and its own
    /// tokens.
    pub async fn remove_client(&self, client_id: &str) -> Result<Client, AccountError> {
        let client = self
            .store
            .remove_client(client_id)
            .await?
            .ok_or_else(|| AccountError::NotFound(format!("client `{client_id}`")))?;
        self.revoke_client_tokens(client_id).await?;
        Ok(client)
    }

    /// Revokes every session issued to a client, with its access tokens,
    /// and the tokens the client got for itself (client_credentials),
    /// which belong to no session.
    pub async fn revoke_client_tokens(&self, client_id: &str) -> Result<(), AccountError> {
        self.store.bump_client_generation(client_id).await?;
        let ended = self.store.delete_sessions_of_client(client_id).await?;
        sessions::end_access_tokens::<AccountError>(self.tokens, &ended).await?;
        self.tokens.delete_client_tokens(client_id).await?;
        Ok(())
    }
}

/// client_credentials needs a secret: a public client cannot have it.
fn check_grants(client_type: ClientType, grants: &[GrantType]) -> Result<(), AccountError> {
    if client_type == ClientType::Public && grants.iter().any(|g| g.needs_confidential_client()) {
        return Err(AccountError::invalid(
            Field::AllowedGrants,
            "client_credentials is for confidential clients only",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secrets() {
        let hash = hash_client_secret("s3cret");
        assert!(hash.starts_with("sha256$"));
        assert!(client_secret_matches("s3cret", &hash));
        assert!(!client_secret_matches("s3cre", &hash));
        assert!(!client_secret_matches("s3cret", "plain"));
        assert!(!client_secret_matches("s3cret", "sha256$zz"));
    }

    #[test]
    fn password_rules() {
        let cases = [
            ("short", 8, false),
            ("eight ch", 8, true),
            ("pass", 1, true),
            ("", 0, false),
            (&"x".repeat(72), 8, true),
            (&"x".repeat(73), 8, false),
        ];
        for (password, min, ok) in cases {
            assert_eq!(
                check_password_strength(password, min).is_ok(),
                ok,
                "{password}"
            );
        }
    }

    #[test]
    fn public_clients_cannot_use_client_credentials() {
        assert!(check_grants(ClientType::Public, &[GrantType::ClientCredentials]).is_err());
        assert!(check_grants(ClientType::Confidential, &GrantType::ALL).is_ok());
        assert!(check_grants(ClientType::Public, &GrantType::defaults(ClientType::Public)).is_ok());
    }
}
