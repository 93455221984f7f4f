//! The state every request handler may need, shared by all workers.
//!
//! Two lifetimes live here:
//! - [`Services`]: the stores, the password hasher and the page's CSRF key,
//!   made once at startup and kept for the life of the process: a reload
//!   never reconnects a store or forgets a lockout;
//! - [`AppState`]: one configuration with what is built from it (router,
//!   upstream pools, administrator), plus the services. A reload builds a
//!   new one and [`LiveState`] swaps it in whole.
//!
//! A request takes one snapshot when it starts ([`LiveState::current`]) and
//! reads only that one, so it never sees half of one configuration and half
//! of another, and a swap never waits for requests in flight.
//!
//! The handlers see narrow views of the snapshot (the gateway hands `oauth`
//! and `management` only what they use).

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::accounts::Accounts;
use crate::admin_auth::{AdminAuth, CsrfKey};
use crate::config::Config;
use crate::lockout::LockoutStore;
use crate::password::PasswordHasher;
use crate::rate_limit::RateLimiter;
use crate::route::Router;
use crate::store::Store;
use crate::tokens::TokenStore;
use crate::upstream_pool::{Resolve, UpstreamPool};

/// What outlives every configuration: made at startup, never rebuilt.
pub struct Services {
    pub store: Store,
    pub tokens: TokenStore,
    pub lockout: LockoutStore,
    /// Per-client limits on refresh and client_credentials grants.
    pub rate_limiter: RateLimiter,
    pub hasher: PasswordHasher,
    /// The key of the management page's CSRF tokens.
    pub csrf_key: CsrfKey,
    /// How upstream names are looked up (the system's resolver, or a
    /// test's).
    pub resolver: Arc<dyn Resolve>,
}

/// One configuration, ready to serve.
pub struct AppState {
    pub config: Config,
    /// Hex SHA-256 of the configuration file as read: which file is
    /// running (`portcullis_build_info`, the reload log).
    pub config_hash: String,
    pub router: Router,
    /// By index, as routes name them. A pool whose settings a reload left
    /// alone is the same `Arc`, with its health and ejections.
    pub upstreams: Vec<Arc<UpstreamPool>>,
    /// None: no administrator configured; management answers 404.
    pub admin: Option<Arc<AdminAuth>>,
    /// Every scope some route requires, for the metadata document.
    pub route_scopes: Vec<String>,
    pub services: Arc<Services>,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    /// `state.tokens`, `state.store`: the services read as the state's own.
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// A configuration's state on the given services, reusing from
    /// `previous` every upstream pool and the administrator whose settings
    /// did not change. The pools it had to make are returned too: they have
    /// no address until [`UpstreamPool::resolve`] runs.
    pub fn build(
        config: Config,
        config_hash: String,
        services: Arc<Services>,
        previous: Option<&AppState>,
    ) -> anyhow::Result<(AppState, Vec<Arc<UpstreamPool>>)> {
        let mut made = Vec::new();
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for upstream in &config.upstreams {
            let kept = previous.and_then(|state| {
                state
                    .upstreams
                    .iter()
                    .find(|pool| pool.settings() == upstream)
            });
            let pool = match kept {
                Some(pool) => pool.clone(),
                None => {
                    let pool = UpstreamPool::new(upstream.clone(), services.resolver.clone())
                        .map(Arc::new)
                        .map_err(|e| {
                            anyhow::anyhow!("upstreams.{}.health_check: {e}", upstream.name)
                        })?;
                    made.push(pool.clone());
                    pool
                }
            };
            upstreams.push(pool);
        }
        let admin = match &config.management.admin {
            None => None,
            Some(credentials) => match previous.and_then(|state| state.admin.as_ref()) {
                Some(admin) if admin.has_credentials(credentials) => Some(admin.clone()),
                _ => Some(Arc::new(
                    AdminAuth::new(credentials, config.oauth.bcrypt_cost, &services.csrf_key)
                        .map_err(|e| {
                            anyhow::anyhow!("cannot hash PORTCULLIS_ADMIN_PASSWORD: {e}")
                        })?,
                )),
            },
        };
        let mut route_scopes: Vec<String> = config
            .routes
            .iter()
            .flat_map(|route| route.required_scopes.iter().cloned())
            .collect();
        route_scopes.sort();
        route_scopes.dedup();
        let state = AppState {
            router: config.router(),
            config,
            config_hash,
            upstreams,
            admin,
            route_scopes,
            services,
        };
        Ok((state, made))
    }

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

/// The running configuration: read by every request, replaced by a reload.
pub struct LiveState {
    current: ArcSwap<AppState>,
    /// The running configuration's upstream pools, for the background
    /// task that keeps them current ([`crate::upstream_pool::Maintenance`]).
    pools: watch::Sender<Vec<Arc<UpstreamPool>>>,
}

impl LiveState {
    pub fn new(state: AppState) -> Self {
        LiveState {
            pools: watch::Sender::new(state.upstreams.clone()),
            current: ArcSwap::from_pointee(state),
        }
    }

    /// The configuration to serve one request (or one task step) with.
    pub fn current(&self) -> Arc<AppState> {
        self.current.load_full()
    }

    /// Serves `state` from now on. Requests that already took the old one
    /// finish with it.
    pub fn replace(&self, state: AppState) {
        let pools = state.upstreams.clone();
        self.current.store(Arc::new(state));
        self.pools.send_replace(pools);
    }

    /// The upstream pools, now and after each reload.
    pub fn pools(&self) -> watch::Receiver<Vec<Arc<UpstreamPool>>> {
        self.pools.subscribe()
    }
}
