//! The state every request handler may need, shared by all workers, built
//! once by [`crate::app::build_state`]. The handlers see narrow views of it
//! (the gateway hands `oauth` and `management` only what they use).

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::admin_auth::AdminAuth;
use crate::config::Config;
use crate::lockout::LockoutStore;
use crate::password::PasswordHasher;
use crate::rate_limit::RateLimiter;
use crate::route::Router;
use crate::store::Store;
use crate::tokens::TokenStore;
use crate::upstream_pool::UpstreamPool;

pub struct AppState {
    pub config: Config,
    pub router: Router,
    /// By index, as routes name them; shared with their background loop.
    pub upstreams: Vec<Arc<UpstreamPool>>,
    pub store: Store,
    pub tokens: TokenStore,
    pub lockout: LockoutStore,
    /// Per-client limits on refresh and client_credentials grants.
    pub rate_limiter: RateLimiter,
    pub hasher: PasswordHasher,
    /// None: no administrator configured; management answers 404.
    pub admin: Option<AdminAuth>,
    /// Every scope some route requires, for the metadata document.
    pub route_scopes: Vec<String>,
}

impl AppState {
    /// Account operations with the gateway's stores.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts {
            store: &self.store,
            tokens: &self.tokens,
            hasher: &self.hasher,
            min_password_length: self.config.management.min_password_length,
        }
    }
}
