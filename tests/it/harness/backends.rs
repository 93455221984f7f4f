//! The two deployments every store-touching flow runs on, each reported as
//! a test of its own: `name::embedded_memory` and `name::mongodb_redis`.

use super::*;

/// The two deployments: zero-setup and shared.
pub enum Backends {
    /// The embedded store and memory tokens: the default.
    EmbeddedMemory,
    /// MongoDB for the store and Redis for tokens: several instances.
    MongoRedis(Redis),
}

impl Backends {
    /// A gateway configuration in front of `upstream` on these backends,
    /// with a fresh MongoDB database for the shared one.
    pub fn config(&self, upstream: &Upstream) -> GatewayConfig {
        match self {
            Backends::EmbeddedMemory => GatewayConfig::new(upstream),
            Backends::MongoRedis(redis) => {
                let (uri, _) = Mongo::shared().fresh_database_uri();
                GatewayConfig::shared(upstream, redis, &uri)
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backends::EmbeddedMemory => "embedded+memory",
            Backends::MongoRedis(_) => "mongodb+redis",
        }
    }
}

/// Runs `async fn name(backends: Backends)` as two tests, one per
/// deployment, so a failure names its backend and the two run in parallel.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use $crate::harness::{Backends, Redis};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded_memory() {
                super::$name(Backends::EmbeddedMemory).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mongodb_redis() {
                super::$name(Backends::MongoRedis(Redis::start())).await
            }
        }
    };
}
