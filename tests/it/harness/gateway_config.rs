//! What the gateway under test is configured with, and the YAML made of it.

use super::*;

// The gateway binary

pub enum TokenBackend {
    Memory,
    Redis(String),
}

pub enum StoreBackend {
    Embedded,
    Mongo(String),
}

pub struct GatewayConfig {
    pub upstream: SocketAddr,
    pub tokens: TokenBackend,
    pub users: StoreBackend,
    /// Passed as PORTCULLIS_REDIS_URL / PORTCULLIS_MONGODB_URI instead of
    /// written in the file.
    pub backends_from_env: bool,
    /// YAML appended under `oauth:`.
    pub oauth_extra: String,
    /// Replaces the default `routes:` list (one catch-all route to `app`).
    pub routes: Option<String>,
    /// Extra upstreams, YAML lines under `upstreams:`.
    pub upstreams_extra: String,
    pub grace_period_seconds: u64,
    /// `server.trusted_proxies`.
    pub trusted_proxies: Vec<String>,
    /// The administrator, given as PORTCULLIS_ADMIN_USERNAME/PASSWORD.
    pub admin: Option<(String, String)>,
    /// YAML lines under `management:`.
    pub management_extra: String,
    /// More environment variables for the gateway process.
    pub extra_env: Vec<(String, String)>,
    /// YAML lines under `server:`.
    pub server_extra: String,
    /// YAML lines under `tokens:`.
    pub tokens_extra: String,
    /// `store.mongodb.timeout_ms`, with the MongoDB store.
    pub mongodb_timeout_ms: Option<u64>,
}

impl GatewayConfig {
    pub fn new(upstream: &Upstream) -> Self {
        Self::for_address(upstream.address)
    }

    /// A gateway in front of the server at `upstream`.
    pub fn for_address(upstream: SocketAddr) -> Self {
        GatewayConfig {
            upstream,
            tokens: TokenBackend::Memory,
            users: StoreBackend::Embedded,
            backends_from_env: false,
            oauth_extra: String::new(),
            routes: None,
            upstreams_extra: String::new(),
            grace_period_seconds: 1,
            trusted_proxies: Vec::new(),
            admin: None,
            management_extra: String::new(),
            extra_env: Vec::new(),
            server_extra: String::new(),
            tokens_extra: String::new(),
            mongodb_timeout_ms: None,
        }
    }

    /// The shared deployment: tokens in `redis`, users and sessions in the
    /// MongoDB database at `mongo_uri`.
    pub fn shared(upstream: &Upstream, redis: &Redis, mongo_uri: &str) -> Self {
        GatewayConfig::new(upstream)
            .redis(redis)
            .mongo(mongo_uri.to_string())
    }

    pub fn redis(mut self, redis: &Redis) -> Self {
        self.tokens = TokenBackend::Redis(redis.url());
        self
    }

    pub fn mongo(mut self, uri: String) -> Self {
        self.users = StoreBackend::Mongo(uri);
        self
    }

    /// Configures the administrator (through the environment).
    pub fn admin(mut self, username: &str, password: &str) -> Self {
        self.admin = Some((username.into(), password.into()));
        self
    }

    /// Appends YAML lines under `server:`.
    pub fn server(mut self, yaml: &str) -> Self {
        self.server_extra.push_str(yaml);
        self
    }

    /// Replaces the routes.
    pub fn routes(mut self, yaml: &str) -> Self {
        self.routes = Some(yaml.to_string());
        self
    }

    /// Appends YAML lines under `tokens:`.
    pub fn tokens(mut self, yaml: &str) -> Self {
        self.tokens_extra.push_str(yaml);
        self
    }

    pub fn oauth(mut self, yaml: &str) -> Self {
        self.oauth_extra.push_str(yaml);
        self
    }
}
