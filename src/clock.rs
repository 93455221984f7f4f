//! Where "now" comes from: the monotonic system clock in the gateway, a
//! clock moved by hand in tests, so a test of a time window says "ten
//! minutes later" instead of sleeping and flaking on a busy machine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// Starts at the moment it was made and moves only by [`Clock::advance`].
    Manual(Arc<ManualClock>),
}

#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    elapsed_nanos: AtomicU64,
}

impl Clock {
    /// A clock that stands still until advanced.
    pub fn manual() -> Clock {
        Clock::Manual(Arc::new(ManualClock {
            start: Instant::now(),
            elapsed_nanos: AtomicU64::new(0),
        }))
    }

    pub fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(manual) => {
                manual.start + Duration::from_nanos(manual.elapsed_nanos.load(Ordering::Acquire))
            }
        }
    }

    /// Moves a manual clock on by `by`; the system clock moves on its own.
    ///
    /// # Panics
    /// On the system clock: a test that means to move time must own it.
    pub fn advance(&self, by: Duration) {
        match self {
            Clock::System => panic!("the system clock cannot be advanced"),
            Clock::Manual(manual) => {
                let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
                manual.elapsed_nanos.fetch_add(nanos, Ordering::AcqRel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual();
        let shared = clock.clone();
        let start = clock.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), start);
        shared.advance(Duration::from_secs(600));
        assert_eq!(clock.now() - start, Duration::from_secs(600));
    }

    #[test]
    fn the_system_clock_moves_on_its_own() {
        let clock = Clock::System;
        let start = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now() > start);
    }
}
