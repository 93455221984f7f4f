//! The gateway's own signing keys, for the JWTs it will sign (identity
//! assertions to upstreams, and JWT access tokens): made, rotated, and
//! published as a JWKS so that anyone can verify what the gateway signed.
//! Not yet wired to a route or an endpoint (issue 13's next step).
//!
//! The keys live in one file, owner-only, made with a first key on first
//! use. A rotation adds a key and retires the current one. A retired key
//! stays published for `retired_key_seconds`, which must be longer than
//! anything it signed lives. The next rotation then drops it. Several
//! instances share the file.
//!
//! Private keys never leave this module: not in `Debug`, not in logs.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The algorithm of the keys the gateway makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SigningAlgorithm {
    /// Ed25519: small keys and signatures, fast to sign.
    #[default]
    EdDSA,
    /// ECDSA P-256 with SHA-256, for verifiers without Ed25519.
    ES256,
}

impl SigningAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
            SigningAlgorithm::ES256 => Algorithm::ES256,
        }
    }
}

/// One key as the file holds it.
#[derive(Serialize, Deserialize, Clone)]
struct StoredKey {
    kid: String,
    alg: SigningAlgorithm,
    /// PKCS#8 DER, base64.
    pkcs8: String,
    created_at: u64,
    /// When a rotation replaced it; `None` for the key in use.
    retired_at: Option<u64>,
}

#[derive(Serialize, Deserialize, Default)]
struct KeyFile {
    keys: Vec<StoredKey>,
}

/// The key in use and the keys to publish.
pub struct SigningKeys {
    kid: String,
    algorithm: SigningAlgorithm,
    encoding: EncodingKey,
    /// `{"keys": [...]}`: the current key and the retired ones still
    /// published, public parts only.
    jwks: Value,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys(kid {}, {:?})", self.kid, self.algorithm)
    }
}

impl SigningKeys {
    /// Reads the key file, making it with a first key of `algorithm` if it
    /// does not exist.
    pub fn load_or_create(
        path: &Path,
        algorithm: SigningAlgorithm,
        retired_key_seconds: u64,
        now: u64,
    ) -> Result<SigningKeys> {
        let file = match fs::read(path) {
            Ok(bytes) => parse_file(path, &bytes)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let file = KeyFile {
                    keys: vec![new_key(algorithm, now)?],
                };
                write_file(path, &file)?;
                tracing::info!(path = %path.display(), "made the gateway's signing key");
                file
            }
            Err(error) => {
                return Err(anyhow!(
                    "cannot read the signing keys `{}`: {error}",
                    path.display()
                ))
            }
        };
        Self::from_file(path, &file, retired_key_seconds, now)
    }

    /// Retires the key in use and makes a new one of `algorithm`; drops
    /// retired keys past their publication time. Returns the new key's id.
    pub fn rotate(
        path: &Path,
        algorithm: SigningAlgorithm,
        retired_key_seconds: u64,
        now: u64,
    ) -> Result<String> {
        let bytes = fs::read(path)
            .with_context(|| format!("cannot read the signing keys `{}`", path.display()))?;
        let mut file = parse_file(path, &bytes)?;
        for key in &mut file.keys {
            key.retired_at.get_or_insert(now);
        }
        file.keys.retain(|key| {
            key.retired_at
                .is_some_and(|at| at + retired_key_seconds > now)
        });
        let key = new_key(algorithm, now)?;
        let kid = key.kid.clone();
        file.keys.push(key);
        write_file(path, &file)?;
        Ok(kid)
    }

    fn from_file(
        path: &Path,
        file: &KeyFile,
        retired_key_seconds: u64,
        now: u64,
    ) -> Result<SigningKeys> {
        let current = file
            .keys
            .iter()
            .filter(|key| key.retired_at.is_none())
            .max_by_key(|key| key.created_at)
            .ok_or_else(|| {
                anyhow!(
                    "`{}` holds no key in use; run `portcullis signing-key rotate`",
                    path.display()
                )
            })?;
        let mut published = Vec::new();
        for key in &file.keys {
            let still = match key.retired_at {
                None => true,
                Some(at) => at + retired_key_seconds > now,
            };
            if still {
                published.push(public_jwk(key).with_context(|| {
                    format!("key `{}` in `{}` is not usable", key.kid, path.display())
                })?);
            }
        }
        let der = STANDARD.decode(&current.pkcs8).map_err(|_| {
            anyhow!(
                "key `{}` in `{}` is not base64",
                current.kid,
                path.display()
            )
        })?;
        let encoding = match current.alg {
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_der(&der),
            SigningAlgorithm::ES256 => EncodingKey::from_ec_der(&der),
        };
        Ok(SigningKeys {
            kid: current.kid.clone(),
            algorithm: current.alg,
            encoding,
            jwks: json!({ "keys": published }),
        })
    }

    /// The id of the key that signs now.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The published keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Signs `claims` as a compact JWT with header `typ` and the key's id.
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String> {
        let mut header = Header::new(self.algorithm.jwt());
        header.typ = Some(typ.to_string());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).context("cannot sign")
    }
}

fn parse_file(path: &Path, bytes: &[u8]) -> Result<KeyFile> {
    serde_json::from_slice(bytes).map_err(|e| {
        anyhow!(
            "`{}` is not a signing-key file ({e}); move it away to make a new one",
            path.display()
        )
    })
}

fn new_key(algorithm: SigningAlgorithm, now: u64) -> Result<StoredKey> {
    let rng = SystemRandom::new();
    let pkcs8 = match algorithm {
        SigningAlgorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
        SigningAlgorithm::ES256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        }
    }
    .map_err(|_| anyhow!("cannot make a signing key"))?;
    let mut id = [0u8; 12];
    ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| anyhow!("no randomness"))?;
    Ok(StoredKey {
        kid: URL_SAFE_NO_PAD.encode(id),
        alg: algorithm,
        pkcs8: STANDARD.encode(pkcs8.as_ref()),
        created_at: now,
        retired_at: None,
    })
}

/// The JWK of a key's public part (RFC 7517, RFC 8037 for Ed25519).
fn public_jwk(key: &StoredKey) -> Result<Value> {
    let der = STANDARD
        .decode(&key.pkcs8)
        .map_err(|_| anyhow!("not base64"))?;
    Ok(match key.alg {
        SigningAlgorithm::EdDSA => {
            let pair =
                Ed25519KeyPair::from_pkcs8(&der).map_err(|_| anyhow!("not an Ed25519 key"))?;
            json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": key.kid,
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            })
        }
        SigningAlgorithm::ES256 => {
            let pair = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
                &SystemRandom::new(),
            )
            .map_err(|_| anyhow!("not a P-256 key"))?;
            // Uncompressed point: 0x04, then x and y, 32 bytes each.
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                bail!("not an uncompressed P-256 point");
            }
            json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
                "kid": key.kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            })
        }
    })
}

/// Written whole and owner-only: the file holds private keys.
fn write_file(path: &Path, file: &KeyFile) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(folder) = path.parent() {
        fs::create_dir_all(folder)
            .with_context(|| format!("cannot create `{}`", folder.display()))?;
    }
    let partial = path.with_extension("partial");
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot write `{}`", partial.display()))?;
    out.write_all(&serde_json::to_vec_pretty(file)?)?;
    out.sync_all()?;
    fs::rename(&partial, path).with_context(|| format!("cannot write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn decoding_key(jwk: &Value) -> DecodingKey {
        let text = |name: &str| jwk[name].as_str().unwrap().to_string();
        match jwk["kty"].as_str().unwrap() {
            "OKP" => DecodingKey::from_ed_components(&text("x")).unwrap(),
            _ => DecodingKey::from_ec_components(&text("x"), &text("y")).unwrap(),
        }
    }

    #[test]
    fn what_is_signed_verifies_against_the_published_key() {
        for algorithm in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256] {
            let folder = tempfile::tempdir().unwrap();
            let path = folder.path().join("keys.json");
            let keys = SigningKeys::load_or_create(&path, algorithm, 600, 1000).unwrap();
            let token = keys
                .sign("JWT", &json!({"sub": "u1", "exp": 4_000_000_000u64}))
                .unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(keys.kid()));
            assert_eq!(header.alg, algorithm.jwt());
            let jwk = &keys.jwks()["keys"][0];
            assert!(jwk.get("d").is_none(), "no private part is published");
            let mut validation = Validation::new(algorithm.jwt());
            validation.validate_aud = false;
            let decoded =
                jsonwebtoken::decode::<Value>(&token, &decoding_key(jwk), &validation).unwrap();
            assert_eq!(decoded.claims["sub"], "u1");
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &fs::metadata(&path).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600);
            // Loaded again: the same key.
            let again = SigningKeys::load_or_create(&path, algorithm, 600, 1001).unwrap();
            assert_eq!(again.kid(), keys.kid());
        }
    }

    #[test]
    fn rotation_publishes_the_retired_key_for_its_time_then_drops_it() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("keys.json");
        let first = SigningKeys::load_or_create(&path, SigningAlgorithm::EdDSA, 600, 1000).unwrap();
        let second = SigningKeys::rotate(&path, SigningAlgorithm::ES256, 600, 2000).unwrap();
        let kids = |keys: &SigningKeys| -> Vec<String> {
            keys.jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect()
        };
        // (now, the key that signs, the keys published)
        let cases = [
            (
                2000,
                second.clone(),
                vec![first.kid().to_string(), second.clone()],
            ),
            (
                2599,
                second.clone(),
                vec![first.kid().to_string(), second.clone()],
            ),
            (2600, second.clone(), vec![second.clone()]),
        ];
        for (now, signing, published) in cases {
            let keys =
                SigningKeys::load_or_create(&path, SigningAlgorithm::EdDSA, 600, now).unwrap();
            assert_eq!(keys.kid(), signing, "at {now}");
            assert_eq!(kids(&keys), published, "at {now}");
        }
        // The next rotation drops what is no longer published.
        let third = SigningKeys::rotate(&path, SigningAlgorithm::EdDSA, 600, 2700).unwrap();
        let keys = SigningKeys::load_or_create(&path, SigningAlgorithm::EdDSA, 600, 2700).unwrap();
        assert_eq!(kids(&keys), vec![second, third]);
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_name() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("keys.json");
        fs::write(&path, "not json").unwrap();
        let error = SigningKeys::load_or_create(&path, SigningAlgorithm::EdDSA, 600, 1)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("keys.json") && error.contains("not a signing-key file"),
            "{error}"
        );
        fs::write(&path, r#"{"keys": []}"#).unwrap();
        let error = SigningKeys::load_or_create(&path, SigningAlgorithm::EdDSA, 600, 1)
            .unwrap_err()
            .to_string();
        assert!(error.contains("no key in use"), "{error}");
    }
}
