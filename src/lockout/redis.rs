//! Redis lockout backend, shared by every gateway instance, so an attacker
//! gets `max_failures` guesses in all, not per instance.
//!
//! Keys, per subject key `K` (see [`super::Subject::key`]), each with a TTL so
//! Redis forgets them itself:
//! - `K:failures`: the failure count; its TTL is the window, set by the first
//!   failure (a fixed window);
//! - `K:lock`: present while the subject is locked; its TTL is what is left;
//! - `K:lockouts`: how many locks the subject had within [`LOCKOUT_HISTORY`];
//! - `K:inflight`: attempts reserved and not yet ended; its TTL is
//!   [`IN_FLIGHT_TTL`], renewed by each reservation.
//!
//! Counting, locking and escalating happen in one Lua script, so concurrent
//! failures on several instances can neither lose a count nor start two
//! locks. The script picks the lock length from a list Rust computes
//! ([`LockoutPolicy::lock_duration`] stays the one definition).
//!
//! The connection is made as in [`crate::tokens::redis`]: a multiplexed
//! [`ConnectionManager`] created lazily on the runtime that first uses it,
//! with short connect and response timeouts, so a dead Redis becomes a fast
//! 503 rather than a hung login.

use std::time::Duration;

use crate::redis_connection::LazyConnection;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::{
    LockoutError, LockoutPolicy, Subject, SubjectKey, BUSY_WAIT, IN_FLIGHT_TTL, KEY_PREFIX,
    LOCKOUT_HISTORY,
};

/// KEYS: failures, lock, in flight. ARGV: failures to lock, in-flight TTL ms.
/// Returns the running lock in ms, -1 when `max_failures` attempts are
/// already failed or in flight, or 0 when the attempt is reserved.
const RESERVE: &str = r"
local running = redis.call('PTTL', KEYS[2])
if running > 0 then
  return running
end
local failed = tonumber(redis.call('GET', KEYS[1]) or '0')
local in_flight = tonumber(redis.call('GET', KEYS[3]) or '0')
if failed + in_flight >= tonumber(ARGV[1]) then
  return -1
end
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 0
";

/// Ends one reserved attempt: the in-flight count goes down, never below 0.
/// KEYS[1]: in flight; with ARGV[1] = 1, KEYS[2] (failures) is deleted too.
const LAND: &str = r"
if redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[2])
end
return 0
";

/// KEYS: failures, lock, lockouts, in flight.
/// ARGV: failures to lock, window ms, history ms, then the lock ladder in ms.
/// Returns the lock in ms (new or running), or 0 when not locked.
const RECORD_FAILURE: &str = r"
if redis.call('DECR', KEYS[4]) <= 0 then
  redis.call('DEL', KEYS[4])
end
local running = redis.call('PTTL', KEYS[2])
if running > 0 then
  return running
end
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if failures < tonumber(ARGV[1]) then
  return 0
end
local previous = tonumber(redis.call('GET', KEYS[3]) or '0')
local ladder = #ARGV - 3
local lock = tonumber(ARGV[4 + math.min(previous, ladder - 1)])
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
if lock > 0 then
  redis.call('SET', KEYS[2], lock, 'PX', lock)
end
return lock
";

pub struct RedisLockout {
    connection: LazyConnection,
    /// Shared by every instance through Redis: see [`RedisLockout::hash_key`].
    hash_key: tokio::sync::OnceCell<SubjectKey>,
    reserve: Script,
    land: Script,
    record_failure: Script,
}

fn unavailable(error: redis::RedisError) -> LockoutError {
    LockoutError::Unavailable(error.to_string())
}

/// Whole milliseconds, rounded up so a sub-millisecond duration still counts.
fn milliseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Redis's answer in ms (PTTL, or the script's) as a remaining lock.
fn remaining(milliseconds: i64) -> Option<Duration> {
    u64::try_from(milliseconds)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

impl RedisLockout {
    /// Connecting happens on first use; `timeout` bounds each connect and
    /// each answer.
    pub fn new(client: redis::Client, timeout: Duration) -> Self {
        RedisLockout {
            connection: LazyConnection::new(client, timeout),
            hash_key: tokio::sync::OnceCell::new(),
            reserve: Script::new(RESERVE),
            land: Script::new(LAND),
            record_failure: Script::new(RECORD_FAILURE),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, LockoutError> {
        self.connection
            .get()
            .await
            .map_err(LockoutError::Unavailable)
    }

    /// The key of the usernames' keyed hash. The first instance to need it
    /// makes one at random and stores it with `SET NX`; every instance then
    /// reads the same, so their counts for one username meet.
    pub async fn hash_key(&self) -> Result<SubjectKey, LockoutError> {
        let key = self
            .hash_key
            .get_or_try_init(|| async {
                let mut connection = self.connection().await?;
                let name = format!("{KEY_PREFIX}hash-key");
                let proposed = hex::encode(SubjectKey::random_bytes());
                let _: Option<String> = redis::cmd("SET")
                    .arg(&name)
                    .arg(&proposed)
                    .arg("NX")
                    .query_async(&mut connection)
                    .await
                    .map_err(unavailable)?;
                let stored: String = connection.get(&name).await.map_err(unavailable)?;
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(stored.trim(), &mut bytes).map_err(|_| {
                    LockoutError::Unavailable(format!("{name} in Redis is not 32 bytes in hex"))
                })?;
                Ok::<_, LockoutError>(SubjectKey::from_bytes(bytes))
            })
            .await?;
        Ok(key.clone())
    }

    async fn subject_key(&self, subject: Subject<'_>) -> Result<String, LockoutError> {
        Ok(subject.key(&self.hash_key().await?))
    }

    pub async fn locked_for(&self, subject: Subject<'_>) -> Result<Option<Duration>, LockoutError> {
        let mut connection = self.connection().await?;
        let milliseconds: i64 = connection
            .pttl(format!("{}:lock", self.subject_key(subject).await?))
            .await
            .map_err(unavailable)?;
        Ok(remaining(milliseconds))
    }

    /// See [`super::LockoutStore::reserve`]: one script, so instances
    /// reserving at once cannot all pass the check.
    pub async fn reserve(
        &self,
        subject: Subject<'_>,
        policy: &LockoutPolicy,
    ) -> Result<Option<Duration>, LockoutError> {
        let key = self.subject_key(subject).await?;
        let mut connection = self.connection().await?;
        let answer: i64 = self
            .reserve
            .key(format!("{key}:failures"))
            .key(format!("{key}:lock"))
            .key(format!("{key}:inflight"))
            .arg(policy.failures_to_lock())
            .arg(milliseconds(IN_FLIGHT_TTL))
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(match answer {
            -1 => Some(BUSY_WAIT),
            ms => remaining(ms),
        })
    }

    /// See [`super::LockoutStore::release`].
    pub async fn release(&self, subject: Subject<'_>) -> Result<(), LockoutError> {
        self.land(subject, false).await
    }

    async fn land(&self, subject: Subject<'_>, forget_failures: bool) -> Result<(), LockoutError> {
        let key = self.subject_key(subject).await?;
        let mut connection = self.connection().await?;
        self.land
            .key(format!("{key}:inflight"))
            .key(format!("{key}:failures"))
            .arg(if forget_failures { "1" } else { "0" })
            .invoke_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    pub async fn record_failure(
        &self,
        subject: Subject<'_>,
        policy: &LockoutPolicy,
    ) -> Result<Option<Duration>, LockoutError> {
        let key = self.subject_key(subject).await?;
        let mut invocation = self.record_failure.prepare_invoke();
        invocation
            .key(format!("{key}:failures"))
            .key(format!("{key}:lock"))
            .key(format!("{key}:lockouts"))
            .key(format!("{key}:inflight"))
            .arg(policy.failures_to_lock())
            .arg(milliseconds(policy.window).max(1))
            .arg(milliseconds(LOCKOUT_HISTORY));
        for lock in policy.lock_ladder() {
            invocation.arg(milliseconds(lock));
        }
        let mut connection = self.connection().await?;
        let milliseconds: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(remaining(milliseconds))
    }

    /// Ends the attempt and forgets the failure count only; see
    /// [`super::LockoutStore::reset`].
    pub async fn reset(&self, subject: Subject<'_>) -> Result<(), LockoutError> {
        self.land(subject, true).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    /// Timings count in ticks, wide enough that a busy machine stalling a
    /// test thread for a few ms cannot flip a result.
    const TICK: Duration = Duration::from_millis(2);

    /// 5 failures within 2000 ticks lock for 100, then 200, capped at 300.
    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 5,
            window: TICK * 2000,
            base_lock: TICK * 100,
            max_lock: TICK * 300,
        }
    }

    /// A throwaway redis-server on a free loopback port, killed on drop.
    struct RedisServer {
        port: u16,
        child: Child,
        _dir: tempfile::TempDir,
    }

    impl RedisServer {
        fn start() -> RedisServer {
            let binary = std::env::var_os("PORTCULLIS_TEST_REDIS_SERVER")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::split_paths(&std::env::var_os("PATH")?)
                        .map(|dir| dir.join("redis-server"))
                        .find(|candidate| candidate.is_file())
                })
                .unwrap_or_else(|| {
                    panic!(
                        "redis-server not found: set PORTCULLIS_TEST_REDIS_SERVER or put it \
                         on PATH (apt-get install redis-server)"
                    )
                });
            let dir = tempfile::tempdir().unwrap();
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut command = Command::new(&binary);
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // The server dies with the test thread even if the test aborts.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = command.spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; set PORTCULLIS_TEST_REDIS_SERVER to a \
                         redis-server binary (apt-get install redis-server)",
                    binary.display()
                )
            });
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("redis-server exited ({status}) before listening on {port}");
                }
                assert!(
                    Instant::now() < deadline,
                    "redis-server did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            RedisServer {
                port,
                child,
                _dir: dir,
            }
        }

        fn lockout(&self) -> RedisLockout {
            let url = format!("redis://127.0.0.1:{}/", self.port);
            RedisLockout::new(redis::Client::open(url).unwrap(), Duration::from_secs(1))
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn fail(store: &RedisLockout, subject: Subject<'_>, times: u32) -> Vec<Option<Duration>> {
        let mut results = Vec::new();
        for _ in 0..times {
            results.push(store.record_failure(subject, &policy()).await.unwrap());
        }
        results
    }

    #[test]
    fn milliseconds_round_up() {
        let cases = [
            (Duration::ZERO, 0),
            (Duration::from_nanos(1), 1),
            (Duration::from_millis(1), 1),
            (Duration::from_millis(60), 60),
        ];
        for (duration, expected) in cases {
            assert_eq!(milliseconds(duration), expected, "{duration:?}");
        }
        assert_eq!(milliseconds(Duration::MAX), u64::MAX);
    }

    #[tokio::test]
    async fn locks_expires_and_escalates() {
        let server = RedisServer::start();
        let store = server.lockout();
        let alice = Subject::Username("alice");

        assert_eq!(
            fail(&store, alice, 5).await,
            [None, None, None, None, Some(TICK * 100)]
        );
        let left = store.locked_for(alice).await.unwrap().expect("locked");
        assert!(left <= TICK * 100, "{left:?}");
        // A failure that raced past locked_for reports the lock, uncounted.
        assert!(fail(&store, alice, 1).await[0].is_some_and(|d| d <= TICK * 100));
        assert_eq!(
            store.locked_for(Subject::Username("bob")).await.unwrap(),
            None
        );

        tokio::time::sleep(TICK * 120).await;
        assert_eq!(store.locked_for(alice).await.unwrap(), None);
        assert_eq!(fail(&store, alice, 5).await[4], Some(TICK * 200));
        tokio::time::sleep(TICK * 220).await;
        assert_eq!(fail(&store, alice, 5).await[4], Some(TICK * 300));
        tokio::time::sleep(TICK * 320).await;
        assert_eq!(fail(&store, alice, 5).await[4], Some(TICK * 300), "capped");
    }

    #[tokio::test]
    async fn failures_outside_the_window_are_forgotten() {
        let server = RedisServer::start();
        let store = server.lockout();
        let alice = Subject::Username("alice");
        let short_window = LockoutPolicy {
            window: TICK * 100,
            ..policy()
        };
        for _ in 0..4 {
            assert_eq!(
                store.record_failure(alice, &short_window).await.unwrap(),
                None
            );
        }
        tokio::time::sleep(TICK * 110).await;
        for _ in 0..4 {
            assert_eq!(
                store.record_failure(alice, &short_window).await.unwrap(),
                None
            );
        }
        let fifth = store.record_failure(alice, &short_window).await.unwrap();
        assert_eq!(fifth, Some(TICK * 100));
    }

    #[tokio::test]
    async fn reset_clears_failures_only() {
        let server = RedisServer::start();
        let store = server.lockout();
        let address = Subject::Address("2001:db8::7".parse().unwrap());

        assert_eq!(fail(&store, address, 5).await[4], Some(TICK * 100));
        tokio::time::sleep(TICK * 120).await;
        fail(&store, address, 4).await;
        store.reset(address).await.unwrap();
        assert_eq!(fail(&store, address, 4).await, [None, None, None, None]);
        // The history survived: this is the second lock.
        assert_eq!(fail(&store, address, 1).await, [Some(TICK * 200)]);
    }

    #[tokio::test]
    async fn instances_share_state_and_store_no_raw_usernames() {
        let server = RedisServer::start();
        let (first, second) = (server.lockout(), server.lockout());
        let alice = Subject::Username("alice");

        fail(&first, alice, 3).await;
        assert_eq!(fail(&second, alice, 2).await, [None, Some(TICK * 100)]);
        assert!(first.locked_for(alice).await.unwrap().is_some());

        let mut connection = first.connection().await.unwrap();
        let keys: Vec<String> = connection.keys("*").await.unwrap();
        assert!(!keys.is_empty());
        for key in keys.iter().filter(|k| !k.ends_with("hash-key")) {
            assert!(
                key.starts_with(&alice.key(&first.hash_key().await.unwrap())),
                "{key}"
            );
            assert!(!key.contains("alice"), "{key}");
        }
        let ttl: i64 = connection
            .pttl(format!(
                "{}:lockouts",
                alice.key(&first.hash_key().await.unwrap())
            ))
            .await
            .unwrap();
        assert!(ttl > 0, "history must expire: {ttl}");
    }

    #[tokio::test]
    async fn a_dead_server_is_unavailable_not_a_hang() {
        let server = RedisServer::start();
        let store = server.lockout();
        drop(server);
        let started = Instant::now();
        let result = store.locked_for(Subject::Username("alice")).await;
        assert!(
            matches!(result, Err(LockoutError::Unavailable(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn instances_reserving_at_once_get_at_most_max_failures() {
        let server = RedisServer::start();
        let (first, second) = (server.lockout(), server.lockout());
        let alice = Subject::Username("alice");
        // Twenty guesses at once, spread over two instances.
        let shared = policy();
        let reservations = (0..20).map(|i| {
            let store = if i % 2 == 0 { &first } else { &second };
            store.reserve(alice, &shared)
        });
        let answers = futures_util::future::join_all(reservations).await;
        let granted = answers.iter().filter(|a| matches!(a, Ok(None))).count();
        assert_eq!(granted, 5, "{answers:?}");
        assert!(answers
            .iter()
            .all(|a| matches!(a, Ok(None) | Ok(Some(BUSY_WAIT)))));
        for _ in 0..4 {
            assert_eq!(first.record_failure(alice, &policy()).await.unwrap(), None);
        }
        // One succeeds: its reservation comes back and the failures go.
        first.reset(alice).await.unwrap();
        assert_eq!(first.reserve(alice, &policy()).await.unwrap(), None);
        let mut connection = first.connection().await.unwrap();
        let in_flight: i64 = connection
            .get(format!(
                "{}:inflight",
                alice.key(&first.hash_key().await.unwrap())
            ))
            .await
            .unwrap();
        assert_eq!(in_flight, 1);
        let ttl: i64 = connection
            .pttl(format!(
                "{}:inflight",
                alice.key(&first.hash_key().await.unwrap())
            ))
            .await
            .unwrap();
        assert!(
            ttl > 0 && ttl <= milliseconds(IN_FLIGHT_TTL) as i64,
            "{ttl}"
        );
        first.release(alice).await.unwrap();
        let gone: Option<i64> = connection
            .get(format!(
                "{}:inflight",
                alice.key(&first.hash_key().await.unwrap())
            ))
            .await
            .unwrap();
        assert_eq!(gone, None);
    }
}
