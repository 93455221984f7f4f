//! The gateway binary: started on free ports, signalled, and called as a client.

use super::*;

pub struct Gateway {
    pub http_port: u16,
    pub https_port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

pub struct IssuedTokens {
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
            if let TokenBackend::Redis(url) = &config.tokens {
                env.push(("PORTCULLIS_REDIS_URL".to_string(), url.clone()));
            }
            if let StoreBackend::Mongo(uri) = &config.users {
                env.push(("PORTCULLIS_MONGODB_URI".to_string(), uri.clone()));
            }
            ("kind: memory".to_string(), "kind: embedded".to_string())
        } else {
            (
                match &config.tokens {
                    TokenBackend::Memory => "kind: memory".to_string(),
                    TokenBackend::Redis(url) => format!("kind: redis\n  redis: {{url: \"{url}\"}}"),
                },
                match &config.users {
                    StoreBackend::Embedded => "kind: embedded".to_string(),
                    StoreBackend::Mongo(uri) => match config.mongodb_timeout_ms {
                        None => format!("kind: mongodb\n  mongodb: {{uri: \"{uri}\"}}"),
                        Some(ms) => format!(
                            "kind: mongodb\n  mongodb: {{uri: \"{uri}\", timeout_ms: {ms}}}"
                        ),
                    },
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
{tokens_extra}
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
            oauth_extra = oauth_with_test_defaults(&config.oauth_extra),
            grace = config.grace_period_seconds,
            trusted = config.trusted_proxies,
            server_extra = config.server_extra,
            tokens_extra = config.tokens_extra,
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

    /// `portcullis serve [extra] -c <file>` with the test's environment,
    /// logging to the gateway's log file.
    fn serve_command(&self, extra: &[&str]) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = Command::new(GATEWAY);
        command
            .arg("serve")
            .args(extra)
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
        command
    }

    pub fn spawn(&mut self) {
        let mut command = self.serve_command(&[]);
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
        // The metrics listener is its own service and may open a moment
        // after the others.
        wait_for_port(
            self.metrics_port,
            "the gateway's metrics listener",
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

    /// Writes `config` over the running gateway's file, for the same ports
    /// and data folder: what an operator's edit before a reload does.
    pub fn rewrite_config(&self, config: &GatewayConfig) {
        let ports = (self.http_port, self.https_port, self.metrics_port);
        let (yaml, _) = Self::config_yaml(config, ports, &self.dir.path().join("data"));
        self.write_config(&yaml);
    }

    pub fn write_config(&self, yaml: &str) {
        // Written whole, then renamed: a reload never reads half a file.
        let partial = self.config_path.with_extension("yaml.partial");
        std::fs::write(&partial, yaml).unwrap();
        std::fs::rename(&partial, &self.config_path).unwrap();
    }

    /// Starts `serve --upgrade` beside the running gateway, logging to the
    /// same file: it takes the listening sockets once the old process gets
    /// SIGQUIT. Returns the old process, which becomes the caller's.
    pub fn start_upgrade(&mut self) -> Child {
        let mut command = self.serve_command(&["--upgrade"]);
        let new = die_with_parent(&mut command)
            .spawn()
            .expect("start the upgraded gateway");
        self.child.replace(new).expect("a gateway was running")
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

    /// A password grant, whatever it answers.
    pub async fn password_grant(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.token_request(&[
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", username),
            ("password", password),
        ])
        .await
    }

    /// RFC 7009 revocation by a public client.
    pub async fn revoke(&self, client_id: &str, token: &str) -> reqwest::Response {
        self.post_form(
            "/oauth/revoke",
            None,
            &[("client_id", client_id), ("token", token)],
        )
        .await
    }

    /// Password grant that must succeed.
    pub async fn login(&self, client_id: &str, username: &str, password: &str) -> IssuedTokens {
        let response = self.password_grant(client_id, username, password).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "sign-in failed: {body}");
        IssuedTokens {
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

/// A user, a client and a logged-in token on a fresh gateway.
pub struct Session {
    pub user_id: String,
    pub client_id: String,
    pub tokens: IssuedTokens,
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

/// `oauth:` lines with the suite's defaults for keys the test did not set:
/// bcrypt cost 4 keeps debug-build tests fast, and the token endpoint and
/// management answer over the plain-HTTP listener most tests use.
fn oauth_with_test_defaults(extra: &str) -> String {
    let mut yaml = String::new();
    for (key, line) in [
        ("bcrypt_cost", "  bcrypt_cost: 4\n"),
        ("allow_plaintext", "  allow_plaintext: true\n"),
    ] {
        if !extra.contains(key) {
            yaml.push_str(line);
        }
    }
    yaml + extra
}
