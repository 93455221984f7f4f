//! Sessions (refresh-token families) in the embedded store.
//!
//! A session is stored whole, as JSON in `record`; the columns beside it
//! copy only what queries look up by, so indexes can find a session by its
//! current or previous refresh digest. Retired digests, which can be many,
//! get their own table, `retired_refresh_digests`, kept in step with the
//! record on every replace and delete.

use rusqlite::{params, Connection, OptionalExtension};

use super::{query_all, unavailable, EmbeddedStore};
use crate::store::{Session, StoreError};

/// Reads the JSON `record` column, the session whole.
fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    let record: String = row.get(0)?;
    serde_json::from_str(&record).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A user's sessions, newest first, as [`crate::store::Store::sessions_of_user`]
/// promises.
fn sessions_of_user(c: &Connection, user_id: &str) -> Result<Vec<Session>, StoreError> {
    let sql = "SELECT record FROM sessions WHERE user_id = ?1";
    let mut sessions = query_all(c, sql, params![user_id], session_from_row)?;
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(sessions)
}

impl EmbeddedStore {
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
            // `client_id` has no column of its own: it is read from the record.
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

#[cfg(test)]
mod tests {
    use super::*;

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
