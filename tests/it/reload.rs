//! Live reload (SIGHUP, `portcullis reload`) and the graceful upgrade
//! (`serve --upgrade`), under load: nothing in flight fails.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

/// Requests sent by a few keep-alive clients until stopped, bounded in
/// count and time; every answer that is not 200 is kept.
struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<(usize, Vec<String>)>>,
}

const LOAD_WORKERS: usize = 4;
const LOAD_MAX_REQUESTS: usize = 20_000;
const LOAD_MAX_TIME: Duration = Duration::from_secs(40);

impl Load {
    fn start(url: String, token: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..LOAD_WORKERS)
            .map(|_| {
                let (url, token, stop) = (url.clone(), token.to_string(), stop.clone());
                tokio::spawn(async move {
                    let client = client();
                    let started = Instant::now();
                    let (mut ok, mut failures) = (0, Vec::new());
                    while !stop.load(Ordering::Relaxed)
                        && ok + failures.len() < LOAD_MAX_REQUESTS / LOAD_WORKERS
                        && started.elapsed() < LOAD_MAX_TIME
                    {
                        match client.get(&url).bearer_auth(&token).send().await {
                            Ok(response) if response.status() == 200 => ok += 1,
                            Ok(response) => failures.push(format!("status {}", response.status())),
                            Err(error) => failures.push(format!("{error:?}")),
                        }
                    }
                    (ok, failures)
                })
            })
            .collect();
        Load { stop, workers }
    }

    /// Stops the clients: how many requests succeeded, and every failure.
    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut ok, mut failures) = (0, Vec::new());
        for worker in self.workers {
            let (worker_ok, worker_failures) = worker.await.unwrap();
            ok += worker_ok;
            failures.extend(worker_failures);
        }
        (ok, failures)
    }
}

fn reload(gateway: &Gateway) -> Output {
    gateway.run(&["reload"], None)
}

fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The log lines `selected` picks: one per setting, each named by one.
fn assert_lines_name_each(logs: &str, selected: impl Fn(&str) -> bool, settings: &[&str]) {
    let lines: Vec<&str> = logs.lines().filter(|line| selected(line)).collect();
    assert_eq!(lines.len(), settings.len(), "{logs}");
    for setting in settings {
        assert!(
            lines.iter().any(|line| line.contains(setting)),
            "no line names {setting}: {logs}"
        );
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn a_reload_under_load_adds_a_route_and_moves_an_upstream_without_a_failed_request() {
    let (first, second) = (Upstream::start().await, Upstream::start().await);
    let config = GatewayConfig::new(&first);
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let token = &session.tokens.access_token;
    assert_eq!(gateway.get_status("/added/x", token).await, 200);
    assert_eq!(first.last().uri, "/added/x", "before: all to the first");

    let load = Load::start(gateway.url("/load"), token);
    // A request the first server takes a second to answer, in flight
    // across the swap: it finishes there, on the old configuration.
    let in_flight = {
        let (url, token) = (gateway.url("/slow"), token.clone());
        tokio::spawn(async move { client().get(url).bearer_auth(token).send().await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // `app` moves to the second server, and a route with its own upstream
    // and prefix rule appears in front of the catch-all.
    let mut moved = GatewayConfig::for_address(second.address);
    moved.upstreams_extra = format!("  added: {{servers: [\"{}\"]}}\n", second.address);
    moved.routes = Some(
        "  - {path_prefix: /added, upstream: added, strip_prefix: true}\n  - {path_prefix: /, upstream: app}\n".into(),
    );
    gateway.rewrite_config(&moved);
    let output = reload(&gateway);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("asked the gateway"));
    let logs = gateway
        .logs_when(|logs| logs.contains("configuration reloaded"))
        .await;
    assert!(logs.contains("configuration reloaded"), "{logs}");
    let seen_by_first = first.count();
    let slow = in_flight.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200, "the request in flight finished");
    assert!(first.seen().iter().any(|seen| seen.uri == "/slow"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {} failed: {:?}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 100, "only {ok} requests under load");
    // After the swap (and the requests already in flight), the first
    // server gets nothing more.
    assert!(
        first.count() <= seen_by_first + LOAD_WORKERS,
        "the first server still gets requests"
    );
    assert!(second.count() > 0, "the second server got none of the load");
    assert_eq!(gateway.get_status("/added/x", token).await, 200);
    assert_eq!(second.last().uri, "/x", "the new route strips its prefix");
    assert_eq!(
        second.last().header_values("x-user-id"),
        [session.user_id.as_str()],
        "authenticated through the new route"
    );

    let metrics = gateway.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "portcullis_config_reloads_total{result=\"applied\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    let hash = sha256_hex(&std::fs::read(&gateway.config_path).unwrap());
    assert!(
        metrics.contains(&format!("config=\"{}\"", &hash[..16])),
        "build_info names the new file's hash: {metrics}"
    );
    assert_eq!(
        metrics.matches("portcullis_build_info{").count(),
        1,
        "one build_info series"
    );
}

#[tokio::test]
async fn an_invalid_file_is_refused_line_by_line_and_the_running_configuration_serves() {
    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let session = signed_in(&gateway).await;
    let token = &session.tokens.access_token;
    let running = std::fs::read_to_string(&gateway.config_path).unwrap();
    let broken = running
        .replace(
            "{path_prefix: /, upstream: app}",
            "{path_prefix: /, upstream: nowhere}",
        )
        .replace("threads: 2", "threads: 0");
    assert_ne!(broken, running);
    gateway.write_config(&broken);

    // The CLI checks first and does not signal.
    let output = reload(&gateway);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("routes[0].upstream"), "{stderr}");
    assert!(stderr.contains("server.threads"), "{stderr}");
    assert!(stderr.contains("not reloading"), "{stderr}");

    // SIGHUP itself: the gateway checks, refuses, and names each problem.
    let pid = gateway.pid() as i32;
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let logs = gateway
        .logs_when(|logs| logs.contains("the running configuration stays"))
        .await;
    // One line per problem.
    assert_lines_name_each(
        &logs,
        |line| line.contains("configuration reload refused") && line.contains("setting="),
        &["routes[0].upstream", "server.threads"],
    );
    assert_eq!(gateway.get_status("/still", token).await, 200);
    assert_eq!(upstream.last().uri, "/still");
    let metrics = gateway.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "portcullis_config_reloads_total{result=\"refused\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "portcullis_config_reloads_total{result=\"applied\"}"
        ),
        Some(0.0)
    );
    let hash = sha256_hex(running.as_bytes());
    assert!(
        metrics.contains(&format!("config=\"{}\"", &hash[..16])),
        "{metrics}"
    );
    // Still alive, and still reloadable once the file is fixed.
    gateway.write_config(&running.replace("threads: 2", "threads: 2\n  forwarded_header: true"));
    assert!(reload(&gateway).status.success());
    gateway
        .logs_when(|logs| logs.contains("configuration reloaded"))
        .await;
    let mut child = gateway.signal(libc::SIGTERM);
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn restart_only_settings_are_named_and_kept_while_the_rest_applies() {
    let upstream = Upstream::start().await;
    let mut config = GatewayConfig::new(&upstream);
    config.oauth_extra =
        "  lockout: {max_failures: 5, window_seconds: 60, lock_seconds: 60}\n".into();
    let gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let token = &session.tokens.access_token;

    let moved_port = free_port();
    let running = std::fs::read_to_string(&gateway.config_path).unwrap();
    let changed = running
        .replace(
            &format!("127.0.0.1:{}", gateway.http_port),
            &format!("127.0.0.1:{moved_port}"),
        )
        .replace("threads: 2", "threads: 3")
        .replace("max_failures: 5", "max_failures: 2")
        .replace(
            "routes:\n",
            "routes:\n  - {path_prefix: /gone, upstream: app, methods: [POST]}\n",
        );
    gateway.write_config(&changed);
    assert!(reload(&gateway).status.success());
    let logs = gateway
        .logs_when(|logs| logs.contains("configuration reloaded"))
        .await;
    assert_lines_name_each(
        &logs,
        |line| line.contains("needs a restart"),
        &["listen.http.address", "server.threads"],
    );
    // The listener stays where it was; nothing listens on the new port.
    assert_eq!(gateway.get_status("/x", token).await, 200);
    assert!(std::net::TcpStream::connect(("127.0.0.1", moved_port)).is_err());
    // The new route applies: GET on it is 405 now.
    let response = client()
        .get(gateway.url("/gone"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    // The new lockout threshold applies: two failures lock the username.
    for _ in 0..2 {
        let response = gateway
            .password_grant(&session.client_id, "jonas", "wrong")
            .await;
        assert_eq!(response.status(), 400);
    }
    let response = gateway
        .password_grant(&session.client_id, "jonas", "pass")
        .await;
    assert_eq!(
        response.status(),
        429,
        "locked after the reloaded max_failures"
    );
}

#[tokio::test]
async fn a_reload_serves_a_renewed_certificate_to_new_connections() {
    let upstream = Upstream::start().await;
    let folder = tempfile::tempdir().unwrap();
    let write_pair = |name: &str| {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let certificate = folder.path().join(format!("{name}.crt"));
        let key = folder.path().join(format!("{name}.key"));
        std::fs::write(&certificate, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        (certificate, key, generated.cert.pem())
    };
    let (old_cert, old_key, old_pem) = write_pair("old");
    let (new_cert, new_key, new_pem) = write_pair("new");
    let gateway = Gateway::prepare(&GatewayConfig::new(&upstream));
    let with_pair = |cert: &Path, key: &Path| {
        std::fs::read_to_string(&gateway.config_path)
            .unwrap()
            .replacen(
                &format!("https: {{address: \"127.0.0.1:{}\"}}", gateway.https_port),
                &format!(
                "https: {{address: \"127.0.0.1:{}\", certificate: \"{}\", private_key: \"{}\"}}",
                gateway.https_port,
                cert.display(),
                key.display()
            ),
                1,
            )
    };
    let first = with_pair(&old_cert, &old_key);
    gateway.write_config(&first);
    let mut gateway = gateway;
    gateway.spawn();
    let trusting = |pem: &str| {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    };
    let url = gateway.https_url("/oauth/metadata-free-path");
    assert!(trusting(&old_pem).get(&url).send().await.is_ok());
    assert!(trusting(&new_pem).get(&url).send().await.is_err());

    // A key that is not the certificate's is refused; the old pair serves.
    gateway.write_config(&first.replace(
        &old_key.display().to_string(),
        &new_key.display().to_string(),
    ));
    unsafe { libc::kill(gateway.pid() as i32, libc::SIGHUP) };
    let logs = gateway
        .logs_when(|logs| logs.contains("the running configuration stays"))
        .await;
    assert!(logs.contains("does not go with the certificate"), "{logs}");
    assert!(trusting(&old_pem).get(&url).send().await.is_ok());

    let renewed = first
        .replace(
            &old_cert.display().to_string(),
            &new_cert.display().to_string(),
        )
        .replace(
            &old_key.display().to_string(),
            &new_key.display().to_string(),
        );
    gateway.write_config(&renewed);
    assert!(reload(&gateway).status.success());
    gateway
        .logs_when(|logs| logs.contains("configuration reloaded"))
        .await;
    assert!(trusting(&new_pem).get(&url).send().await.is_ok());
    assert!(trusting(&old_pem).get(&url).send().await.is_err());
}

#[tokio::test]
async fn a_reload_changes_the_administrator_and_keeps_one_whose_settings_stand() {
    let upstream = Upstream::start().await;
    let hash = |password: &str| bcrypt::hash(password, 4).unwrap();
    let with_admin =
        |password: &str| format!("  username: ops\n  password_hash: \"{}\"\n", hash(password));
    let mut config = GatewayConfig::new(&upstream);
    config.management_extra = with_admin("first secret");
    let gateway = Gateway::start(&config);
    let api = gateway.url("/oauth/management/api/v1/users");
    let status = |password: &'static str| {
        let api = api.clone();
        async move {
            client()
                .get(&api)
                .basic_auth("ops", Some(password))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status("first secret").await, 200);
    // An unrelated change keeps the administrator as it is.
    let running = std::fs::read_to_string(&gateway.config_path).unwrap();
    gateway.write_config(&running.replace("threads: 2", "threads: 2\n  forwarded_header: true"));
    assert!(reload(&gateway).status.success());
    gateway
        .logs_when(|logs| logs.matches("configuration reloaded").count() == 1)
        .await;
    assert_eq!(status("first secret").await, 200);
    // A new password hash: the old password stops working at once.
    config.management_extra = with_admin("second secret");
    gateway.rewrite_config(&config);
    assert!(reload(&gateway).status.success());
    gateway
        .logs_when(|logs| logs.matches("configuration reloaded").count() == 2)
        .await;
    assert_eq!(status("first secret").await, 401);
    assert_eq!(status("second secret").await, 200);
}

#[tokio::test]
async fn health_checks_follow_the_reloaded_upstream() {
    let (checked, other) = (Upstream::start().await, Upstream::start().await);
    let mut config = GatewayConfig::new(&checked);
    config.upstreams_extra = format!(
        "  watched: {{servers: [\"{}\"], health_check: {{path: /healthz, interval_ms: 100, timeout_ms: 100}}}}\n",
        checked.address
    );
    let gateway = Gateway::start(&config);
    assert!(
        eventually(Duration::from_secs(5), || async {
            checked.health_checks() >= 3
        })
        .await,
        "the health check runs"
    );
    // The upstream now points elsewhere: the old pool's checks stop, the
    // new pool's start.
    config.upstreams_extra = format!(
        "  watched: {{servers: [\"{}\"], health_check: {{path: /healthz, interval_ms: 100, timeout_ms: 100}}}}\n",
        other.address
    );
    gateway.rewrite_config(&config);
    assert!(reload(&gateway).status.success());
    gateway
        .logs_when(|logs| logs.contains("configuration reloaded"))
        .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            other.health_checks() >= 3
        })
        .await,
        "the new pool is checked"
    );
    let before = checked.health_checks();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        checked.health_checks() <= before + 1,
        "the old pool is no longer checked"
    );
    let metrics = gateway.metrics().await;
    let gauge = |server: SocketAddr| {
        format!("portcullis_upstream_server_healthy{{server=\"{server}\",upstream=\"watched\"}}")
    };
    assert!(metrics.contains(&gauge(other.address)), "{metrics}");
    assert!(
        !metrics.contains(&gauge(checked.address)),
        "the removed server's gauge is gone: {metrics}"
    );
}

#[tokio::test]
async fn reload_without_a_running_gateway_says_so() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::prepare(&GatewayConfig::new(&upstream));
    let output = reload(&gateway);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no gateway is running"), "{stderr}");
}

#[tokio::test]
async fn a_graceful_upgrade_under_load_hands_over_without_a_failed_request() {
    let upstream = Upstream::start().await;
    // Access tokens in Redis: the new process finds the old one's.
    let redis = Redis::start();
    let mut config = GatewayConfig::new(&upstream).redis(&redis);
    config.grace_period_seconds = 1;
    let mut gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let token = &session.tokens.access_token;
    let pid_file = gateway.dir.path().join("data/portcullis.pid");
    let old_pid = gateway.pid();
    assert!(
        eventually(Duration::from_secs(5), || async {
            std::fs::read_to_string(&pid_file).is_ok_and(|text| text.trim() == old_pid.to_string())
        })
        .await,
        "the pid file names the gateway"
    );

    let load = Load::start(gateway.url("/load"), token);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut old = gateway.start_upgrade();
    // The new process waits on the upgrade socket; once it listens there,
    // hand over. (The old one would also retry for 5 s.)
    let upgrade_socket = gateway.dir.path().join("data/upgrade.sock");
    assert!(
        eventually(Duration::from_secs(10), || async {
            upgrade_socket.exists()
        })
        .await,
        "the new process listens for the sockets: {}",
        gateway.logs()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    unsafe { libc::kill(old.id() as i32, libc::SIGQUIT) };
    let new_pid = gateway.pid();
    assert!(
        eventually(Duration::from_secs(10), || async {
            std::fs::read_to_string(&pid_file).is_ok_and(|text| text.trim() == new_pid.to_string())
        })
        .await,
        "the new process writes the pid file: {}",
        gateway.logs()
    );
    // The old process drains and exits (Pingora waits 5 s after handing
    // over, then the grace period).
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = old.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the old process did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "{} of {} failed: {:?}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 100, "only {ok} requests under load");
    // The new process serves the same tokens and signs in.
    assert_eq!(gateway.get_status("/after", token).await, 200);
    let again = gateway.login(&session.client_id, "jonas", "pass").await;
    assert_eq!(gateway.get_status("/after", &again.access_token).await, 200);
    // And `portcullis reload` now reaches the new process.
    assert!(reload(&gateway).status.success());
    gateway
        .logs_when(|logs| logs.contains("configuration reloaded"))
        .await;
}
