//! Passive ejection: a server whose real requests keep failing is left out
//! for a while, then given one request to prove itself.
//!
//! ```text
//! in rotation ──N consecutive failures──► ejected ──eject time passes──► on probation
//!      ▲  ▲                                  ▲                               │   │
//!      │  └──────────── success ─────────────┼───────────────────────────────┘   │
//!      │                                     └────────── one failure ────────────┘
//!      └─ a success resets the count
//! ```
//!
//! On probation the server is chosen like any other; its first answer
//! decides. Without probation a dead server would cost N more failed
//! requests after every ejection.

use std::time::Instant;

use crate::config::PassivePolicy;

/// One server's passive state. Pure: the caller passes the time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ejection {
    consecutive_failures: u32,
    /// Set while ejected, and kept once that time has passed: on probation.
    ejected_until: Option<Instant>,
}

/// What a result changed, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Ejected,
    Restored,
}

impl Ejection {
    /// Whether requests may go to the server at `now`.
    pub fn usable(&self, now: Instant) -> bool {
        self.ejected_until.is_none_or(|until| now >= until)
    }

    /// Records the outcome of one request to the server.
    pub fn record(&mut self, success: bool, now: Instant, policy: &PassivePolicy) -> Change {
        if policy.failures == 0 {
            return Change::None;
        }
        if success {
            let was_out = self.ejected_until.is_some();
            *self = Ejection::default();
            return if was_out {
                Change::Restored
            } else {
                Change::None
            };
        }
        match self.ejected_until {
            // A request that started before the ejection: already counted.
            Some(until) if now < until => Change::None,
            // On probation: one failure is enough.
            Some(_) => self.eject(now, policy),
            None => {
                self.consecutive_failures += 1;
                if self.consecutive_failures >= policy.failures {
                    self.eject(now, policy)
                } else {
                    Change::None
                }
            }
        }
    }

    fn eject(&mut self, now: Instant, policy: &PassivePolicy) -> Change {
        self.consecutive_failures = 0;
        self.ejected_until = Some(now + policy.eject);
        Change::Ejected
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const POLICY: PassivePolicy = PassivePolicy {
        failures: 3,
        eject: Duration::from_secs(5),
    };

    /// A step: after `at_ms`, a request succeeded (`true`) or failed; then
    /// what changed and whether the server is usable at that moment.
    type Step = (u64, bool, Change, bool);

    fn run(name: &str, policy: &PassivePolicy, steps: &[Step]) {
        let start = Instant::now();
        let mut state = Ejection::default();
        for (i, &(at_ms, success, change, usable)) in steps.iter().enumerate() {
            let now = start + Duration::from_millis(at_ms);
            assert_eq!(
                state.record(success, now, policy),
                change,
                "{name}: step {i}"
            );
            assert_eq!(state.usable(now), usable, "{name}: step {i}");
        }
    }

    #[test]
    fn transitions() {
        use Change::*;
        let cases: &[(&str, &[Step])] = &[
            (
                "failures below the threshold keep the server",
                &[(0, false, None, true), (1, false, None, true)],
            ),
            (
                "the threshold ejects",
                &[
                    (0, false, None, true),
                    (1, false, None, true),
                    (2, false, Ejected, false),
                ],
            ),
            (
                "a success resets the count",
                &[
                    (0, false, None, true),
                    (1, false, None, true),
                    (2, true, None, true),
                    (3, false, None, true),
                    (4, false, None, true),
                    (5, false, Ejected, false),
                ],
            ),
            (
                "failures of requests sent before the ejection are not counted again",
                &[
                    (0, false, None, true),
                    (1, false, None, true),
                    (2, false, Ejected, false),
                    (3, false, None, false),
                    (4_999, true, Restored, true),
                ],
            ),
            (
                "on probation one failure ejects again",
                &[
                    (0, false, None, true),
                    (1, false, None, true),
                    (2, false, Ejected, false),
                    (5_002, false, Ejected, false),
                    (10_001, false, None, false),
                    (10_002, true, Restored, true),
                ],
            ),
            (
                "on probation a success restores, and the count starts over",
                &[
                    (0, false, None, true),
                    (1, false, None, true),
                    (2, false, Ejected, false),
                    (5_002, true, Restored, true),
                    (5_003, false, None, true),
                    (5_004, false, None, true),
                    (5_005, false, Ejected, false),
                ],
            ),
        ];
        for (name, steps) in cases {
            run(name, &POLICY, steps);
        }
    }

    #[test]
    fn the_ejection_ends_on_time() {
        let start = Instant::now();
        let mut state = Ejection::default();
        for _ in 0..3 {
            state.record(false, start, &POLICY);
        }
        assert!(!state.usable(start + Duration::from_millis(4_999)));
        assert!(state.usable(start + Duration::from_secs(5)));
    }

    #[test]
    fn zero_failures_turns_ejection_off() {
        let off = PassivePolicy {
            failures: 0,
            eject: Duration::ZERO,
        };
        let steps: Vec<Step> = (0..10).map(|i| (i, false, Change::None, true)).collect();
        run("off", &off, &steps);
    }
}
