//! Per-client rate limits on the grants that cost the server no bcrypt
//! (refresh_token, client_credentials), so a client cannot call them at
//! will: `oauth.rate_limit`, answered 429 with `Retry-After`.
//!
//! A fixed window of one minute per client and grant: simple, shared by
//! every instance through Redis, and at most twice the limit across a
//! window boundary, which is what a per-minute limit promises in practice.
//! Two backends beside the token store's, a closed set like
//! [`crate::lockout`]: [`memory::MemoryRateLimit`] (one process) and
//! [`redis::RedisRateLimit`] (shared).

pub mod memory;
pub mod redis;

use std::time::Duration;

/// The window every limit counts in.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The backend did not answer: fail closed, the request gets 503.
    #[error("rate-limit store unavailable: {0}")]
    Unavailable(String),
}

/// What a limited grant asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket<'a> {
    /// `refresh_token` or `client_credentials`.
    pub grant: &'static str,
    pub client_id: &'a str,
}

impl Bucket<'_> {
    /// `portcullis:rate:<grant>:<client_id>`. Client ids are the gateway's
    /// own or an administrator's; they hold no secret.
    pub fn key(&self) -> String {
        format!("portcullis:rate:{}:{}", self.grant, self.client_id)
    }
}

/// The configured backend.
// One value per process: the size of the Redis variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum RateLimiter {
    Memory(memory::MemoryRateLimit),
    Redis(redis::RedisRateLimit),
}

impl RateLimiter {
    /// Counts one request against `bucket`'s `limit` per [`WINDOW`]: `Ok(None)`
    /// when it may go ahead, `Ok(Some(wait))` when it is over the limit,
    /// with how long until the window ends. A limit of 0 means none.
    pub async fn check(
        &self,
        bucket: Bucket<'_>,
        limit: u32,
    ) -> Result<Option<Duration>, RateLimitError> {
        if limit == 0 {
            return Ok(None);
        }
        match self {
            RateLimiter::Memory(limiter) => Ok(limiter.check(bucket, limit)),
            RateLimiter::Redis(limiter) => limiter.check(bucket, limit).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_grant_and_the_client() {
        let bucket = Bucket {
            grant: "refresh_token",
            client_id: "abc",
        };
        assert_eq!(bucket.key(), "portcullis:rate:refresh_token:abc");
    }
}
