//! Clients in the embedded store: the `clients` table, one row a client.
//!
//! Grants are kept as a comma-separated list and scopes as a
//! space-separated one (the OAuth `scope` syntax), so a row stays readable
//! in the `sqlite3` shell.

use rusqlite::{params, Connection, OptionalExtension};

use super::{duplicate_or_unavailable, query_all, unavailable, EmbeddedStore};
use crate::store::{parse_grants, Client, ClientType, ClientUpdate, NewClient, StoreError};

/// The columns [`client_from_row`] reads, in its order.
const CLIENT_COLUMNS: &str = "client_id, name, client_type, created, secret_hash, \
    allowed_grants, allowed_scopes, disabled, can_introspect, generation";

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
        can_introspect: row.get::<_, i64>(8)? != 0,
        generation: row.get::<_, i64>(9)? as u64,
    })
}

/// The `allowed_grants` column: the grant names, comma-separated.
fn grants_column(client: &Client) -> String {
    client
        .allowed_grants
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Shared by lookup, update and removal, which all start by reading the row.
fn find_client(c: &Connection, client_id: &str) -> Result<Option<Client>, StoreError> {
    c.query_row(
        &format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = ?1"),
        params![client_id],
        client_from_row,
    )
    .optional()
    .map_err(unavailable)
}

impl EmbeddedStore {
    pub async fn create_client(&self, new: NewClient) -> Result<Client, StoreError> {
        let client = new.into_client();
        let record = client.clone();
        self.with_connection(move |c| {
            c.execute(
                "INSERT INTO clients (client_id, name, client_type, created, secret_hash, allowed_grants, allowed_scopes, disabled, can_introspect) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
                params![
                    record.client_id,
                    record.name,
                    record.client_type.as_str(),
                    record.created as i64,
                    record.secret_hash,
                    grants_column(&record),
                    record.allowed_scopes.join(" "),
                    record.can_introspect as i64,
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
                "UPDATE clients SET name = ?2, allowed_grants = ?3, allowed_scopes = ?4, disabled = ?5, can_introspect = ?6 WHERE client_id = ?1",
                params![
                    client.client_id,
                    client.name,
                    grants_column(&client),
                    client.allowed_scopes.join(" "),
                    client.disabled as i64,
                    client.can_introspect as i64
                ],
            )
            .map_err(unavailable)?;
            Ok(Some(client))
        })
        .await
    }

    pub async fn bump_client_generation(&self, client_id: &str) -> Result<bool, StoreError> {
        let client_id = client_id.to_string();
        self.with_connection(move |c| {
            c.execute(
                "UPDATE clients SET generation = generation + 1 WHERE client_id = ?1",
                params![client_id],
            )
            .map(|changed| changed == 1)
            .map_err(unavailable)
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
}
