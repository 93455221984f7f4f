//! Brute-force protection for the token endpoint.
//!
//! RFC 6749 §4.3.2 says the authorization server MUST protect the password
//! grant against brute force. We count failed logins per [`Subject`] (the
//! username tried, and the client address) and, after
//! [`LockoutPolicy::max_failures`] inside one window, refuse that subject for
//! a while without checking the password at all. Each further lockout of the
//! same subject within [`LOCKOUT_HISTORY`] doubles the lock, so a patient
//! attacker gets ever fewer guesses per hour while a user who mistypes a few
//! times waits a minute.
//!
//! Both subjects are needed: per-username locks stop guessing one account
//! from many addresses; per-address locks stop one address spraying one
//! common password across many usernames.
//!
//! Storage and logs never hold a raw username (it may be a mistyped
//! password): keys carry its keyed hash ([`SubjectKey`]). Two backends, a closed set like [`crate::tokens`]:
//! [`memory::MemoryLockout`] (one process) and [`redis::RedisLockout`]
//! (shared, so a lock holds on every gateway instance).
//!
//! Calling order at the token endpoint and the admin sign-in, per subject:
//! 1. [`LockoutStore::reserve`] before the password check: it counts the
//!    attempt as in flight in the same atomic step that checks the lock, so
//!    `max_failures` concurrent guesses are all the bcrypts a subject gets
//!    before its lock, however many arrive at once. `Some` means answer at
//!    once, bcrypt never runs;
//! 2. [`LockoutStore::record_failure`] after a wrong password or unknown
//!    user: the attempt leaves flight and counts as a failure;
//! 3. [`LockoutStore::reset`] for the username after a correct password
//!    (the attempt leaves flight and the failures are forgotten), or
//!    [`LockoutStore::release`] when the attempt neither failed nor
//!    succeeded (the password pool was full, a store was down), and for
//!    the address after a correct password.
//!
//! An attempt in flight is forgotten after [`IN_FLIGHT_TTL`] even if its
//! release never comes (a crash), so a subject cannot be wedged shut.
//!
//! Any [`LockoutError`] means fail closed: answer 503, never check the
//! password unprotected.

pub mod memory;
pub mod redis;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Every lockout key starts with this.
pub const KEY_PREFIX: &str = "portcullis:lockout:";

/// How long an attempt counts as in flight without being released.
pub const IN_FLIGHT_TTL: Duration = Duration::from_secs(60);

/// What a refused reservation tells a client to wait when the subject is
/// not locked but `max_failures` attempts are already in flight.
pub const BUSY_WAIT: Duration = Duration::from_secs(1);

/// How long a subject's earlier lockouts count towards a longer next lock.
pub const LOCKOUT_HISTORY: Duration = Duration::from_secs(24 * 60 * 60);

/// How many failures lock a subject, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window` that start a lock. 0 behaves as 1.
    pub max_failures: u32,
    /// The window opens at a subject's first failure and closes after this
    /// long (a fixed window: it does not slide with later failures).
    pub window: Duration,
    /// The first lock's length.
    pub base_lock: Duration,
    /// No lock is longer than this, however many came before.
    pub max_lock: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            base_lock: Duration::from_secs(60),
            max_lock: Duration::from_secs(60 * 60),
        }
    }
}

impl LockoutPolicy {
    /// `base_lock × 2^previous_lockouts`, capped at `max_lock`. Never
    /// overflows: past 2^31 the factor saturates and the cap applies.
    pub fn lock_duration(&self, previous_lockouts: u32) -> Duration {
        let factor = 1u32.checked_shl(previous_lockouts).unwrap_or(u32::MAX);
        self.base_lock
            .checked_mul(factor)
            .map_or(self.max_lock, |lock| lock.min(self.max_lock))
    }

    /// `lock_duration(0), lock_duration(1), …` up to the first that reaches
    /// `max_lock`; the last entry holds for every later lockout too. Redis's
    /// script picks from this list, so the Rust function stays the one
    /// definition of the schedule.
    fn lock_ladder(&self) -> Vec<Duration> {
        let mut ladder = Vec::new();
        for previous in 0..=32 {
            let lock = self.lock_duration(previous);
            ladder.push(lock);
            if lock >= self.max_lock {
                break;
            }
        }
        ladder
    }

    /// Reaching this many failures starts a lock.
    fn failures_to_lock(&self) -> u32 {
        self.max_failures.max(1)
    }
}

/// Whose failures are counted.
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    /// The username as the client sent it, whether or not such a user exists,
    /// so a lock reveals nothing about which usernames are real.
    Username(&'a str),
    /// The client's address, as [`crate::client_address::client_address`]
    /// worked it out.
    Address(IpAddr),
}

/// The key of the keyed hash that names a typed username in lockout keys
/// and in logs. A username field sometimes holds a password typed in the
/// wrong box; a plain SHA-256 of it could be reversed at SHA-256 speed by
/// anyone who reads Redis or the logs, an HMAC only by whoever also holds
/// this key. The memory backend makes one per process; the Redis backend
/// keeps one in Redis, made by the first instance, so all agree.
#[derive(Clone)]
pub struct SubjectKey([u8; 32]);

impl SubjectKey {
    pub fn random() -> Self {
        SubjectKey(Self::random_bytes())
    }

    pub fn random_bytes() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        key
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        SubjectKey(key)
    }

    /// HMAC-SHA256 of the username under this key, in hex.
    fn username_digest(&self, username: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(username.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl Subject<'_> {
    /// `portcullis:lockout:user:<hex hmac(username)>` or
    /// `portcullis:lockout:addr:<ip>`. An IPv4-mapped IPv6 address keys as
    /// its IPv4 form, so one client cannot count twice. Other IPv6
    /// addresses key by their /64 network (`addr:2001:db8:1:2::/64`): a
    /// /64 is what one host or one customer is usually given, and a client
    /// could otherwise rotate through its addresses to spray passwords.
    pub fn key(&self, hash_key: &SubjectKey) -> String {
        match self {
            Subject::Username(username) => {
                format!("{KEY_PREFIX}user:{}", hash_key.username_digest(username))
            }
            Subject::Address(address) => match address.to_canonical() {
                IpAddr::V4(v4) => format!("{KEY_PREFIX}addr:{v4}"),
                IpAddr::V6(v6) => {
                    let network = u128::from(v6) & !(u128::MAX >> 64);
                    format!("{KEY_PREFIX}addr:{}/64", Ipv6Addr::from(network))
                }
            },
        }
    }

    /// How logs name the subject: the address, or the start of the keyed
    /// hash of the username (enough to tell attacks on one account apart).
    pub fn log_name(&self, hash_key: &SubjectKey) -> String {
        let key = self.key(hash_key);
        let name = key.trim_start_matches(KEY_PREFIX);
        match self {
            Subject::Username(_) => name[..name.len().min("user:".len() + 16)].to_string(),
            Subject::Address(_) => name.to_string(),
        }
    }
}

/// Never shows the typed username.
impl fmt::Debug for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Username(_) => f.write_str("Subject(Username(<redacted>))"),
            Subject::Address(address) => write!(f, "Subject(Address({address}))"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockoutError {
    /// The backend could not be reached, did not answer in time, or (memory)
    /// is tracking as many subjects as it may. Fail closed: answer 503.
    #[error("lockout store unavailable: {0}")]
    Unavailable(String),
}

/// The configured lockout backend.
// One value per process: the size of the Redis variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum LockoutStore {
    Memory(memory::MemoryLockout),
    Redis(redis::RedisLockout),
}

impl LockoutStore {
    /// Reserves one attempt for `subject`, atomically with the lock check:
    /// `Some(wait)` when it is locked or `max_failures` attempts are already
    /// in flight (the answer is then at once, without bcrypt), `None` when
    /// the attempt may go ahead. Every `None` must be followed by one of
    /// [`Self::record_failure`], [`Self::reset`] or [`Self::release`].
    pub async fn reserve(
        &self,
        subject: Subject<'_>,
        policy: &LockoutPolicy,
    ) -> Result<Option<Duration>, LockoutError> {
        match self {
            LockoutStore::Memory(store) => store.reserve(subject, policy),
            LockoutStore::Redis(store) => store.reserve(subject, policy).await,
        }
    }

    /// How logs name `subject`: see [`Subject::log_name`].
    pub async fn log_name(&self, subject: Subject<'_>) -> String {
        match self {
            LockoutStore::Memory(store) => subject.log_name(store.hash_key()),
            LockoutStore::Redis(store) => match store.hash_key().await {
                Ok(key) => subject.log_name(&key),
                Err(_) => "(lockout store unavailable)".into(),
            },
        }
    }

    /// Ends a reserved attempt that neither failed nor succeeded, or the
    /// address's attempt after a correct password.
    pub async fn release(&self, subject: Subject<'_>) -> Result<(), LockoutError> {
        match self {
            LockoutStore::Memory(store) => store.release(subject),
            LockoutStore::Redis(store) => store.release(subject).await,
        }
    }

    /// Ends a reserved attempt as a failed login. Returns how long `subject` is now locked:
    /// the new lock when this failure reached `max_failures` (the count then
    /// starts again from zero), or what is left of a lock already running
    /// (a request that raced past [`Self::locked_for`]; it is not counted).
    pub async fn record_failure(
        &self,
        subject: Subject<'_>,
        policy: &LockoutPolicy,
    ) -> Result<Option<Duration>, LockoutError> {
        match self {
            LockoutStore::Memory(store) => store.record_failure(subject, policy),
            LockoutStore::Redis(store) => store.record_failure(subject, policy).await,
        }
    }

    /// Forgets `subject`'s failures after a correct password. A running lock
    /// and the history of earlier lockouts stay: one success says nothing
    /// about who made the other attempts, so an attacker who also knows one
    /// valid password must not be able to restart the schedule at the base
    /// lock. Call it for the username only: resetting the address would let
    /// that address spray passwords across accounts, interleaving its own
    /// correct login between guesses.
    pub async fn reset(&self, subject: Subject<'_>) -> Result<(), LockoutError> {
        match self {
            LockoutStore::Memory(store) => store.reset(subject),
            LockoutStore::Redis(store) => store.reset(subject).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn lock_doubles_per_earlier_lockout_up_to_the_cap() {
        let policy = LockoutPolicy::default();
        let cases = [
            (0, 60),
            (1, 120),
            (2, 240),
            (3, 480),
            (4, 960),
            (5, 1920),
            (6, 3600),
            (7, 3600),
            (31, 3600),
            (32, 3600),
            (u32::MAX, 3600),
        ];
        for (previous, seconds) in cases {
            assert_eq!(
                policy.lock_duration(previous),
                SECOND * seconds,
                "after {previous} earlier lockouts"
            );
        }
    }

    #[test]
    fn huge_bases_saturate_at_the_cap() {
        // Doubling this overflows a Duration.
        let base = Duration::from_secs(u64::MAX / 2 + 1);
        let policy = LockoutPolicy {
            base_lock: base,
            max_lock: Duration::MAX,
            ..LockoutPolicy::default()
        };
        assert_eq!(policy.lock_duration(0), base);
        assert_eq!(policy.lock_duration(1), Duration::MAX);
        assert_eq!(policy.lock_duration(40), Duration::MAX);
    }

    #[test]
    fn ladder_matches_lock_duration_and_ends_at_the_cap() {
        for (base_ms, max_ms, expected_len) in
            [(60_000, 3_600_000, 7), (1, 3_600_000, 23), (5, 5, 1)]
        {
            let policy = LockoutPolicy {
                base_lock: Duration::from_millis(base_ms),
                max_lock: Duration::from_millis(max_ms),
                ..LockoutPolicy::default()
            };
            let ladder = policy.lock_ladder();
            assert_eq!(ladder.len(), expected_len, "base {base_ms} ms");
            for (previous, lock) in ladder.iter().enumerate() {
                assert_eq!(*lock, policy.lock_duration(previous as u32));
            }
            assert_eq!(*ladder.last().unwrap(), policy.max_lock);
        }
    }

    #[test]
    fn keys_hide_usernames_and_canonicalize_addresses() {
        let cases: [(Subject, &str); 7] = [
            (Subject::Username("abc"), "portcullis:lockout:user:HMAC"),
            (
                Subject::Address("192.0.2.7".parse().unwrap()),
                "portcullis:lockout:addr:192.0.2.7",
            ),
            (
                Subject::Address("::ffff:192.0.2.7".parse().unwrap()),
                "portcullis:lockout:addr:192.0.2.7",
            ),
            (
                Subject::Address("2001:db8::1".parse().unwrap()),
                "portcullis:lockout:addr:2001:db8::/64",
            ),
            (
                Subject::Address("2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap()),
                "portcullis:lockout:addr:2001:db8:1:2::/64",
            ),
            (
                Subject::Address("2001:db8:1:3::1".parse().unwrap()),
                "portcullis:lockout:addr:2001:db8:1:3::/64",
            ),
            (
                Subject::Address("::1".parse().unwrap()),
                "portcullis:lockout:addr:::/64",
            ),
        ];
        let hash_key = SubjectKey::from_bytes([7; 32]);
        for (subject, key) in cases {
            let key = key.replace(
                "HMAC",
                &SubjectKey::from_bytes([7; 32]).username_digest("abc"),
            );
            assert_eq!(subject.key(&hash_key), key);
        }
        let debug = format!("{:?}", Subject::Username("hunter2-typed-as-username"));
        assert!(!debug.contains("hunter2"), "{debug}");
        // Another key, another name: without the key, no guess can be
        // checked against a stored or logged name.
        let typed = Subject::Username("hunter2");
        let other = SubjectKey::from_bytes([8; 32]);
        assert_ne!(typed.key(&hash_key), typed.key(&other));
        assert_eq!(typed.key(&hash_key), typed.key(&hash_key));
        let name = typed.log_name(&hash_key);
        assert!(name.starts_with("user:") && name.len() == 21, "{name}");
    }

    #[test]
    fn zero_max_failures_locks_on_the_first() {
        let policy = LockoutPolicy {
            max_failures: 0,
            ..LockoutPolicy::default()
        };
        assert_eq!(policy.failures_to_lock(), 1);
    }
}
