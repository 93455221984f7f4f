//! The differential suite: the corpus in tests/corpus/request-targets.txt
//! sent through the gateway, without a token, to real frameworks (Flask
//! under gunicorn, Starlette under uvicorn, Express) and to the Rust echo
//! upstream, over HTTP/1.1 as raw bytes and over HTTP/2 where `:path` can
//! carry the target. `/` is public and `/admin` needs a token: no request
//! may ever get the protected handler's answer, whatever the framework's
//! reading of the path. Well-formed requests still pass.

use std::net::SocketAddr;

use serde_json::Value;

use crate::frameworks::{Framework, FrameworkServer};
use crate::harness::*;
use crate::wire::{get_raw, h2_connect, h2_get};

const ROUTES: &str = "  - {path_prefix: /, upstream: app, public: true}
  - {path_prefix: /admin, upstream: app}
";

/// The corpus, with `\xHH`, `\t` and `\\` unescaped and `{host}` filled in.
fn corpus(host: &str) -> Vec<Vec<u8>> {
    let text = include_str!("../corpus/request-targets.txt");
    let targets: Vec<Vec<u8>> = text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with("# "))
        .map(|line| unescape(&line.replace("{host}", host)))
        .collect();
    assert!(
        targets.len() >= 200,
        "the corpus has only {} targets",
        targets.len()
    );
    targets
}

fn unescape(line: &str) -> Vec<u8> {
    let bytes = line.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\\' {
            match bytes.get(at + 1) {
                Some(b'x') => {
                    let hex = std::str::from_utf8(&bytes[at + 2..at + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    at += 4;
                    continue;
                }
                Some(b't') => {
                    out.push(b'\t');
                    at += 2;
                    continue;
                }
                Some(b'\\') => {
                    out.push(b'\\');
                    at += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}

/// True when a framework's answer is its protected handler's.
fn is_protected_answer(status: u16, body: &str) -> bool {
    status == 200
        && serde_json::from_str::<Value>(body)
            .ok()
            .is_some_and(|v| v["handler"] == "protected")
}

/// The loosest reading any common server might give a path: decoded (twice),
/// `\` as `/`, case folded, `;params` and trailing dots and spaces dropped,
/// dot and empty segments resolved. For the echo upstream, which has no
/// router of its own: a request it saw without an identity must not read as
/// `/admin` even so.
fn loosest_reading(uri: &str) -> String {
    let path = uri.split('?').next().unwrap_or(uri);
    let mut decoded = path.to_string();
    for _ in 0..2 {
        let bytes = decoded.as_bytes();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'%' {
                if let Some(value) = bytes
                    .get(at + 1..at + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    out.push(value);
                    at += 3;
                    continue;
                }
            }
            out.push(bytes[at]);
            at += 1;
        }
        decoded = String::from_utf8_lossy(&out).to_string();
    }
    let decoded = decoded.replace('\\', "/").to_ascii_lowercase();
    let mut segments: Vec<String> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => {
                let trimmed = segment.trim_end_matches(['.', ' ']);
                if !trimmed.is_empty() {
                    segments.push(trimmed.to_string());
                }
            }
        }
    }
    format!("/{}", segments.join("/"))
}

fn reads_as_admin(uri: &str) -> bool {
    let reading = loosest_reading(uri);
    reading == "/admin" || reading.starts_with("/admin/")
}

/// One upstream behind its own gateway, with a signed-in session.
struct Setup {
    name: &'static str,
    gateway: Gateway,
    token: String,
}

async fn gateway_for(name: &'static str, upstream: SocketAddr) -> Setup {
    let gateway = Gateway::start(&GatewayConfig::for_address(upstream).routes(ROUTES));
    let session = signed_in(&gateway).await;
    Setup {
        name,
        gateway,
        token: session.tokens.access_token,
    }
}

/// Every corpus target over HTTP/1.1 and HTTP/2 without a token; returns
/// the targets that got the protected handler's answer.
async fn protected_answers_without_a_token(setup: &Setup) -> Vec<String> {
    let port = setup.gateway.http_port;
    let https = setup.gateway.https_port;
    let mut leaks = Vec::new();
    let (mut sent_h1, mut sent_h2) = (0, 0);
    for target in corpus(&format!("127.0.0.1:{port}")) {
        sent_h1 += 1;
        let label = String::from_utf8_lossy(&target).to_string();
        if let Some(response) = get_raw(port, &target, "") {
            if is_protected_answer(response.status, &response.body) {
                leaks.push(format!("HTTP/1.1 {label}: {}", response.body));
            }
        }
    }
    let mut h2 = h2_connect(https).await;
    for target in corpus(&format!("localhost:{https}")) {
        let Ok(text) = std::str::from_utf8(&target) else {
            continue;
        };
        // What `:path` can carry: an origin-form target the http crate takes.
        if !text.starts_with('/') || http::uri::PathAndQuery::try_from(text).is_err() {
            continue;
        }
        let uri = format!("https://localhost:{https}{text}");
        if http::Uri::try_from(uri.as_str()).is_err() {
            continue;
        }
        sent_h2 += 1;
        match h2_get(&mut h2, &uri, &[]).await {
            Ok((status, body)) if is_protected_answer(status, &body) => {
                leaks.push(format!("HTTP/2 {text}: {body}"));
            }
            Ok(_) => {}
            // A stream or connection the gateway refused: reconnect.
            Err(_) => h2 = h2_connect(https).await,
        }
    }
    // :authority against Host, and Host twice.
    let authority_cases: [&[(&str, &str)]; 2] = [
        &[("host", "evil.example")],
        &[("host", "localhost"), ("host", "evil.example")],
    ];
    for headers in authority_cases {
        let uri = format!("https://localhost:{https}/admin/users");
        if let Ok((status, body)) = h2_get(&mut h2_connect(https).await, &uri, headers).await {
            assert_ne!(
                status, 200,
                "{}: Host {headers:?} against :authority: {body}",
                setup.name
            );
        }
    }
    // The corpus is sent whole, and much of it is expressible in HTTP/2.
    assert!(
        sent_h1 >= 200 && sent_h2 >= 100,
        "{}: sent {sent_h1} over HTTP/1.1 and {sent_h2} over HTTP/2",
        setup.name
    );
    leaks
}

/// Well-formed requests are not refused: a protected one with a token, a
/// normalized one, and public ones with legitimate encodings.
async fn legitimate_requests_pass(setup: &Setup, framework_routes: bool) {
    let port = setup.gateway.http_port;
    let bearer = format!("Authorization: Bearer {}\r\n", setup.token);
    let cases: [(&[u8], &str, &str); 5] = [
        (b"/admin/users", &bearer, "protected"),
        (b"/%61dmin/users", &bearer, "protected"),
        (b"/public%20page", "", "public"),
        (b"/public/a%2Bb?q=%26x", "", "public"),
        (b"/", "", "public"),
    ];
    for (target, extra, handler) in cases {
        let label = String::from_utf8_lossy(target);
        let response = get_raw(port, target, extra)
            .unwrap_or_else(|| panic!("{}: {label}: no response", setup.name));
        assert_eq!(
            response.status, 200,
            "{}: {label}: {}",
            setup.name, response.body
        );
        if framework_routes {
            let body: Value = serde_json::from_str(&response.body).unwrap();
            assert_eq!(body["handler"], handler, "{}: {label}: {body}", setup.name);
            if handler == "protected" {
                assert!(body["x_user_id"].is_string(), "{}: {body}", setup.name);
            }
        }
    }
    // And a protected one without a token is a 401.
    let response = get_raw(port, b"/admin/users", "").unwrap();
    assert_eq!(response.status, 401, "{}", setup.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_reaches_a_protected_handler_without_a_token() {
    let servers: Vec<FrameworkServer> = Framework::ALL
        .into_iter()
        .map(FrameworkServer::start)
        .collect();
    let echo = Upstream::start().await;
    let mut failures = Vec::new();
    for server in &servers {
        let setup = gateway_for(server.framework.name(), server.address()).await;
        legitimate_requests_pass(&setup, true).await;
        for leak in protected_answers_without_a_token(&setup).await {
            failures.push(format!("{}: {leak}", setup.name));
        }
    }
    let setup = gateway_for("rust echo", echo.address).await;
    legitimate_requests_pass(&setup, false).await;
    protected_answers_without_a_token(&setup).await;
    for seen in echo.seen() {
        if seen.header_values("x-user-id").is_empty() && reads_as_admin(&seen.uri) {
            failures.push(format!(
                "rust echo: {} reached the upstream without a token",
                seen.uri
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} requests got past the gateway to /admin:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_loosest_reading_is_loose() {
    let cases = [
        ("/admin", true),
        ("/%61dmin/x", true),
        ("/%2561dmin", true),
        ("/ADMIN;x/y", true),
        ("/public/../admin", true),
        ("/admin./x", true),
        ("/x\\..\\admin", true),
        ("//admin", true),
        ("/public", false),
        ("/administrator", false),
        ("/x/admin", false),
    ];
    for (uri, expected) in cases {
        assert_eq!(
            reads_as_admin(uri),
            expected,
            "{uri} reads as {}",
            loosest_reading(uri)
        );
    }
}

#[test]
fn the_corpus_unescapes() {
    assert_eq!(unescape(r"/a\x00b\tc\\d\e"), b"/a\x00b\tc\\d\\e".to_vec());
    assert!(corpus("h").iter().any(|t| t == b"http://h/admin/users"));
    // Every line is sent: none is mistaken for a comment but `# ` lines.
    assert!(corpus("h").iter().any(|t| t == b"#/admin"));
}
