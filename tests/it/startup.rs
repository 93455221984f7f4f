//! Starting and stopping: clear failures, generated certificates, graceful
//! shutdown.

use std::time::{Duration, Instant};

use crate::harness::*;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_is_generated_and_announced() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream));
    let certificate = gateway.dir.path().join("data/tls/self-signed.crt");
    assert!(certificate.exists());
    assert!(
        gateway
            .logs()
            .contains("generated a self-signed certificate"),
        "{}",
        gateway.logs()
    );
    let response = client().get(gateway.https_url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_one_clear_line() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::prepare(&GatewayConfig::new(&upstream));
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", gateway.https_port)).unwrap();
    let output = gateway.run(&["serve"], None);
    assert!(!output.status.success());
    let message = stderr(&output);
    let last = message.lines().last().unwrap_or_default();
    assert!(
        last.contains("listen.https.address") && last.contains(&gateway.https_port.to_string()),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_at_startup_is_one_clear_line() {
    let upstream = Upstream::start().await;
    let mut config = GatewayConfig::new(&upstream);
    config.tokens = TokenBackend::Redis(format!("redis://127.0.0.1:{}/", free_port()));
    let gateway = Gateway::prepare(&config);
    let started = Instant::now();
    let output = gateway.run(&["serve"], None);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot reach Redis"),
        "{}",
        stderr(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_certificate_is_one_clear_line() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::prepare(&GatewayConfig::new(&upstream));
    let yaml = std::fs::read_to_string(&gateway.config_path).unwrap().replace(
        &format!("https: {{address: \"127.0.0.1:{}\"}}", gateway.https_port),
        &format!(
            "https: {{address: \"127.0.0.1:{}\", certificate: /nonexistent/cert.pem, private_key: /nonexistent/key.pem}}",
            gateway.https_port
        ),
    );
    std::fs::write(&gateway.config_path, yaml).unwrap();
    let output = gateway.run(&["serve"], None);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("listen.https.certificate"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let upstream = Upstream::start().await;
    let config = GatewayConfig {
        grace_period_seconds: 3,
        ..GatewayConfig::new(&upstream)
    };
    let mut gateway = Gateway::start(&config);
    let session = signed_in(&gateway).await;
    let slow = tokio::spawn({
        let url = gateway.url("/slow");
        let token = session.tokens.access_token.clone();
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    let mut child = gateway.signal(libc::SIGTERM);
    // New connections are refused once the listeners close.
    let refused = eventually(Duration::from_secs(2), || async {
        std::net::TcpStream::connect(("127.0.0.1", gateway.http_port)).is_err()
    })
    .await;
    assert!(refused, "the listener stayed open after SIGTERM");
    assert_eq!(
        slow.await
            .unwrap()
            .expect("the in-flight request completes"),
        200
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    // A graceful stop is a clean exit, as an orchestrator reads it.
    assert_eq!(status.code(), Some(0), "{status:?}");
    // Pingora ends with `process::exit`, which runs no destructors: the
    // log writer's exit hook still writes the last lines, the in-flight
    // request's access line and Pingora's own last words among them.
    let logs = gateway.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("portcullis::access") && l.contains("path=\"/slow\"")),
        "{logs}"
    );
    assert!(
        logs.trim_end()
            .ends_with("All runtimes exited, exiting now"),
        "{logs}"
    );
}
