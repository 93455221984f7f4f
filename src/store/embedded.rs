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

use super::{
    new_client_id, new_user_id, parse_grants, Client, ClientType, ClientUpdate, NewClient, Session,
    StoreError, User, UserUpdate,
};
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
    client_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    client_type    TEXT NOT NULL,
    created        INTEGER NOT NULL,
    secret_hash    TEXT,
    allowed_grants TEXT NOT NULL DEFAULT 'password,refresh_token',
    allowed_scopes TEXT NOT NULL DEFAULT '',
    disabled       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id                      TEXT PRIMARY KEY,
    user_id                 TEXT NOT NULL,
    refresh_digest          TEXT NOT NULL UNIQUE,
    previous_refresh_digest TEXT,
    refresh_expires_at      INTEGER NOT NULL,
    record                  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
CREATE INDEX IF NOT EXISTS sessions_by_previous ON sessions (previous_refresh_digest);
CREATE TABLE IF NOT EXISTS retired_refresh_digests (
    digest     TEXT PRIMARY KEY,
    session_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retired_by_session ON retired_refresh_digests (session_id);
";

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
    let grants: String = row.get(5)?;
    let scopes: String = row.get(6)?;
    Ok(Client {
        client_id: row.get(0)?,
        name: row.get(1)?,
        // An unknown type is treated as confidential: it then needs a
        // secret, which fails closed.
        client_type: ClientType::parse(&kind).unwrap_or(ClientType::Confidential),
        created: row.get::<_, i64>(3)? as u64,
        secret_hash: row.get(4)?,
        allowed_grants: parse_grants(&grants).unwrap_or_default(),
        allowed_scopes: scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        disabled: row.get::<_, i64>(7)? != 0,
    })
}

fn grants_column(client: &Client) -> String {
    client
        .allowed_grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    let record: String = row.get(0)?;
    serde_json::from_str(&record).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

const USER_COLUMNS: &str = "id, username, password_hash, created, disabled";
const CLIENT_COLUMNS: &str =
    "client_id, name, client_type, created, secret_hash, allowed_grants, allowed_scopes, disabled";

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
        migrate(&connection)?;
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
            .map_err(|e| duplicate_or_unavailable(e, || format!("user `{}`", record.username)))
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

    /// Every user, by username.
    pub async fn all_users(&self) -> Result<Vec<User>, StoreError> {
        self.with_connection(|c| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
            query_all(c, &sql, [], user_from_row)
        })
        .await
    }

    pub async fn update_user(
        &self,
        id: &str,
        update: UserUpdate,
    ) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| {
            if let Some(hash) = &update.password_hash {
                c.execute(
                    "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                    params![id, hash],
                )
                .map_err(unavailable)?;
            }
            if let Some(disabled) = update.disabled {
                c.execute(
                    "UPDATE users SET disabled = ?2 WHERE id = ?1",
                    params![id, disabled as i64],
                )
                .map_err(unavailable)?;
            }
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

    pub async fn remove_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| {
            let user = c
                .query_row(
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                    params![id],
                    user_from_row,
                )
                .optional()
                .map_err(unavailable)?;
            c.execute("DELETE FROM users WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            Ok(user)
        })
        .await
    }

    pub async fn create_client(&self, new: NewClient) -> Result<Client, StoreError> {
        let client = Client {
            client_id: new_client_id(),
            name: new.name,
            client_type: new.client_type,
            secret_hash: new.secret_hash,
            allowed_grants: new.allowed_grants,
            allowed_scopes: new.allowed_scopes,
            disabled: false,
            created: unix_now(),
        };
        let record = client.clone();
        self.with_connection(move |c| {
            c.execute(
                "INSERT INTO clients (client_id, name, client_type, created, secret_hash, allowed_grants, allowed_scopes, disabled) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![
                    record.client_id,
                    record.name,
                    record.client_type.as_str(),
                    record.created as i64,
                    record.secret_hash,
                    grants_column(&record),
                    record.allowed_scopes.join(" "),
                ],
            )
            .map_err(|e| duplicate_or_unavailable(e, || format!("client `{}`", record.client_id)))
        })
        .await?;
        Ok(client)
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let client_id = client_id.to_string();
        self.with_connection(move |c| find_client(c, &client_id))
            .await
    }

    /// Every client, by name then id.
    pub async fn all_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.with_connection(|c| {
            let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY name, client_id");
            query_all(c, &sql, [], client_from_row)
        })
        .await
    }

    pub async fn update_client(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> Result<Option<Client>, StoreError> {
        let client_id = client_id.to_string();
        self.with_connection(move |c| {
            let Some(mut client) = find_client(c, &client_id)? else {
                return Ok(None);
            };
            update.apply(&mut client);
            c.execute(
                "UPDATE clients SET name = ?2, allowed_grants = ?3, allowed_scopes = ?4, disabled = ?5 WHERE client_id = ?1",
                params![
                    client.client_id,
                    client.name,
                    grants_column(&client),
                    client.allowed_scopes.join(" "),
                    client.disabled as i64
                ],
            )
            .map_err(unavailable)?;
            Ok(Some(client))
        })
        .await
    }

    pub async fn remove_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let client_id = client_id.to_string();
        self.with_connection(move |c| {
            let client = find_client(c, &client_id)?;
            c.execute(
                "DELETE FROM clients WHERE client_id = ?1",
                params![client_id],
            )
            .map_err(unavailable)?;
            Ok(client)
        })
        .await
    }

    pub async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        let session = session.clone();
        self.with_connection(move |c| {
            c.execute(
                "INSERT INTO sessions (id, user_id, refresh_digest, previous_refresh_digest, refresh_expires_at, record) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    session.id,
                    session.user_id,
                    session.refresh_digest,
                    session.previous_refresh_digest,
                    session.refresh_expires_at as i64,
                    serde_json::to_string(&session).expect("sessions serialize"),
                ],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }

    pub async fn find_session_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<Session>, StoreError> {
        let digest = digest.to_string();
        self.with_connection(move |c| {
            c.query_row(
                "SELECT record FROM sessions WHERE refresh_digest = ?1 OR previous_refresh_digest = ?1 \
                 OR id = (SELECT session_id FROM retired_refresh_digests WHERE digest = ?1)",
                params![digest],
                session_from_row,
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    pub async fn find_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| {
            c.query_row(
                "SELECT record FROM sessions WHERE id = ?1",
                params![id],
                session_from_row,
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    pub async fn replace_session(
        &self,
        session: &Session,
        expected_refresh_digest: &str,
    ) -> Result<bool, StoreError> {
        let (session, expected) = (session.clone(), expected_refresh_digest.to_string());
        self.with_connection(move |c| {
            let changed = c.execute(
                "UPDATE sessions SET refresh_digest = ?3, previous_refresh_digest = ?4, refresh_expires_at = ?5, record = ?6 \
                 WHERE id = ?1 AND refresh_digest = ?2",
                params![
                    session.id,
                    expected,
                    session.refresh_digest,
                    session.previous_refresh_digest,
                    session.refresh_expires_at as i64,
                    serde_json::to_string(&session).expect("sessions serialize"),
                ],
            )
            .map_err(unavailable)?;
            if changed != 1 {
                return Ok(false);
            }
            c.execute("DELETE FROM retired_refresh_digests WHERE session_id = ?1", params![session.id])
                .map_err(unavailable)?;
            for digest in &session.retired_refresh_digests {
                c.execute(
                    "INSERT OR REPLACE INTO retired_refresh_digests (digest, session_id) VALUES (?1, ?2)",
                    params![digest, session.id],
                )
                .map_err(unavailable)?;
            }
            Ok(true)
        })
        .await
    }

    pub async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| {
            let session = c
                .query_row(
                    "SELECT record FROM sessions WHERE id = ?1",
                    params![id],
                    session_from_row,
                )
                .optional()
                .map_err(unavailable)?;
            c.execute("DELETE FROM sessions WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            c.execute(
                "DELETE FROM retired_refresh_digests WHERE session_id = ?1",
                params![id],
            )
            .map_err(unavailable)?;
            Ok(session)
        })
        .await
    }

    pub async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let user_id = user_id.to_string();
        self.with_connection(move |c| sessions_of_user(c, &user_id))
            .await
    }

    pub async fn delete_sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let user_id = user_id.to_string();
        self.with_connection(move |c| {
            let sessions = sessions_of_user(c, &user_id)?;
            for session in &sessions {
                c.execute(
                    "DELETE FROM retired_refresh_digests WHERE session_id = ?1",
                    params![session.id],
                )
                .map_err(unavailable)?;
            }
            c.execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])
                .map_err(unavailable)?;
            Ok(sessions)
        })
        .await
    }

    pub async fn delete_sessions_of_client(
        &self,
        client_id: &str,
    ) -> Result<Vec<Session>, StoreError> {
        let client_id = client_id.to_string();
        self.with_connection(move |c| {
            let sql = "SELECT record FROM sessions WHERE json_extract(record, '$.client_id') = ?1";
            let sessions = query_all(c, sql, params![client_id], session_from_row)?;
            for session in &sessions {
                c.execute(
                    "DELETE FROM retired_refresh_digests WHERE session_id = ?1",
                    params![session.id],
                )
                .map_err(unavailable)?;
                c.execute("DELETE FROM sessions WHERE id = ?1", params![session.id])
                    .map_err(unavailable)?;
            }
            Ok(sessions)
        })
        .await
    }

    pub async fn delete_expired_sessions(&self, now: u64) -> Result<u64, StoreError> {
        self.with_connection(move |c| {
            c.execute(
                "DELETE FROM retired_refresh_digests WHERE session_id IN \
                 (SELECT id FROM sessions WHERE refresh_expires_at <= ?1)",
                params![now as i64],
            )
            .map_err(unavailable)?;
            c.execute(
                "DELETE FROM sessions WHERE refresh_expires_at <= ?1",
                params![now as i64],
            )
            .map(|n| n as u64)
            .map_err(unavailable)
        })
        .await
    }
}

/// Columns added since the first release, for databases made before them.
const ADDED_CLIENT_COLUMNS: [(&str, &str); 4] = [
    ("secret_hash", "TEXT"),
    (
        "allowed_grants",
        "TEXT NOT NULL DEFAULT 'password,refresh_token'",
    ),
    ("allowed_scopes", "TEXT NOT NULL DEFAULT ''"),
    ("disabled", "INTEGER NOT NULL DEFAULT 0"),
];

fn migrate(c: &Connection) -> Result<(), StoreError> {
    let mut statement = c
        .prepare("PRAGMA table_info(clients)")
        .map_err(unavailable)?;
    let columns: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(1))
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    for (name, definition) in ADDED_CLIENT_COLUMNS {
        if !columns.iter().any(|c| c == name) {
            c.execute_batch(&format!(
                "ALTER TABLE clients ADD COLUMN {name} {definition}"
            ))
            .map_err(unavailable)?;
        }
    }
    Ok(())
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

fn find_client(c: &Connection, client_id: &str) -> Result<Option<Client>, StoreError> {
    c.query_row(
        &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = ?1"),
        params![client_id],
        client_from_row,
    )
    .optional()
    .map_err(unavailable)
}

fn sessions_of_user(c: &Connection, user_id: &str) -> Result<Vec<Session>, StoreError> {
    let sql = "SELECT record FROM sessions WHERE user_id = ?1";
    let mut sessions = query_all(c, sql, params![user_id], session_from_row)?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{GrantType, Listing, Store};

    fn new_client(name: &str) -> NewClient {
        NewClient {
            name: name.into(),
            client_type: ClientType::Public,
            secret_hash: None,
            allowed_grants: GrantType::defaults(ClientType::Public),
            allowed_scopes: vec!["read".into()],
        }
    }

    pub fn session(id: &str, user_id: &str, digest: &str) -> Session {
        Session {
            id: id.into(),
            user_id: user_id.into(),
            client_id: "c".into(),
            scope: String::new(),
            created: 1,
            last_used: 1,
            refresh_digest: digest.into(),
            refresh_expires_at: 100,
            previous_refresh_digest: None,
            retired_refresh_digests: Vec::new(),
            rotated_at: 1,
            retry_pair: None,
            access_tokens: vec![("a1".into(), 50)],
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

    #[tokio::test]
    async fn databases_from_before_confidential_clients_are_migrated() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("old.sqlite3");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE clients (client_id TEXT PRIMARY KEY, name TEXT NOT NULL, client_type TEXT NOT NULL, created INTEGER NOT NULL);
             INSERT INTO clients VALUES ('old-client', 'ios app', 'public', 1);",
        )
        .unwrap();
        drop(old);
        let store = EmbeddedStore::open(&path).unwrap();
        let client = store.find_client("old-client").await.unwrap().unwrap();
        assert_eq!(
            client.allowed_grants,
            GrantType::defaults(ClientType::Public)
        );
        assert!(!client.disabled);
        drop(store);
        EmbeddedStore::open(&path).expect("a second open finds nothing to migrate");
    }

    #[tokio::test]
    async fn sessions_of_a_client_are_deleted_together() {
        let folder = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&folder.path().join("s.sqlite3")).unwrap();
        store
            .insert_session(&session("s1", "u1", "d1"))
            .await
            .unwrap();
        let mut other = session("s2", "u1", "e1");
        other.client_id = "other".into();
        store.insert_session(&other).await.unwrap();
        let deleted = store.delete_sessions_of_client("c").await.unwrap();
        assert_eq!(
            deleted.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            vec!["s1"]
        );
        assert!(store.find_session("s2").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn sessions_rotate_with_compare_and_swap() {
        let folder = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&folder.path().join("s.sqlite3")).unwrap();
        let first = session("s1", "u1", "d1");
        store.insert_session(&first).await.unwrap();
        store
            .insert_session(&session("s2", "u1", "e1"))
            .await
            .unwrap();
        store
            .insert_session(&session("s3", "u2", "f1"))
            .await
            .unwrap();

        let mut rotated = first.clone();
        rotated.refresh_digest = "d2".into();
        rotated.previous_refresh_digest = Some("d1".into());
        rotated.retired_refresh_digests = vec!["d0".into(), "d1".into()];
        assert!(store.replace_session(&rotated, "d1").await.unwrap());
        assert_eq!(
            store.find_session_by_refresh("d0").await.unwrap(),
            Some(rotated.clone())
        );
        assert!(
            !store.replace_session(&rotated, "d1").await.unwrap(),
            "the second rotation loses"
        );
        assert_eq!(
            store.find_session_by_refresh("d2").await.unwrap(),
            Some(rotated.clone())
        );
        assert_eq!(
            store.find_session_by_refresh("d1").await.unwrap(),
            Some(rotated.clone())
        );
        assert!(store.find_session_by_refresh("zz").await.unwrap().is_none());

        assert_eq!(store.sessions_of_user("u1").await.unwrap().len(), 2);
        assert_eq!(store.delete_sessions_of_user("u1").await.unwrap().len(), 2);
        assert!(store.find_session("s1").await.unwrap().is_none());
        assert_eq!(store.delete_expired_sessions(100).await.unwrap(), 1);
        assert!(store.delete_session("s3").await.unwrap().is_none());
    }
}
