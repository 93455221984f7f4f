//! `store` and `tokens`: which backend keeps users and clients, and which
//! keeps tokens. Both follow one rule: an environment variable, when set,
//! wins over the file, so a container can be pointed at its database
//! without editing the file.

use std::path::Path;
use std::time::Duration;

use super::Problems;
use crate::config::file::{default_mongodb_timeout_ms, default_redis_timeout_ms};
use crate::config::{
    database_from_uri, Environment, FileStore, FileTokens, StoreConfig, StoreKind, TokenConfig,
    TokenKind, ENV_MONGODB_URI, ENV_REDIS_URL,
};

/// `store`, or `PORTCULLIS_MONGODB_URI`, which wins.
pub(super) fn check_store(
    problems: &mut Problems,
    file: FileStore,
    env: &dyn Environment,
    data_dir: &Path,
) -> Option<StoreConfig> {
    let store = match (env.var(ENV_MONGODB_URI), file.kind, file.mongodb) {
        (Some(uri), _, mongo) => Some(StoreConfig::Mongodb {
            database: database_from_uri(&uri).unwrap_or_else(|| "oauth".into()),
            uri,
            timeout: Duration::from_millis(
                mongo.map_or(default_mongodb_timeout_ms(), |m| m.timeout_ms),
            ),
        }),
        (None, StoreKind::Embedded, _) => Some(StoreConfig::Embedded {
            path: data_dir.join("portcullis.sqlite3"),
        }),
        (None, StoreKind::Mongodb, Some(mongo)) => Some(StoreConfig::Mongodb {
            database: mongo
                .database
                .or_else(|| database_from_uri(&mongo.uri))
                .unwrap_or_else(|| "oauth".into()),
            uri: mongo.uri,
            timeout: Duration::from_millis(mongo.timeout_ms),
        }),
        (None, StoreKind::Mongodb, None) => {
            problems.add(
                    "store.mongodb",
                    format!("`kind: mongodb` needs `mongodb: {{uri: mongodb://…}}` (or set {ENV_MONGODB_URI})"),
                );
            None
        }
    };
    if let Some(StoreConfig::Mongodb { uri, timeout, .. }) = &store {
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            problems.add(
                "store.mongodb.uri",
                "must start with mongodb:// or mongodb+srv://",
            );
        }
        if timeout.is_zero() {
            problems.add(
                "store.mongodb.timeout_ms",
                "must be greater than zero: a stalled MongoDB must fail fast, not hang",
            );
        }
    }

    store
}

/// `tokens`, or `PORTCULLIS_REDIS_URL`, which wins.
pub(super) fn check_tokens(
    problems: &mut Problems,
    file: FileTokens,
    env: &dyn Environment,
) -> Option<TokenConfig> {
    let memory_max_tokens = file.memory_max_tokens;
    let tokens = match (env.var(ENV_REDIS_URL), file.kind, file.redis) {
        (Some(url), _, redis) => Some(TokenConfig::Redis {
            url,
            timeout: Duration::from_millis(
                redis.map_or(default_redis_timeout_ms(), |r| r.timeout_ms),
            ),
        }),
        (None, TokenKind::Memory, _) => {
            if memory_max_tokens == 0 {
                problems.add("tokens.memory_max_tokens", "must be greater than zero");
            }
            Some(TokenConfig::Memory {
                max_tokens: memory_max_tokens,
            })
        }
        (None, TokenKind::Redis, Some(redis)) => Some(TokenConfig::Redis {
            url: redis.url,
            timeout: Duration::from_millis(redis.timeout_ms),
        }),
        (None, TokenKind::Redis, None) => {
            problems.add(
                "tokens.redis",
                format!("`kind: redis` needs `redis: {{url: redis://…}}` (or set {ENV_REDIS_URL})"),
            );
            None
        }
    };
    if let Some(TokenConfig::Redis { url, timeout }) = &tokens {
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
        {
            problems.add(
                "tokens.redis.url",
                "must start with redis://, rediss:// or unix://",
            );
        }
        if timeout.is_zero() {
            problems.add(
                "tokens.redis.timeout_ms",
                "must be greater than zero: a dead Redis must fail fast, not hang",
            );
        }
    }

    tokens
}
