//! What an upstream's peers carry for TLS, built once per pool from the
//! checked configuration: the SNI of each configured server, the CA
//! bundle and the client certificate in the forms Pingora takes, shared by
//! every peer through `Arc`s.
//!
//! Pingora (`connectors/tls/rustls`) verifies the chain and the name
//! whenever the SNI is not empty; validation never lets it be empty. A
//! per-peer CA replaces the system's roots for that connection.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use pingora::protocols::tls::CaType;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{CertKey, WrappedX509};
use pingora::{Error, ErrorType};
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{Upstream, UpstreamTls};

pub(super) struct PeerTls {
    /// Per entry of `servers`, in order: the name sent and verified.
    sni: Vec<String>,
    /// `None`: the system's roots (Pingora's connector default).
    ca: Option<Arc<CaType>>,
    client_certificate: Option<Arc<CertKey>>,
    /// Pingora's connection pool tells connections apart by address, SNI
    /// and the client certificate's serial, not by CA: this keeps two
    /// upstreams on one address that trust different CAs (or one upstream
    /// before and after its `ca_file` changed) from sharing a connection
    /// verified against the other's roots.
    group_key: u64,
}

impl PeerTls {
    /// `None` for a plain HTTP upstream.
    pub fn new(upstream: &Upstream) -> pingora::Result<Option<Self>> {
        let Some(tls) = &upstream.tls else {
            return Ok(None);
        };
        let sni = upstream
            .servers
            .iter()
            .map(|server| tls.sni_for(&server.address))
            .collect();
        let ca = match &tls.ca {
            Some(bundle) => Some(ca_of(&bundle.certificates)?),
            None => None,
        };
        let client_certificate = match &tls.client_certificate {
            Some(client) => {
                let chain = checked_der(&client.chain.certificates)?;
                let key = client.private_key.secret_der().to_vec();
                Some(Arc::new(CertKey::new(chain, key)))
            }
            None => None,
        };
        Ok(Some(PeerTls {
            sni,
            ca,
            client_certificate,
            group_key: group_key(tls),
        }))
    }

    /// The name for the server of entry `entry`; empty only for an entry
    /// the pool does not have, which no backend comes from.
    pub fn sni(&self, entry: usize) -> &str {
        self.sni.get(entry).map(String::as_str).unwrap_or_default()
    }

    /// A TLS peer for the server of entry `entry` at `address`.
    pub fn peer(&self, address: std::net::SocketAddr, entry: usize) -> HttpPeer {
        let mut peer = HttpPeer::new(address, true, self.sni(entry).to_string());
        self.configure(&mut peer);
        peer
    }

    /// Sets the CA, the client certificate and the pool group on `peer`.
    pub fn configure(&self, peer: &mut HttpPeer) {
        peer.options.ca = self.ca.clone();
        peer.client_cert_key = self.client_certificate.clone();
        peer.group_key = self.group_key;
        // Pingora's defaults, stated: the chain and the name are checked.
        peer.options.verify_cert = true;
        peer.options.verify_hostname = true;
    }
}

fn ca_of(certificates: &[CertificateDer<'static>]) -> pingora::Result<Arc<CaType>> {
    let roots = certificates
        .iter()
        .map(|certificate| {
            WrappedX509::try_new(certificate.to_vec(), |raw| {
                X509Certificate::from_der(raw).map(|(_, parsed)| parsed)
            })
            .map_err(|_| invalid_certificate())
        })
        .collect::<pingora::Result<Vec<_>>>()?;
    Ok(Arc::from(roots))
}

/// The DER of a chain for [`CertKey::new`], which panics on a certificate
/// it cannot parse: checked first (validation did already).
fn checked_der(certificates: &[CertificateDer<'static>]) -> pingora::Result<Vec<Vec<u8>>> {
    if certificates.is_empty() {
        return Err(invalid_certificate());
    }
    certificates
        .iter()
        .map(|certificate| match X509Certificate::from_der(certificate) {
            Ok(_) => Ok(certificate.to_vec()),
            Err(_) => Err(invalid_certificate()),
        })
        .collect()
}

fn invalid_certificate() -> Box<Error> {
    Error::explain(
        ErrorType::InvalidCert,
        "an upstream certificate does not parse",
    )
}

/// The same for the same CA and client certificate, within this process.
fn group_key(tls: &UpstreamTls) -> u64 {
    let mut hasher = DefaultHasher::new();
    if let Some(ca) = &tls.ca {
        ca.certificates.hash(&mut hasher);
    }
    if let Some(client) = &tls.client_certificate {
        client.chain.certificates.hash(&mut hasher);
    }
    hasher.finish()
}
