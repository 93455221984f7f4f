//! In-process token backend: the zero-setup default. Tokens live as long as
//! the process; several gateway instances need the Redis backend instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use super::{unix_now, AccessRecord, TokenDigest};

/// Expired records are swept once every this many saves, so memory stays
/// bounded by the tokens alive in one lifetime without a background task.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryTokens {
    access: RwLock<HashMap<TokenDigest, AccessRecord>>,
    saves: AtomicU64,
}

impl MemoryTokens {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn find_access(&self, digest: &TokenDigest) -> Option<AccessRecord> {
        // A poisoned lock only means another thread panicked mid-insert of a
        // whole record; the map itself is still consistent.
        let map = self.access.read().unwrap_or_else(|e| e.into_inner());
        map.get(digest).cloned()
    }

    pub fn save_access(&self, digest: TokenDigest, record: AccessRecord) {
        if self.saves.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep_expired();
        }
        self.access
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest, record);
    }

    pub fn delete_access(&self, digests: &[TokenDigest]) {
        let mut map = self.access.write().unwrap_or_else(|e| e.into_inner());
        for digest in digests {
            map.remove(digest);
        }
    }

    /// See [`super::TokenStore::delete_client_tokens`].
    pub fn delete_client_tokens(&self, client_id: &str) -> usize {
        let mut map = self.access.write().unwrap_or_else(|e| e.into_inner());
        let before = map.len();
        map.retain(|_, record| !is_own_token_of(record, client_id));
        before - map.len()
    }

    fn sweep_expired(&self) {
        let now = unix_now();
        self.access
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, record| record.expires_at > now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.access.read().unwrap().len()
    }
}

/// A token the client got for itself: no user behind it.
fn is_own_token_of(record: &AccessRecord, client_id: &str) -> bool {
    record.user_id.is_none() && record.client_id == client_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::RawToken;

    fn record(expires_at: u64) -> AccessRecord {
        AccessRecord {
            user_id: Some("u1".into()),
            client_id: "c1".into(),
            scope: String::new(),
            expires_at,
            session_id: None,
            issued_at: 0,
        }
    }

    #[test]
    fn saved_tokens_are_found_by_digest_and_deleted() {
        let store = MemoryTokens::new();
        let token = RawToken::generate();
        store.save_access(token.digest(), record(unix_now() + 60));
        let found = store.find_access(&token.digest()).unwrap();
        assert_eq!(found.user_id.as_deref(), Some("u1"));
        assert_eq!(store.find_access(&RawToken::generate().digest()), None);
        store.delete_access(&[token.digest()]);
        assert_eq!(store.find_access(&token.digest()), None);
    }

    #[test]
    fn expired_records_are_swept() {
        let store = MemoryTokens::new();
        for _ in 0..SWEEP_EVERY - 1 {
            store.save_access(RawToken::generate().digest(), record(unix_now() - 1));
        }
        assert_eq!(store.len(), (SWEEP_EVERY - 1) as usize);
        store.save_access(RawToken::generate().digest(), record(unix_now() + 60));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_clients_own_tokens_are_deleted_and_its_users_tokens_kept() {
        let store = MemoryTokens::new();
        let own = |client: &str| AccessRecord {
            user_id: None,
            client_id: client.into(),
            ..record(unix_now() + 60)
        };
        let (mine, other_client, users) = (
            RawToken::generate().digest(),
            RawToken::generate().digest(),
            RawToken::generate().digest(),
        );
        store.save_access(mine, own("c1"));
        store.save_access(other_client, own("c2"));
        store.save_access(users, record(unix_now() + 60));
        assert_eq!(store.delete_client_tokens("c1"), 1);
        assert_eq!(store.find_access(&mine), None);
        assert!(store.find_access(&other_client).is_some());
        // A user's token with the same client ends with its session instead.
        assert!(store.find_access(&users).is_some());
    }
}
