//! Users and clients: the durable records. Storage knows nothing of HTTP.
//!
//! Two backends, a closed set: [`embedded::EmbeddedStore`] (SQLite in the
//! data folder, the zero-setup default, safe for the CLI and a running
//! gateway to share) and [`mongo::MongoStore`] (Flask-Sentinel's schema, so
//! an existing Flask-Sentinel database works unchanged).

pub mod embedded;
pub mod mongo;

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;

#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// What the upstream receives as `X-User-Id`. For MongoDB, the ObjectId hex.
    pub id: String,
    pub username: String,
    /// bcrypt hash (`$2b$…` or `$2a$…`). Never serialized, never printed.
    #[serde(skip)]
    pub password_hash: String,
    /// Unix seconds; 0 when unknown (records written by Flask-Sentinel).
    pub created: u64,
    pub disabled: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("created", &self.created)
            .field("disabled", &self.disabled)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Identified by `client_id` alone, as in Flask-Sentinel.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(ClientType::Public),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    pub created: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("user store unavailable: {0}")]
    Unavailable(String),
}

/// A new user id: 24 hex characters, the shape of a MongoDB ObjectId, so ids
/// look alike on both backends.
pub fn new_user_id() -> String {
    mongodb::bson::oid::ObjectId::new().to_hex()
}

/// A new client id: 40 alphanumerics, as Flask-Sentinel's `gen_salt(40)`.
pub fn new_client_id() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

/// Usernames are compared exactly; this only rejects what cannot be typed
/// back or would confuse logs.
pub fn validate_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.len() > 128 {
        return Err("a username has 1 to 128 characters".into());
    }
    if username
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err("a username has no spaces or control characters".into());
    }
    Ok(())
}

/// The configured user and client store.
pub enum Store {
    Embedded(embedded::EmbeddedStore),
    Mongo(mongo::MongoStore),
}

/// Dispatches one call to whichever backend is configured.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Embedded(store) => store.$method($($arg),*).await,
            Store::Mongo(store) => store.$method($($arg),*).await,
        }
    };
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        validate_username(username).map_err(StoreError::Invalid)?;
        dispatch!(self.create_user(username, password_hash))
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self.find_user_by_username(username))
    }

    pub async fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self.find_user_by_id(id))
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        dispatch!(self.list_users())
    }

    /// Ok(false) when no such user exists.
    pub async fn remove_user(&self, username: &str) -> Result<bool, StoreError> {
        dispatch!(self.remove_user(username))
    }

    /// Ok(false) when no such user exists.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self.set_password(username, password_hash))
    }

    pub async fn create_client(&self, name: &str) -> Result<Client, StoreError> {
        dispatch!(self.create_client(name))
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        dispatch!(self.find_client(client_id))
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        dispatch!(self.list_clients())
    }

    /// Ok(false) when no such client exists.
    pub async fn remove_client(&self, client_id: &str) -> Result<bool, StoreError> {
        dispatch!(self.remove_client(client_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let cases = [
            ("jonas", true),
            ("jonas@example.com", true),
            ("", false),
            ("two words", false),
            ("tab\there", false),
            ("ünïcode", true),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_username(name).is_ok(), ok, "{name:?}");
        }
        assert!(validate_username(&"x".repeat(129)).is_err());
    }

    #[test]
    fn ids_have_their_documented_shape() {
        let user = new_user_id();
        assert_eq!(user.len(), 24);
        assert!(user.bytes().all(|b| b.is_ascii_hexdigit()));
        let client = new_client_id();
        assert_eq!(client.len(), 40);
        assert!(client.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(client, new_client_id());
    }

    #[test]
    fn hashes_never_print_or_serialize() {
        let user = User {
            id: "1".into(),
            username: "u".into(),
            password_hash: "$2b$04$secret".into(),
            created: 0,
            disabled: false,
        };
        assert!(!format!("{user:?}").contains("secret"));
        assert!(!serde_json::to_string(&user).unwrap().contains("secret"));
    }
}
