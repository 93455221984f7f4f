//! `health_check` and `passive`: how an upstream's servers are judged.

use std::time::Duration;

use super::super::Problems;
use crate::config::{FileHealthCheck, FilePassive, HealthCheck, PassivePolicy};

/// Thresholds past this would keep a dead server in rotation for minutes.
const MAX_THRESHOLD: u32 = 100;

pub(super) fn check_health_check(
    problems: &mut Problems,
    upstream: &str,
    file: Option<FileHealthCheck>,
) -> Option<HealthCheck> {
    let file = file?;
    let path = format!("{upstream}.health_check");
    let is_origin_form = file.path.starts_with('/')
        && file.path.parse::<http::uri::PathAndQuery>().is_ok()
        && !file.path.contains('#');
    if !is_origin_form {
        problems.add(
            format!("{path}.path"),
            format!("`{}` is not a request path (example: /healthz)", file.path),
        );
    }
    if file.interval_ms == 0 {
        problems.add(format!("{path}.interval_ms"), "must be greater than 0");
    }
    if file.timeout_ms == 0 || file.timeout_ms > file.interval_ms {
        // A check that may outlast the interval would delay the next one:
        // the checks of one upstream run in one loop.
        problems.add(
            format!("{path}.timeout_ms"),
            "must be greater than 0 and at most interval_ms",
        );
    }
    for (key, value) in [
        ("healthy_after", file.healthy_after),
        ("unhealthy_after", file.unhealthy_after),
    ] {
        if !(1..=MAX_THRESHOLD).contains(&value) {
            problems.add(
                format!("{path}.{key}"),
                format!("must be from 1 to {MAX_THRESHOLD} consecutive checks"),
            );
        }
    }
    if !(100..=599).contains(&file.expect_status) {
        problems.add(
            format!("{path}.expect_status"),
            "must be an HTTP status code from 100 to 599",
        );
    }
    Some(HealthCheck {
        path: file.path,
        interval: Duration::from_millis(file.interval_ms),
        timeout: Duration::from_millis(file.timeout_ms),
        healthy_after: file.healthy_after,
        unhealthy_after: file.unhealthy_after,
        expect_status: file.expect_status,
    })
}

pub(super) fn check_passive(
    problems: &mut Problems,
    upstream: &str,
    file: FilePassive,
) -> PassivePolicy {
    if file.failures > MAX_THRESHOLD {
        problems.add(
            format!("{upstream}.passive.failures"),
            format!("must be from 0 (no ejection) to {MAX_THRESHOLD}"),
        );
    }
    if file.failures > 0 && file.eject_ms == 0 {
        problems.add(
            format!("{upstream}.passive.eject_ms"),
            "must be greater than 0 (or set failures: 0 to turn ejection off)",
        );
    }
    PassivePolicy {
        failures: file.failures,
        eject: Duration::from_millis(file.eject_ms),
    }
}
