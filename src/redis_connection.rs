//! One lazily made, self-healing Redis connection, shared by the token and
//! lockout backends' settings.
//!
//! - Made on the runtime that first uses it: Pingora gives each service its
//!   own runtime, and a connection made elsewhere would be tied to a runtime
//!   that may be gone.
//! - Connect and response timeouts are short and bounded, so a dead Redis
//!   turns into a fast 503 instead of a hung request.
//! - The `ConnectionManager` reconnects on its own once Redis is back.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

pub struct LazyConnection {
    client: redis::Client,
    timeout: Duration,
    manager: OnceCell<ConnectionManager>,
}

impl LazyConnection {
    pub fn new(client: redis::Client, timeout: Duration) -> Self {
        LazyConnection {
            client,
            timeout,
            manager: OnceCell::new(),
        }
    }

    /// The shared connection; cloning a `ConnectionManager` is cheap, the
    /// clones multiplex one connection. The error says why, for a 503.
    pub async fn get(&self) -> Result<ConnectionManager, String> {
        let manager = self
            .manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                // The first connect is bounded too: ConnectionManager retries it.
                tokio::time::timeout(
                    self.timeout * 3,
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|error| error.to_string())
            })
            .await?;
        Ok(manager.clone())
    }
}
