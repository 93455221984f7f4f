//! In-process lockout backend: the zero-setup default. Counts live in this
//! process only; several gateway instances need the Redis backend, or an
//! attacker gets `max_failures` guesses per instance.
//!
//! An attacker controls the keys (any username, many addresses), so memory
//! must stay bounded without a background task:
//! - expired entries are swept once every `SWEEP_EVERY` (1024) calls;
//! - at most [`MAX_SUBJECTS`] subjects are tracked. When full, expired
//!   entries go first, then entries that only remember earlier lockouts
//!   (forgetting those only shortens a future lock). If the table is still
//!   full, new subjects are refused with [`LockoutError::Unavailable`], and
//!   already from [`MemoryLockout::locked_for`], so the token endpoint
//!   answers 503 *before* checking a password. Evicting live counts instead
//!   would let a flood of junk usernames wipe a real account's count, and
//!   not tracking new subjects would give them unlimited guesses. Reaching
//!   the cap needs about 100 failed logins a second, each costing a bcrypt,
//!   so it is a backstop, not a normal state.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{
    LockoutError, LockoutPolicy, Subject, SubjectKey, BUSY_WAIT, IN_FLIGHT_TTL, LOCKOUT_HISTORY,
};
use crate::clock::Clock;

/// Calls between sweeps of expired entries.
const SWEEP_EVERY: u64 = 1024;

/// Subjects tracked at once (about 200 bytes each).
pub const MAX_SUBJECTS: usize = 100_000;

/// While the table stays full, sweep it at most this often: a sweep walks
/// every entry under the lock, and a flood must not turn each request into
/// one.
const FULL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A count that is forgotten at `until`.
struct Expiring {
    count: u32,
    until: Instant,
}

/// One subject's state; each part expires on its own.
#[derive(Default)]
struct Entry {
    failures: Option<Expiring>,
    locked_until: Option<Instant>,
    lockouts: Option<Expiring>,
    /// Attempts reserved and not yet ended.
    in_flight: Option<Expiring>,
}

impl Entry {
    fn forget_expired(&mut self, now: Instant) {
        if self.failures.as_ref().is_some_and(|f| f.until <= now) {
            self.failures = None;
        }
        if self.locked_until.is_some_and(|until| until <= now) {
            self.locked_until = None;
        }
        if self.lockouts.as_ref().is_some_and(|l| l.until <= now) {
            self.lockouts = None;
        }
        if self.in_flight.as_ref().is_some_and(|f| f.until <= now) {
            self.in_flight = None;
        }
    }

    fn is_empty(&self) -> bool {
        self.is_history_only() && self.lockouts.is_none()
    }

    /// Holds nothing but the memory of earlier lockouts.
    fn is_history_only(&self) -> bool {
        self.failures.is_none() && self.locked_until.is_none() && self.in_flight.is_none()
    }

    /// One reserved attempt ends.
    fn land(&mut self) {
        if let Some(in_flight) = &mut self.in_flight {
            in_flight.count = in_flight.count.saturating_sub(1);
            if in_flight.count == 0 {
                self.in_flight = None;
            }
        }
    }
}

struct Table {
    entries: HashMap<String, Entry>,
    calls: u64,
    /// When the table may next be swept because it is full.
    next_full_sweep: Instant,
}

pub struct MemoryLockout {
    table: Mutex<Table>,
    max_subjects: usize,
    history: Duration,
    clock: Clock,
    /// Made per process: nothing outside it needs to read the keys.
    hash_key: SubjectKey,
}

impl Default for MemoryLockout {
    fn default() -> Self {
        Self::new()
    }
}

/// `now + duration`, or a century on for a duration too large to add.
fn deadline(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 60 * 60))
}

impl MemoryLockout {
    pub fn new() -> Self {
        Self::with_limits(MAX_SUBJECTS, LOCKOUT_HISTORY, Clock::System)
    }

    fn with_limits(max_subjects: usize, history: Duration, clock: Clock) -> Self {
        MemoryLockout {
            table: Mutex::new(Table {
                entries: HashMap::new(),
                calls: 0,
                next_full_sweep: clock.now(),
            }),
            max_subjects,
            history,
            clock,
            hash_key: SubjectKey::random(),
        }
    }

    pub fn hash_key(&self) -> &SubjectKey {
        &self.hash_key
    }

    /// The table, swept if this call is the [`SWEEP_EVERY`]th.
    fn table(&self, now: Instant) -> MutexGuard<'_, Table> {
        // A poisoned lock only means another thread panicked between whole
        // updates of plain counters; the map is still consistent.
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.calls = table.calls.wrapping_add(1);
        if table.calls % SWEEP_EVERY == 0 {
            table.entries.retain(|_, entry| {
                entry.forget_expired(now);
                !entry.is_empty()
            });
        }
        table
    }

    /// Fails when `key` is untracked and no room can be made for it.
    fn ensure_room(&self, table: &mut Table, key: &str, now: Instant) -> Result<(), LockoutError> {
        if table.entries.len() < self.max_subjects || table.entries.contains_key(key) {
            return Ok(());
        }
        if now >= table.next_full_sweep {
            table.entries.retain(|_, entry| {
                entry.forget_expired(now);
                !entry.is_empty()
            });
            if table.entries.len() >= self.max_subjects {
                table.entries.retain(|_, entry| !entry.is_history_only());
            }
            table.next_full_sweep = deadline(now, FULL_SWEEP_INTERVAL);
        }
        if table.entries.len() < self.max_subjects {
            return Ok(());
        }
        Err(LockoutError::Unavailable(format!(
            "{} subjects have recent login failures, the in-memory limit; \
             retry shortly, or use the Redis lockout backend",
            table.entries.len()
        )))
    }

    pub fn locked_for(&self, subject: Subject<'_>) -> Result<Option<Duration>, LockoutError> {
        let key = subject.key(&self.hash_key);
        let now = self.clock.now();
        let mut table = self.table(now);
        self.ensure_room(&mut table, &key, now)?;
        let remaining = table
            .entries
            .get(&key)
            .and_then(|entry| entry.locked_until)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|remaining| !remaining.is_zero());
        Ok(remaining)
    }

    /// Runs `step` on `subject`'s entry (made if new, its expired parts
    /// forgotten) under the table's lock, with the clock's time: each
    /// change below is one step no other thread can interleave with.
    fn with_entry<T>(
        &self,
        subject: Subject<'_>,
        step: impl FnOnce(&mut Entry, Instant) -> T,
    ) -> Result<T, LockoutError> {
        let key = subject.key(&self.hash_key);
        let now = self.clock.now();
        let mut table = self.table(now);
        self.ensure_room(&mut table, &key, now)?;
        let entry = table.entries.entry(key).or_default();
        entry.forget_expired(now);
        Ok(step(entry, now))
    }

    /// See [`super::LockoutStore::reserve`]: one step under the table's lock.
    pub fn reserve(
        &self,
        subject: Subject<'_>,
        policy: &LockoutPolicy,
    ) -> Result<Option<Duration>, LockoutError> {
        self.with_entry(subject, |entry, now| Self::reserve_in(entry, now, policy))
    }

    fn reserve_in(entry: &mut Entry, now: Instant, policy: &LockoutPolicy) -> Option<Duration> {
        if let Some(until) = entry.locked_until {
            return Some(until - now);
        }
        let failed = entry.failures.as_ref().map_or(0, |f| f.count);
        let in_flight = entry.in_flight.get_or_insert(Expiring {
            count: 0,
            until: now,
        });
        if failed.saturating_add(in_flight.count) >= policy.failures_to_lock() {
            if in_flight.count == 0 {
                entry.in_flight = None;
            }
            return Some(BUSY_WAIT);
        }
        in_flight.count += 1;
        in_flight.until = deadline(now, IN_FLIGHT_TTL);
        None
    }

    /// See [`super::LockoutStore::release`].
    pub fn release(&self, subject: Subject<'_>) -> Result<(), LockoutError> {
        let key = subject.key(&self.hash_key);
        let now = self.clock.now();
        let mut table = self.table(now);
        if let Some(entry) = table.entries.get_mut(&key) {
            entry.land();
            entry.forget_expired(now);
            if entry.is_empty() {
                table.entries.remove(&key);
            }
        }
        Ok(())
    }

    pub fn record_failure(
        &self,
        subject: Subject<'_>,
        policy: &LockoutPolicy,
    ) -> Result<Option<Duration>, LockoutError> {
        let history = self.history;
        self.with_entry(subject, |entry, now| {
            entry.land();
            if let Some(until) = entry.locked_until {
                return Some(until - now);
            }
            let failures = entry.failures.get_or_insert(Expiring {
                count: 0,
                until: deadline(now, policy.window),
            });
            failures.count = failures.count.saturating_add(1);
            if failures.count < policy.failures_to_lock() {
                return None;
            }
            let previous = entry.lockouts.as_ref().map_or(0, |l| l.count);
            let lock = policy.lock_duration(previous);
            entry.failures = None;
            entry.locked_until = Some(deadline(now, lock));
            entry.lockouts = Some(Expiring {
                count: previous.saturating_add(1),
                until: deadline(now, history),
            });
            Some(lock)
        })
    }

    /// Forgets the failure count only; see [`super::LockoutStore::reset`].
    pub fn reset(&self, subject: Subject<'_>) -> Result<(), LockoutError> {
        let key = subject.key(&self.hash_key);
        let now = self.clock.now();
        let mut table = self.table(now);
        if let Some(entry) = table.entries.get_mut(&key) {
            entry.failures = None;
            entry.land();
            entry.forget_expired(now);
            if entry.is_empty() {
                table.entries.remove(&key);
            }
        }
        Ok(())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Timings count in ticks of a clock the tests move by hand.
    const TICK: Duration = Duration::from_secs(1);

    /// A table on its own clock, with the default limits.
    fn table() -> (MemoryLockout, Clock) {
        limited(MAX_SUBJECTS, LOCKOUT_HISTORY)
    }

    fn limited(max_subjects: usize, history: Duration) -> (MemoryLockout, Clock) {
        let clock = Clock::manual();
        (
            MemoryLockout::with_limits(max_subjects, history, clock.clone()),
            clock,
        )
    }

    /// 3 failures within 400 ticks lock for 50, then 100, capped at 150.
    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 3,
            window: TICK * 400,
            base_lock: TICK * 50,
            max_lock: TICK * 150,
        }
    }

    fn fail(store: &MemoryLockout, subject: Subject, times: u32) -> Vec<Option<Duration>> {
        (0..times)
            .map(|_| store.record_failure(subject, &policy()).unwrap())
            .collect()
    }

    #[test]
    fn locks_after_max_failures_and_unlocks_after_the_lock() {
        let (store, clock) = table();
        let alice = Subject::Username("alice");
        assert_eq!(fail(&store, alice, 3), [None, None, Some(TICK * 50)]);
        assert_eq!(store.locked_for(alice).unwrap(), Some(TICK * 50));
        assert_eq!(store.locked_for(Subject::Username("bob")).unwrap(), None);
        clock.advance(TICK * 49);
        assert_eq!(store.locked_for(alice).unwrap(), Some(TICK));
        clock.advance(TICK);
        assert_eq!(store.locked_for(alice).unwrap(), None);
    }

    #[test]
    fn failures_while_locked_report_the_lock_and_do_not_count() {
        let (store, clock) = table();
        let address = Subject::Address("192.0.2.1".parse().unwrap());
        fail(&store, address, 3);
        let during = fail(&store, address, 5);
        assert!(
            during.iter().all(|d| d.is_some_and(|d| d <= TICK * 50)),
            "{during:?}"
        );
        clock.advance(TICK * 60);
        // Not counted: the next lock needs three new failures.
        assert_eq!(fail(&store, address, 3), [None, None, Some(TICK * 100)]);
    }

    #[test]
    fn each_lockout_doubles_the_next_up_to_the_cap() {
        let (store, clock) = table();
        let alice = Subject::Username("alice");
        for expected in [50, 100, 150, 150] {
            assert_eq!(
                fail(&store, alice, 3).last().unwrap(),
                &Some(TICK * expected)
            );
            clock.advance(TICK * (expected + 10));
        }
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let (store, clock) = table();
        let alice = Subject::Username("alice");
        assert_eq!(fail(&store, alice, 2), [None, None]);
        clock.advance(TICK * 420);
        assert_eq!(fail(&store, alice, 2), [None, None]);
        assert_eq!(fail(&store, alice, 1), [Some(TICK * 50)]);
    }

    #[test]
    fn reset_clears_failures_but_keeps_the_lockout_history() {
        let (store, clock) = table();
        let alice = Subject::Username("alice");
        fail(&store, alice, 3);
        clock.advance(TICK * 60);
        fail(&store, alice, 2);
        store.reset(alice).unwrap();
        assert_eq!(fail(&store, alice, 2), [None, None]);
        // The history survived the reset: this lock is the second one.
        assert_eq!(fail(&store, alice, 1), [Some(TICK * 100)]);
    }

    #[test]
    fn history_expires() {
        let (store, clock) = limited(MAX_SUBJECTS, TICK * 100);
        let alice = Subject::Username("alice");
        fail(&store, alice, 3);
        clock.advance(TICK * 110);
        assert_eq!(fail(&store, alice, 3).last().unwrap(), &Some(TICK * 50));
    }

    #[test]
    fn subjects_are_independent() {
        let (store, _clock) = table();
        fail(&store, Subject::Username("alice"), 3);
        let cases: [(Subject, bool); 4] = [
            (Subject::Username("alice"), true),
            (Subject::Username("Alice"), false),
            (Subject::Address("192.0.2.1".parse().unwrap()), false),
            (Subject::Username("bob"), false),
        ];
        for (subject, locked) in cases {
            assert_eq!(
                store.locked_for(subject).unwrap().is_some(),
                locked,
                "{subject:?}"
            );
        }
    }

    #[test]
    fn expired_entries_are_swept() {
        let (store, clock) = limited(MAX_SUBJECTS, TICK * 10);
        let names: Vec<String> = (0..100).map(|i| format!("user{i}")).collect();
        for name in &names {
            fail(&store, Subject::Username(name), 3);
        }
        assert_eq!(store.len(), 100);
        clock.advance(TICK * 60);
        for _ in 0..SWEEP_EVERY {
            store.locked_for(Subject::Username("someone")).unwrap();
        }
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn a_full_table_refuses_new_subjects_but_keeps_live_ones() {
        let (store, _clock) = limited(2, TICK * 10_000);
        let (alice, bob, carol) = (
            Subject::Username("alice"),
            Subject::Username("bob"),
            Subject::Username("carol"),
        );
        fail(&store, alice, 1);
        fail(&store, bob, 1);
        // Fails closed before any password check, and when counting.
        assert!(store.locked_for(carol).is_err());
        assert!(store.record_failure(carol, &policy()).is_err());
        // Tracked subjects keep counting.
        assert_eq!(fail(&store, alice, 2), [None, Some(TICK * 50)]);
        assert!(store.locked_for(bob).unwrap().is_none());
    }

    #[test]
    fn a_full_table_makes_room_by_forgetting_history_first() {
        let (store, clock) = limited(2, TICK * 10_000);
        let (alice, bob, carol) = (
            Subject::Username("alice"),
            Subject::Username("bob"),
            Subject::Username("carol"),
        );
        fail(&store, alice, 3); // locked, then only history
        fail(&store, bob, 1); // a live count
        clock.advance(TICK * 60);
        assert_eq!(store.locked_for(carol).unwrap(), None);
        assert_eq!(fail(&store, carol, 1), [None]);
        assert_eq!(store.len(), 2);
        // Bob's count survived the eviction; Alice's history did not.
        assert_eq!(fail(&store, bob, 2), [None, Some(TICK * 50)]);
    }

    #[test]
    fn concurrent_attempts_get_at_most_max_failures_reservations() {
        let (store, clock) = table();
        let alice = Subject::Username("alice");
        // Ten guesses at once: three reserved, the rest refused unchecked.
        let answers: Vec<Option<Duration>> = (0..10)
            .map(|_| store.reserve(alice, &policy()).unwrap())
            .collect();
        assert_eq!(answers.iter().filter(|a| a.is_none()).count(), 3);
        assert!(answers[3..].iter().all(|a| *a == Some(BUSY_WAIT)));
        // The three fail: the subject locks.
        let failed: Vec<_> = (0..3)
            .map(|_| store.record_failure(alice, &policy()).unwrap())
            .collect();
        assert_eq!(failed, [None, None, Some(TICK * 50)]);
        assert_eq!(store.reserve(alice, &policy()).unwrap(), Some(TICK * 50));
        clock.advance(TICK * 50);
        assert_eq!(store.reserve(alice, &policy()).unwrap(), None);
    }

    #[test]
    fn a_released_or_successful_attempt_gives_its_reservation_back() {
        let (store, clock) = table();
        let alice = Subject::Username("alice");
        for _ in 0..3 {
            assert_eq!(store.reserve(alice, &policy()).unwrap(), None);
        }
        assert_eq!(store.reserve(alice, &policy()).unwrap(), Some(BUSY_WAIT));
        store.release(alice).unwrap();
        store.reset(alice).unwrap();
        assert_eq!(store.reserve(alice, &policy()).unwrap(), None);
        assert_eq!(store.reserve(alice, &policy()).unwrap(), None);
        assert_eq!(store.reserve(alice, &policy()).unwrap(), Some(BUSY_WAIT));
        // Reservations never released leave flight after the TTL.
        clock.advance(IN_FLIGHT_TTL);
        assert_eq!(store.reserve(alice, &policy()).unwrap(), None);
        // Failures and attempts in flight share the budget.
        let (store, _clock) = table();
        store.reserve(alice, &policy()).unwrap();
        store.record_failure(alice, &policy()).unwrap();
        store.reserve(alice, &policy()).unwrap();
        store.reserve(alice, &policy()).unwrap();
        assert_eq!(store.reserve(alice, &policy()).unwrap(), Some(BUSY_WAIT));
    }
}
