//! The tables of the embedded store, and how an older file is brought up
//! to date.
//!
//! `CREATE … IF NOT EXISTS` makes a new file and leaves an existing one be;
//! [`migrate`] then adds the columns later releases introduced, so a
//! database from any earlier release opens without a separate upgrade step.

use rusqlite::Connection;

use super::unavailable;
use crate::store::StoreError;

/// Every table and index, as a fresh database has them.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created       INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    generation    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS clients (
    client_id      TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    client_type    TEXT NOT NULL,
    created        INTEGER NOT NULL,
    secret_hash    TEXT,
    allowed_grants TEXT NOT NULL DEFAULT 'password,refresh_token',
    allowed_scopes TEXT NOT NULL DEFAULT '',
    disabled       INTEGER NOT NULL DEFAULT 0,
    can_introspect INTEGER NOT NULL DEFAULT 0,
    generation     INTEGER NOT NULL DEFAULT 0
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

/// Columns added since the first release, table by table, for databases
/// made before them.
const ADDED_COLUMNS: [(&str, &str, &str); 7] = [
    ("clients", "secret_hash", "TEXT"),
    (
        "clients",
        "allowed_grants",
        "TEXT NOT NULL DEFAULT 'password,refresh_token'",
    ),
    ("clients", "allowed_scopes", "TEXT NOT NULL DEFAULT ''"),
    ("clients", "disabled", "INTEGER NOT NULL DEFAULT 0"),
    ("clients", "can_introspect", "INTEGER NOT NULL DEFAULT 0"),
    ("clients", "generation", "INTEGER NOT NULL DEFAULT 0"),
    ("users", "generation", "INTEGER NOT NULL DEFAULT 0"),
];

/// Adds each of [`ADDED_COLUMNS`] its table lacks; a current database has
/// them all, so this then does nothing.
pub(super) fn migrate(c: &Connection) -> Result<(), StoreError> {
    for (table, name, definition) in ADDED_COLUMNS {
        let mut statement = c
            .prepare(&format!("PRAGMA table_info({table})"))
            .map_err(unavailable)?;
        let columns: Vec<String> = statement
            .query_map([], |row| row.get::<_, String>(1))
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)?;
        if !columns.iter().any(|c| c == name) {
            c.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {name} {definition}"
            ))
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::embedded::EmbeddedStore;
    use crate::store::{ClientType, GrantType};

    #[tokio::test]
    async fn databases_from_before_confidential_clients_are_migrated() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("old.sqlite3");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE clients (client_id TEXT PRIMARY KEY, name TEXT NOT NULL, client_type TEXT NOT NULL, created INTEGER NOT NULL);
             INSERT INTO clients VALUES ('old-client', 'ios app', 'public', 1);
             CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, created INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
             INSERT INTO users VALUES ('old-user', 'jonas', '$2b$04$x', 1, 0);",
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
        assert!(!client.can_introspect);
        assert_eq!(client.generation, 0);
        let user = store.find_user_by_id("old-user").await.unwrap().unwrap();
        assert_eq!(user.generation, 0);
        assert!(store.bump_user_generation("old-user").await.unwrap());
        let user = store.find_user_by_id("old-user").await.unwrap().unwrap();
        assert_eq!(user.generation, 1);
        drop(store);
        EmbeddedStore::open(&path).expect("a second open finds nothing to migrate");
    }
}
