//! The pool as the gateway's hooks drive it, with names from a table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use pingora::{Error, ErrorSource, ErrorType, RetryType};

use super::discovery::tests::TableResolver;
use super::*;
use crate::config::{PassivePolicy, UpstreamServer, UpstreamTls};

fn upstream(servers: &[&str], selection: Selection) -> Upstream {
    Upstream {
        name: "app".into(),
        servers: servers
            .iter()
            .map(|s| UpstreamServer {
                address: ServerAddress::parse(s).unwrap(),
                weight: 1,
            })
            .collect(),
        tls: None,
        connect_timeout: Duration::from_millis(250),
        read_timeout: Duration::from_secs(7),
        selection,
        health_check: None,
        passive: PassivePolicy {
            failures: 3,
            eject: Duration::from_secs(60),
        },
        retries: 1,
        resolve_interval: Duration::from_secs(30),
        idle_timeout: Some(Duration::from_secs(9)),
    }
}

async fn pool(servers: &[&str], resolver: Arc<TableResolver>) -> UpstreamPool {
    let pool = UpstreamPool::new(upstream(servers, Selection::RoundRobin), resolver).unwrap();
    pool.resolve().await;
    pool
}

fn request() -> RequestHeader {
    RequestHeader::build("GET", b"/", None).unwrap()
}

const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Where `n` fresh requests go, by address.
fn spread(pool: &UpstreamPool, n: usize) -> BTreeMap<SocketAddr, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let mut attempts = Attempts::default();
        let peer = pool.peer(&mut attempts, &request(), CLIENT).unwrap();
        *counts.entry(*peer._address.as_inet().unwrap()).or_default() += 1;
    }
    counts
}

fn is_no_server(result: pingora::Result<Box<HttpPeer>>) -> bool {
    result.is_err_and(|e| *e.etype() == ErrorType::Custom(NO_HEALTHY_SERVER))
}

fn connect_error() -> Box<Error> {
    Error::new(ErrorType::ConnectRefused).into_up()
}

#[tokio::test]
async fn a_name_with_two_addresses_sends_to_both() {
    let resolver = Arc::new(TableResolver::default());
    resolver.set("app", &["10.0.0.1:0", "10.0.0.2:0"]);
    let pool = pool(&["app:8000"], resolver).await;
    let counts = spread(&pool, 10);
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.values().all(|&n| n == 5), "{counts:?}");
}

#[tokio::test]
async fn an_unresolvable_name_is_no_server_until_it_resolves() {
    let resolver = Arc::new(TableResolver::default());
    let pool = pool(&["app:8000"], resolver.clone()).await;
    assert!(is_no_server(pool.peer(
        &mut Attempts::default(),
        &request(),
        CLIENT
    )));
    resolver.set("app", &["10.0.0.1:0"]);
    pool.resolve().await;
    assert_eq!(spread(&pool, 3).len(), 1);
}

fn tls(sni: Option<&str>) -> Option<UpstreamTls> {
    Some(UpstreamTls {
        sni: sni.map(str::to_string),
        ca: None,
        client_certificate: None,
    })
}

/// The name of the first peer each server address gets.
async fn sni_by_address(upstream: Upstream) -> BTreeMap<SocketAddr, (String, bool)> {
    let resolver = Arc::new(TableResolver::default());
    resolver.set("app.internal", &["10.0.0.2:443"]);
    let pool = UpstreamPool::new(upstream, resolver).unwrap();
    pool.resolve().await;
    let mut names = BTreeMap::new();
    for _ in 0..4 {
        let peer = pool
            .peer(&mut Attempts::default(), &request(), CLIENT)
            .unwrap();
        assert!(peer.options.verify_cert && peer.options.verify_hostname);
        names.insert(
            *peer._address.as_inet().unwrap(),
            (peer.sni.clone(), peer.is_tls()),
        );
    }
    names
}

#[tokio::test]
async fn tls_peers_verify_each_servers_own_name_unless_sni_is_set() {
    let servers = ["10.0.0.1:443", "app.internal:443"];
    let a: SocketAddr = "10.0.0.1:443".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:443".parse().unwrap();
    let cases: &[(Option<&str>, [&str; 2])] = &[
        // An IP server is verified for its IP address, a name for itself.
        (None, ["10.0.0.1", "app.internal"]),
        (Some("api.example"), ["api.example", "api.example"]),
    ];
    for (sni, expected) in cases {
        let mut upstream = upstream(&servers, Selection::RoundRobin);
        upstream.tls = tls(*sni);
        let names = sni_by_address(upstream).await;
        assert_eq!(names[&a], (expected[0].to_string(), true), "{sni:?}");
        assert_eq!(names[&b], (expected[1].to_string(), true), "{sni:?}");
    }
}

#[tokio::test]
async fn peers_carry_the_upstreams_settings() {
    let pool = pool(&["10.0.0.1:443"], Arc::default()).await;
    let peer = pool
        .peer(&mut Attempts::default(), &request(), CLIENT)
        .unwrap();
    assert!(!peer.is_tls());
    assert_eq!(
        peer.options.connection_timeout,
        Some(Duration::from_millis(250))
    );
    assert_eq!(peer.options.read_timeout, Some(Duration::from_secs(7)));
    assert_eq!(peer.options.idle_timeout, Some(Duration::from_secs(9)));
}

#[tokio::test]
async fn a_connect_failure_moves_to_another_server_until_none_is_left() {
    let pool = pool(&["10.0.0.1:80", "10.0.0.2:80"], Arc::default()).await;
    let mut attempts = Attempts::default();
    let first = pool.peer(&mut attempts, &request(), CLIENT).unwrap();
    let error = pool.connect_failed(&mut attempts, connect_error());
    assert!(error.retry(), "another server is left");
    let second = pool.peer(&mut attempts, &request(), CLIENT).unwrap();
    assert_ne!(first._address, second._address);
    let error = pool.connect_failed(&mut attempts, connect_error());
    assert!(!error.retry(), "both failed this request");
    assert!(is_no_server(pool.peer(&mut attempts, &request(), CLIENT)));
    // Other requests still use both: two failures do not eject.
    assert_eq!(spread(&pool, 4).len(), 2);
}

#[tokio::test]
async fn servers_that_keep_failing_are_ejected_and_then_there_is_none() {
    let pool = pool(&["10.0.0.1:80", "10.0.0.2:80"], Arc::default()).await;
    let failing: SocketAddr = "10.0.0.1:80".parse().unwrap();
    // Three 5xx answers from 10.0.0.1 (the others answer 200).
    let mut fives = 0;
    while fives < 3 {
        let mut attempts = Attempts::default();
        pool.peer(&mut attempts, &request(), CLIENT).unwrap();
        let status = if attempts.server() == Some(failing) {
            fives += 1;
            503
        } else {
            200
        };
        pool.responded(&mut attempts, status);
    }
    let counts = spread(&pool, 6);
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        [&"10.0.0.2:80".parse().unwrap()]
    );
    assert_eq!(pool.health(), (1, 2));
    for _ in 0..3 {
        let mut attempts = Attempts::default();
        pool.peer(&mut attempts, &request(), CLIENT).unwrap();
        pool.connect_failed(&mut attempts, connect_error());
    }
    assert!(is_no_server(pool.peer(
        &mut Attempts::default(),
        &request(),
        CLIENT
    )));
    assert_eq!(pool.health(), (0, 2));
}

#[tokio::test]
async fn an_idempotent_request_reset_before_answering_is_retried_up_to_retries() {
    let pool = pool(
        &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"],
        Arc::default(),
    )
    .await;
    let reset = || {
        let mut error = Error::new(ErrorType::ConnectionClosed);
        error.retry = RetryType::ReusedOnly;
        error.esource = ErrorSource::Upstream;
        error
    };
    let mut attempts = Attempts::default();
    pool.peer(&mut attempts, &request(), CLIENT).unwrap();
    assert!(pool
        .proxy_failed(&mut attempts, reset(), true, false)
        .retry());
    pool.peer(&mut attempts, &request(), CLIENT).unwrap();
    // `retries: 1`: the second reset is final, though a server is left.
    assert!(!pool
        .proxy_failed(&mut attempts, reset(), true, false)
        .retry());
    // Never a request that is not safe to repeat.
    let mut attempts = Attempts::default();
    pool.peer(&mut attempts, &request(), CLIENT).unwrap();
    assert!(!pool
        .proxy_failed(&mut attempts, reset(), false, false)
        .retry());
}

#[tokio::test]
async fn consistent_hashing_reads_the_configured_header() {
    let header = http::HeaderName::from_static("x-tenant");
    let upstream = upstream(
        &["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"],
        Selection::ConsistentHash(HashOn::Header(header)),
    );
    let pool = UpstreamPool::new(upstream, Arc::new(TableResolver::default())).unwrap();
    pool.resolve().await;
    let mut servers = std::collections::BTreeSet::new();
    for tenant in ["a", "b", "c", "d", "e", "f"] {
        let mut request = request();
        request.insert_header("X-Tenant", tenant).unwrap();
        let chosen: std::collections::BTreeSet<_> = (0..10)
            .map(|_| {
                let mut attempts = Attempts::default();
                let peer = pool.peer(&mut attempts, &request, CLIENT).unwrap();
                peer._address.clone()
            })
            .collect();
        assert_eq!(chosen.len(), 1, "{tenant}");
        servers.extend(chosen);
    }
    assert!(servers.len() > 1);
}

#[tokio::test]
async fn tls_peers_carry_the_ca_and_client_certificate_and_pool_apart_by_ca() {
    let folder = tempfile::tempdir().unwrap();
    crate::config::test_pki::write_files(folder.path());
    let peer_with = |ca_file: &str| {
        let text = format!(
            "upstreams:\n  app: {{servers: [\"10.0.0.1:443\"], tls: true, ca_file: {ca_file}, client_certificate: {{certificate_file: client.pem, private_key_file: client.key}}}}\nroutes:\n  - {{path_prefix: /, upstream: app}}\n"
        );
        let config = crate::config::parse(&text, folder.path(), &BTreeMap::new()).unwrap();
        let upstream = config.upstreams[0].clone();
        async move {
            let pool = UpstreamPool::new(upstream, Arc::new(TableResolver::default())).unwrap();
            pool.resolve().await;
            pool.peer(&mut Attempts::default(), &request(), CLIENT)
                .unwrap()
        }
    };
    let peer = peer_with("ca.pem").await;
    assert!(peer.is_tls());
    assert_eq!(peer.sni, "10.0.0.1");
    assert_eq!(peer.options.ca.as_ref().map(|ca| ca.len()), Some(1));
    assert!(peer.client_cert_key.is_some());
    let other = peer_with("other-ca.pem").await;
    assert_ne!(
        peer.group_key, other.group_key,
        "a connection verified against one CA is not reused for another"
    );
    assert_eq!(peer.group_key, peer_with("ca.pem").await.group_key);
}
