//! Clients in the MongoDB store: Flask-Sentinel's `clients` collection.

use mongodb::bson::doc;

use super::documents::{client_document, client_from_document, GENERATION};
use super::{duplicate_or_unavailable, find_all, unavailable, MongoStore};
use crate::store::{Client, ClientUpdate, NewClient, StoreError};

impl MongoStore {
    pub async fn create_client(&self, new: NewClient) -> Result<Client, StoreError> {
        let client = new.into_client();
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

    pub async fn bump_client_generation(&self, client_id: &str) -> Result<bool, StoreError> {
        let result = self
            .clients()
            .await?
            .update_one(
                doc! {"client_id": client_id},
                doc! {"$inc": {GENERATION: 1_i64}},
            )
            .await
            .map_err(unavailable)?;
        Ok(result.matched_count == 1)
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
}
