//! Who may use management: the one administrator, over HTTP Basic.
//!
//! - The password is checked with bcrypt on the bounded pool, behind the same
//!   lockout as the token endpoint (per username and per address).
//! - A header that passed is remembered (by its SHA-256, for a few minutes)
//!   so the page's API calls do not each cost a bcrypt.
//! - The username is compared in constant time, by digest.
//! - The CSRF token is derived from the credentials, so every instance
//!   sharing them agrees on it without shared state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
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

pub struct AdminAuth {
    username: String,
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
    pub fn new(credentials: &AdminCredentials, bcrypt_cost: u32) -> anyhow::Result<Self> {
        let (password_hash, csrf_material) = match &credentials.secret {
            AdminSecret::BcryptHash(hash) => (hash.clone(), hash.clone()),
            AdminSecret::Plain(password) => (
                bcrypt::hash(password, bcrypt_cost)?,
                hex::encode(sha256(&[password.as_bytes()])),
            ),
        };
        let csrf_token = hex::encode(sha256(&[
            b"portcullis csrf v1",
            credentials.username.as_bytes(),
            csrf_material.as_bytes(),
        ]));
        Ok(AdminAuth {
            username: credentials.username.clone(),
            password_hash,
            csrf_token,
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn username(&self) -> &str {
        &self.username
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
        for subject in subjects {
            match lockout.locked_for(subject).await {
                Ok(None) => {}
                Ok(Some(remaining)) => {
                    let seconds = (remaining.as_millis() as u64).div_ceil(1000).max(1);
                    return Err(Reply::error(
                        429,
                        "temporarily_unavailable",
                        &format!("too many failed sign-ins; retry in {seconds} s"),
                    )
                    .with_header("retry-after", seconds.to_string()));
                }
                Err(error) => {
                    tracing::warn!(%error, "lockout store unavailable at management sign-in");
                    return Err(crate::respond::temporarily_unavailable(
                        "the token store is unavailable; retry shortly",
                    ));
                }
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
                return Err(crate::respond::temporarily_unavailable(
                    "too many sign-ins in progress; retry shortly",
                ));
            }
        };
        if username_matches && password_matches {
            let _ = lockout.reset(subjects[0]).await;
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

    #[test]
    fn csrf_tokens_depend_on_the_credentials_only() {
        let credentials = |user: &str, hash: &str| AdminCredentials {
            username: user.into(),
            secret: AdminSecret::BcryptHash(hash.into()),
        };
        let a = AdminAuth::new(&credentials("admin", "$2b$04$x"), 4).unwrap();
        let b = AdminAuth::new(&credentials("admin", "$2b$04$x"), 4).unwrap();
        let c = AdminAuth::new(&credentials("admin", "$2b$04$y"), 4).unwrap();
        assert_eq!(a.csrf_token(), b.csrf_token(), "instances agree");
        assert_ne!(a.csrf_token(), c.csrf_token());
        assert!(a.csrf_token_matches(b.csrf_token()));
        assert!(!a.csrf_token_matches("nope"));
    }

    #[tokio::test]
    async fn sign_in_checks_password_and_locks_out() {
        let credentials = AdminCredentials {
            username: "admin".into(),
            secret: AdminSecret::Plain("correct horse".into()),
        };
        let auth = AdminAuth::new(&credentials, 4).unwrap();
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
