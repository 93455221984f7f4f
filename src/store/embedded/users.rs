//! Users in the embedded store: the `users` table, one row a user.

use rusqlite::{params, OptionalExtension};

use super::{duplicate_or_unavailable, query_all, unavailable, EmbeddedStore};
use crate::store::{new_user_id, StoreError, User, UserUpdate};
use crate::tokens::unix_now;

/// The columns [`user_from_row`] reads, in its order.
const USER_COLUMNS: &str = "id, username, password_hash, created, disabled, generation";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        created: row.get::<_, i64>(3)? as u64,
        disabled: row.get::<_, i64>(4)? != 0,
        generation: row.get::<_, i64>(5)? as u64,
    })
}

/// The user whose `column` (`id` or `username`, both unique) is `value`.
fn user_where(
    c: &rusqlite::Connection,
    column: &str,
    value: &str,
) -> Result<Option<User>, StoreError> {
    c.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?1"),
        params![value],
        user_from_row,
    )
    .optional()
    .map_err(unavailable)
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
            generation: 0,
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
        self.with_connection(move |c| user_where(c, "username", &username))
            .await
    }

    pub async fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| user_where(c, "id", &id))
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
            user_where(c, "id", &id)
        })
        .await
    }

    pub async fn bump_user_generation(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| {
            c.execute(
                "UPDATE users SET generation = generation + 1 WHERE id = ?1",
                params![id],
            )
            .map(|changed| changed == 1)
            .map_err(unavailable)
        })
        .await
    }

    pub async fn remove_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.with_connection(move |c| {
            let user = user_where(c, "id", &id)?;
            c.execute("DELETE FROM users WHERE id = ?1", params![id])
                .map_err(unavailable)?;
            Ok(user)
        })
        .await
    }
}
