//! Who may use management: the one administrator, over HTTP Basic.
//!
//! - The password is checked with bcrypt on the bounded pool, behind the same
//!   lockout as the token endpoint (per username and per address).
//! - A header that passed is remembered (by its SHA-256, for a few minutes)
//!   so the page's API calls do not each cost a bcrypt.
//! - The username is compared in constant time, by digest.
//! - The CSRF token is an HMAC of the username under a key
//!   ([`CsrfKey`]): `management.csrf_secret_env`, so instances behind one
//!   load balancer agree, or a random key kept in the data folder. The
//!   token travels on every write and sits in the page's memory, so it
//!   must say nothing of the password: were it a hash of the password,
//!   whoever saw it could try guesses at hash speed.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AdminCredentials, AdminSecret};
use crate::lockout::{LockoutPolicy, LockoutStore, Subject};
use crate::password::PasswordHasher;
use crate::respond::Reply;

/// How long a verified Authorization header is trusted without bcrypt.
const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// Bound on remembered headers; past it the memory is cleared.
const VERIFIED_MAX: usize = 1024;

pub const MANAGEMENT_REALM: &str = "portcullis management";

/// The file in `data_dir` that keeps the generated key.
pub const CSRF_KEY_FILE: &str = "management-csrf.key";
/// Bytes of a generated key.
const CSRF_KEY_BYTES: usize = 32;

/// The key the CSRF token is made with. Never printed.
pub struct CsrfKey(Vec<u8>);

impl CsrfKey {
    /// `management.csrf_secret` when configured; else the key in
    /// `data_dir`, made (owner-only) on first start, so the token survives
    /// restarts. An unreadable key, or one of the wrong length, is an
    /// error: a silently replaced key would look like a broken page.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<CsrfKey> {
        match configured {
            Some(secret) => Ok(CsrfKey(secret.as_bytes().to_vec())),
            None => Self::from_data_dir(data_dir),
        }
    }

    fn from_data_dir(data_dir: &Path) -> anyhow::Result<CsrfKey> {
        let path = data_dir.join(CSRF_KEY_FILE);
        let key = match fs::read(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_key_file(&path)?,
            read => read.map_err(|error| cannot_read(&path, error))?,
        };
        if key.len() != CSRF_KEY_BYTES {
            return Err(anyhow!(
                "the management CSRF key `{}` holds {} bytes, not {CSRF_KEY_BYTES}; delete it to make a new one, or set management.csrf_secret_env",
                path.display(),
                key.len()
            ));
        }
        Ok(CsrfKey(key))
    }

    /// The token for `username`: HMAC-SHA256, hex.
    fn token_for(&self, username: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"portcullis management csrf v2\0");
        mac.update(username.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn cannot_read(path: &Path, error: std::io::Error) -> anyhow::Error {
    anyhow!(
        "cannot read the management CSRF key `{}` ({error}); fix its permissions, or delete it to make a new one",
        path.display()
    )
}

/// Writes a new random key, readable by its owner only. Never overwrites:
/// if another process made one meanwhile, that one is read.
fn create_key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    use rand::RngCore;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = vec![0u8; CSRF_KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let cannot_write = |error: std::io::Error| {
        anyhow!(
            "cannot write the management CSRF key `{}` ({error})",
            path.display()
        )
    };
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return fs::read(path).map_err(|error| cannot_read(path, error))
        }
        Err(error) => return Err(cannot_write(error)),
    };
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .map_err(cannot_write)?;
    tracing::info!(key = %path.display(), "generated the management CSRF key");
    Ok(key)
}

pub struct AdminAuth {
    username: String,
    /// As configured (a hash, or the environment's password): a reload
    /// keeps this administrator, and its verified cache, while they stand.
    configured: AdminSecret,
    password_hash: String,
    csrf_token: String,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0u8]);
    }
    hasher.finalize().into()
}

impl AdminAuth {
    /// Hashes a password given in the environment (once, at startup).
    pub fn new(
        credentials: &AdminCredentials,
        bcrypt_cost: u32,
        csrf_key: &CsrfKey,
    ) -> anyhow::Result<Self> {
        let password_hash = match &credentials.secret {
            AdminSecret::BcryptHash(hash) => hash.clone(),
            AdminSecret::Plain(password) => bcrypt::hash(password, bcrypt_cost)?,
        };
        Ok(AdminAuth {
            username: credentials.username.clone(),
            configured: credentials.secret.clone(),
            password_hash,
            csrf_token: csrf_key.token_for(&credentials.username),
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Whether `credentials` are the ones this administrator was made from.
    pub fn has_credentials(&self, credentials: &AdminCredentials) -> bool {
        self.username == credentials.username && self.configured == credentials.secret
    }

    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    pub fn csrf_token_matches(&self, presented: &str) -> bool {
        presented
            .as_bytes()
            .ct_eq(self.csrf_token.as_bytes())
            .into()
    }

    fn challenge(description: &str) -> Reply {
        Reply::error(401, "unauthorized", description)
            .with_header(
                "www-authenticate",
                format!("Basic realm=\"{MANAGEMENT_REALM}\", charset=\"UTF-8\""),
            )
            .no_store()
    }

    /// Checks `Authorization: Basic` against the administrator.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        address: std::net::IpAddr,
        hasher: &PasswordHasher,
        lockout: &LockoutStore,
        policies: [&LockoutPolicy; 2],
    ) -> Result<(), Reply> {
        let Some(header) = authorization else {
            return Err(Self::challenge(
                "sign in with the administrator's username and password",
            ));
        };
        let header_digest = sha256(&[header.as_bytes()]);
        if self.recently_verified(&header_digest) {
            return Ok(());
        }
        let Some((username, password)) = parse_basic(header) else {
            return Err(Self::challenge("malformed HTTP Basic credentials"));
        };
        let username_subject = format!("management:{username}");
        let subjects = [
            Subject::Username(&username_subject),
            Subject::Address(address),
        ];
        // Reserved before bcrypt, atomically with the lock check, as at the
        // token endpoint: concurrent guesses get `max_failures` bcrypts.
        for (index, (subject, policy)) in subjects.iter().zip(policies).enumerate() {
            let refused = match lockout.reserve(*subject, policy).await {
                Ok(refused) => refused,
                Err(error) => {
                    release(lockout, &subjects[..index]).await;
                    tracing::warn!(%error, "lockout store unavailable at management sign-in");
                    return Err(crate::respond::temporarily_unavailable(
                        "the token store is unavailable; retry shortly",
                    ));
                }
            };
            if let Some(wait) = refused {
                release(lockout, &subjects[..index]).await;
                let seconds = (wait.as_millis() as u64).div_ceil(1000).max(1);
                return Err(Reply::error(
                    429,
                    "temporarily_unavailable",
                    &format!("too many failed sign-ins; retry in {seconds} s"),
                )
                .with_header("retry-after", seconds.to_string()));
            }
        }
        let username_matches: bool = sha256(&[username.as_bytes()])
            .ct_eq(&sha256(&[self.username.as_bytes()]))
            .into();
        // bcrypt runs whatever the username, so a wrong name costs as much.
        let password_matches = match hasher.verify(&password, Some(&self.password_hash)).await {
            Ok(matched) => matched,
            Err(error) => {
                tracing::warn!(%error, "management password check failed");
                release(lockout, &subjects).await;
                return Err(crate::respond::temporarily_unavailable(
                    "too many sign-ins in progress; retry shortly",
                ));
            }
        };
        if username_matches && password_matches {
            let _ = lockout.reset(subjects[0]).await;
            let _ = lockout.release(subjects[1]).await;
            self.remember(header_digest);
            return Ok(());
        }
        crate::metrics::auth_failure(crate::metrics::AuthFailure::ManagementSignIn);
        for (subject, policy) in subjects.into_iter().zip(policies) {
            if let Err(error) = lockout.record_failure(subject, policy).await {
                tracing::warn!(%error, "could not record a failed management sign-in");
            }
        }
        tracing::warn!(target: "portcullis::audit", %address, "failed management sign-in");
        Err(Self::challenge("wrong administrator username or password"))
    }

    fn recently_verified(&self, digest: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .get(digest)
            .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    fn remember(&self, digest: [u8; 32]) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(digest, Instant::now());
    }
}

/// `Basic base64(user:password)` → (user, password), UTF-8 only.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Ends reserved attempts that neither failed nor succeeded; best effort,
/// as they leave flight by themselves after a minute.
async fn release(lockout: &LockoutStore, subjects: &[Subject<'_>]) {
    for subject in subjects {
        if let Err(error) = lockout.release(*subject).await {
            tracing::warn!(%error, "could not release a management sign-in attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers() {
        let encode = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(
            parse_basic(&encode("admin:pa:ss")),
            Some(("admin".into(), "pa:ss".into()))
        );
        assert_eq!(
            parse_basic(&encode("ädmin:pässword")),
            Some(("ädmin".into(), "pässword".into()))
        );
        assert_eq!(parse_basic(&encode("no-colon")), None);
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    fn key(byte: u8) -> CsrfKey {
        CsrfKey(vec![byte; CSRF_KEY_BYTES])
    }

    fn credentials(user: &str, password: &str) -> AdminCredentials {
        AdminCredentials {
            username: user.into(),
            secret: AdminSecret::Plain(password.into()),
        }
    }

    #[test]
    fn csrf_tokens_depend_on_the_key_and_the_username_only() {
        let token = |user: &str, password: &str, key: &CsrfKey| {
            AdminAuth::new(&credentials(user, password), 4, key)
                .unwrap()
                .csrf_token()
                .to_string()
        };
        let a = token("admin", "correct horse", &key(1));
        assert_eq!(a.len(), 64, "HMAC-SHA256 in hex");
        assert_eq!(
            a,
            token("admin", "correct horse", &key(1)),
            "instances agree"
        );
        assert_eq!(
            a,
            token("admin", "another password", &key(1)),
            "the password is no input, so the token reveals nothing of it"
        );
        assert_ne!(a, token("admin", "correct horse", &key(2)), "another key");
        assert_ne!(a, token("root", "correct horse", &key(1)), "another admin");
    }

    #[test]
    fn only_the_exact_token_matches() {
        let auth = AdminAuth::new(&credentials("admin", "correct horse"), 4, &key(1)).unwrap();
        let other = AdminAuth::new(&credentials("admin", "correct horse"), 4, &key(2)).unwrap();
        let token = auth.csrf_token().to_string();
        assert!(auth.csrf_token_matches(&token));
        assert!(!auth.csrf_token_matches(other.csrf_token()));
        assert!(!auth.csrf_token_matches(""));
        assert!(!auth.csrf_token_matches(&token[..63]));
        assert!(!auth.csrf_token_matches(&format!("{token}0")));
        assert!(!auth.csrf_token_matches(&token.to_uppercase()));
    }

    #[test]
    fn the_generated_key_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let data = tempfile::tempdir().unwrap();
        let path = data.path().join(CSRF_KEY_FILE);
        let first = CsrfKey::load(None, data.path()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), first.0);
        assert_eq!(first.0.len(), CSRF_KEY_BYTES);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = CsrfKey::load(None, data.path()).unwrap();
        assert_eq!(again.0, first.0, "read back on the next start");

        let elsewhere = tempfile::tempdir().unwrap();
        let other = CsrfKey::load(None, elsewhere.path()).unwrap();
        assert_ne!(other.0, first.0, "random per data folder");

        let configured = tempfile::tempdir().unwrap();
        let secret = "s".repeat(40);
        let key = CsrfKey::load(Some(&secret), configured.path()).unwrap();
        assert_eq!(key.0, secret.as_bytes());
        assert!(
            !configured.path().join(CSRF_KEY_FILE).exists(),
            "a configured secret needs no file"
        );
    }

    #[test]
    fn a_bad_key_file_stops_startup_naming_it() {
        let data = tempfile::tempdir().unwrap();
        let path = data.path().join(CSRF_KEY_FILE);
        fs::write(&path, b"too short").unwrap();
        let error = CsrfKey::load(None, data.path()).err().unwrap().to_string();
        assert!(
            error.contains(CSRF_KEY_FILE) && error.contains("9 bytes, not 32"),
            "{error}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"too short", "never overwritten");

        let unreadable = tempfile::tempdir().unwrap();
        fs::create_dir(unreadable.path().join(CSRF_KEY_FILE)).unwrap();
        let error = CsrfKey::load(None, unreadable.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("cannot read the management CSRF key"),
            "{error}"
        );
        assert!(!error.contains('\n'), "one line: {error}");
    }

    #[tokio::test]
    async fn sign_in_checks_password_and_locks_out() {
        let auth = AdminAuth::new(&credentials("admin", "correct horse"), 4, &key(1)).unwrap();
        let hasher = PasswordHasher::new(4, 1, 4);
        let lockout = LockoutStore::Memory(crate::lockout::memory::MemoryLockout::new());
        let policy = LockoutPolicy {
            max_failures: 2,
            ..LockoutPolicy::default()
        };
        let address = "192.0.2.1".parse().unwrap();
        let basic = |pair: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        };
        let good = basic("admin:correct horse");
        assert!(auth
            .check(Some(&good), address, &hasher, &lockout, [&policy, &policy])
            .await
            .is_ok());
        assert!(
            auth.check(Some(&good), address, &hasher, &lockout, [&policy, &policy])
                .await
                .is_ok(),
            "cached"
        );
        let status = |r: Result<(), Reply>| r.err().map(|reply| reply.status);
        assert_eq!(
            status(
                auth.check(None, address, &hasher, &lockout, [&policy, &policy])
                    .await
            ),
            Some(401)
        );
        let wrong = basic("admin:wrong");
        assert_eq!(
            status(
                auth.check(Some(&wrong), address, &hasher, &lockout, [&policy, &policy])
                    .await
            ),
            Some(401)
        );
        assert_eq!(
            status(
                auth.check(
                    Some(&basic("root:correct horse")),
                    address,
                    &hasher,
                    &lockout,
                    [&policy, &policy]
                )
                .await
            ),
            Some(401)
        );
        assert_eq!(
            status(
                auth.check(
                    Some(&basic("admin:correct horse ")),
                    address,
                    &hasher,
                    &lockout,
                    [&policy, &policy]
                )
                .await
            ),
            Some(429),
            "the address is locked after its two failures"
        );
        let elsewhere = "192.0.2.2".parse().unwrap();
        assert!(auth
            .check(
                Some(&good),
                elsewhere,
                &hasher,
                &lockout,
                [&policy, &policy]
            )
            .await
            .is_ok());
    }
}
