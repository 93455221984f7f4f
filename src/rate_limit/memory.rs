//! In-process rate limits: one count per client and grant, in this
//! process only (several instances need the Redis backend, or a client
//! gets the limit once per instance).
//!
//! Buckets exist only for clients that authenticated, so their number is
//! bounded by the clients an administrator made; expired windows are swept
//! every [`SWEEP_EVERY`] checks all the same.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Bucket, WINDOW};
use crate::clock::Clock;

const SWEEP_EVERY: u64 = 1024;

struct Window {
    started: Instant,
    count: u32,
}

#[derive(Default)]
struct Table {
    windows: HashMap<String, Window>,
    checks: u64,
}

#[derive(Default)]
pub struct MemoryRateLimit {
    table: Mutex<Table>,
    clock: Clock,
}

impl MemoryRateLimit {
    pub fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    fn with_clock(clock: Clock) -> Self {
        MemoryRateLimit {
            table: Mutex::default(),
            clock,
        }
    }

    /// See [`super::RateLimiter::check`].
    pub fn check(&self, bucket: Bucket<'_>, limit: u32) -> Option<Duration> {
        let now = self.clock.now();
        // A poisoned lock means a panic between whole updates of counters.
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.checks = table.checks.wrapping_add(1);
        if table.checks % SWEEP_EVERY == 0 {
            table
                .windows
                .retain(|_, window| now.duration_since(window.started) < WINDOW);
        }
        let window = table.windows.entry(bucket.key()).or_insert(Window {
            started: now,
            count: 0,
        });
        let elapsed = now.duration_since(window.started);
        if elapsed >= WINDOW {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        if window.count >= limit {
            return Some(WINDOW - now.duration_since(window.started));
        }
        window.count += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_limit_per_window_and_others_are_apart() {
        let clock = Clock::manual();
        let limiter = MemoryRateLimit::with_clock(clock.clone());
        let bucket = |client_id| Bucket {
            grant: "refresh_token",
            client_id,
        };
        for _ in 0..3 {
            assert_eq!(limiter.check(bucket("a"), 3), None);
        }
        clock.advance(Duration::from_secs(20));
        assert_eq!(limiter.check(bucket("a"), 3), Some(Duration::from_secs(40)));
        // Another client, and another grant of the same client, count apart.
        assert_eq!(limiter.check(bucket("b"), 3), None);
        let other_grant = Bucket {
            grant: "client_credentials",
            client_id: "a",
        };
        assert_eq!(limiter.check(other_grant, 3), None);
        // A new window starts the count again.
        clock.advance(Duration::from_secs(40));
        assert_eq!(limiter.check(bucket("a"), 3), None);
    }
}
