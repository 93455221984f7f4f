//! `gateway.yaml`: the one file an operator edits.
//!
//! Two layers, as in River: [`FileConfig`] mirrors the YAML exactly (serde,
//! `deny_unknown_fields`, defaults), and [`FileConfig::validate`] turns it into
//! the checked [`Config`] the rest of the gateway uses. Validation collects
//! every problem at once, each named by its YAML path with a hint, so an
//! operator fixes the file in one pass instead of one error per restart.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::route::{RouteTable, Router};

mod environment;
mod file;
mod file_upstream;
mod restart_only;
#[cfg(test)]
pub(crate) mod test_pki;
mod upstream;
mod validate;

pub use environment::*;
pub use file::*;
pub use file_upstream::*;
pub use restart_only::keep_restart_only;
pub use upstream::*;

/// Environment variable that selects the Redis token backend with this URL.
pub const ENV_REDIS_URL: &str = "PORTCULLIS_REDIS_URL";
/// Environment variable that selects the MongoDB store with this URI.
pub const ENV_MONGODB_URI: &str = "PORTCULLIS_MONGODB_URI";

// The checked layer: what the rest of the gateway reads.

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
    /// `logging.format`; `--log-format` wins over it.
    pub log_format: LogFormatName,
}

#[derive(Debug, Clone)]
pub struct ManagementConfig {
    /// None: no administrator configured, management answers 404 naming the
    /// settings. It is never open.
    pub admin: Option<AdminCredentials>,
    pub address: Option<SocketAddr>,
    pub min_password_length: usize,
    /// The key of the page's CSRF tokens, from `csrf_secret_env`; `None`:
    /// a random key kept in `data_dir`.
    pub csrf_secret: Option<String>,
}

/// The administrator's credentials. `Debug` never shows the secret.
#[derive(Clone)]
pub struct AdminCredentials {
    pub username: String,
    pub secret: AdminSecret,
}

#[derive(Clone, PartialEq, Eq)]
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

#[derive(Debug, Clone, PartialEq)]
pub struct HttpsListener {
    pub address: SocketAddr,
    /// `None`: a self-signed pair is generated into the data folder.
    pub certificate: Option<(PathBuf, PathBuf)>,
    pub http2: bool,
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
    pub allow_plaintext: bool,
    /// The absolute lifetime of a session, from sign-in.
    pub session_max_lifetime: Duration,
    pub rate_limit: RateLimits,
}

/// Grants per client per minute; 0 = no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub refresh_token_per_minute: u32,
    pub client_credentials_per_minute: u32,
}

#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite file in the data folder.
    Embedded { path: PathBuf },
    Mongodb {
        uri: String,
        database: String,
        /// The bound on every operation.
        timeout: Duration,
    },
}

#[derive(Clone, PartialEq, Eq)]
pub enum TokenConfig {
    Memory { max_tokens: usize },
    Redis { url: String, timeout: Duration },
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub threads: usize,
    pub grace_period_seconds: u64,
    pub shutdown_timeout_seconds: u64,
    pub max_token_request_bytes: usize,
    pub trusted_proxies: Vec<crate::client_address::IpNetwork>,
    pub connection_limits: crate::connection_guard::ConnectionLimits,
    pub http2_max_concurrent_streams: u32,
    pub forwarded_header: bool,
    pub upstream_keepalive_pool_size: usize,
}

/// `scheme://user:password@host/…` → `scheme://***@host/…`: URIs carry
/// credentials, and configurations get printed.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    // The authority ends at the first `/`; credentials end at its last `@`.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => uri.to_string(),
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Embedded { path } => {
                f.debug_struct("Embedded").field("path", path).finish()
            }
            StoreConfig::Mongodb {
                uri,
                database,
                timeout,
            } => f
                .debug_struct("Mongodb")
                .field("uri", &redact_uri(uri))
                .field("database", database)
                .field("timeout", timeout)
                .finish(),
        }
    }
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenConfig::Memory { max_tokens } => f
                .debug_struct("Memory")
                .field("max_tokens", max_tokens)
                .finish(),
            TokenConfig::Redis { url, timeout } => f
                .debug_struct("Redis")
                .field("url", &redact_uri(url))
                .field("timeout", timeout)
                .finish(),
        }
    }
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

impl Config {
    /// What classifies request paths: the gateway's own endpoints and the
    /// proxied routes.
    pub fn router(&self) -> Router {
        Router {
            oauth_prefix: self.oauth.prefix.clone(),
            token_path: self.oauth.token_path.clone(),
            revoke_path: self.oauth.revoke_path.clone(),
            introspect_path: self.oauth.introspect_path.clone(),
            metadata: self.oauth.metadata,
            management_path: self.oauth.management_path.clone(),
            routes: self.routes.clone(),
        }
    }
}

impl ConfigErrors {
    fn single(path: &str, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigProblem {
            path: path.into(),
            message: message.into(),
        }])
    }
}

/// `logging.format` of the file at `path`, read before anything else so
/// that the first log line has the right format. A file that cannot be
/// read or parsed gives the default; loading it reports why.
pub fn log_format(path: &Path) -> LogFormatName {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_yaml::from_str::<FileConfig>(&text).ok())
        .map(|file| file.logging.format)
        .unwrap_or_default()
}

/// `data_dir` of the file at `path`, from its YAML alone (no checks, no
/// environment): where `portcullis reload --no-check` finds the pid file.
pub fn data_dir_of(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let file = serde_yaml::from_str::<FileConfig>(&text).ok()?;
    let data_dir = file.data_dir.unwrap_or_else(|| PathBuf::from("data"));
    Some(match path.parent() {
        Some(base) if data_dir.is_relative() => base.join(data_dir),
        _ => data_dir,
    })
}

/// Reads, parses and validates a configuration file. Relative paths in the
/// file are taken relative to the file's folder.
pub fn load(path: &Path, env: &dyn Environment) -> Result<Config, ConfigErrors> {
    load_hashed(path, env).map(|(config, _)| config)
}

/// [`load`], with the hex SHA-256 of the bytes it read: which file is
/// running, for `portcullis_build_info` and the reload log.
pub fn load_hashed(path: &Path, env: &dyn Environment) -> Result<(Config, String), ConfigErrors> {
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
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    parse(&text, &base, env).map(|config| (config, hash))
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
    use std::collections::BTreeMap;

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
        assert_eq!(
            config.tokens,
            TokenConfig::Memory {
                max_tokens: 1_000_000
            }
        );
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
                database: "sentinel".into(),
                timeout: Duration::from_millis(2000)
            }
        );
    }

    #[test]
    fn credentials_in_uris_are_redacted() {
        let cases = [
            (
                "redis://:secret@127.0.0.1:6379/0",
                "redis://***@127.0.0.1:6379/0",
            ),
            ("mongodb://user:pw@h1,h2/db", "mongodb://***@h1,h2/db"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ];
        for (uri, expected) in cases {
            assert_eq!(redact_uri(uri), expected);
        }
        let config = TokenConfig::Redis {
            url: "redis://:secret@h/".into(),
            timeout: Duration::from_millis(1),
        };
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn routes_cannot_hide_under_the_oauth_prefix_or_repeat() {
        let text = "
upstreams:
  app: {servers: [\"127.0.0.1:3000\"]}
routes:
  - {path_prefix: /api, upstream: app}
  - {path_prefix: /api/, upstream: app}
  - {path_prefix: /oauth/extra, upstream: app}
";
        let errors = parse(text, Path::new("."), &no_env()).unwrap_err();
        let paths: Vec<&str> = errors.0.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"routes[1].path_prefix"), "{paths:?}");
        assert!(paths.contains(&"routes[2].path_prefix"), "{paths:?}");
        let root = format!("{MINIMAL}oauth:\n  prefix: /\n");
        assert!(parse(&root, Path::new("."), &no_env()).is_err());
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
