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

/// Parses `password,refresh_token`; names the first unknown entry.
pub fn parse_grants(list: &str) -> Result<Vec<GrantType>, String> {
    let mut grants = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let grant = GrantType::parse(name).ok_or_else(|| {
            format!(
                "unknown grant type `{name}` (known: {})",
                GrantType::names()
            )
        })?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    grants.sort();
    Ok(grants)
}

/// Scope tokens (RFC 6749 §3.3): printable ASCII except space, `"` and `\\`.
pub fn validate_scopes(scopes: &[String]) -> Result<(), String> {
    for scope in scopes {
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(format!("`{scope}` is not a valid scope name"));
        }
    }
    Ok(())
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
}

/// What creating a client takes.
#[derive(Clone, Debug)]
pub struct NewClient {
    pub name: String,
    pub client_type: ClientType,
    pub secret_hash: Option<String>,
    pub allowed_grants: Vec<GrantType>,
    pub allowed_scopes: Vec<String>,
}

/// A partial update of a client; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ClientUpdate {
    pub name: Option<String>,
    pub allowed_grants: Option<Vec<GrantType>>,
    pub allowed_scopes: Option<Vec<String>>,
    pub disabled: Option<bool>,
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
    }
}

/// A partial update of a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
}

/// One page of a listing, with the total matching count.
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Which records a listing returns: a case-insensitive substring of the
/// username (or client name/id), then `offset`/`limit`.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

impl Listing {
    pub fn everything() -> Self {
        Listing {
            search: None,
            offset: 0,
            limit: u64::MAX / 2,
        }
    }

    fn matches(&self, fields: &[&str]) -> bool {
        match &self.search {
            None => true,
            Some(needle) => {
                let needle = needle.to_lowercase();
                fields.iter().any(|f| f.to_lowercase().contains(&needle))
            }
        }
    }

    /// Filters and pages an already sorted list.
    pub fn apply<T>(&self, items: Vec<T>, fields: impl Fn(&T) -> Vec<&str>) -> Page<T> {
        let matching: Vec<T> = items
            .into_iter()
            .filter(|i| self.matches(&fields(i)))
            .collect();
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(self.offset.min(usize::MAX as u64) as usize)
            .take(self.limit.min(usize::MAX as u64) as usize)
            .collect();
        Page { items, total }
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

/// The input a validation error is about: the field names of the
/// management API, so it can point at the one to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Username,
    Password,
    Name,
    AllowedGrants,
    AllowedScopes,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::Password => "password",
            Field::Name => "name",
            Field::AllowedGrants => "allowed_grants",
            Field::AllowedScopes => "allowed_scopes",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{message}")]
    Invalid { field: Field, message: String },
    #[error("user store unavailable: {0}")]
    Unavailable(String),
}

fn invalid_scopes(message: String) -> StoreError {
    StoreError::Invalid {
        field: Field::AllowedScopes,
        message,
    }
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

/// A new session (refresh-token family) id.
pub fn new_session_id() -> String {
    crate::tokens::RawToken::generate().digest().to_hex()[..32].to_string()
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
        validate_username(username).map_err(|message| StoreError::Invalid {
            field: Field::Username,
            message,
        })?;
        dispatch!(self.create_user(username, password_hash))
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self.find_user_by_username(username))
    }

    pub async fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self.find_user_by_id(id))
    }

    /// Users sorted by username.
    /// Users whose username or id matches the search, one page of them.
    /// Backends return every user sorted; filtering and paging are the
    /// same for both.
    pub async fn list_users(&self, listing: &Listing) -> Result<Page<User>, StoreError> {
        let users = dispatch!(self.all_users())?;
        Ok(listing.apply(users, |u| vec![u.username.as_str(), u.id.as_str()]))
    }

    /// The updated user, or None when no user has this id.
    pub async fn update_user(
        &self,
        id: &str,
        update: UserUpdate,
    ) -> Result<Option<User>, StoreError> {
        dispatch!(self.update_user(id, update))
    }

    /// The removed user, or None when no user has this id.
    pub async fn remove_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self.remove_user(id))
    }

    pub async fn create_client(&self, new: NewClient) -> Result<Client, StoreError> {
        validate_scopes(&new.allowed_scopes).map_err(invalid_scopes)?;
        dispatch!(self.create_client(new))
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        dispatch!(self.find_client(client_id))
    }

    /// Clients sorted by name, then id.
    /// Clients whose name or id matches the search, one page of them.
    pub async fn list_clients(&self, listing: &Listing) -> Result<Page<Client>, StoreError> {
        let clients = dispatch!(self.all_clients())?;
        Ok(listing.apply(clients, |c| vec![c.name.as_str(), c.client_id.as_str()]))
    }

    pub async fn update_client(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> Result<Option<Client>, StoreError> {
        if let Some(scopes) = &update.allowed_scopes {
            validate_scopes(scopes).map_err(invalid_scopes)?;
        }
        dispatch!(self.update_client(client_id, update))
    }

    /// The removed client, or None when no client has this id.
    pub async fn remove_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        dispatch!(self.remove_client(client_id))
    }

    pub async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        dispatch!(self.insert_session(session))
    }

    /// The session whose current or any retired refresh token has this digest.
    pub async fn find_session_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<Session>, StoreError> {
        dispatch!(self.find_session_by_refresh(digest))
    }

    pub async fn find_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        dispatch!(self.find_session(id))
    }

    /// Replaces the session only if its refresh digest is still
    /// `expected_refresh_digest`: of two concurrent rotations, one wins.
    pub async fn replace_session(
        &self,
        session: &Session,
        expected_refresh_digest: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self.replace_session(session, expected_refresh_digest))
    }

    pub async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        dispatch!(self.delete_session(id))
    }

    /// A user's sessions, newest first.
    pub async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        dispatch!(self.sessions_of_user(user_id))
    }

    pub async fn delete_sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        dispatch!(self.delete_sessions_of_user(user_id))
    }

    /// Deletes every session of a client (removed or disabled).
    pub async fn delete_sessions_of_client(
        &self,
        client_id: &str,
    ) -> Result<Vec<Session>, StoreError> {
        dispatch!(self.delete_sessions_of_client(client_id))
    }

    /// Removes sessions whose refresh token expired before `now`.
    pub async fn delete_expired_sessions(&self, now: u64) -> Result<u64, StoreError> {
        dispatch!(self.delete_expired_sessions(now))
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
    fn grant_lists() {
        assert_eq!(
            parse_grants("refresh_token, password,password").unwrap(),
            vec![GrantType::Password, GrantType::RefreshToken]
        );
        assert!(parse_grants("implicit").unwrap_err().contains("implicit"));
        assert_eq!(parse_grants("").unwrap(), vec![]);
    }

    #[test]
    fn scope_names() {
        let ok = |s: &[&str]| {
            validate_scopes(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).is_ok()
        };
        assert!(ok(&["read", "write:all", "a.b-c_d~"]));
        assert!(!ok(&["two words"]));
        assert!(!ok(&["quote\""]));
        assert!(!ok(&[""]));
        assert!(!ok(&["back\\slash"]));
    }

    #[test]
    fn listings_filter_then_page() {
        let names = vec!["alice", "bob", "carol", "dave", "Alina"];
        let listing = Listing {
            search: Some("al".into()),
            offset: 1,
            limit: 5,
        };
        let page = listing.apply(names.clone(), |n| vec![*n]);
        assert_eq!(page.total, 2);
        assert_eq!(page.items, vec!["Alina"]);
        let page = Listing {
            search: None,
            offset: 3,
            limit: 10,
        }
        .apply(names, |n| vec![*n]);
        assert_eq!(page.items, vec!["dave", "Alina"]);
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
