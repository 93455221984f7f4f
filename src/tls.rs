//! Certificates for the HTTPS listener: the configured pair, or a
//! self-signed one generated into the data folder on first start so the
//! gateway serves HTTPS with zero setup.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

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
