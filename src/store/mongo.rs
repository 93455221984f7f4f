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

use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use tokio::sync::OnceCell;

use super::{
    new_client_id, Client, ClientType, ClientUpdate, GrantType, NewClient, Session, StoreError,
    User, UserUpdate,
};
use crate::tokens::unix_now;

pub struct MongoStore {
    uri: String,
    database: String,
    client: OnceCell<mongodb::Database>,
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

fn user_from_document(document: &Document) -> Option<User> {
    let id = match document.get("_id")? {
        Bson::ObjectId(oid) => oid.to_hex(),
        Bson::String(id) => id.clone(),
        _ => return None,
    };
    let created = match document.get("created") {
        Some(Bson::DateTime(at)) => (at.timestamp_millis().max(0) / 1000) as u64,
        _ => 0,
    };
    Some(User {
        id,
        username: document.get_str("username").ok()?.to_string(),
        // Flask-Sentinel on Python 3 may have stored the hash as bytes.
        password_hash: match document.get("hashpw")? {
            Bson::String(hash) => hash.clone(),
            Bson::Binary(binary) => String::from_utf8(binary.bytes.clone()).ok()?,
            _ => return None,
        },
        created,
        disabled: document.get_bool("disabled").unwrap_or(false),
    })
}

fn client_from_document(document: &Document) -> Option<Client> {
    let created = match document.get("created") {
        Some(Bson::DateTime(at)) => (at.timestamp_millis().max(0) / 1000) as u64,
        _ => 0,
    };
    // An unknown type is treated as confidential: it then needs a secret,
    // which fails closed.
    let client_type = ClientType::parse(document.get_str("client_type").unwrap_or("public"))
        .unwrap_or(ClientType::Confidential);
    let strings = |key: &str| -> Option<Vec<String>> {
        document.get_array(key).ok().map(|items| {
            items
                .iter()
                .filter_map(|b| b.as_str().map(String::from))
                .collect()
        })
    };
    let allowed_grants = match strings("allowed_grant_types") {
        Some(names) => names.iter().filter_map(|n| GrantType::parse(n)).collect(),
        None => GrantType::defaults(ClientType::Public),
    };
    Some(Client {
        client_id: document.get_str("client_id").ok()?.to_string(),
        name: document.get_str("name").unwrap_or("").to_string(),
        client_type,
        secret_hash: document
            .get_str("client_secret_hash")
            .ok()
            .map(String::from),
        allowed_grants,
        allowed_scopes: strings("allowed_scopes").unwrap_or_default(),
        disabled: document.get_bool("disabled").unwrap_or(false),
        created,
    })
}

fn client_document(client: &Client) -> Document {
    let mut document = doc! {
        "client_id": &client.client_id,
        "client_type": client.client_type.as_str(),
        "name": &client.name,
        "created": DateTime::from_millis((client.created * 1000) as i64),
        "allowed_grant_types": client.allowed_grants.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "allowed_scopes": &client.allowed_scopes,
        "disabled": client.disabled,
    };
    if let Some(hash) = &client.secret_hash {
        document.insert("client_secret_hash", hash);
    }
    document
}

fn session_document(session: &Session) -> Result<Document, StoreError> {
    let mut document = mongodb::bson::to_document(session)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode a session: {e}")))?;
    document.insert("_id", &session.id);
    Ok(document)
}

fn session_from_document(mut document: Document) -> Option<Session> {
    document.remove("_id");
    mongodb::bson::from_document(document).ok()
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
    pub fn new(uri: &str, database: &str) -> Self {
        MongoStore {
            uri: uri.to_string(),
            database: database.to_string(),
            client: OnceCell::new(),
        }
    }

    async fn database(&self) -> Result<&mongodb::Database, StoreError> {
        self.client
            .get_or_try_init(|| async {
                let mut options = ClientOptions::parse(&self.uri).await.map_err(unavailable)?;
                // Bounded, so an unreachable server is a prompt error.
                options.server_selection_timeout = Some(Duration::from_secs(3));
                options.connect_timeout = Some(Duration::from_secs(3));
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

    async fn find_sessions(&self, filter: Document) -> Result<Vec<Session>, StoreError> {
        let sessions = self.sessions().await?;
        find_all(
            &sessions,
            filter,
            doc! {"created": -1},
            session_from_document,
        )
        .await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.database()
            .await?
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let oid = ObjectId::new();
        let now = unix_now();
        let document = doc! {
            "_id": oid,
            "username": username,
            "hashpw": password_hash,
            "created": DateTime::from_millis((now * 1000) as i64),
            "disabled": false,
        };
        self.users()
            .await?
            .insert_one(document)
            .await
            .map_err(|e| duplicate_or_unavailable(e, || format!("user `{username}`")))?;
        Ok(User {
            id: oid.to_hex(),
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            created: now,
            disabled: false,
        })
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let found = self
            .users()
            .await?
            .find_one(doc! {"username": username})
            .await
            .map_err(unavailable)?;
        Ok(found.as_ref().and_then(user_from_document))
    }

    pub async fn find_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let found = self
            .users()
            .await?
            .find_one(id_filter(id))
            .await
            .map_err(unavailable)?;
        Ok(found.as_ref().and_then(user_from_document))
    }

    /// Every user, by username.
    pub async fn all_users(&self) -> Result<Vec<User>, StoreError> {
        let collection = self.users().await?;
        find_all(&collection, doc! {}, doc! {"username": 1}, |d| {
            user_from_document(&d)
        })
        .await
    }

    pub async fn update_user(
        &self,
        id: &str,
        update: UserUpdate,
    ) -> Result<Option<User>, StoreError> {
        let mut set = Document::new();
        if let Some(hash) = update.password_hash {
            set.insert("hashpw", hash);
        }
        if let Some(disabled) = update.disabled {
            set.insert("disabled", disabled);
        }
        if !set.is_empty() {
            self.users()
                .await?
                .update_one(id_filter(id), doc! {"$set": set})
                .await
                .map_err(unavailable)?;
        }
        self.find_user_by_id(id).await
    }

    pub async fn remove_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let removed = self
            .users()
            .await?
            .find_one_and_delete(id_filter(id))
            .await
            .map_err(unavailable)?;
        Ok(removed.as_ref().and_then(user_from_document))
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
        self.clients()
            .await?
            .insert_one(client_document(&client))
            .await
            .map_err(|e| {
                duplicate_or_unavailable(e, || format!("client `{}`", client.client_id))
            })?;
        Ok(client)
    }

    pub async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let found = self
            .clients()
            .await?
            .find_one(doc! {"client_id": client_id})
            .await
            .map_err(unavailable)?;
        Ok(found.as_ref().and_then(client_from_document))
    }

    /// Every client, by name then id.
    pub async fn all_clients(&self) -> Result<Vec<Client>, StoreError> {
        let collection = self.clients().await?;
        let sort = doc! {"name": 1, "client_id": 1};
        find_all(&collection, doc! {}, sort, |d| client_from_document(&d)).await
    }

    pub async fn update_client(
        &self,
        client_id: &str,
        update: ClientUpdate,
    ) -> Result<Option<Client>, StoreError> {
        let Some(mut client) = self.find_client(client_id).await? else {
            return Ok(None);
        };
        update.apply(&mut client);
        let mut set = client_document(&client);
        set.remove("client_secret_hash");
        self.clients()
            .await?
            .update_one(doc! {"client_id": client_id}, doc! {"$set": set})
            .await
            .map_err(unavailable)?;
        Ok(Some(client))
    }

    pub async fn remove_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let removed = self
            .clients()
            .await?
            .find_one_and_delete(doc! {"client_id": client_id})
            .await
            .map_err(unavailable)?;
        Ok(removed.as_ref().and_then(client_from_document))
    }

    pub async fn insert_session(&self, session: &Session) -> Result<(), StoreError> {
        self.sessions()
            .await?
            .insert_one(session_document(session)?)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    pub async fn find_session_by_refresh(
        &self,
        digest: &str,
    ) -> Result<Option<Session>, StoreError> {
        let filter = doc! {"$or": [
            {"refresh_digest": digest},
            {"previous_refresh_digest": digest},
            {"retired_refresh_digests": digest},
        ]};
        let found = self
            .sessions()
            .await?
            .find_one(filter)
            .await
            .map_err(unavailable)?;
        Ok(found.and_then(session_from_document))
    }

    pub async fn find_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let found = self
            .sessions()
            .await?
            .find_one(doc! {"_id": id})
            .await
            .map_err(unavailable)?;
        Ok(found.and_then(session_from_document))
    }

    pub async fn replace_session(
        &self,
        session: &Session,
        expected_refresh_digest: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .sessions()
            .await?
            .replace_one(
                doc! {"_id": &session.id, "refresh_digest": expected_refresh_digest},
                session_document(session)?,
            )
            .await
            .map_err(unavailable)?;
        Ok(result.matched_count == 1)
    }

    pub async fn delete_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let removed = self
            .sessions()
            .await?
            .find_one_and_delete(doc! {"_id": id})
            .await
            .map_err(unavailable)?;
        Ok(removed.and_then(session_from_document))
    }

    pub async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        self.find_sessions(doc! {"user_id": user_id}).await
    }

    pub async fn delete_sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let sessions = self.sessions_of_user(user_id).await?;
        let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
        self.sessions()
            .await?
            .delete_many(doc! {"_id": {"$in": ids}})
            .await
            .map_err(unavailable)?;
        Ok(sessions)
    }

    pub async fn delete_sessions_of_client(
        &self,
        client_id: &str,
    ) -> Result<Vec<Session>, StoreError> {
        let sessions = self.find_sessions(doc! {"client_id": client_id}).await?;
        let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
        self.sessions()
            .await?
            .delete_many(doc! {"_id": {"$in": ids}})
            .await
            .map_err(unavailable)?;
        Ok(sessions)
    }

    pub async fn delete_expired_sessions(&self, now: u64) -> Result<u64, StoreError> {
        let result = self
            .sessions()
            .await?
            .delete_many(doc! {"refresh_expires_at": {"$lte": now as i64}})
            .await
            .map_err(unavailable)?;
        Ok(result.deleted_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flask_sentinel_documents_are_read() {
        let oid = ObjectId::new();
        let user = user_from_document(&doc! {
            "_id": oid, "username": "alice", "hashpw": "$2b$12$abc"
        })
        .unwrap();
        assert_eq!(user.id, oid.to_hex());
        assert_eq!(user.password_hash, "$2b$12$abc");
        assert!(!user.disabled);
        assert_eq!(user.created, 0);

        let client =
            client_from_document(&doc! {"client_id": "abc", "client_type": "public"}).unwrap();
        assert_eq!(client.client_id, "abc");
        assert_eq!(client.client_type, ClientType::Public);

        assert!(user_from_document(&doc! {"_id": oid, "username": "no-hash"}).is_none());
        let bytes = mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: b"$2b$12$bytes".to_vec(),
        };
        let user =
            user_from_document(&doc! {"_id": oid, "username": "py3", "hashpw": bytes}).unwrap();
        assert_eq!(user.password_hash, "$2b$12$bytes");
    }

    #[test]
    fn id_filter_prefers_object_ids() {
        let oid = ObjectId::new();
        assert_eq!(id_filter(&oid.to_hex()), doc! {"_id": oid});
        assert_eq!(id_filter("plain"), doc! {"_id": "plain"});
    }
}
