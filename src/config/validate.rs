//! The checked layer's constructor: every rule a configuration must
//! satisfy, each problem reported with its YAML path and a hint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::*;
use super::*;
use crate::route::{Route, RouteTable};

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

/// A route prefix is matched against normalized paths, so it must be one
/// itself, and made of characters that mean the same encoded or not:
/// letters, digits, `-`, `.`, `_`, `~` and `/`.
fn check_route_prefix(problems: &mut Problems, yaml_path: &str, prefix: &str) {
    if !prefix.starts_with('/') {
        return; // check_path said so.
    }
    let plain = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'));
    let normal = matches!(
        crate::request_target::normalize_path(prefix.as_bytes(), None),
        Ok(false)
    );
    if !plain || !normal {
        problems.add(
            yaml_path,
            format!("`{prefix}` must be a plain path: letters, digits, `-`, `.`, `_`, `~` between single slashes, without `.` or `..` segments"),
        );
    }
}

impl FileConfig {
    /// Checks every section and reports every problem at once, each with
    /// its YAML path: an operator fixes the file in one pass.
    pub fn validate(self, base: &Path, env: &dyn Environment) -> Result<Config, ConfigErrors> {
        let mut problems = Problems(Vec::new());
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let (https, http, metrics) = check_listeners(&mut problems, self.listen, &resolve);
        let data_dir = resolve(self.data_dir.unwrap_or_else(|| PathBuf::from("data")));
        let upstreams = check_upstreams(&mut problems, self.upstreams);
        let oauth = check_oauth(&mut problems, self.oauth);
        let routes = check_routes(&mut problems, self.routes, &upstreams, &oauth.prefix);
        let store = check_store(&mut problems, self.store, env, &data_dir);
        let tokens = check_tokens(&mut problems, self.tokens, env);
        let server = check_server(&mut problems, self.server);
        let management = check_management(&mut problems, self.management, env);

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
            oauth,
            store: store.expect("checked above"),
            tokens: tokens.expect("checked above"),
            server,
            management,
        })
    }
}

/// `listen`: (HTTPS, HTTP, metrics); at least one of the first two.
fn check_listeners(
    problems: &mut Problems,
    listen: FileListen,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> (
    Option<HttpsListener>,
    Option<SocketAddr>,
    Option<SocketAddr>,
) {
    let https = listen.https.and_then(|https| {
            let address = parse_address(problems, "listen.https.address", &https.address)?;
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
    let http = listen
        .http
        .and_then(|http| parse_address(problems, "listen.http.address", &http.address));
    let metrics = listen
        .metrics
        .and_then(|metrics| parse_address(problems, "listen.metrics.address", &metrics.address));
    if https.is_none() && http.is_none() {
        problems.add(
            "listen",
            "no listener: configure `listen.https` or `listen.http`",
        );
    }

    (https, http, metrics)
}

/// `upstreams`: each resolved once, at startup.
fn check_upstreams(problems: &mut Problems, file: BTreeMap<String, FileUpstream>) -> Vec<Upstream> {
    let mut upstreams = Vec::new();
    if file.is_empty() {
        problems.add(
            "upstreams",
            "at least one upstream is needed (example: `app: {servers: [\"127.0.0.1:3000\"]}`)",
        );
    }
    for (name, upstream) in file {
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
                resolve_server(problems, &format!("{path}.servers[{i}]"), server)
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

    upstreams
}

/// `oauth`: endpoint paths, bcrypt, lockout and token lifetimes. The
/// checked prefix is `/` or has no trailing slash.
fn check_oauth(problems: &mut Problems, oauth: FileOAuth) -> OAuthConfig {
    check_path(problems, "oauth.prefix", &oauth.prefix);
    let prefix = oauth.prefix.trim_end_matches('/').to_string();
    if prefix.is_empty() && oauth.prefix.starts_with('/') {
        problems.add(
            "oauth.prefix",
            "`/` would reserve every path for OAuth and proxy nothing; use a prefix such as /oauth",
        );
    }
    for (yaml_path, endpoint) in [
        ("oauth.token_path", &oauth.token_path),
        ("oauth.management_path", &oauth.management_path),
        ("oauth.revoke_path", &oauth.revoke_path),
        ("oauth.introspect_path", &oauth.introspect_path),
    ] {
        if let Some(endpoint) = endpoint {
            check_path(problems, yaml_path, endpoint);
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
    OAuthConfig {
        prefix: if prefix.is_empty() {
            "/".into()
        } else {
            prefix.clone()
        },
        token_path: oauth.token_path,
        management_path: oauth.management_path,
        revoke_path: oauth.revoke_path,
        introspect_path: oauth.introspect_path,
        metadata: oauth.metadata,
        issuer: oauth.issuer.map(|i| i.trim_end_matches('/').to_string()),
        refresh_grace: Duration::from_secs(oauth.refresh_grace_seconds),
        lockout: lockout_policy(&oauth.lockout, oauth.lockout.max_failures),
        address_lockout: lockout_policy(&oauth.lockout, oauth.lockout.max_failures_per_address),
        access_token_lifetime: Duration::from_secs(oauth.access_token_lifetime_seconds),
        refresh_token_lifetime: Duration::from_secs(oauth.refresh_token_lifetime_seconds),
        bcrypt_cost: oauth.bcrypt_cost,
        bcrypt_workers: oauth.bcrypt_workers.unwrap_or(cores).max(1),
        bcrypt_queue: oauth.bcrypt_queue,
        legacy_plain_keys: oauth.legacy_plain_keys,
    }
}

/// The username and the address policies share the window and the lock
/// times; only the threshold differs.
fn lockout_policy(lockout: &FileLockout, max_failures: u32) -> crate::lockout::LockoutPolicy {
    crate::lockout::LockoutPolicy {
        max_failures,
        window: Duration::from_secs(lockout.window_seconds),
        base_lock: Duration::from_secs(lockout.lock_seconds),
        max_lock: Duration::from_secs(lockout.max_lock_seconds),
    }
}

/// `routes`: each names a known upstream, lies outside the OAuth prefix and
/// is listed once.
fn check_routes(
    problems: &mut Problems,
    file: Vec<FileRoute>,
    upstreams: &[Upstream],
    oauth_prefix: &str,
) -> Vec<Route> {
    // `/` stands for "no prefix" here: routes may then lie anywhere but
    // under the endpoint paths themselves.
    let prefix = if oauth_prefix == "/" {
        ""
    } else {
        oauth_prefix
    };
    let mut routes = Vec::new();
    if file.is_empty() {
        problems.add(
            "routes",
            "at least one route is needed (example: `- {path_prefix: /, upstream: app}`)",
        );
    }
    for (i, route) in file.into_iter().enumerate() {
        let path = format!("routes[{i}]");
        check_path(problems, &format!("{path}.path_prefix"), &route.path_prefix);
        let Some(upstream_index) = upstreams.iter().position(|u| u.name == route.upstream) else {
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
        check_route_prefix(problems, &format!("{path}.path_prefix"), &route.path_prefix);
        let normalized = |p: &str| p.trim_end_matches('/').to_string();
        let same_prefix = |r: &Route| {
            let (a, b) = (normalized(&r.path_prefix), normalized(&route.path_prefix));
            if r.case_sensitive && route.case_sensitive {
                a == b
            } else {
                a.eq_ignore_ascii_case(&b)
            }
        };
        if routes.iter().any(same_prefix) {
            problems.add(
                format!("{path}.path_prefix"),
                format!("`{}` is listed twice", route.path_prefix),
            );
        }
        if !prefix.is_empty() && crate::route::path_has_prefix(&route.path_prefix, prefix) {
            problems.add(
                format!("{path}.path_prefix"),
                format!(
                    "`{}` lies under oauth.prefix `{prefix}`, which is never proxied",
                    route.path_prefix
                ),
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
            case_sensitive: route.case_sensitive,
        });
    }

    routes
}

/// `store`, or `PORTCULLIS_MONGODB_URI`, which wins.
fn check_store(
    problems: &mut Problems,
    file: FileStore,
    env: &dyn Environment,
    data_dir: &Path,
) -> Option<StoreConfig> {
    let store = match (env.var(ENV_MONGODB_URI), file.kind, file.mongodb) {
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

    store
}

/// `tokens`, or `PORTCULLIS_REDIS_URL`, which wins.
fn check_tokens(
    problems: &mut Problems,
    file: FileTokens,
    env: &dyn Environment,
) -> Option<TokenConfig> {
    let tokens = match (env.var(ENV_REDIS_URL), file.kind, file.redis) {
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
                format!("`kind: redis` needs `redis: {{url: redis://…}}` (or set {ENV_REDIS_URL})"),
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

    tokens
}

/// `server`: threads, trusted proxies, the token request limit.
fn check_server(problems: &mut Problems, server: FileServer) -> ServerConfig {
    if server.threads == 0 {
        problems.add("server.threads", "must be at least 1");
    }
    let mut trusted_proxies = Vec::new();
    for (i, text) in server.trusted_proxies.iter().enumerate() {
        match text.parse::<crate::client_address::IpNetwork>() {
            Ok(network) => trusted_proxies.push(network),
            Err(_) => problems.add(
                format!("server.trusted_proxies[{i}]"),
                format!("`{text}` is not an address or CIDR network (examples: 10.0.0.0/8, ::1)"),
            ),
        }
    }
    if server.max_token_request_bytes < 256 {
        problems.add(
            "server.max_token_request_bytes",
            "must be at least 256 bytes",
        );
    }
    if server.max_connections == 0 {
        problems.add("server.max_connections", "must be at least 1");
    }
    if server.request_head_timeout_seconds == 0 {
        problems.add(
            "server.request_head_timeout_seconds",
            "must be at least 1 second",
        );
    }
    if server.http2_max_concurrent_streams == 0 {
        problems.add("server.http2_max_concurrent_streams", "must be at least 1");
    }
    ServerConfig {
        threads: server.threads,
        grace_period_seconds: server.grace_period_seconds,
        shutdown_timeout_seconds: server.shutdown_timeout_seconds,
        max_token_request_bytes: server.max_token_request_bytes,
        trusted_proxies,
        connection_limits: crate::connection_guard::ConnectionLimits {
            max_connections: server.max_connections,
            request_head_timeout: Duration::from_secs(server.request_head_timeout_seconds),
        },
        http2_max_concurrent_streams: server.http2_max_concurrent_streams,
        forwarded_header: server.forwarded_header,
    }
}

/// `management`: the administrator (from the file or the environment) and
/// the optional own listener.
fn check_management(
    problems: &mut Problems,
    management: FileManagement,
    env: &dyn Environment,
) -> ManagementConfig {
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
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
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
        .and_then(|address| parse_address(problems, "management.address", address));
    ManagementConfig {
        admin,
        address: management_address,
        min_password_length: management.min_password_length.max(1),
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
