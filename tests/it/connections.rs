//! Connection abuse: slow request heads, too many connections, HTTP/2
//! reset floods. Each must not stop the gateway from serving others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::wire::{h2_connect, h2_get, RawResponse};

/// Everything public: these tests are about connections, not tokens.
const PUBLIC: &str = "  - {path_prefix: /, upstream: app, public: true}\n";

/// Reads one response off a kept-alive connection (Content-Length framed).
fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = RawResponse::parse(&[&bytes[..end + 4], b""].concat())?;
            let length: usize = head
                .header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return RawResponse::parse(&bytes[..end + 4 + length]);
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

fn keep_alive_get(stream: &mut TcpStream, port: u16, path: &str) -> Option<RawResponse> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    read_response(stream)
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// True when the server closed `stream` (EOF or reset) within `within`
/// without answering.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_head_is_cut_off_at_its_deadline() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream)
            .routes(PUBLIC)
            .server("  request_head_timeout_seconds: 1\n"),
    );
    let port = gateway.http_port;
    let started = Instant::now();
    let trickler = std::thread::spawn(move || {
        let mut stream = connect(port);
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        // A header byte every 200 ms: each read is quick, the head never ends.
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(200));
            if stream.write_all(b"X").is_err() {
                break;
            }
            let mut byte = [0u8; 1];
            stream.set_nonblocking(true).unwrap();
            let closed = matches!(stream.read(&mut byte), Ok(0))
                || matches!(stream.read(&mut byte), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock);
            stream.set_nonblocking(false).unwrap();
            if closed {
                break;
            }
        }
        started.elapsed()
    });
    // Meanwhile, an ordinary client is served.
    let response = client().get(gateway.url("/ordinary")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let held = tokio::task::spawn_blocking(move || trickler.join().unwrap())
        .await
        .unwrap();
    assert!(
        held >= Duration::from_millis(800) && held < Duration::from_secs(4),
        "the trickling connection was held {held:?}; the deadline is 1 s"
    );
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("portcullis_request_head_timeouts_total 1"),
        "{metrics}"
    );

    // The clock of a kept-alive connection starts at the next request's
    // first byte, not when the last one ended.
    let mut stream = connect(port);
    assert_eq!(
        keep_alive_get(&mut stream, port, "/first").unwrap().status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        keep_alive_get(&mut stream, port, "/second").unwrap().status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_closed_and_open_ones_served() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(
        &GatewayConfig::new(&upstream)
            .routes(PUBLIC)
            .server("  max_connections: 3\n"),
    );
    let port = gateway.http_port;
    let mut open: Vec<TcpStream> = (0..3).map(|_| connect(port)).collect();
    for stream in &mut open {
        assert_eq!(keep_alive_get(stream, port, "/held").unwrap().status, 200);
    }
    let mut refused = connect(port);
    let _ = refused.write_all(b"GET /over HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        closed_within(&mut refused, Duration::from_secs(3)),
        "a fourth connection must be closed"
    );
    for stream in &mut open {
        assert_eq!(keep_alive_get(stream, port, "/still").unwrap().status, 200);
    }
    assert!(upstream.seen().iter().all(|seen| seen.uri != "/over"));
    let metrics = gateway.metrics().await;
    assert!(
        metrics.contains("portcullis_connections_refused_total"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("portcullis_connections_refused_total 0"),
        "{metrics}"
    );

    // A closed connection frees its place.
    drop(open.pop());
    let freed = eventually(Duration::from_secs(5), || async {
        let mut stream = connect(port);
        keep_alive_get(&mut stream, port, "/again").is_some_and(|r| r.status == 200)
    })
    .await;
    assert!(freed, "a freed place must be given to a new connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_reset_flood_neither_stops_others_nor_grows_memory() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&GatewayConfig::new(&upstream).routes(PUBLIC));
    let port = gateway.https_port;
    // Warm up, so the baseline has the gateway's steady-state memory.
    let mut steady = h2_connect(port).await;
    for _ in 0..50 {
        let (status, _) = h2_get(&mut steady, &format!("https://localhost:{port}/warm"), &[])
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    let baseline = gateway.rss_kib();

    // Open streams to a slow upstream path and reset each at once, on
    // several connections, for a bounded count and time.
    let flood = tokio::spawn(async move {
        let mut reset = 0usize;
        let deadline = Instant::now() + Duration::from_secs(6);
        'connections: for _ in 0..20 {
            let send = h2_connect(port).await;
            while Instant::now() < deadline && reset < 20_000 {
                let Ok(mut ready) = send.clone().ready().await else {
                    continue 'connections;
                };
                let request = http::Request::get(format!("https://localhost:{port}/slow"))
                    .body(())
                    .unwrap();
                let Ok((_response, mut stream)) = ready.send_request(request, false) else {
                    continue 'connections;
                };
                stream.send_reset(h2::Reason::CANCEL);
                reset += 1;
            }
            break;
        }
        reset
    });
    // Others keep being served during the flood.
    let mut served = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let asked = Instant::now();
        let response = client().get(gateway.url("/during")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "a request took {:?} during the flood",
            asked.elapsed()
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reset = flood.await.unwrap();
    eprintln!(
        "reset flood: {reset} streams reset, {served} requests served meanwhile, RSS {baseline} KiB before, {} KiB after",
        gateway.rss_kib()
    );
    assert!(reset > 500, "the flood only reset {reset} streams");
    assert!(
        served >= 10,
        "only {served} requests were served during the flood"
    );

    // Memory comes back within a bound once the flood's work is done.
    let bounded = eventually(Duration::from_secs(10), || async {
        gateway.rss_kib() < baseline + 64 * 1024
    })
    .await;
    assert!(
        bounded,
        "RSS grew from {baseline} KiB to {} KiB after {reset} reset streams",
        gateway.rss_kib()
    );
    let (status, _) = h2_get(
        &mut h2_connect(port).await,
        &format!("https://localhost:{port}/after"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
}
