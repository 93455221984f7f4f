//! bcrypt, kept off the proxy's async workers.
//!
//! A bcrypt check at cost 12 takes a quarter of a second of CPU. Run on a
//! Pingora worker it would stall every request queued behind it, so each
//! hash runs on the blocking pool, at most `workers` at once, with at most
//! `queue` more waiting. Past that, [`PasswordError::Busy`] tells the token
//! endpoint to answer 503 at once: a login storm must never slow the proxy.

use std::sync::Arc;

use tokio::sync::{OnceCell, Semaphore, TryAcquireError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("too many password checks in progress")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub struct PasswordHasher {
    cost: u32,
    /// Permits to run bcrypt right now.
    workers: Arc<Semaphore>,
    /// Permits to be running or waiting; bounds the queue.
    admitted: Arc<Semaphore>,
    /// A hash of a random password at the configured cost, checked when the
    /// username is unknown so that "no such user" costs the same time as
    /// "wrong password" and usernames cannot be probed by timing.
    decoy_hash: OnceCell<String>,
}

impl PasswordHasher {
    pub fn new(cost: u32, workers: usize, queue: usize) -> Self {
        PasswordHasher {
            cost,
            workers: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
            decoy_hash: OnceCell::new(),
        }
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Makes the decoy hash now, so the first unknown-username sign-in does
    /// not pay for two hashes (and stand out by its timing).
    pub fn prepare_decoy(&self) -> Result<(), PasswordError> {
        let random = crate::tokens::RawToken::generate();
        let hash = bcrypt::hash(random.as_str(), self.cost)
            .map_err(|e| PasswordError::Failed(e.to_string()))?;
        let _ = self.decoy_hash.set(hash);
        Ok(())
    }

    /// Runs one bcrypt job under the pool's bounds.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _admitted = match self.admitted.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => return Err(PasswordError::Busy),
            Err(TryAcquireError::Closed) => {
                return Err(PasswordError::Failed("pool closed".into()))
            }
        };
        let _worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::Failed("pool closed".into()))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| PasswordError::Failed(e.to_string()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let (password, cost) = (password.to_string(), self.cost);
        self.run(move || bcrypt::hash(password, cost))
            .await?
            .map_err(|e| PasswordError::Failed(e.to_string()))
    }

    /// True when `password` matches `hash`. With no hash (unknown user) a
    /// decoy is checked so the answer takes the same time, and is false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, PasswordError> {
        let (hash, real) = match hash {
            Some(hash) => (hash.to_string(), true),
            None => (self.decoy().await?.clone(), false),
        };
        let password = password.to_string();
        // A malformed stored hash is a mismatch, never a crash or a 500.
        let matched = self
            .run(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await?;
        Ok(matched && real)
    }

    async fn decoy(&self) -> Result<&String, PasswordError> {
        self.decoy_hash
            .get_or_try_init(|| async {
                let random = crate::tokens::RawToken::generate();
                self.hash(random.as_str()).await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(4, 2, 4);
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(hasher.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("wrong", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("correct horse", None).await.unwrap());
        assert!(!hasher.verify("x", Some("not a bcrypt hash")).await.unwrap());
    }

    #[tokio::test]
    async fn flask_sentinel_2a_hashes_verify() {
        // Python's bcrypt writes $2b$; older versions and other tools $2a$.
        let hasher = PasswordHasher::new(4, 1, 1);
        let hash = hasher.hash("pw").await.unwrap().replacen("$2b$", "$2a$", 1);
        assert!(hasher.verify("pw", Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_instead_of_waiting() {
        let hasher = Arc::new(PasswordHasher::new(10, 1, 0));
        let busy = hasher.clone();
        let running = tokio::spawn(async move { busy.hash("slow").await });
        // Let the first job take the only slot.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(hasher.hash("second").await, Err(PasswordError::Busy));
        running.await.unwrap().unwrap();
    }
}
