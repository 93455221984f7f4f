//! TLS to upstreams through the real binary: a real TLS upstream that
//! requires a client certificate signed by its CA and says which one it
//! saw. The gateway verifies the upstream against `ca_file` and the name
//! (an IP server's IP address by default, or `sni`), shows its
//! `client_certificate`, and does the same for the active health check.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::harness::*;

type Ca = CertifiedIssuer<'static, KeyPair>;

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` signed by `ca`, and its key.
fn new_leaf(ca: &Ca, names: &[&str]) -> (rcgen::Certificate, KeyPair) {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let key = KeyPair::generate().unwrap();
    let certificate = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    (certificate, key)
}

fn write(folder: &Path, name: &str, text: &str) -> String {
    let path = folder.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// What the TLS upstream saw: each request's path with the name of the
/// client certificate it came with (`/healthz` included).
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(String, String)>>,
}

impl Seen {
    fn paths_starting(&self, prefix: &str) -> Vec<(String, String)> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// An HTTPS upstream on 127.0.0.1 with a certificate for `127.0.0.1` and
/// `localhost` signed by `ca`, requiring a client certificate signed by
/// `ca`. It answers `client certificate <name> asked for <path>`, `<name>`
/// from `clients` by the certificate's DER.
async fn start_tls_upstream(
    ca: &Ca,
    clients: Vec<(String, CertificateDer<'static>)>,
) -> (SocketAddr, Arc<Seen>) {
    let (certificate, key) = new_leaf(ca, &["127.0.0.1", "localhost"]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let clients = Arc::new(clients);
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, seen, clients) = (acceptor.clone(), record.clone(), clients.clone());
            tokio::spawn(async move {
                // A handshake without a client certificate the CA signed
                // fails here: nothing is read from that connection.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let presented = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
                let name = clients
                    .iter()
                    .find(|(_, der)| Some(der) == presented)
                    .map_or("unknown".to_string(), |(name, _)| name.clone());
                serve_http(tls, name, seen).await;
            });
        }
    });
    (address, seen)
}

async fn serve_http<S>(stream: S, client: String, seen: Arc<Seen>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        let path = request.uri().path().to_string();
        seen.requests
            .lock()
            .unwrap()
            .push((path.clone(), client.clone()));
        let body = format!("client certificate {client} asked for {path}");
        async move {
            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}

async fn get(gateway: &Gateway, path: &str) -> (u16, String) {
    let response = client().get(gateway.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_verifies_the_server_and_shows_the_client_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let ca = new_ca("upstream CA");
    let (client_certificate, client_key) = new_leaf(&ca, &["gateway.test"]);
    let (address, seen) = start_tls_upstream(
        &ca,
        vec![("gateway".to_string(), client_certificate.der().clone())],
    )
    .await;
    let ca_file = write(pki.path(), "ca.pem", &ca.pem());
    let other_ca_file = write(pki.path(), "other-ca.pem", &new_ca("other CA").pem());
    let certificate_file = write(pki.path(), "client.pem", &client_certificate.pem());
    let key_file = write(pki.path(), "client.key", &client_key.serialize_pem());
    let mtls = format!(
        "client_certificate: {{certificate_file: \"{certificate_file}\", private_key_file: \"{key_file}\"}}"
    );
    let upstream = |name: &str, settings: &str| {
        format!("  {name}: {{servers: [\"{address}\"], tls: true, passive: {{failures: 0}}, {settings}}}\n")
    };
    let health_check =
        "health_check: {path: /healthz, interval_ms: 200, timeout_ms: 200, healthy_after: 1, unhealthy_after: 1}";
    let upstreams = [
        // No `sni`: the IP address is verified against the certificate's.
        upstream(
            "verified",
            &format!("ca_file: \"{ca_file}\", {mtls}, {health_check}"),
        ),
        upstream(
            "byname",
            &format!("sni: localhost, ca_file: \"{ca_file}\", {mtls}"),
        ),
        upstream("otherca", &format!("ca_file: \"{other_ca_file}\", {mtls}")),
        upstream("noclient", &format!("ca_file: \"{ca_file}\"")),
        // No `ca_file`: the system's roots, which do not hold this CA.
        upstream("systemroots", &mtls),
        upstream(
            "wrongsni",
            &format!("sni: wrong.example, ca_file: \"{ca_file}\", {mtls}"),
        ),
    ];
    let routes: String = [
        "verified",
        "byname",
        "otherca",
        "noclient",
        "systemroots",
        "wrongsni",
    ]
    .iter()
    .map(|name| format!("  - {{path_prefix: /{name}, upstream: {name}, public: true}}\n"))
    .collect();
    let placeholder = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = GatewayConfig {
        upstreams_extra: upstreams.concat(),
        ..GatewayConfig::for_address(placeholder)
    }
    .routes(&routes);
    let gateway = Gateway::start(&config);

    let (status, body) = get(&gateway, "/verified/x").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "client certificate gateway asked for /verified/x");
    let (status, body) = get(&gateway, "/byname/y").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "client certificate gateway asked for /byname/y");

    // Same address, SNI and client certificate as the requests above, whose
    // connections are pooled: a CA the upstream's certificate is not from
    // must still refuse it, not reuse a connection verified by another CA.
    for path in ["/otherca/x", "/noclient/x", "/systemroots/x", "/wrongsni/x"] {
        let (status, body) = get(&gateway, path).await;
        assert_eq!(status, 502, "{path}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"], "bad_gateway", "{path}: {body}");
    }
    for prefix in ["/otherca", "/noclient", "/systemroots", "/wrongsni"] {
        assert_eq!(
            seen.paths_starting(prefix),
            [],
            "{prefix} reached the upstream"
        );
    }
    // The active health check goes with the same CA and client certificate.
    assert!(
        eventually(Duration::from_secs(5), || async {
            !seen.paths_starting("/healthz").is_empty()
        })
        .await,
        "no health check reached the upstream"
    );
    assert!(seen
        .paths_starting("/healthz")
        .iter()
        .all(|(_, client)| client == "gateway"));
}
