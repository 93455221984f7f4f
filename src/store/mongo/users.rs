//! Users in the MongoDB store: Flask-Sentinel's `users` collection.

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};

use super::documents::{user_from_document, GENERATION};
use super::{duplicate_or_unavailable, find_all, id_filter, unavailable, MongoStore};
use crate::store::{StoreError, User, UserUpdate};
use crate::tokens::unix_now;

impl MongoStore {
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
            generation: 0,
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

    pub async fn bump_user_generation(&self, id: &str) -> Result<bool, StoreError> {
        let result = self
            .users()
            .await?
            .update_one(id_filter(id), doc! {"$inc": {GENERATION: 1_i64}})
            .await
            .map_err(unavailable)?;
        Ok(result.matched_count == 1)
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
}
