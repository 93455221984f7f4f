//! Users in the embedded store: the `users` table, one row a user.

use rusqlite::{params, OptionalExtension};

use super::{duplicate_or_unavailable, query_all, unavailable, EmbeddedStore};
use crate::store::{new_user_id, StoreError, User, UserUpdate};
use crate::tokens::unix_now;

/// The columns [`user_from_row`] reads, in its order.
const USER_COLUMNS: &str = "id, username, password_hash, created, disabled";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        created: row.get::<_, i64>(3)? as u64,
        disabled: row.get::<_, i64>(4)? != 0,
    })
}

impl EmbeddedStore {
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
}
