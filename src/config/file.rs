//! The file layer: serde structs that mirror `gateway.yaml` exactly, with
//! their defaults. Unknown keys are errors (`deny_unknown_fields`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

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
    pub logging: FileLogging,
}

/// How log lines are written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileLogging {
    pub format: LogFormatName,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatName {
    /// `2026-…Z  INFO target: message key=value`, or on a terminal the
    /// coloured default.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
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
    /// The environment variable holding the key of the page's CSRF tokens.
    /// Unset: a random key kept in `data_dir`. Instances behind one load
    /// balancer must share it.
    pub csrf_secret_env: Option<String>,
}

impl Default for FileManagement {
    fn default() -> Self {
        FileManagement {
            username: None,
            password_hash: None,
            address: None,
            min_password_length: 8,
            csrf_secret_env: None,
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
    /// `"host:port"` strings or `{address, weight}` maps, mixed freely.
    pub servers: Vec<super::FileUpstreamServer>,
    #[serde(default)]
    pub tls: bool,
    /// The name sent and verified (default: each server's host).
    #[serde(default)]
    pub sni: Option<String>,
    /// A PEM bundle verifying the servers' certificates instead of the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// For an upstream that asks for a client certificate (mTLS).
    #[serde(default)]
    pub client_certificate: Option<super::FileClientCertificate>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    #[serde(default)]
    pub selection: super::FileSelection,
    /// With `consistent_hash`: `client_address` (default) or `header:<Name>`.
    #[serde(default)]
    pub hash_on: Option<String>,
    /// Active checks; without it, servers are judged by traffic alone.
    #[serde(default)]
    pub health_check: Option<super::FileHealthCheck>,
    #[serde(default)]
    pub passive: super::FilePassive,
    /// Retries of an idempotent request reset before any response byte.
    #[serde(default = "super::file_upstream::default_retries")]
    pub retries: u32,
    /// How often names in `servers` are looked up again.
    #[serde(default = "super::file_upstream::default_resolve_interval_seconds")]
    pub resolve_interval_seconds: u64,
    /// Close a pooled keep-alive connection to this upstream after it was
    /// idle this long (default: kept until the server closes it).
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
}

pub(super) fn default_connect_timeout_ms() -> u64 {
    2_000
}
pub(super) fn default_read_timeout_ms() -> u64 {
    60_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    /// What metrics and logs call the route (default: its host and prefix).
    #[serde(default)]
    pub name: Option<String>,
    /// Serve only this Host: `api.example.com`, or `*.example.com` for every
    /// name under it. Without it, every host.
    #[serde(default)]
    pub host: Option<String>,
    pub path_prefix: String,
    pub upstream: String,
    #[serde(default)]
    pub forward_authorization: bool,
    /// `required` (default) or `none`; `public: true` is the older
    /// spelling of `auth: none`.
    #[serde(default)]
    pub auth: Option<RouteAuth>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub required_scopes: Vec<String>,
    #[serde(default)]
    pub case_sensitive: bool,
    /// Only these methods (HEAD goes with GET); others are answered 405.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Forward `/prefix/x` as `/x`.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Forward `/prefix/x` as `<rewrite_prefix>/x`.
    #[serde(default)]
    pub rewrite_prefix: Option<String>,
    /// Override the upstream's timeouts on this route.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub read_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RouteAuth {
    /// A bearer token (and the route's scopes) is needed.
    Required,
    /// Forwarded without one.
    None,
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
    /// Serve the token, revocation and introspection endpoints and
    /// management on plain-HTTP listeners. RFC 6749 §2.3.1 and §3.2 want
    /// TLS there, so by default they are refused over plain HTTP, unless
    /// a trusted proxy says it terminated TLS (`X-Forwarded-Proto: https`).
    pub allow_plaintext: bool,
    /// A session ends this long after sign-in however often it refreshes;
    /// `refresh_token_lifetime_seconds` is the sliding part.
    pub session_max_lifetime_seconds: u64,
    /// Per client, per minute: grants that cost no bcrypt.
    pub rate_limit: FileRateLimit,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct FileRateLimit {
    /// refresh_token grants a client may make per minute; 0 = no limit.
    pub refresh_token_per_minute: u32,
    /// client_credentials grants a client may make per minute; 0 = no limit.
    pub client_credentials_per_minute: u32,
}

impl Default for FileRateLimit {
    fn default() -> Self {
        FileRateLimit {
            refresh_token_per_minute: 120,
            client_credentials_per_minute: 60,
        }
    }
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
            allow_plaintext: false,
            session_max_lifetime_seconds: 90 * 24 * 3600,
            rate_limit: FileRateLimit::default(),
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
    /// Every operation answers within this, or the request gets 503.
    #[serde(default = "default_mongodb_timeout_ms")]
    pub timeout_ms: u64,
}

pub(super) fn default_mongodb_timeout_ms() -> u64 {
    2_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileTokens {
    pub kind: TokenKind,
    pub redis: Option<FileRedis>,
    /// With `kind: memory`: live access tokens held at most. Past it, new
    /// tokens are refused with 503 rather than live ones forgotten.
    pub memory_max_tokens: usize,
}

impl Default for FileTokens {
    fn default() -> Self {
        FileTokens {
            kind: TokenKind::default(),
            redis: None,
            memory_max_tokens: 1_000_000,
        }
    }
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

pub(super) fn default_redis_timeout_ms() -> u64 {
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
    /// Client connections open at once, per listener; past it new ones are
    /// closed at once and open ones keep being served.
    pub max_connections: usize,
    /// Seconds a client has to send a whole request head.
    pub request_head_timeout_seconds: u64,
    /// Streams an HTTP/2 client may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// Also send RFC 7239 `Forwarded` upstream, beside `X-Forwarded-*`.
    pub forwarded_header: bool,
    /// Idle keep-alive connections to upstreams kept, across upstreams; 0
    /// keeps none (every request connects).
    pub upstream_keepalive_pool_size: usize,
}

impl Default for FileServer {
    fn default() -> Self {
        FileServer {
            threads: 2,
            grace_period_seconds: 3,
            shutdown_timeout_seconds: 2,
            max_token_request_bytes: 8 * 1024,
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            request_head_timeout_seconds: 15,
            http2_max_concurrent_streams: 100,
            forwarded_header: true,
            upstream_keepalive_pool_size: 128,
        }
    }
}
