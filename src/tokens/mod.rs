//! Tokens: how they are made, and where access tokens live.
//!
//! Tokens are opaque: 256 bits from the OS CSPRNG, base64url without padding.
//! Backends never see a raw token, only its SHA-256 digest ([`TokenDigest`]),
//! so a dump of Redis or of memory holds nothing a client could replay.
//!
//! Access tokens are short-lived and checked on every request, so they live
//! in a fast backend, a closed set: [`memory::MemoryTokens`] (default, one
//! process) and [`redis::RedisTokens`] (shared by every gateway instance).
//! Refresh tokens are long-lived and must survive restarts and the loss of
//! Redis, so they live in the durable store as sessions
//! ([`crate::store::Session`]).

pub mod memory;
pub mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::metrics::TokenStoreOp;

/// A token as handed to a client. Never logged: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct RawToken(String);

impl RawToken {
    /// 32 random bytes, URL-safe base64 without padding (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        RawToken(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_client(token: &str) -> Self {
        RawToken(token.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl std::fmt::Debug for RawToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawToken(<redacted>)")
    }
}

/// SHA-256 of a token: the only form in which tokens are stored or compared.
/// Lookups by digest make the comparison constant-time with respect to the
/// secret: an attacker controls the token, not the digest's prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    pub fn to_hex(&self) -> String {
        let mut text = [0u8; 64];
        self.write_hex(&mut text);
        String::from_utf8(text.to_vec()).expect("hex digits are ASCII")
    }

    /// Writes the 64 hex digits into `out`, which must be 64 bytes long.
    pub fn write_hex(&self, out: &mut [u8]) {
        hex::encode_to_slice(self.0, out).expect("64 bytes hold 32 in hex");
    }
}

/// What an access token grants. Stored as JSON under its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// Absent for tokens issued to a client acting for itself
    /// (client_credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// The session (refresh-token family) it was issued in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub issued_at: u64,
}

impl AccessRecord {
    /// True when every scope in `required` was granted (all-of).
    pub fn has_scopes(&self, required: &[String]) -> bool {
        required
            .iter()
            .all(|needed| self.scope.split(' ').any(|granted| granted == needed))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    /// The backend could not be reached or did not answer in time. The
    /// gateway fails closed on this: 503, never forward.
    #[error("token store unavailable: {0}")]
    Unavailable(String),
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Records one call's time, and its failure, in the token-store metrics.
fn timed<T>(op: TokenStoreOp, started: std::time::Instant, result: &Result<T, TokenStoreError>) {
    crate::metrics::token_store_call(op, started.elapsed().as_secs_f64(), result.is_err());
}

/// The configured access-token backend.
// One value per process: the size of the Redis variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum TokenStore {
    Memory(memory::MemoryTokens),
    Redis(redis::RedisTokens),
}

impl TokenStore {
    /// What the access token grants, if it is known and unexpired.
    pub async fn find_access(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<AccessRecord>, TokenStoreError> {
        let started = std::time::Instant::now();
        let record = match self {
            TokenStore::Memory(store) => Ok(store.find_access(digest)),
            TokenStore::Redis(store) => store.find_access(digest).await,
        };
        timed(TokenStoreOp::Find, started, &record);
        let record = record?;
        // Backends expire records themselves; this check guards the seconds
        // between a record's expiry and its eviction.
        Ok(record.filter(|record| record.expires_at > unix_now()))
    }

    pub async fn save_access(
        &self,
        token: &RawToken,
        record: &AccessRecord,
    ) -> Result<(), TokenStoreError> {
        let lifetime = Duration::from_secs(record.expires_at.saturating_sub(unix_now()).max(1));
        let started = std::time::Instant::now();
        let saved = match self {
            TokenStore::Memory(store) => store.save_access(token.digest(), record.clone()),
            TokenStore::Redis(store) => store.save_access(token, record, lifetime).await,
        };
        timed(TokenStoreOp::Save, started, &saved);
        saved
    }

    /// Revokes access tokens: effective for the very next request on every
    /// instance sharing this backend.
    pub async fn delete_access(&self, digests: &[TokenDigest]) -> Result<(), TokenStoreError> {
        if digests.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let deleted = match self {
            TokenStore::Memory(store) => {
                store.delete_access(digests);
                Ok(())
            }
            TokenStore::Redis(store) => store.delete_access(digests).await,
        };
        timed(TokenStoreOp::Delete, started, &deleted);
        deleted
    }

    /// Revokes the tokens a client got for itself (client_credentials):
    /// they belong to no session, so session revocation cannot reach them.
    /// Returns how many were listed (some may have expired already).
    pub async fn delete_client_tokens(&self, client_id: &str) -> Result<usize, TokenStoreError> {
        match self {
            TokenStore::Memory(store) => Ok(store.delete_client_tokens(client_id)),
            TokenStore::Redis(store) => store.delete_client_tokens(client_id).await,
        }
    }

    /// Checks the backend answers; used at startup.
    pub async fn ping(&self) -> Result<(), TokenStoreError> {
        match self {
            TokenStore::Memory(_) => Ok(()),
            TokenStore::Redis(store) => store.ping().await,
        }
    }
}

impl TokenDigest {
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(TokenDigest(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_random_and_url_safe() {
        let a = RawToken::generate();
        let b = RawToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert!(a
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn digest_is_sha256_hex() {
        assert_eq!(
            TokenDigest::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let digest = TokenDigest::of("x");
        assert_eq!(TokenDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(TokenDigest::from_hex("zz"), None);
    }

    #[test]
    fn scopes_are_all_of() {
        let record = AccessRecord {
            user_id: None,
            client_id: "c".into(),
            scope: "read write".into(),
            expires_at: 1,
            session_id: None,
            issued_at: 0,
        };
        let need =
            |s: &[&str]| record.has_scopes(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert!(need(&[]));
        assert!(need(&["read"]));
        assert!(need(&["write", "read"]));
        assert!(!need(&["admin"]));
        assert!(!need(&["read", "admin"]));
        assert!(!need(&["rea"]));
    }

    #[test]
    fn raw_tokens_never_print() {
        let token = RawToken::from_client("secret-token-value");
        assert!(!format!("{token:?}").contains("secret"));
    }

    #[test]
    fn records_without_user_omit_the_field() {
        let record = AccessRecord {
            user_id: None,
            client_id: "c".into(),
            scope: String::new(),
            expires_at: 1,
            session_id: None,
            issued_at: 0,
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("user_id"), "{json}");
        let back: AccessRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }
}
