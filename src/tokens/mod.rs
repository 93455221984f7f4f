//! Access and refresh tokens: how they are made, how they are stored.
//!
//! Tokens are opaque: 256 bits from the OS CSPRNG, base64url without padding.
//! Backends never see a raw token, only its SHA-256 digest ([`TokenDigest`]),
//! so a dump of Redis or of memory holds nothing a client could replay.
//!
//! Two backends, a closed set: [`memory::MemoryTokens`] (default, one process)
//! and [`redis::RedisTokens`] (shared by every gateway instance).

pub mod memory;
pub mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
        hex::encode(self.0)
    }
}

/// What an access token grants. Stored as JSON under its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// Absent for tokens issued to a client acting for itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What a refresh token may be exchanged for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub user_id: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub expires_at: u64,
}

/// A freshly issued pair, with the raw tokens the client will receive.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: RawToken,
    pub refresh_token: Option<RawToken>,
    pub access: AccessRecord,
    pub refresh: Option<RefreshRecord>,
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
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

/// The configured token backend.
pub enum TokenStore {
    Memory(memory::MemoryTokens),
    Redis(redis::RedisTokens),
}

impl TokenStore {
    /// Who the access token belongs to, if it is known and unexpired.
    pub async fn find_access(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<AccessRecord>, TokenStoreError> {
        let record = match self {
            TokenStore::Memory(store) => store.find_access(digest),
            TokenStore::Redis(store) => store.find_access(digest).await?,
        };
        // Backends expire records themselves; this check guards the seconds
        // between a record's expiry and its eviction.
        Ok(record.filter(|record| record.expires_at > unix_now()))
    }

    pub async fn save(&self, issued: &IssuedTokens) -> Result<(), TokenStoreError> {
        match self {
            TokenStore::Memory(store) => {
                store.save(issued);
                Ok(())
            }
            TokenStore::Redis(store) => store.save(issued).await,
        }
    }

    /// Removes a refresh token and returns what it granted: a refresh token
    /// is good for one exchange, so two concurrent exchanges cannot both win.
    pub async fn take_refresh(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<RefreshRecord>, TokenStoreError> {
        let record = match self {
            TokenStore::Memory(store) => store.take_refresh(digest),
            TokenStore::Redis(store) => store.take_refresh(digest).await?,
        };
        Ok(record.filter(|record| record.expires_at > unix_now()))
    }

    /// Checks the backend answers; used at startup and by health checks.
    pub async fn ping(&self) -> Result<(), TokenStoreError> {
        match self {
            TokenStore::Memory(_) => Ok(()),
            TokenStore::Redis(store) => store.ping().await,
        }
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
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("user_id"), "{json}");
        let back: AccessRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }
}
