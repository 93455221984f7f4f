//! `gateway.yaml`: the one file an operator edits.
//!
//! Two layers, as in River: [`FileConfig`] mirrors the YAML exactly (serde,
//! `deny_unknown_fields`, defaults), and [`FileConfig::validate`] turns it into
//! the checked [`Config`] the rest of the gateway uses. Validation collects
//! every problem at once, each named by its YAML path with a hint, so an
//! operator fixes the file in one pass instead of one error per restart.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::route::{Route, RouteTable};

/// Environment variable that selects the Redis token backend with this URL.
pub const ENV_REDIS_URL: &str = "PORTCULLIS_REDIS_URL";
/// Environment variable that selects the MongoDB store with this URI.
pub const ENV_MONGODB_URI: &str = "PORTCULLIS_MONGODB_URI";

// ---------------------------------------------------------------------------
// File layer
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub listen: FileListen,
    pub data_dir: Option<PathBuf>,
    pub upstreams: BTreeMap<String, FileUpstream>,
    pub routes: Vec<FileRoute>,
    pub oauth: FileOAuth,
    pub store: FileStore,
    pub tokens: FileTokens,
    pub server: FileServer,
    pub management: FileManagement,
}

/// The admin page and API at `oauth.management_path`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileManagement {
    /// The administrator's username (or PORTCULLIS_ADMIN_USERNAME).
    pub username: Option<String>,
    /// bcrypt hash of the administrator's password (or the plain
    /// PORTCULLIS_ADMIN_PASSWORD in the environment).
    pub password_hash: Option<String>,
    /// Serve management on this address only (plain HTTP, for example
    /// 127.0.0.1:9000), and not on the public listeners.
    pub address: Option<String>,
    /// Shortest password the management API accepts for users.
    pub min_password_length: usize,
}

impl Default for FileManagement {
    fn default() -> Self {
        FileManagement {
            username: None,
            password_hash: None,
            address: None,
            min_password_length: 8,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileListen {
    pub https: Option<FileHttps>,
    pub http: Option<FileHttp>,
    pub metrics: Option<FileHttp>,
}

impl Default for FileListen {
    fn default() -> Self {
        FileListen {
            https: Some(FileHttps::default()),
            http: Some(FileHttp {
                address: "127.0.0.1:8080".into(),
            }),
            metrics: Some(FileHttp {
                address: "127.0.0.1:9100".into(),
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileHttps {
    pub address: String,
    pub certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    pub http2: bool,
}

impl Default for FileHttps {
    fn default() -> Self {
        FileHttps {
            address: "127.0.0.1:8443".into(),
            certificate: None,
            private_key: None,
            http2: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpstream {
    pub servers: Vec<String>,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_read_timeout_ms() -> u64 {
    60_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    pub path_prefix: String,
    pub upstream: String,
    /// Forward the client's `Authorization` header to the upstream. Off by
    /// default: the upstream trusts `X-User-Id`, and a bearer token that leaks
    /// into upstream logs is a credential leak.
    #[serde(default)]
    pub forward_authorization: bool,
    /// No token required on this route (health checks, public assets).
    #[serde(default)]
    pub public: bool,
    /// Scopes a token must carry, all of them, or the answer is 403
    /// `insufficient_scope`.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileOAuth {
    /// Every path under this prefix is answered by portcullis and never
    /// reaches an upstream.
    pub prefix: String,
    /// `null` disables the endpoint.
    pub token_path: Option<String>,
    /// `null` disables the endpoint.
    pub management_path: Option<String>,
    /// RFC 7009 revocation; `null` disables the endpoint.
    pub revoke_path: Option<String>,
    /// RFC 7662 introspection; `null` disables the endpoint.
    pub introspect_path: Option<String>,
    /// Serve RFC 8414 metadata at `/.well-known/oauth-authorization-server`.
    pub metadata: bool,
    /// The issuer identifier in metadata (an https URL). Default: derived
    /// from the request's Host.
    pub issuer: Option<String>,
    /// Seconds in which a retried refresh with the just-rotated refresh
    /// token gets the same new pair instead of revoking the family.
    pub refresh_grace_seconds: u64,
    pub lockout: FileLockout,
    pub access_token_lifetime_seconds: u64,
    pub refresh_token_lifetime_seconds: u64,
    pub bcrypt_cost: u32,
    /// How many bcrypt computations run at once (default: CPU cores).
    pub bcrypt_workers: Option<usize>,
    /// How many password checks may wait for a worker before the token
    /// endpoint answers 503 instead of queueing.
    pub bcrypt_queue: usize,
    /// Also write Flask-Sentinel's `SETEX <token> <ttl> <user_id>` in Redis.
    pub legacy_plain_keys: bool,
}

impl Default for FileOAuth {
    fn default() -> Self {
        FileOAuth {
            prefix: "/oauth".into(),
            token_path: Some("/oauth/token".into()),
            management_path: Some("/oauth/management".into()),
            revoke_path: Some("/oauth/revoke".into()),
            introspect_path: Some("/oauth/introspect".into()),
            metadata: true,
            issuer: None,
            refresh_grace_seconds: 5,
            lockout: FileLockout::default(),
            access_token_lifetime_seconds: 3600,
            refresh_token_lifetime_seconds: 14 * 24 * 3600,
            bcrypt_cost: 12,
            bcrypt_workers: None,
            bcrypt_queue: 64,
            legacy_plain_keys: false,
        }
    }
}

/// Brute-force protection of the password grant (RFC 6749 §4.3.2).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct FileLockout {
    /// Failed attempts for one username, within the window, that lock it.
    pub max_failures: u32,
    /// Failed attempts from one client address that lock the address.
    /// Higher than per username: many honest users may share one address
    /// (an office, a carrier NAT).
    pub max_failures_per_address: u32,
    pub window_seconds: u64,
    /// The first lock; each later lock within a day doubles it.
    pub lock_seconds: u64,
    pub max_lock_seconds: u64,
}

impl Default for FileLockout {
    fn default() -> Self {
        FileLockout {
            max_failures: 5,
            max_failures_per_address: 20,
            window_seconds: 15 * 60,
            lock_seconds: 60,
            max_lock_seconds: 3600,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileStore {
    pub kind: StoreKind,
    pub mongodb: Option<FileMongo>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Embedded,
    Mongodb,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMongo {
    pub uri: String,
    #[serde(default)]
    pub database: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileTokens {
    pub kind: TokenKind,
    pub redis: Option<FileRedis>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    #[default]
    Memory,
    Redis,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRedis {
    pub url: String,
    #[serde(default = "default_redis_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_redis_timeout_ms() -> u64 {
    300
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileServer {
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub grace_period_seconds: u64,
    /// Seconds the final shutdown step may take.
    pub shutdown_timeout_seconds: u64,
    /// Largest request body the token endpoint accepts.
    pub max_token_request_bytes: usize,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is
    /// believed when finding a client's address. Empty: the socket peer.
    pub trusted_proxies: Vec<String>,
}

impl Default for FileServer {
    fn default() -> Self {
        FileServer {
            threads: 2,
            grace_period_seconds: 3,
            shutdown_timeout_seconds: 2,
            max_token_request_bytes: 8 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Checked layer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Config {
    pub https: Option<HttpsListener>,
    pub http: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub upstreams: Vec<Upstream>,
    pub routes: RouteTable,
    pub oauth: OAuthConfig,
    pub store: StoreConfig,
    pub tokens: TokenConfig,
    pub server: ServerConfig,
    pub management: ManagementConfig,
}

#[derive(Debug, Clone)]
pub struct ManagementConfig {
    /// None: no administrator configured, management answers 404 naming the
    /// settings. It is never open.
    pub admin: Option<AdminCredentials>,
    pub address: Option<SocketAddr>,
    pub min_password_length: usize,
}

/// The administrator's credentials. `Debug` never shows the secret.
#[derive(Clone)]
pub struct AdminCredentials {
    pub username: String,
    pub secret: AdminSecret,
}

#[derive(Clone)]
pub enum AdminSecret {
    /// From the configuration file.
    BcryptHash(String),
    /// From PORTCULLIS_ADMIN_PASSWORD; hashed at startup.
    Plain(String),
}

impl fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminCredentials({}, <redacted>)", self.username)
    }
}

/// Environment variables with the administrator's credentials.
pub const ENV_ADMIN_USERNAME: &str = "PORTCULLIS_ADMIN_USERNAME";
pub const ENV_ADMIN_PASSWORD: &str = "PORTCULLIS_ADMIN_PASSWORD";

#[derive(Debug, Clone)]
pub struct HttpsListener {
    pub address: SocketAddr,
    /// `None`: a self-signed pair is generated into the data folder.
    pub certificate: Option<(PathBuf, PathBuf)>,
    pub http2: bool,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub servers: Vec<SocketAddr>,
    pub tls: bool,
    pub sni: String,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub prefix: String,
    pub token_path: Option<String>,
    pub management_path: Option<String>,
    pub revoke_path: Option<String>,
    pub introspect_path: Option<String>,
    pub metadata: bool,
    pub issuer: Option<String>,
    pub refresh_grace: Duration,
    /// Lockout of usernames.
    pub lockout: crate::lockout::LockoutPolicy,
    /// Lockout of client addresses: the same, with its own threshold.
    pub address_lockout: crate::lockout::LockoutPolicy,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub bcrypt_cost: u32,
    pub bcrypt_workers: usize,
    pub bcrypt_queue: usize,
    pub legacy_plain_keys: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite file in the data folder.
    Embedded {
        path: PathBuf,
    },
    Mongodb {
        uri: String,
        database: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenConfig {
    Memory,
    Redis { url: String, timeout: Duration },
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub threads: usize,
    pub grace_period_seconds: u64,
    pub shutdown_timeout_seconds: u64,
    pub max_token_request_bytes: usize,
    pub trusted_proxies: Vec<crate::client_address::IpNetwork>,
}

/// Every problem found in a configuration file.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

#[derive(Debug)]
pub struct ConfigProblem {
    /// YAML path, e.g. `routes[2].upstream`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} problem{} in the configuration:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            writeln!(f, "  - {}: {}", problem.path, problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    fn single(path: &str, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigProblem {
            path: path.into(),
            message: message.into(),
        }])
    }
}

/// Where an environment override comes from; injected so tests need not touch
/// the process environment.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

impl Environment for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|value| value.to_string())
    }
}

/// Reads, parses and validates a configuration file. Relative paths in the
/// file are taken relative to the file's folder.
pub fn load(path: &Path, env: &dyn Environment) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors::single(
            &path.display().to_string(),
            format!("cannot read the configuration file: {error}"),
        )
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, &base, env)
}

/// Parses and validates configuration text.
pub fn parse(text: &str, base: &Path, env: &dyn Environment) -> Result<Config, ConfigErrors> {
    // An empty file is a valid file: every default applies.
    let file: FileConfig = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        serde_yaml::from_str(text).map_err(|error| {
            let location = error
                .location()
                .map(|l| format!("line {}, column {}", l.line(), l.column()))
                .unwrap_or_else(|| "(file)".into());
            ConfigErrors::single(&location, format!("{error}"))
        })?
    };
    file.validate(base, env)
}

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn parse_address(problems: &mut Problems, path: &str, text: &str) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(address) => Some(address),
        Err(_) => {
            problems.add(
                path,
                format!("`{text}` is not an IP:port address (example: 127.0.0.1:8443)"),
            );
            None
        }
    }
}

fn check_path(problems: &mut Problems, yaml_path: &str, value: &str) {
    if !value.starts_with('/') {
        problems.add(
            yaml_path,
            format!("`{value}` must be an absolute path starting with `/`"),
        );
    }
}

impl FileConfig {
    pub fn validate(self, base: &Path, env: &dyn Environment) -> Result<Config, ConfigErrors> {
        let mut problems = Problems(Vec::new());
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let https = self.listen.https.and_then(|https| {
            let address = parse_address(&mut problems, "listen.https.address", &https.address)?;
            let certificate = match (https.certificate, https.private_key) {
                (Some(cert), Some(key)) => Some((resolve(cert), resolve(key))),
                (None, None) => None,
                _ => {
                    problems.add(
                        "listen.https",
                        "set both `certificate` and `private_key`, or neither for a generated self-signed certificate",
                    );
                    None
                }
            };
            Some(HttpsListener {
                address,
                certificate,
                http2: https.http2,
            })
        });
        let http = self
            .listen
            .http
            .and_then(|http| parse_address(&mut problems, "listen.http.address", &http.address));
        let metrics = self.listen.metrics.and_then(|metrics| {
            parse_address(&mut problems, "listen.metrics.address", &metrics.address)
        });
        if https.is_none() && http.is_none() {
            problems.add(
                "listen",
                "no listener: configure `listen.https` or `listen.http`",
            );
        }

        let data_dir = resolve(self.data_dir.unwrap_or_else(|| PathBuf::from("data")));

        let mut upstreams = Vec::new();
        if self.upstreams.is_empty() {
            problems.add(
                "upstreams",
                "at least one upstream is needed (example: `app: {servers: [\"127.0.0.1:3000\"]}`)",
            );
        }
        for (name, upstream) in self.upstreams {
            let path = format!("upstreams.{name}");
            if upstream.servers.is_empty() {
                problems.add(
                    format!("{path}.servers"),
                    "list at least one `host:port` server",
                );
            }
            let servers: Vec<SocketAddr> = upstream
                .servers
                .iter()
                .enumerate()
                .filter_map(|(i, server)| {
                    resolve_server(&mut problems, &format!("{path}.servers[{i}]"), server)
                })
                .collect();
            if upstream.connect_timeout_ms == 0 || upstream.read_timeout_ms == 0 {
                problems.add(&path, "timeouts must be greater than zero");
            }
            let sni = upstream.sni.unwrap_or_else(|| {
                upstream
                    .servers
                    .first()
                    .and_then(|s| s.rsplit_once(':').map(|(host, _)| host.to_string()))
                    .unwrap_or_default()
            });
            upstreams.push(Upstream {
                name,
                servers,
                tls: upstream.tls,
                sni,
                connect_timeout: Duration::from_millis(upstream.connect_timeout_ms),
                read_timeout: Duration::from_millis(upstream.read_timeout_ms),
            });
        }

        let oauth = self.oauth;
        check_path(&mut problems, "oauth.prefix", &oauth.prefix);
        let prefix = oauth.prefix.trim_end_matches('/').to_string();
        for (yaml_path, endpoint) in [
            ("oauth.token_path", &oauth.token_path),
            ("oauth.management_path", &oauth.management_path),
            ("oauth.revoke_path", &oauth.revoke_path),
            ("oauth.introspect_path", &oauth.introspect_path),
        ] {
            if let Some(endpoint) = endpoint {
                check_path(&mut problems, yaml_path, endpoint);
                if !crate::route::path_has_prefix(endpoint, &prefix) {
                    problems.add(
                        yaml_path,
                        format!("`{endpoint}` must lie under `oauth.prefix` (`{prefix}`)"),
                    );
                }
            }
        }
        if !(4..=31).contains(&oauth.bcrypt_cost) {
            problems.add(
                "oauth.bcrypt_cost",
                format!(
                    "{} is out of range: bcrypt accepts 4 to 31 (12 is a sound default)",
                    oauth.bcrypt_cost
                ),
            );
        }
        if let Some(issuer) = &oauth.issuer {
            if !issuer.starts_with("https://") || issuer.contains('?') || issuer.contains('#') {
                problems.add(
                    "oauth.issuer",
                    "must be an https URL without query or fragment (RFC 8414 §2)",
                );
            }
        }
        let lockout = &oauth.lockout;
        if lockout.max_failures == 0
            || lockout.max_failures_per_address == 0
            || lockout.window_seconds == 0
            || lockout.lock_seconds == 0
            || lockout.max_lock_seconds < lockout.lock_seconds
        {
            problems.add(
                "oauth.lockout",
                "max_failures, max_failures_per_address, window_seconds and lock_seconds must be above zero, and max_lock_seconds at least lock_seconds",
            );
        }
        if oauth.access_token_lifetime_seconds == 0 || oauth.refresh_token_lifetime_seconds == 0 {
            problems.add("oauth", "token lifetimes must be greater than zero");
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let oauth_config = OAuthConfig {
            prefix: if prefix.is_empty() {
                "/".into()
            } else {
                prefix
            },
            token_path: oauth.token_path,
            management_path: oauth.management_path,
            revoke_path: oauth.revoke_path,
            introspect_path: oauth.introspect_path,
            metadata: oauth.metadata,
            issuer: oauth.issuer.map(|i| i.trim_end_matches('/').to_string()),
            refresh_grace: Duration::from_secs(oauth.refresh_grace_seconds),
            lockout: crate::lockout::LockoutPolicy {
                max_failures: oauth.lockout.max_failures,
                window: Duration::from_secs(oauth.lockout.window_seconds),
                base_lock: Duration::from_secs(oauth.lockout.lock_seconds),
                max_lock: Duration::from_secs(oauth.lockout.max_lock_seconds),
            },
            address_lockout: crate::lockout::LockoutPolicy {
                max_failures: oauth.lockout.max_failures_per_address,
                window: Duration::from_secs(oauth.lockout.window_seconds),
                base_lock: Duration::from_secs(oauth.lockout.lock_seconds),
                max_lock: Duration::from_secs(oauth.lockout.max_lock_seconds),
            },
            access_token_lifetime: Duration::from_secs(oauth.access_token_lifetime_seconds),
            refresh_token_lifetime: Duration::from_secs(oauth.refresh_token_lifetime_seconds),
            bcrypt_cost: oauth.bcrypt_cost,
            bcrypt_workers: oauth.bcrypt_workers.unwrap_or(cores).max(1),
            bcrypt_queue: oauth.bcrypt_queue,
            legacy_plain_keys: oauth.legacy_plain_keys,
        };

        let mut routes = Vec::new();
        if self.routes.is_empty() {
            problems.add(
                "routes",
                "at least one route is needed (example: `- {path_prefix: /, upstream: app}`)",
            );
        }
        for (i, route) in self.routes.into_iter().enumerate() {
            let path = format!("routes[{i}]");
            check_path(
                &mut problems,
                &format!("{path}.path_prefix"),
                &route.path_prefix,
            );
            let Some(upstream_index) = upstreams.iter().position(|u| u.name == route.upstream)
            else {
                let known: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
                problems.add(
                    format!("{path}.upstream"),
                    format!(
                        "no upstream named `{}` (known: {})",
                        route.upstream,
                        known.join(", ")
                    ),
                );
                continue;
            };
            if routes
                .iter()
                .any(|r: &Route| r.path_prefix == route.path_prefix)
            {
                problems.add(
                    format!("{path}.path_prefix"),
                    format!("`{}` is listed twice", route.path_prefix),
                );
            }
            if route.public && !route.required_scopes.is_empty() {
                problems.add(
                    format!("{path}.required_scopes"),
                    "a public route takes no token, so it cannot require scopes",
                );
            }
            if let Err(message) = crate::store::validate_scopes(&route.required_scopes) {
                problems.add(format!("{path}.required_scopes"), message);
            }
            routes.push(Route {
                path_prefix: route.path_prefix,
                upstream: upstream_index,
                forward_authorization: route.forward_authorization,
                public: route.public,
                required_scopes: route.required_scopes,
            });
        }

        let store = match (
            env.var(ENV_MONGODB_URI),
            self.store.kind,
            self.store.mongodb,
        ) {
            (Some(uri), _, _) => Some(StoreConfig::Mongodb {
                database: database_from_uri(&uri).unwrap_or_else(|| "oauth".into()),
                uri,
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
            }),
            (None, StoreKind::Mongodb, None) => {
                problems.add(
                    "store.mongodb",
                    format!("`kind: mongodb` needs `mongodb: {{uri: mongodb://…}}` (or set {ENV_MONGODB_URI})"),
                );
                None
            }
        };
        if let Some(StoreConfig::Mongodb { uri, .. }) = &store {
            if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
                problems.add(
                    "store.mongodb.uri",
                    "must start with mongodb:// or mongodb+srv://",
                );
            }
        }

        let tokens = match (env.var(ENV_REDIS_URL), self.tokens.kind, self.tokens.redis) {
            (Some(url), _, redis) => Some(TokenConfig::Redis {
                url,
                timeout: Duration::from_millis(
                    redis.map_or(default_redis_timeout_ms(), |r| r.timeout_ms),
                ),
            }),
            (None, TokenKind::Memory, _) => Some(TokenConfig::Memory),
            (None, TokenKind::Redis, Some(redis)) => Some(TokenConfig::Redis {
                url: redis.url,
                timeout: Duration::from_millis(redis.timeout_ms),
            }),
            (None, TokenKind::Redis, None) => {
                problems.add(
                    "tokens.redis",
                    format!(
                        "`kind: redis` needs `redis: {{url: redis://…}}` (or set {ENV_REDIS_URL})"
                    ),
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

        let server = self.server;
        if server.threads == 0 {
            problems.add("server.threads", "must be at least 1");
        }
        let mut trusted_proxies = Vec::new();
        for (i, text) in server.trusted_proxies.iter().enumerate() {
            match text.parse::<crate::client_address::IpNetwork>() {
                Ok(network) => trusted_proxies.push(network),
                Err(_) => problems.add(
                    format!("server.trusted_proxies[{i}]"),
                    format!(
                        "`{text}` is not an address or CIDR network (examples: 10.0.0.0/8, ::1)"
                    ),
                ),
            }
        }
        let management = self.management;
        let admin = match (
            env.var(ENV_ADMIN_USERNAME).or(management.username),
            env.var(ENV_ADMIN_PASSWORD),
            management.password_hash,
        ) {
            (None, None, None) => None,
            (Some(username), Some(password), _) => Some(AdminCredentials {
                username,
                secret: AdminSecret::Plain(password),
            }),
            (Some(username), None, Some(hash)) => {
                if !(hash.starts_with("$2a$")
                    || hash.starts_with("$2b$")
                    || hash.starts_with("$2y$"))
                {
                    problems.add(
                        "management.password_hash",
                        "must be a bcrypt hash ($2b$…); generate one with `portcullis hash-password`",
                    );
                }
                Some(AdminCredentials {
                    username,
                    secret: AdminSecret::BcryptHash(hash),
                })
            }
            _ => {
                problems.add(
                    "management",
                    format!(
                        "set both username and password_hash (or {ENV_ADMIN_USERNAME} and {ENV_ADMIN_PASSWORD})"
                    ),
                );
                None
            }
        };
        let management_address = management
            .address
            .as_deref()
            .and_then(|address| parse_address(&mut problems, "management.address", address));
        if server.max_token_request_bytes < 256 {
            problems.add(
                "server.max_token_request_bytes",
                "must be at least 256 bytes",
            );
        }

        if !problems.0.is_empty() {
            return Err(ConfigErrors(problems.0));
        }
        Ok(Config {
            https,
            http,
            metrics,
            data_dir,
            upstreams,
            routes: RouteTable::new(routes),
            oauth: oauth_config,
            store: store.expect("checked above"),
            tokens: tokens.expect("checked above"),
            server: ServerConfig {
                threads: server.threads,
                grace_period_seconds: server.grace_period_seconds,
                shutdown_timeout_seconds: server.shutdown_timeout_seconds,
                max_token_request_bytes: server.max_token_request_bytes,
                trusted_proxies,
            },
            management: ManagementConfig {
                admin,
                address: management_address,
                min_password_length: management.min_password_length.max(1),
            },
        })
    }
}

/// Upstream servers are resolved once, at startup: a name that does not
/// resolve is a configuration problem, not a per-request failure.
fn resolve_server(problems: &mut Problems, path: &str, server: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    match server.to_socket_addrs() {
        Ok(mut addresses) => addresses.next().or_else(|| {
            problems.add(path, format!("`{server}` resolves to no address"));
            None
        }),
        Err(error) => {
            problems.add(
                path,
                format!("`{server}` is not a reachable host:port ({error})"),
            );
            None
        }
    }
}

/// `mongodb://host/dbname?opts` → `dbname`.
pub fn database_from_uri(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let rest = rest.split_once('/')?.1;
    let name = rest.split('?').next().unwrap_or("");
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::new()
    }

    const MINIMAL: &str = "
upstreams:
  app: {servers: [\"127.0.0.1:3000\"]}
routes:
  - {path_prefix: /, upstream: app}
";

    #[test]
    fn minimal_file_gets_safe_defaults() {
        let config = parse(MINIMAL, Path::new("/etc/portcullis"), &no_env()).unwrap();
        assert_eq!(
            config.https.as_ref().unwrap().address.to_string(),
            "127.0.0.1:8443"
        );
        assert!(config.https.as_ref().unwrap().certificate.is_none());
        assert_eq!(config.http.unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(config.metrics.unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(config.data_dir, PathBuf::from("/etc/portcullis/data"));
        assert_eq!(config.oauth.bcrypt_cost, 12);
        assert_eq!(
            config.oauth.access_token_lifetime,
            Duration::from_secs(3600)
        );
        assert_eq!(config.oauth.token_path.as_deref(), Some("/oauth/token"));
        assert_eq!(config.tokens, TokenConfig::Memory);
        assert_eq!(
            config.store,
            StoreConfig::Embedded {
                path: PathBuf::from("/etc/portcullis/data/portcullis.sqlite3")
            }
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = "
listen:
  https: {address: nonsense}
upstreams:
  app: {servers: []}
routes:
  - {path_prefix: api, upstream: missing}
oauth:
  bcrypt_cost: 2
  token_path: /elsewhere/token
";
        let errors = parse(text, Path::new("."), &no_env()).unwrap_err();
        let paths: Vec<&str> = errors.0.iter().map(|p| p.path.as_str()).collect();
        for expected in [
            "listen.https.address",
            "upstreams.app.servers",
            "routes[0].path_prefix",
            "routes[0].upstream",
            "oauth.bcrypt_cost",
            "oauth.token_path",
        ] {
            assert!(paths.contains(&expected), "{expected} missing in {paths:?}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_location() {
        let text = format!("{MINIMAL}\nlisten:\n  htps: {{address: 127.0.0.1:1}}\n");
        let errors = parse(&text, Path::new("."), &no_env()).unwrap_err();
        let message = errors.to_string();
        assert!(message.contains("unknown field `htps`"), "{message}");
        assert!(message.contains("line"), "{message}");
    }

    #[test]
    fn environment_selects_backends() {
        let env: BTreeMap<&str, &str> = [
            (ENV_REDIS_URL, "redis://127.0.0.1:6390/"),
            (ENV_MONGODB_URI, "mongodb://127.0.0.1:27018/sentinel?w=1"),
        ]
        .into_iter()
        .collect();
        let config = parse(MINIMAL, Path::new("."), &env).unwrap();
        assert_eq!(
            config.tokens,
            TokenConfig::Redis {
                url: "redis://127.0.0.1:6390/".into(),
                timeout: Duration::from_millis(300)
            }
        );
        assert_eq!(
            config.store,
            StoreConfig::Mongodb {
                uri: "mongodb://127.0.0.1:27018/sentinel?w=1".into(),
                database: "sentinel".into()
            }
        );
    }

    #[test]
    fn database_name_comes_from_the_uri_path() {
        let cases = [
            ("mongodb://h:1/oauth", Some("oauth")),
            ("mongodb://h:1/db?x=1", Some("db")),
            ("mongodb://h:1/", None),
            ("mongodb://h:1", None),
            ("mongodb://u:p@h1,h2/app?replicaSet=r", Some("app")),
        ];
        for (uri, expected) in cases {
            assert_eq!(database_from_uri(uri).as_deref(), expected, "{uri}");
        }
    }

    #[test]
    fn disabled_listeners_and_endpoints() {
        let text = format!(
            "{MINIMAL}listen:\n  http: null\n  metrics: null\noauth:\n  management_path: null\n"
        );
        let config = parse(&text, Path::new("."), &no_env()).unwrap();
        assert!(config.http.is_none());
        assert!(config.metrics.is_none());
        assert!(config.https.is_some());
        assert!(config.oauth.management_path.is_none());
    }
}
