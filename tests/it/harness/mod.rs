//! Real parts for integration tests: redis-server, mongod, an echo upstream
//! and the gateway binary, each on a free loopback port with its own
//! temporary data, stopped when the test ends.
//!
//! A missing program is a test failure with a message saying how to install
//! it, never a silent skip.
//!
//! - [`redis_server`], [`mongod`]: the stores' servers;
//! - [`upstream`]: the echo upstream that records what it saw;
//! - [`gateway_config`] and [`gateway`]: the gateway binary, its file and its client calls.

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

#[macro_use]
mod backends;
mod gateway;
mod gateway_config;
mod mongod;
mod redis_server;
mod stalling_proxy;
mod upstream;

pub use backends::*;
pub use gateway::*;
pub use gateway_config::*;
pub use mongod::*;
pub use redis_server::*;
pub use stalling_proxy::*;
pub use upstream::*;

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
