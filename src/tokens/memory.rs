//! In-process token backend: the zero-setup default. Tokens live as long as
//! the process; several gateway instances need the Redis backend instead.
//!
//! Bounded without a background task, and without stalling the proxy path:
//! - the map is split into [`SHARDS`] shards by the digest's first byte
//!   (uniform: it is SHA-256), each behind its own lock, so a write or a
//!   sweep holds one shard and lookups in the others go on;
//! - every [`SWEEP_EVERY`] saves, one shard is swept of expired records,
//!   the next one the next time round: the whole map is swept in slices;
//! - at most `max_tokens` live records (`tokens.memory_max_tokens`). A save
//!   past it first sweeps every shard (at most once a second); if the map
//!   is still full it fails with [`TokenStoreError::Unavailable`], so the
//!   token endpoint answers 503. Forgetting live tokens instead would sign
//!   users out at an attacker's pace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockWriteGuard};

use super::{unix_now, AccessRecord, TokenDigest, TokenStoreError};

/// Shards of the map; a power of two that divides 256.
const SHARDS: usize = 64;

/// Saves between sweeps of one shard: the whole map is swept every
/// `SWEEP_EVERY * SHARDS` saves.
const SWEEP_EVERY: u64 = 64;

type Shard = RwLock<HashMap<TokenDigest, AccessRecord>>;

pub struct MemoryTokens {
    shards: Box<[Shard]>,
    /// Records held, across shards.
    len: AtomicUsize,
    max_tokens: usize,
    saves: AtomicU64,
    next_sweep: AtomicUsize,
    /// Unix second of the last full sweep forced by a full map.
    last_full_sweep: AtomicU64,
}

impl MemoryTokens {
    pub fn new(max_tokens: usize) -> Self {
        MemoryTokens {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            len: AtomicUsize::new(0),
            max_tokens,
            saves: AtomicU64::new(0),
            next_sweep: AtomicUsize::new(0),
            last_full_sweep: AtomicU64::new(0),
        }
    }

    fn shard_of(&self, digest: &TokenDigest) -> &Shard {
        &self.shards[digest.0[0] as usize % SHARDS]
    }

    fn write(shard: &Shard) -> RwLockWriteGuard<'_, HashMap<TokenDigest, AccessRecord>> {
        // A poisoned lock only means another thread panicked mid-insert of a
        // whole record; the map itself is still consistent.
        shard.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn find_access(&self, digest: &TokenDigest) -> Option<AccessRecord> {
        let shard = self
            .shard_of(digest)
            .read()
            .unwrap_or_else(|e| e.into_inner());
        shard.get(digest).cloned()
    }

    pub fn save_access(
        &self,
        digest: TokenDigest,
        record: AccessRecord,
    ) -> Result<(), TokenStoreError> {
        if self.saves.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let next = self.next_sweep.fetch_add(1, Ordering::Relaxed) % SHARDS;
            self.sweep(&self.shards[next], unix_now());
        }
        if self.len.load(Ordering::Relaxed) >= self.max_tokens {
            self.make_room()?;
        }
        if Self::write(self.shard_of(&digest))
            .insert(digest, record)
            .is_none()
        {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sweeps every shard, at most once a second, and fails if the map is
    /// still full.
    fn make_room(&self) -> Result<(), TokenStoreError> {
        let now = unix_now();
        if self.last_full_sweep.swap(now, Ordering::Relaxed) != now {
            for shard in self.shards.iter() {
                self.sweep(shard, now);
            }
        }
        let held = self.len.load(Ordering::Relaxed);
        if held >= self.max_tokens {
            return Err(TokenStoreError::Unavailable(format!(
                "{held} live access tokens in memory, the limit (tokens.memory_max_tokens); \
                 retry shortly, or use the Redis token backend"
            )));
        }
        Ok(())
    }

    fn sweep(&self, shard: &Shard, now: u64) {
        let mut map = Self::write(shard);
        let before = map.len();
        map.retain(|_, record| record.expires_at > now);
        self.len.fetch_sub(before - map.len(), Ordering::Relaxed);
    }

    pub fn delete_access(&self, digests: &[TokenDigest]) {
        for digest in digests {
            if Self::write(self.shard_of(digest)).remove(digest).is_some() {
                self.len.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// See [`super::TokenStore::delete_client_tokens`].
    pub fn delete_client_tokens(&self, client_id: &str) -> usize {
        let mut deleted = 0;
        for shard in self.shards.iter() {
            let mut map = Self::write(shard);
            let before = map.len();
            map.retain(|_, record| !is_own_token_of(record, client_id));
            deleted += before - map.len();
        }
        self.len.fetch_sub(deleted, Ordering::Relaxed);
        deleted
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let counted = self
            .shards
            .iter()
            .map(|shard| shard.read().unwrap().len())
            .sum();
        assert_eq!(counted, self.len.load(Ordering::Relaxed));
        counted
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
        let store = MemoryTokens::new(100);
        let token = RawToken::generate();
        store
            .save_access(token.digest(), record(unix_now() + 60))
            .unwrap();
        let found = store.find_access(&token.digest()).unwrap();
        assert_eq!(found.user_id.as_deref(), Some("u1"));
        assert_eq!(store.find_access(&RawToken::generate().digest()), None);
        store.delete_access(&[token.digest()]);
        assert_eq!(store.find_access(&token.digest()), None);
        assert_eq!(store.len(), 0);
    }

    /// The `n`th distinct digest, in shard `n % SHARDS`: the test decides
    /// where records land instead of leaving it to chance.
    fn digest_in_turn(n: usize) -> TokenDigest {
        let mut bytes = [0u8; 32];
        bytes[0] = (n % SHARDS) as u8;
        bytes[1..9].copy_from_slice(&(n as u64).to_be_bytes());
        TokenDigest(bytes)
    }

    #[test]
    fn expired_records_are_swept_a_shard_at_a_time() {
        let store = MemoryTokens::new(1_000_000);
        let expired = (SWEEP_EVERY * SHARDS as u64) as usize;
        for n in 0..expired {
            store
                .save_access(digest_in_turn(n), record(unix_now() - 1))
                .unwrap();
        }
        // Each sweep took one shard; after a whole round, each shard has
        // been swept once, and holds only what was saved after its turn:
        // shard k was swept at save 64(k+1) and then got 63 - k records,
        // and the last shard, swept by the last save, got that save's.
        let held = store.len();
        assert_eq!(held, (0..SHARDS).map(|k| SHARDS - 1 - k).sum::<usize>() + 1);
        for n in expired..2 * expired {
            store
                .save_access(digest_in_turn(n), record(unix_now() + 60))
                .unwrap();
        }
        // The second round swept every expired record of the first.
        assert_eq!(store.len(), expired);
    }

    #[test]
    fn a_full_store_makes_room_from_expired_records_then_refuses() {
        let store = MemoryTokens::new(10);
        for _ in 0..10 {
            store
                .save_access(RawToken::generate().digest(), record(unix_now() - 1))
                .unwrap();
        }
        // Full of expired records: a save sweeps them and goes in.
        let live = RawToken::generate().digest();
        store.save_access(live, record(unix_now() + 60)).unwrap();
        assert_eq!(store.len(), 1);
        for _ in 0..9 {
            store
                .save_access(RawToken::generate().digest(), record(unix_now() + 60))
                .unwrap();
        }
        // Full of live records: refused, and nothing live was forgotten.
        let refused = store.save_access(RawToken::generate().digest(), record(unix_now() + 60));
        assert!(matches!(refused, Err(TokenStoreError::Unavailable(_))));
        assert_eq!(store.len(), 10);
        assert!(store.find_access(&live).is_some());
        // Revoking one makes room again.
        store.delete_access(&[live]);
        store
            .save_access(RawToken::generate().digest(), record(unix_now() + 60))
            .unwrap();
    }

    #[test]
    fn a_clients_own_tokens_are_deleted_and_its_users_tokens_kept() {
        let store = MemoryTokens::new(100);
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
        store.save_access(mine, own("c1")).unwrap();
        store.save_access(other_client, own("c2")).unwrap();
        store.save_access(users, record(unix_now() + 60)).unwrap();
        assert_eq!(store.delete_client_tokens("c1"), 1);
        assert_eq!(store.find_access(&mine), None);
        assert!(store.find_access(&other_client).is_some());
        // A user's token with the same client ends with its session instead.
        assert!(store.find_access(&users).is_some());
        assert_eq!(store.len(), 2);
    }
}
