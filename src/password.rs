//! bcrypt, kept off the proxy's async workers.
//!
//! A bcrypt check at cost 12 takes a quarter of a second of CPU. Run on a
//! Pingora worker it would stall every request queued behind it, so each
//! hash runs on a pool of its own threads, `workers` of them, with at most
//! `queue` more jobs waiting. Past that, [`PasswordError::Busy`] tells the
//! token endpoint to answer 503 at once.
//!
//! The pool's threads run in Linux's idle scheduling class (SCHED_IDLE), or
//! failing that at nice +10: when a login storm and proxied requests compete
//! for the same cores, the proxy path wins, and bcrypt still gets every
//! cycle the proxy leaves idle. A login storm must never slow the product
//! down.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, OnceCell, Semaphore, TryAcquireError};

/// How much nicer the bcrypt threads are than the process (a higher nice
/// yields more; 19 is the most).
const BCRYPT_EXTRA_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("too many password checks in progress")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub struct PasswordHasher {
    cost: u32,
    /// Jobs for the bcrypt threads.
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Permits to be running or waiting; bounds the queue.
    admitted: Arc<Semaphore>,
    /// A hash of a random password at the configured cost, checked when the
    /// username is unknown so that "no such user" costs the same time as
    /// "wrong password" and usernames cannot be probed by timing.
    decoy_hash: OnceCell<String>,
}

impl PasswordHasher {
    pub fn new(cost: u32, workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("portcullis-bcrypt-{index}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    loop {
                        // The lock is held only while taking a job.
                        let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            // The hasher was dropped.
                            Err(_) => return,
                        }
                    }
                })
                .expect("the OS can start a bcrypt thread");
        }
        PasswordHasher {
            cost,
            jobs: Mutex::new(sender),
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
            Ok(permit) => QueuedJob::new(permit),
            Err(TryAcquireError::NoPermits) => return Err(PasswordError::Busy),
            Err(TryAcquireError::Closed) => {
                return Err(PasswordError::Failed("pool closed".into()))
            }
        };
        let (done, result) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            // The requester may have gone (client disconnected): fine.
            let _ = done.send(job());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(boxed)
            .map_err(|_| PasswordError::Failed("the bcrypt threads stopped".into()))?;
        result
            .await
            .map_err(|_| PasswordError::Failed("a bcrypt job was lost".into()))
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

/// The niceness a bcrypt thread gets when the process runs at `current`.
fn bcrypt_niceness(current: i32) -> i32 {
    (current + BCRYPT_EXTRA_NICENESS).min(19)
}

/// Linux scheduling is per thread: this lowers only the caller's.
fn lower_this_threads_priority() {
    // SAFETY: these calls have no memory-safety preconditions; `pid = 0`
    // and `who = 0` name the calling thread on Linux.
    unsafe {
        // Niceness first: it still counts if SCHED_IDLE is refused (some
        // container runtimes filter sched_setscheduler).
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        if libc::setpriority(libc::PRIO_PROCESS, 0, bcrypt_niceness(current)) != 0 {
            tracing::debug!("could not lower the bcrypt threads' niceness");
        }
        let parameters = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &parameters) != 0 {
            tracing::debug!("could not put the bcrypt threads in the idle scheduling class");
        }
    }
}

/// An admitted job, counted in `portcullis_bcrypt_queue_depth` from
/// admission until it is done or its requester gave up.
struct QueuedJob(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl QueuedJob {
    fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        crate::metrics::bcrypt_queued(1);
        QueuedJob(permit)
    }
}

impl Drop for QueuedJob {
    fn drop(&mut self) {
        crate::metrics::bcrypt_queued(-1);
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

    #[test]
    fn bcrypt_threads_run_at_a_lower_priority() {
        let hasher = PasswordHasher::new(4, 1, 1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let niceness = runtime
            .block_on(hasher.run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }))
            .unwrap();
        let ours = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(niceness, bcrypt_niceness(ours));
        assert!(niceness > ours || ours == 19);
        let policy = runtime
            .block_on(hasher.run(|| unsafe { libc::sched_getscheduler(0) }))
            .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
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
