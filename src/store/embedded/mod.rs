//! The embedded store: one SQLite file in the data folder.
//!
//! SQLite in WAL mode lets `portcullis user add` write while a running
//! gateway reads the same file, which is what the walkthrough does; every
//! statement is one ACID transaction. Calls are synchronous, so they run on
//! the blocking pool, never on a proxy worker.
//!
//! This file opens the database and holds what every query shares: the
//! connection, the hop onto the blocking pool and the error mapping. The
//! tables and their migrations are in `schema`; the operations, one file
//! per record kind, in `users`, `clients` and `sessions`.

mod clients;
mod schema;
mod sessions;
mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

pub struct EmbeddedStore {
    connection: Arc<Mutex<Connection>>,
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A unique-index violation names what is duplicated; anything else means
/// the store could not answer.
fn duplicate_or_unavailable(error: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::Duplicate(what())
    } else {
        unavailable(error)
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// Every row `sql` returns, read by `read`.
fn query_all<T>(
    c: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
    read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = c.prepare(sql).map_err(unavailable)?;
    let rows = statement.query_map(parameters, read).map_err(unavailable)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
}

impl EmbeddedStore {
    /// Opens (creating if needed) the database file and its folder.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", folder.display()))
            })?;
        }
        let connection = Connection::open(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        connection
            .execute_batch(schema::SCHEMA)
            .map_err(unavailable)?;
        schema::migrate(&connection)?;
        Ok(EmbeddedStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` with the connection on the blocking pool.
    /// Answers when the database file can be read.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with_connection(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
            .await
    }

    async fn with_connection<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let guard = connection.lock().unwrap_or_else(|e| e.into_inner());
            work(&guard)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{
        ClientType, ClientUpdate, GrantType, Listing, NewClient, Store, UserUpdate,
    };

    fn new_client(name: &str) -> NewClient {
        NewClient {
            name: name.into(),
            client_type: ClientType::Public,
            secret_hash: None,
            allowed_grants: GrantType::defaults(ClientType::Public),
            allowed_scopes: vec!["read".into()],
            can_introspect: false,
        }
    }

    #[tokio::test]
    async fn users_and_clients_round_trip_and_persist() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("nested/store.sqlite3");
        let store = EmbeddedStore::open(&path).unwrap();
        let user = store.create_user("jonas", "$2b$04$hash").await.unwrap();
        assert!(matches!(
            store.create_user("jonas", "$2b$04$other").await,
            Err(StoreError::Duplicate(_))
        ));
        let client = store.create_client(new_client("ios app")).await.unwrap();
        drop(store);

        // A second open (the CLI beside a running gateway) sees the same data.
        // Through the `Store` front, which does the listing.
        let store = Store::Embedded(EmbeddedStore::open(&path).unwrap());
        let found = store.find_user_by_username("jonas").await.unwrap().unwrap();
        assert_eq!(found, user);
        assert_eq!(
            store.find_user_by_id(&user.id).await.unwrap(),
            Some(user.clone())
        );
        assert_eq!(
            store.find_client(&client.client_id).await.unwrap(),
            Some(client.clone())
        );
        let update = UserUpdate {
            password_hash: Some("$2b$04$new".into()),
            disabled: Some(true),
        };
        let updated = store.update_user(&user.id, update).await.unwrap().unwrap();
        assert_eq!(updated.password_hash, "$2b$04$new");
        assert!(updated.disabled);
        assert!(store
            .update_user("nobody", UserUpdate::default())
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            store
                .list_users(&Listing::everything())
                .await
                .unwrap()
                .total,
            1
        );
        let page = store.list_clients(&Listing::everything()).await.unwrap();
        assert_eq!(page.items, vec![client.clone()]);

        let changed = store
            .update_client(
                &client.client_id,
                ClientUpdate {
                    allowed_grants: Some(vec![GrantType::Password]),
                    allowed_scopes: Some(vec!["read".into(), "write".into()]),
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.allowed_grants, vec![GrantType::Password]);
        assert_eq!(
            store.find_client(&client.client_id).await.unwrap(),
            Some(changed)
        );

        assert_eq!(
            store.remove_user(&user.id).await.unwrap().map(|u| u.id),
            Some(user.id.clone())
        );
        assert!(store.remove_user(&user.id).await.unwrap().is_none());
        assert!(store
            .remove_client(&client.client_id)
            .await
            .unwrap()
            .is_some());
        assert!(store
            .find_client(&client.client_id)
            .await
            .unwrap()
            .is_none());
    }
}
