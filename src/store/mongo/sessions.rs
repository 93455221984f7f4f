//! Sessions (refresh-token families) in the MongoDB store: our own
//! `portcullis_sessions` collection, one document a session, keyed by the
//! session id.

use mongodb::bson::{doc, Document};

use super::documents::{session_document, session_from_document};
use super::{find_all, unavailable, MongoStore};
use crate::store::{Session, StoreError};

impl MongoStore {
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
        self.delete_sessions_where(doc! {"user_id": user_id}).await
    }

    pub async fn delete_sessions_of_client(
        &self,
        client_id: &str,
    ) -> Result<Vec<Session>, StoreError> {
        self.delete_sessions_where(doc! {"client_id": client_id})
            .await
    }

    /// Reads the matching sessions (for their access tokens), then deletes
    /// by the same filter, so a session written in between goes too. Its
    /// writer's final check sees the raised generation and revokes its
    /// own token (see [`crate::sessions`]).
    async fn delete_sessions_where(&self, filter: Document) -> Result<Vec<Session>, StoreError> {
        let sessions = self.find_sessions(filter.clone()).await?;
        self.sessions()
            .await?
            .delete_many(filter)
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
