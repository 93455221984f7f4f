//! The MongoDB store, in Flask-Sentinel's schema so its databases work as
//! they are:
//!
//! - `users`: `{_id: ObjectId, username, hashpw: "$2b$…"}`; we add `created`
//!   and `disabled` and read their absence as "unknown" and "enabled".
//! - `clients`: `{client_id, client_type: "public"}`; we add `name`,
//!   `created`, `client_secret_hash`, `allowed_grant_types`,
//!   `allowed_scopes`, `disabled`, with Flask-Sentinel's behaviour as the
//!   default when they are absent.
//! - `portcullis_sessions`: refresh-token families (our own; Flask-Sentinel's
//!   `tokens` collection is left alone).
//!
//! The driver's client spawns monitor tasks on the runtime that creates it,
//! so it is created lazily, on the runtime that first uses it.
//!
//! This file connects and holds what every operation shares: the
//! collections, their indexes and the error mapping. How a record becomes
//! a document and back is in `documents`; the operations, one file per
//! record kind, in `users`, `clients` and `sessions`.

mod clients;
mod documents;
mod sessions;
mod users;

use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use tokio::sync::OnceCell;

use super::StoreError;

pub struct MongoStore {
    uri: String,
    database: String,
    client: OnceCell<mongodb::Database>,
    /// The bound on every operation (`store.mongodb.timeout_ms`).
    timeout: Duration,
}

fn unavailable(error: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A unique-index violation names what is duplicated; anything else means
/// the store could not answer.
fn duplicate_or_unavailable(
    error: mongodb::error::Error,
    what: impl FnOnce() -> String,
) -> StoreError {
    if is_duplicate_key(&error) {
        StoreError::Duplicate(what())
    } else {
        unavailable(error)
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|e| e.code == 11000)),
        _ => false,
    }
}

/// Every document matching `filter`, in `sort` order, read by `read`;
/// documents `read` cannot make sense of are skipped.
async fn find_all<T>(
    collection: &Collection<Document>,
    filter: Document,
    sort: Document,
    read: impl Fn(Document) -> Option<T>,
) -> Result<Vec<T>, StoreError> {
    let mut cursor = collection
        .find(filter)
        .sort(sort)
        .await
        .map_err(unavailable)?;
    let mut items = Vec::new();
    while cursor.advance().await.map_err(unavailable)? {
        let document = cursor.deserialize_current().map_err(unavailable)?;
        items.extend(read(document));
    }
    Ok(items)
}

/// `_id` as stored: an ObjectId when the text is one, else the text itself.
fn id_filter(id: &str) -> Document {
    match ObjectId::parse_str(id) {
        Ok(oid) => doc! {"_id": oid},
        Err(_) => doc! {"_id": id},
    }
}

impl MongoStore {
    pub fn new(uri: &str, database: &str, timeout: Duration) -> Self {
        MongoStore {
            uri: uri.to_string(),
            database: database.to_string(),
            client: OnceCell::new(),
            timeout,
        }
    }

    /// Runs one operation within the configured bound. A server that
    /// stalls (a primary that hangs, a partition) turns into
    /// [`StoreError::Unavailable`], which callers answer with 503, instead
    /// of a request that hangs. An operation cut short may still complete
    /// on the server; each caller's retry is safe for that.
    pub async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    async fn database(&self) -> Result<&mongodb::Database, StoreError> {
        self.client
            .get_or_try_init(|| async {
                let mut options = ClientOptions::parse(&self.uri).await.map_err(unavailable)?;
                // Bounded, so an unreachable server is a prompt error.
                options.server_selection_timeout = Some(self.timeout);
                options.connect_timeout = Some(self.timeout);
                options.app_name = Some("portcullis".into());
                let client = mongodb::Client::with_options(options).map_err(unavailable)?;
                Ok(client.database(&self.database))
            })
            .await
    }

    async fn users(&self) -> Result<Collection<Document>, StoreError> {
        Ok(self.database().await?.collection("users"))
    }

    async fn clients(&self) -> Result<Collection<Document>, StoreError> {
        Ok(self.database().await?.collection("clients"))
    }

    /// Creates the unique indexes; fails with a clear message when existing
    /// data has duplicates (Flask-Sentinel never enforced unique usernames).
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let unique = IndexOptions::builder().unique(true).build();
        self.users()
            .await?
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"username": 1})
                    .options(unique.clone())
                    .build(),
            )
            .await
            .map_err(|e| duplicate_or_unavailable(e, || "a username in the `users` collection (two users share it; rename or remove one)".into()))?;
        self.clients()
            .await?
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"client_id": 1})
                    .options(unique)
                    .build(),
            )
            .await
            .map_err(|e| {
                duplicate_or_unavailable(e, || "a client_id in the `clients` collection".into())
            })?;
        let sessions = self.sessions().await?;
        for keys in [
            doc! {"refresh_digest": 1},
            doc! {"previous_refresh_digest": 1},
            doc! {"retired_refresh_digests": 1},
            doc! {"user_id": 1},
            doc! {"client_id": 1},
        ] {
            sessions
                .create_index(IndexModel::builder().keys(keys).build())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn sessions(&self) -> Result<Collection<Document>, StoreError> {
        Ok(self.database().await?.collection("portcullis_sessions"))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.database()
            .await?
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_filter_prefers_object_ids() {
        let oid = ObjectId::new();
        assert_eq!(id_filter(&oid.to_hex()), doc! {"_id": oid});
        assert_eq!(id_filter("plain"), doc! {"_id": "plain"});
    }
}
