//! The checked form of one `upstreams.<name>` entry: what the upstream pool
//! is built from. Names are kept as written: the pool resolves them at
//! startup and again every `resolve_interval`, so validation only checks
//! their form.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Cheap to clone (certificates and keys are shared), and equal when every
/// setting is, certificates compared by path and content: what a reload
/// compares to see what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    pub servers: Vec<UpstreamServer>,
    /// `None`: plain HTTP.
    pub tls: Option<UpstreamTls>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub selection: Selection,
    /// `None`: no active checks; servers are judged by traffic alone.
    pub health_check: Option<HealthCheck>,
    pub passive: PassivePolicy,
    /// Retries of an idempotent request the upstream reset before answering.
    pub retries: u32,
    pub resolve_interval: Duration,
    /// Pooled keep-alive connections idle this long are closed.
    pub idle_timeout: Option<Duration>,
}

/// `tls: true` and what goes with it. The server's certificate is always
/// verified, chain and name: there is no setting that turns that off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// `sni` as written: the name sent and verified for every server.
    /// `None`: each server's own host (see [`UpstreamTls::sni_for`]).
    pub sni: Option<String>,
    /// `ca_file`; `None`: the system's roots.
    pub ca: Option<PemCertificates>,
    /// `client_certificate`, for upstreams that ask for one (mTLS).
    pub client_certificate: Option<ClientCertificate>,
}

impl UpstreamTls {
    /// The name sent in SNI to `server` and verified against its
    /// certificate: `sni`, or the server's host name, or for an IP server
    /// the IP literal (matched to the certificate's IP addresses). Never
    /// empty: Pingora skips verification for an empty SNI.
    pub fn sni_for(&self, server: &ServerAddress) -> String {
        self.sni.clone().unwrap_or_else(|| server.host())
    }
}

/// The certificates of a PEM file, read and parsed at validation.
#[derive(Clone, PartialEq, Eq)]
pub struct PemCertificates {
    pub path: PathBuf,
    /// In file order: for a client certificate the leaf first, then the
    /// intermediates. Never empty.
    pub certificates: Arc<[CertificateDer<'static>]>,
}

impl fmt::Debug for PemCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PemCertificates({}, {} certificates)",
            self.path.display(),
            self.certificates.len()
        )
    }
}

/// `client_certificate`: a chain and the private key that matches its
/// leaf. `Debug` names the key's file, never its content.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub chain: PemCertificates,
    pub private_key_path: PathBuf,
    pub private_key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientCertificate({:?}, key {} <redacted>)",
            self.chain,
            self.private_key_path.display()
        )
    }
}

/// One entry of `servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    pub address: ServerAddress,
    /// Every address the entry resolves to gets this weight.
    pub weight: u32,
}

/// A server as configured: an address, or a name looked up at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    Ip(SocketAddr),
    Name { host: String, port: u16 },
}

impl ServerAddress {
    /// `IP:port`, `[IPv6]:port` or `name:port`; the form only, no lookup.
    pub fn parse(text: &str) -> Result<ServerAddress, &'static str> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(ServerAddress::Ip(address));
        }
        let (host, port) = text.rsplit_once(':').ok_or("no port")?;
        let port: u16 = match port.parse() {
            Ok(0) | Err(_) => return Err("the port is not a number from 1 to 65535"),
            Ok(port) => port,
        };
        let is_name = crate::request_target::is_dns_name(host);
        if !is_name {
            return Err("not a host name or IP address");
        }
        Ok(ServerAddress::Name {
            host: host.to_string(),
            port,
        })
    }

    /// The host part: the default SNI name and the health checks' Host.
    pub fn host(&self) -> String {
        match self {
            ServerAddress::Ip(address) => address.ip().to_string(),
            ServerAddress::Name { host, .. } => host.clone(),
        }
    }
}

/// As written (`10.0.0.1:80`, `app:8000`): the `server` label of metrics.
impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Ip(address) => write!(f, "{address}"),
            ServerAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// How a request's server is chosen among the usable ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// In turn, each as often as its weight.
    RoundRobin,
    /// The fewest requests in flight per unit of weight.
    LeastConnections,
    /// Ketama: the same key goes to the same server while it is usable.
    ConsistentHash(HashOn),
}

/// What `consistent_hash` hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    ClientAddress,
    /// A request header's value; without the header, the client address.
    Header(http::HeaderName),
}

/// `health_check`: a GET every `interval` to every address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_after: u32,
    pub unhealthy_after: u32,
    pub expect_status: u16,
}

/// `passive`: servers that keep failing real requests are left out a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassivePolicy {
    /// Consecutive failures that eject a server; 0 turns ejection off.
    pub failures: u32,
    pub eject: Duration,
}
