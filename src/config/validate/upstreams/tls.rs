//! `tls`, `sni`, `ca_file` and `client_certificate`: how the gateway speaks
//! TLS to an upstream. The files are read and parsed here, so an unreadable
//! file, a file with no certificate or a key that does not match its
//! certificate is a problem naming its key, found by `check-config`, rather
//! than a failure on the first request, or a panic inside Pingora, which
//! expects every certificate and key it is handed to parse.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::super::Problems;
use crate::config::{
    ClientCertificate, FileClientCertificate, PemCertificates, UpstreamServer, UpstreamTls,
};

/// The keys of `upstreams.<name>` this file checks, as written.
pub(super) struct FileTlsKeys {
    pub tls: bool,
    pub sni: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub client_certificate: Option<FileClientCertificate>,
}

/// `Some` with `tls: true`. The other keys without it are problems: they
/// would be ignored, and an operator who wrote `ca_file` expects TLS.
pub(super) fn check_tls(
    problems: &mut Problems,
    path: &str,
    file: FileTlsKeys,
    servers: &[UpstreamServer],
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<UpstreamTls> {
    if !file.tls {
        let written = [
            ("sni", file.sni.is_some()),
            ("ca_file", file.ca_file.is_some()),
            ("client_certificate", file.client_certificate.is_some()),
        ];
        for (key, _) in written.iter().filter(|(_, is_set)| *is_set) {
            problems.add(
                format!("{path}.{key}"),
                "applies only with `tls: true`; without it the upstream is spoken to in plain HTTP",
            );
        }
        return None;
    }
    let sni = check_sni(problems, path, file.sni, servers);
    let ca = file
        .ca_file
        .and_then(|ca_file| load_ca(problems, &format!("{path}.ca_file"), &resolve(ca_file)));
    let client_certificate = file.client_certificate.and_then(|client| {
        load_client_certificate(
            problems,
            &format!("{path}.client_certificate"),
            client,
            resolve,
        )
    });
    Some(UpstreamTls {
        sni,
        ca,
        client_certificate,
    })
}

/// The name verified must be one a certificate can carry, and never empty:
/// Pingora turns verification off for an empty SNI. Without `sni`, each
/// server's own host is used, so each must be such a name.
fn check_sni(
    problems: &mut Problems,
    path: &str,
    sni: Option<String>,
    servers: &[UpstreamServer],
) -> Option<String> {
    let Some(sni) = sni else {
        for (i, server) in servers.iter().enumerate() {
            let host = server.address.host();
            if ServerName::try_from(host.as_str()).is_err() {
                problems.add(
                    format!("{path}.servers[{i}]"),
                    format!("`{host}` is not a name a certificate can be verified for; set `sni`"),
                );
            }
        }
        return None;
    };
    if sni.trim().is_empty() {
        problems.add(
            format!("{path}.sni"),
            "must not be empty: the certificate is verified for this name; leave `sni` out to use each server's host",
        );
    } else if ServerName::try_from(sni.as_str()).is_err() {
        problems.add(
            format!("{path}.sni"),
            format!("`{sni}` is not a host name or IP address (example: api.internal)"),
        );
    }
    Some(sni)
}

/// `ca_file`: at least one certificate, each usable as a trust anchor.
fn load_ca(problems: &mut Problems, key: &str, file: &Path) -> Option<PemCertificates> {
    let bundle = load_certificates(problems, key, file)?;
    let mut roots = rustls::RootCertStore::empty();
    for (i, certificate) in bundle.certificates.iter().enumerate() {
        if let Err(error) = roots.add(certificate.clone()) {
            problems.add(
                key,
                format!(
                    "certificate {} in `{}` cannot be a trust anchor: {error}",
                    i + 1,
                    file.display()
                ),
            );
            return None;
        }
    }
    Some(bundle)
}

/// `client_certificate`: the chain, its key, and that the key is the
/// leaf's.
fn load_client_certificate(
    problems: &mut Problems,
    path: &str,
    file: FileClientCertificate,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Option<ClientCertificate> {
    let certificate_key = format!("{path}.certificate_file");
    let key_key = format!("{path}.private_key_file");
    let chain = load_certificates(problems, &certificate_key, &resolve(file.certificate_file));
    let key_path = resolve(file.private_key_file);
    let private_key = load_private_key(problems, &key_key, &key_path);
    let (chain, private_key) = (chain?, private_key?);
    let provider = rustls::crypto::ring::default_provider();
    let pair = rustls::sign::CertifiedKey::from_der(
        chain.certificates.to_vec(),
        private_key.clone_key(),
        &provider,
    );
    match pair {
        Ok(_) => Some(ClientCertificate {
            chain,
            private_key_path: key_path,
            private_key: Arc::new(private_key),
        }),
        Err(rustls::Error::InconsistentKeys(_)) => {
            problems.add(
                key_key,
                format!(
                    "`{}` is not the key of the certificate in `{}`",
                    key_path.display(),
                    chain.path.display()
                ),
            );
            None
        }
        // The error names what is wrong with the key (its type or
        // encoding), never its bytes.
        Err(error) => {
            problems.add(
                key_key,
                format!("`{}` cannot be used: {error}", key_path.display()),
            );
            None
        }
    }
}

/// Every certificate of a PEM file, each parsed as Pingora will parse it.
fn load_certificates(problems: &mut Problems, key: &str, file: &Path) -> Option<PemCertificates> {
    let bytes = read(problems, key, file)?;
    let mut certificates = Vec::new();
    for item in CertificateDer::pem_slice_iter(&bytes) {
        let certificate = match item {
            Ok(certificate) => certificate,
            Err(error) => {
                problems.add(
                    key,
                    format!("`{}` is not valid PEM: {error}", file.display()),
                );
                return None;
            }
        };
        if let Err(error) = X509Certificate::from_der(certificate.as_ref()) {
            problems.add(
                key,
                format!(
                    "certificate {} in `{}` is not a valid X.509 certificate: {error}",
                    certificates.len() + 1,
                    file.display()
                ),
            );
            return None;
        }
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        problems.add(
            key,
            format!(
                "no certificate in `{}` (expected a `-----BEGIN CERTIFICATE-----` block)",
                file.display()
            ),
        );
        return None;
    }
    Some(PemCertificates {
        path: file.to_path_buf(),
        certificates: certificates.into(),
    })
}

/// The first private key of a PEM file. Messages never quote the file.
fn load_private_key(
    problems: &mut Problems,
    key: &str,
    file: &Path,
) -> Option<PrivateKeyDer<'static>> {
    let bytes = read(problems, key, file)?;
    let why = match PrivateKeyDer::from_pem_slice(&bytes) {
        // Pingora rebuilds the key from its DER bytes (and panics if it
        // cannot tell the format): make sure that it can.
        Ok(private_key) if PrivateKeyDer::try_from(private_key.secret_der().to_vec()).is_ok() => {
            return Some(private_key);
        }
        Ok(_) => "its key's format is not recognised",
        Err(pem::Error::NoItemsFound) => "it holds no private key",
        Err(_) => "it is not valid PEM",
    };
    problems.add(
        key,
        format!(
            "`{}` is not a usable private key: {why} (expected `-----BEGIN PRIVATE KEY-----`, RSA or EC)",
            file.display()
        ),
    );
    None
}

fn read(problems: &mut Problems, key: &str, file: &Path) -> Option<Vec<u8>> {
    match std::fs::read(file) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            problems.add(
                key,
                format!(
                    "cannot read `{}`: {error} (a relative path is taken from the configuration file's folder)",
                    file.display()
                ),
            );
            None
        }
    }
}
