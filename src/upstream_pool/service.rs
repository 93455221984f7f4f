//! The background service that keeps every pool current: one task per
//! upstream on one Pingora service (and so one runtime), rather than a
//! service and its threads per upstream.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::UpstreamPool;

pub struct Maintenance {
    pub pools: Vec<Arc<UpstreamPool>>,
}

#[async_trait]
impl BackgroundService for Maintenance {
    async fn start(&self, shutdown: ShutdownWatch) {
        let tasks: Vec<_> = self
            .pools
            .iter()
            .map(|pool| {
                let (pool, shutdown) = (pool.clone(), shutdown.clone());
                tokio::spawn(async move { pool.maintain(shutdown).await })
            })
            .collect();
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "an upstream's maintenance task failed");
            }
        }
    }
}
