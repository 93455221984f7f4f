//! The durable records themselves: users, clients and sessions, with the
//! small enums they are made of and the partial updates the management API
//! sends. Both backends read and write exactly these shapes, so a change
//! here is a change to what is stored.

use serde::{Deserialize, Serialize};

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
    /// Raised by every change that must end the user's sessions (a new
    /// password, disabling, revoking them all). A sign-in or refresh that
    /// read an older value does not survive it: see [`crate::sessions`].
    #[serde(skip)]
    pub generation: u64,
}

// Written by hand, not derived, so that the hash can never reach a log.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("created", &self.created)
            .field("disabled", &self.disabled)
            .field("generation", &self.generation)
            .finish()
    }
}

/// A partial update of a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Identified by `client_id` alone, as in Flask-Sentinel (apps that
    /// cannot keep a secret: mobile, single-page).
    Public,
    /// Holds a secret (RFC 6749 §2.3.1), shown once at creation.
    Confidential,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::Confidential => "confidential",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(ClientType::Public),
            "confidential" => Some(ClientType::Confidential),
            _ => None,
        }
    }
}

/// The grant types a client may use (RFC 6749 §4.3, §4.4, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// client_credentials needs a secret: a public client cannot have it.
    pub fn needs_confidential_client(self) -> bool {
        self == GrantType::ClientCredentials
    }

    /// The names, comma-separated, for messages.
    pub fn names() -> String {
        GrantType::ALL.map(GrantType::as_str).join(", ")
    }

    /// Flask-Sentinel's clients could use these two; so can ours by default.
    pub fn defaults(client_type: ClientType) -> Vec<GrantType> {
        match client_type {
            ClientType::Public => vec![GrantType::Password, GrantType::RefreshToken],
            ClientType::Confidential => GrantType::ALL.to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub client_type: ClientType,
    /// `sha256$<hex>` of the secret; confidential clients only. Never shown.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub allowed_grants: Vec<GrantType>,
    pub allowed_scopes: Vec<String>,
    pub disabled: bool,
    pub created: u64,
    /// May call the introspection endpoint (RFC 7662 §2.1: the server
    /// decides who may ask about tokens).
    pub can_introspect: bool,
    /// Raised by every change that must end the client's tokens (disabling,
    /// removal, revoking them all); as [`User::generation`].
    #[serde(skip)]
    pub generation: u64,
}

/// What creating a client takes.
#[derive(Clone, Debug)]
pub struct NewClient {
    pub name: String,
    pub client_type: ClientType,
    pub secret_hash: Option<String>,
    pub allowed_grants: Vec<GrantType>,
    pub allowed_scopes: Vec<String>,
    pub can_introspect: bool,
}

impl NewClient {
    /// The client record to store: a fresh id, enabled, created now.
    pub fn into_client(self) -> Client {
        Client {
            client_id: super::new_client_id(),
            name: self.name,
            client_type: self.client_type,
            secret_hash: self.secret_hash,
            allowed_grants: self.allowed_grants,
            allowed_scopes: self.allowed_scopes,
            disabled: false,
            created: crate::tokens::unix_now(),
            can_introspect: self.can_introspect,
            generation: 0,
        }
    }
}

/// A partial update of a client; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub allowed_grants: Option<Vec<GrantType>>,
    pub allowed_scopes: Option<Vec<String>>,
    pub disabled: Option<bool>,
    pub can_introspect: Option<bool>,
}

impl ClientUpdate {
    pub fn apply(self, client: &mut Client) {
        if let Some(name) = self.name {
            client.name = name;
        }
        if let Some(grants) = self.allowed_grants {
            client.allowed_grants = grants;
        }
        if let Some(scopes) = self.allowed_scopes {
            client.allowed_scopes = scopes;
        }
        if let Some(disabled) = self.disabled {
            client.disabled = disabled;
        }
        if let Some(can_introspect) = self.can_introspect {
            client.can_introspect = can_introspect;
        }
    }
}

/// One login on one device: a refresh-token family (RFC 9700 §4.14.2).
/// Each refresh rotates `refresh_digest`; the one before stays known as
/// `previous_refresh_digest` so that its reuse can be told apart from an
/// unknown token (a retry within the grace window, or theft).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub created: u64,
    pub last_used: u64,
    /// Hex SHA-256 of the current refresh token.
    pub refresh_digest: String,
    pub refresh_expires_at: u64,
    pub previous_refresh_digest: Option<String>,
    /// Every earlier refresh token of the family (newest last, at most
    /// [`RETIRED_DIGESTS_KEPT`]): presenting one is reuse, and revokes all.
    #[serde(default)]
    pub retired_refresh_digests: Vec<String>,
    pub rotated_at: u64,
    /// The pair issued at the last rotation, encrypted under a key derived
    /// from the previous refresh token, so a client retrying within the
    /// grace window gets the same pair and the store alone cannot read it.
    pub retry_pair: Option<String>,
    /// Access tokens issued in this family and not yet expired: (hex
    /// digest, expires_at). Revoking the family deletes them.
    pub access_tokens: Vec<(String, u64)>,
}

/// How many retired refresh digests a session remembers for reuse detection.
pub const RETIRED_DIGESTS_KEPT: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_never_print_or_serialize() {
        let user = User {
            id: "1".into(),
            username: "u".into(),
            password_hash: "$2b$04$secret".into(),
            created: 0,
            disabled: false,
            generation: 0,
        };
        assert!(!format!("{user:?}").contains("secret"));
        assert!(!serde_json::to_string(&user).unwrap().contains("secret"));
    }
}
