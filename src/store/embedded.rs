//! The embedded store: one SQLite file in the data folder.
//!
//! SQLite in WAL mode lets `portcullis user add` write while a running
//! gateway reads the same file, which is what the walkthrough does; every
//! statement is one ACID transaction. Calls are synchronous, so they run on
//! the blocking pool, never on a proxy worker.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::{new_client_id, new_user_id, Client, ClientType, StoreError, User};
use crate::tokens::unix_now;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created       INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS clients (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    client_type TEXT NOT NULL,
    created     INTEGER NOT NULL
);
";

pub struct EmbeddedStore {
    connection: Arc<Mutex<Connection>>,
}

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        created: row.get::<_, i64>(3)? as u64,
        disabled: row.get::<_, i64>(4)? != 0,
    })
}

fn client_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Client> {
    let kind: String = row.get(2)?;
    Ok(Client {
        client_id: row.get(0)?,
        name: row.get(1)?,
        client_type: ClientType::parse(&kind).unwrap_or(ClientType::Public),
        created: row.get::<_, i64>(3)? as u64,
    })
}

const USER_COLUMNS: &str = "id, username, password_hash, created, disabled";
const CLIENT_COLUMNS: &str = "client_id, name, client_type, created";

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
        connection.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(EmbeddedStore {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` with the connection on the blocking pool.
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

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let user = User {
            id: new_user_id(),
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            created: unix_now(),
            disabled: false,
        };
        let record = user.clone();
        self.with_connection(move |c| {
            c.execute(
                "INSERT INTO users (id, username, password_hash, created, disabled) VALUES (?1, ?2, ?3, ?4, 0)",
                params![record.id, record.username, record.password_hash, record.created as i64],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Duplicate(format!("user `{}`", record.username))
                } else {
                    unavailable(e)
                }
            })
        })
        .await?;
        Ok(user)
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_string();
        self.with_connection(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                params![username],
                user_from_row,
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    pub async fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                params![id],
                user_from_row,
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.with_connection(|c| {
            let mut statement = c
                .prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY username"
                ))
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], user_from_row)
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    pub async fn remove_user(&self, username: &str) -> Result<bool, StoreError> {
        let username = username.to_string();
        self.with_connection(move |c| {
            c.execute("DELETE FROM users WHERE username = ?1", params![username])
                .map(|n| n > 0)
                .map_err(unavailable)
        })
        .await
    }

    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let (username, hash) = (username.to_string(), password_hash.to_string());
        self.with_connection(move |c| {
            c.execute(
                "UPDATE users SET password_hash = ?2 WHERE username = ?1",
                params![username, hash],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }

    pub async fn create_client(&self, name: &str) -> Result<Client, StoreError> {
        let client = Client {
            client_id: new_client_id(),
            name: name.to_string(),
            client_type: ClientType::Public,
            created: unix_now(),
        };
        let record = client.clone();
        self.with_connection(move |c| {
            c.execute(
                "INSERT INTO clients (client_id, name, client_type, created) VALUES (?1, ?2, ?3, ?4)",
                params![record.client_id, record.name, record.client_type.as_str(), record.created as i64],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Duplicate(format!("client `{}`", record.client_id))
                } else {
                    unavailable(e)
                }
            })
        })
        .await?;
        Ok(client)
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let client_id = client_id.to_string();
        self.with_connection(move |c| {
            c.query_row(
                &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = ?1"),
                params![client_id],
                client_from_row,
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.with_connection(|c| {
            let mut statement = c
                .prepare(&format!(
                    "SELECT {CLIENT_COLUMNS} FROM clients ORDER BY name, client_id"
                ))
                .map_err(unavailable)?;
            let rows = statement
                .query_map([], client_from_row)
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    pub async fn remove_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_string();
        self.with_connection(move |c| {
            c.execute(
                "DELETE FROM clients WHERE client_id = ?1",
                params![client_id],
            )
            .map(|n| n > 0)
            .map_err(unavailable)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let client = store.create_client("ios app").await.unwrap();
        drop(store);

        // A second open (the CLI beside a running gateway) sees the same data.
        let store = EmbeddedStore::open(&path).unwrap();
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
        assert!(store.set_password("jonas", "$2b$04$new").await.unwrap());
        assert_eq!(
            store
                .find_user_by_username("jonas")
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "$2b$04$new"
        );
        assert!(!store.set_password("nobody", "x").await.unwrap());
        assert_eq!(store.list_users().await.unwrap().len(), 1);
        assert_eq!(store.list_clients().await.unwrap(), vec![client.clone()]);
        assert!(store.remove_user("jonas").await.unwrap());
        assert!(!store.remove_user("jonas").await.unwrap());
        assert!(store.remove_client(&client.client_id).await.unwrap());
        assert!(store
            .find_client(&client.client_id)
            .await
            .unwrap()
            .is_none());
    }
}
