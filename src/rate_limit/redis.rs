//! Redis rate limits, shared by every instance: `INCR` on the bucket's key,
//! whose TTL is the window, set by the first request in it. One script, so
//! concurrent requests on several instances cannot lose a count.

use std::time::Duration;

use redis::Script;

use super::{Bucket, RateLimitError, WINDOW};
use crate::redis_connection::LazyConnection;

/// KEYS[1]: the bucket. ARGV: the limit, the window in ms.
/// Returns 0 when the request may go, else the ms left in the window.
const CHECK: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if count <= tonumber(ARGV[1]) then
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return left
";

pub struct RedisRateLimit {
    connection: LazyConnection,
    check: Script,
}

impl RedisRateLimit {
    pub fn new(client: redis::Client, timeout: Duration) -> Self {
        RedisRateLimit {
            connection: LazyConnection::new(client, timeout),
            check: Script::new(CHECK),
        }
    }

    /// See [`super::RateLimiter::check`].
    pub async fn check(
        &self,
        bucket: Bucket<'_>,
        limit: u32,
    ) -> Result<Option<Duration>, RateLimitError> {
        let mut connection = self
            .connection
            .get()
            .await
            .map_err(RateLimitError::Unavailable)?;
        let left: i64 = self
            .check
            .key(bucket.key())
            .arg(limit)
            .arg(WINDOW.as_millis() as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| RateLimitError::Unavailable(e.to_string()))?;
        Ok(u64::try_from(left)
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis))
    }
}
