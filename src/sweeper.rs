//! A background service that deletes expired sessions from the durable
//! store. Expired sessions are already refused; this only keeps the store
//! from growing with sessions nobody will present again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::state::Services;
use crate::tokens::unix_now;

/// How often the sweep runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

pub struct SessionSweeper {
    /// The store outlives reloads; the sweeper follows no configuration.
    pub services: Arc<Services>,
}

#[async_trait]
impl BackgroundService for SessionSweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = interval.tick() => {
                    match self.services.store.delete_expired_sessions(unix_now()).await {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(deleted, "swept expired sessions"),
                        Err(error) => tracing::warn!(%error, "could not sweep expired sessions"),
                    }
                }
            }
        }
    }
}
