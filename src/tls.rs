//! Certificates for the HTTPS listener: the configured pair, or a
//! self-signed one generated into the data folder on first start so the
//! gateway serves HTTPS with zero setup.
//!
//! The listener asks [`ListenerCertificate`] for the certificate at each
//! handshake, so a reload can replace it (a renewed certificate, another
//! path) without touching the listening socket or open connections.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Paths of the certificate chain and private key to serve.
pub struct CertificatePair {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

/// The configured pair after checking both files are readable PEM, or the
/// self-signed pair in `data_dir/tls/`, generated if missing.
pub fn certificate_pair(
    configured: Option<&(PathBuf, PathBuf)>,
    data_dir: &Path,
) -> Result<CertificatePair> {
    match configured {
        Some((certificate, private_key)) => {
            for (what, path) in [("certificate", certificate), ("private_key", private_key)] {
                let text = fs::read_to_string(path).with_context(|| {
                    format!(
                        "cannot read listen.https.{what} `{}`: check the path and its permissions",
                        path.display()
                    )
                })?;
                if !text.contains("-----BEGIN ") {
                    bail!(
                        "listen.https.{what} `{}` is not a PEM file (expected `-----BEGIN …`)",
                        path.display()
                    );
                }
            }
            Ok(CertificatePair {
                certificate: certificate.clone(),
                private_key: private_key.clone(),
            })
        }
        None => self_signed(data_dir),
    }
}

impl CertificatePair {
    /// Reads the chain and the key, and checks that the key is the one the
    /// certificate was issued for: a mismatch would only show as failed
    /// handshakes.
    pub fn load(&self) -> Result<Arc<CertifiedKey>> {
        let shown = |path: &Path| path.display().to_string();
        let chain = CertificateDer::pem_file_iter(&self.certificate)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                anyhow!(
                    "cannot read the certificate chain `{}`: {e}",
                    shown(&self.certificate)
                )
            })?;
        if chain.is_empty() {
            bail!("`{}` holds no certificate", shown(&self.certificate));
        }
        let key = PrivateKeyDer::from_pem_file(&self.private_key).map_err(|e| {
            anyhow!(
                "cannot read the private key `{}`: {e}",
                shown(&self.private_key)
            )
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
            anyhow!(
                "the private key `{}` does not go with the certificate `{}`: {e}",
                shown(&self.private_key),
                shown(&self.certificate)
            )
        })?;
        Ok(Arc::new(certified))
    }
}

/// The certificate `listen.https` names (or the generated one), read now:
/// at startup, and at every reload, which so picks up a renewed one.
pub fn listener_certificate(
    https: &crate::config::HttpsListener,
    data_dir: &Path,
) -> Result<Arc<CertifiedKey>> {
    certificate_pair(https.certificate.as_ref(), data_dir)?.load()
}

/// The HTTPS listener's certificate: one for every handshake, replaced
/// whole by a reload.
pub struct ListenerCertificate {
    current: ArcSwap<CertifiedKey>,
}

impl ListenerCertificate {
    pub fn new(certified: Arc<CertifiedKey>) -> Self {
        ListenerCertificate {
            current: ArcSwap::new(certified),
        }
    }

    /// Handshakes from now on use `certified`; those under way finish with
    /// the one they have.
    pub fn replace(&self, certified: Arc<CertifiedKey>) {
        self.current.store(certified);
    }
}

impl std::fmt::Debug for ListenerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenerCertificate")
    }
}

impl ResolvesServerCert for ListenerCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn self_signed(data_dir: &Path) -> Result<CertificatePair> {
    let folder = data_dir.join("tls");
    let pair = CertificatePair {
        certificate: folder.join("self-signed.crt"),
        private_key: folder.join("self-signed.key"),
    };
    if pair.certificate.exists() && pair.private_key.exists() {
        tracing::info!(certificate = %pair.certificate.display(), "using the self-signed certificate from the data folder");
        return Ok(pair);
    }
    fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create the data folder `{}`", folder.display()))?;
    let generated = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .context("cannot generate a self-signed certificate")?;
    write_private(
        &pair.private_key,
        generated.signing_key.serialize_pem().as_bytes(),
    )?;
    fs::write(&pair.certificate, generated.cert.pem())
        .with_context(|| format!("cannot write `{}`", pair.certificate.display()))?;
    tracing::warn!(
        certificate = %pair.certificate.display(),
        "no certificate configured: generated a self-signed certificate for localhost; \
         set listen.https.certificate and listen.https.private_key for production"
    );
    Ok(pair)
}

/// Writes a key readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn self_signed_pair_is_generated_once_with_a_private_key() {
        let folder = tempfile::tempdir().unwrap();
        let first = certificate_pair(None, folder.path()).unwrap();
        let pem = fs::read_to_string(&first.certificate).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let mode = fs::metadata(&first.private_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = certificate_pair(None, folder.path()).unwrap();
        assert_eq!(fs::read_to_string(&second.certificate).unwrap(), pem);
    }

    #[test]
    fn a_pair_loads_and_a_key_of_another_certificate_is_refused() {
        let folder = tempfile::tempdir().unwrap();
        let pair = certificate_pair(None, folder.path()).unwrap();
        let certified = pair.load().unwrap();
        assert_eq!(certified.cert.len(), 1);
        let other = rcgen::generate_simple_self_signed(vec!["other.test".into()]).unwrap();
        let other_key = folder.path().join("other.key");
        fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
        let mismatched = CertificatePair {
            certificate: pair.certificate.clone(),
            private_key: other_key,
        };
        let error = mismatched.load().err().unwrap().to_string();
        assert!(
            error.contains("does not go with the certificate"),
            "{error}"
        );
        let empty = folder.path().join("empty.pem");
        fs::write(&empty, "").unwrap();
        let no_chain = CertificatePair {
            certificate: empty,
            private_key: pair.private_key.clone(),
        };
        let error = no_chain.load().err().unwrap().to_string();
        assert!(error.contains("holds no certificate"), "{error}");
    }

    #[test]
    fn unreadable_configured_files_name_the_setting() {
        let missing = (
            PathBuf::from("/nonexistent/cert.pem"),
            PathBuf::from("/nonexistent/key.pem"),
        );
        let error = certificate_pair(Some(&missing), Path::new("."))
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("listen.https.certificate"),
            "{error}"
        );
    }
}
