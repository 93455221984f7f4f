//! Users and clients: the durable records. Storage knows nothing of HTTP.
//!
//! Two backends, a closed set: [`embedded::EmbeddedStore`] (SQLite in the
//! data folder, the zero-setup default, safe for the CLI and a running
//! gateway to share) and [`mongo::MongoStore`] (Flask-Sentinel's schema, so
//! an existing Flask-Sentinel database works unchanged).
//!
//! This file is the front every caller goes through: the [`Store`] enum
//! checks its inputs once, then hands the call to the configured backend.
//! What the records are, how they are validated, how ids are made and how
//! listings are paged live in the submodules below; everything is
//! re-exported here, so callers name `crate::store::X` and never the file.

pub mod embedded;
mod ids;
mod listing;
pub mod mongo;
mod records;
mod validation;

pub use ids::{new_client_id, new_session_id, new_user_id};
pub use listing::{Listing, Page};
pub use records::{
    Client, ClientType, ClientUpdate, GrantType, NewClient, Session, User, UserUpdate,
    RETIRED_DIGESTS_KEPT,
};
pub use validation::{parse_grants, validate_scopes, validate_username, Field, StoreError};

use validation::invalid_scopes;

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
            Store::Mongo(store) => store.bounded(store.$method($($arg),*)).await,
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

    /// Users whose username or id matches the search, one page of them,
    /// sorted by username.
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

    /// Raises the user's generation: sign-ins and refreshes in flight for
    /// this user then fail their final check. False when no user has it.
    pub async fn bump_user_generation(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self.bump_user_generation(id))
    }

    /// The same for a client.
    pub async fn bump_client_generation(&self, client_id: &str) -> Result<bool, StoreError> {
        dispatch!(self.bump_client_generation(client_id))
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

    /// Clients whose name or id matches the search, one page of them,
    /// sorted by name, then id.
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

    /// Answers when the store does: for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    /// Removes sessions whose refresh token expired before `now`.
    pub async fn delete_expired_sessions(&self, now: u64) -> Result<u64, StoreError> {
        dispatch!(self.delete_expired_sessions(now))
    }
}
