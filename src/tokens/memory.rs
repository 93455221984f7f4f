//! In-process token backend: the zero-setup default. Tokens live as long as
//! the process; several gateway instances need the Redis backend instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use super::{unix_now, AccessRecord, IssuedTokens, RefreshRecord, TokenDigest};

/// Expired records are swept once every this many saves, so memory stays
/// bounded by the tokens alive in one lifetime without a background task.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub struct MemoryTokens {
    access: RwLock<HashMap<TokenDigest, AccessRecord>>,
    refresh: RwLock<HashMap<TokenDigest, RefreshRecord>>,
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

    pub fn save(&self, issued: &IssuedTokens) {
        if self.saves.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep_expired();
        }
        self.access
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issued.access_token.digest(), issued.access.clone());
        if let (Some(token), Some(record)) = (&issued.refresh_token, &issued.refresh) {
            self.refresh
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(token.digest(), record.clone());
        }
    }

    pub fn take_refresh(&self, digest: &TokenDigest) -> Option<RefreshRecord> {
        self.refresh
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest)
    }

    fn sweep_expired(&self) {
        let now = unix_now();
        self.access
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, record| record.expires_at > now);
        self.refresh
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, record| record.expires_at > now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.access.read().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::RawToken;
    use std::time::Duration;

    fn issued(expires_at: u64) -> IssuedTokens {
        IssuedTokens {
            access_token: RawToken::generate(),
            refresh_token: Some(RawToken::generate()),
            access: AccessRecord {
                user_id: Some("u1".into()),
                client_id: "c1".into(),
                scope: String::new(),
                expires_at,
            },
            refresh: Some(RefreshRecord {
                user_id: "u1".into(),
                client_id: "c1".into(),
                scope: String::new(),
                expires_at,
            }),
            access_lifetime: Duration::from_secs(60),
            refresh_lifetime: Duration::from_secs(60),
        }
    }

    #[test]
    fn saved_tokens_are_found_by_digest_only() {
        let store = MemoryTokens::new();
        let tokens = issued(unix_now() + 60);
        store.save(&tokens);
        assert_eq!(
            store.find_access(&tokens.access_token.digest()),
            Some(tokens.access.clone())
        );
        assert_eq!(store.find_access(&RawToken::generate().digest()), None);
    }

    #[test]
    fn refresh_tokens_are_single_use() {
        let store = MemoryTokens::new();
        let tokens = issued(unix_now() + 60);
        store.save(&tokens);
        let digest = tokens.refresh_token.as_ref().unwrap().digest();
        assert!(store.take_refresh(&digest).is_some());
        assert!(store.take_refresh(&digest).is_none());
    }

    #[test]
    fn expired_records_are_swept() {
        let store = MemoryTokens::new();
        for _ in 0..SWEEP_EVERY - 1 {
            store.save(&issued(unix_now() - 1));
        }
        assert_eq!(store.len(), (SWEEP_EVERY - 1) as usize);
        store.save(&issued(unix_now() + 60));
        assert_eq!(store.len(), 1);
    }
}
