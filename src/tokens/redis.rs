//! Redis token backend, shared by every gateway instance.
//!
//! Keys: `portcullis:access:<hex sha256>`, a JSON record with a TTL equal to
//! the token's lifetime, so Redis itself forgets expired tokens. With `legacy_plain_keys` the access
//! token is also written as Flask-Sentinel did (`SETEX <token> <ttl>
//! <user_id>`), for services that read Redis directly, and an index
//! `portcullis:legacy:<hex sha256>` names that key, so revoking the token by
//! its digest deletes the plain key too.
//!
//! The connection is a multiplexed [`ConnectionManager`], made lazily on the
//! runtime that first uses it (Pingora gives each service its own runtime;
//! a client made elsewhere would be tied to a runtime that may be gone). Its
//! connect and response timeouts are short and bounded so a dead Redis turns
//! into a fast 503 instead of a hung request, and it reconnects on its own.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{AccessRecord, RawToken, TokenDigest, TokenStoreError};
use crate::redis_connection::LazyConnection;

const ACCESS_PREFIX: &str = "portcullis:access:";

pub struct RedisTokens {
    legacy_plain_keys: bool,
    connection: LazyConnection,
}

/// The key of a token's record: the prefix, then the digest in hex. Built
/// on the stack: it is made for every authenticated request.
pub fn access_key(digest: &TokenDigest) -> AccessKey {
    let mut key = [0u8; ACCESS_KEY_LEN];
    key[..ACCESS_PREFIX.len()].copy_from_slice(ACCESS_PREFIX.as_bytes());
    digest.write_hex(&mut key[ACCESS_PREFIX.len()..]);
    AccessKey(key)
}

/// The set of digests of the tokens a client got for itself.
fn client_tokens_key(client_id: &str) -> String {
    format!("{CLIENT_TOKENS_PREFIX}{client_id}")
}

const CLIENT_TOKENS_PREFIX: &str = "portcullis:client-tokens:";

/// Where the plain Flask-Sentinel key of a token is named, by digest.
const LEGACY_INDEX_PREFIX: &str = "portcullis:legacy:";

fn legacy_index_key(digest: &TokenDigest) -> String {
    format!("{LEGACY_INDEX_PREFIX}{}", digest.to_hex())
}

/// Deletes a client's own tokens and their list in one step: a token the
/// client gets while this runs is either listed (and deleted) or added
/// after the list is gone (and its issuer's final check revokes it). Read
/// then delete in two commands would let one slip between them.
/// KEYS[1]: the list; ARGV[1]: the access-key prefix.
const DELETE_CLIENT_TOKENS: &str = r"
local listed = redis.call('SMEMBERS', KEYS[1])
for _, hex in ipairs(listed) do
    redis.call('DEL', ARGV[1] .. hex)
end
redis.call('DEL', KEYS[1])
return #listed";

/// Deletes access records and, for each, the plain legacy key its index
/// names, with the index. KEYS: the access keys, then the index keys.
const DELETE_WITH_LEGACY: &str = r"
local n = #KEYS / 2
for i = 1, n do
    local plain = redis.call('GET', KEYS[n + i])
    if plain then
        redis.call('DEL', plain)
    end
    redis.call('DEL', KEYS[i], KEYS[n + i])
end
return n";

/// Adds a digest to a client's set and makes the set live at least as long
/// as the token (only ever lengthened: a shorter token lifetime configured
/// later must not drop older tokens from the list). EVAL rather than
/// `EXPIRE … GT`, which Redis 6 lacks.
const ADD_CLIENT_TOKEN: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1";

const ACCESS_KEY_LEN: usize = ACCESS_PREFIX.len() + 64;

/// See [`access_key`].
#[derive(Clone, Copy)]
pub struct AccessKey([u8; ACCESS_KEY_LEN]);

impl AccessKey {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("the prefix and hex digits are ASCII")
    }
}

impl redis::ToRedisArgs for AccessKey {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + redis::RedisWrite,
    {
        out.write_arg(&self.0);
    }
}

impl redis::ToSingleRedisArg for AccessKey {}

fn unavailable(error: redis::RedisError) -> TokenStoreError {
    TokenStoreError::Unavailable(error.to_string())
}

impl RedisTokens {
    /// Checks the URL only; connecting happens on first use.
    pub fn new(
        url: &str,
        timeout: Duration,
        legacy_plain_keys: bool,
    ) -> Result<Self, redis::RedisError> {
        Ok(RedisTokens {
            legacy_plain_keys,
            connection: LazyConnection::new(redis::Client::open(url)?, timeout),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, TokenStoreError> {
        self.connection
            .get()
            .await
            .map_err(TokenStoreError::Unavailable)
    }

    pub async fn find_access(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<AccessRecord>, TokenStoreError> {
        let mut connection = self.connection().await?;
        let value: Option<Vec<u8>> = connection
            .get(access_key(digest))
            .await
            .map_err(unavailable)?;
        // A record we cannot read is treated as no record: fail closed.
        Ok(value.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    pub async fn save_access(
        &self,
        token: &RawToken,
        record: &AccessRecord,
        lifetime: Duration,
    ) -> Result<(), TokenStoreError> {
        let mut connection = self.connection().await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let json = serde_json::to_vec(record).expect("records serialize");
        pipe.set_ex(access_key(&token.digest()), json, lifetime.as_secs().max(1))
            .ignore();
        if record.user_id.is_none() {
            // A client's own token belongs to no session: list it under the
            // client so disabling or removing the client can find it.
            // EVAL, not the crate's EVALSHA: inside MULTI an unloaded
            // script cannot be retried.
            pipe.cmd("EVAL")
                .arg(ADD_CLIENT_TOKEN)
                .arg(1)
                .arg(client_tokens_key(&record.client_id))
                .arg(token.digest().to_hex())
                .arg(lifetime.as_secs().max(1))
                .ignore();
        }
        if self.legacy_plain_keys {
            // Flask-Sentinel's format, for services that read Redis directly,
            // and the index that lets revocation by digest find it.
            if let Some(user_id) = &record.user_id {
                let seconds = lifetime.as_secs().max(1);
                pipe.set_ex(token.as_str(), user_id, seconds).ignore();
                pipe.set_ex(legacy_index_key(&token.digest()), token.as_str(), seconds)
                    .ignore();
            }
        }
        pipe.query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    pub async fn delete_access(&self, digests: &[TokenDigest]) -> Result<(), TokenStoreError> {
        let mut connection = self.connection().await?;
        if !self.legacy_plain_keys {
            let keys: Vec<AccessKey> = digests.iter().map(access_key).collect();
            return connection.del::<_, ()>(keys).await.map_err(unavailable);
        }
        let script = redis::Script::new(DELETE_WITH_LEGACY);
        let mut invocation = script.prepare_invoke();
        for digest in digests {
            invocation.key(access_key(digest));
        }
        for digest in digests {
            invocation.key(legacy_index_key(digest));
        }
        invocation
            .invoke_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    /// See [`super::TokenStore::delete_client_tokens`].
    pub async fn delete_client_tokens(&self, client_id: &str) -> Result<usize, TokenStoreError> {
        let mut connection = self.connection().await?;
        redis::Script::new(DELETE_CLIENT_TOKENS)
            .key(client_tokens_key(client_id))
            .arg(ACCESS_PREFIX)
            .invoke_async::<usize>(&mut connection)
            .await
            .map_err(unavailable)
    }

    pub async fn ping(&self) -> Result<(), TokenStoreError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_are_the_prefix_and_the_digest_in_hex() {
        let digest = TokenDigest::of("abc");
        assert_eq!(
            access_key(&digest).as_str(),
            format!("portcullis:access:{}", digest.to_hex())
        );
        assert_eq!(
            access_key(&digest).as_str(),
            "portcullis:access:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
