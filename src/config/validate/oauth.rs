//! `oauth`: where the OAuth endpoints live, bcrypt's cost, the login
//! lockout and token lifetimes.

use std::time::Duration;

use super::{check_path, Problems};
use crate::config::{FileLockout, FileOAuth, OAuthConfig};

/// `oauth`: endpoint paths, bcrypt, lockout and token lifetimes. The
/// checked prefix is `/` or has no trailing slash.
pub(super) fn check_oauth(problems: &mut Problems, oauth: FileOAuth) -> OAuthConfig {
    check_path(problems, "oauth.prefix", &oauth.prefix);
    let prefix = oauth.prefix.trim_end_matches('/').to_string();
    if prefix.is_empty() && oauth.prefix.starts_with('/') {
        problems.add(
            "oauth.prefix",
            "`/` would reserve every path for OAuth and proxy nothing; use a prefix such as /oauth",
        );
    }
    for (yaml_path, endpoint) in [
        ("oauth.token_path", &oauth.token_path),
        ("oauth.management_path", &oauth.management_path),
        ("oauth.revoke_path", &oauth.revoke_path),
        ("oauth.introspect_path", &oauth.introspect_path),
    ] {
        if let Some(endpoint) = endpoint {
            check_path(problems, yaml_path, endpoint);
            if !crate::route::path_has_prefix(endpoint, &prefix) {
                problems.add(
                    yaml_path,
                    format!("`{endpoint}` must lie under `oauth.prefix` (`{prefix}`)"),
                );
            }
        }
    }
    if !(4..=31).contains(&oauth.bcrypt_cost) {
        problems.add(
            "oauth.bcrypt_cost",
            format!(
                "{} is out of range: bcrypt accepts 4 to 31 (12 is a sound default)",
                oauth.bcrypt_cost
            ),
        );
    }
    if let Some(issuer) = &oauth.issuer {
        if !issuer.starts_with("https://") || issuer.contains('?') || issuer.contains('#') {
            problems.add(
                "oauth.issuer",
                "must be an https URL without query or fragment (RFC 8414 §2)",
            );
        }
    }
    let lockout = &oauth.lockout;
    if lockout.max_failures == 0
        || lockout.max_failures_per_address == 0
        || lockout.window_seconds == 0
        || lockout.lock_seconds == 0
        || lockout.max_lock_seconds < lockout.lock_seconds
    {
        problems.add(
                "oauth.lockout",
                "max_failures, max_failures_per_address, window_seconds and lock_seconds must be above zero, and max_lock_seconds at least lock_seconds",
            );
    }
    if oauth.access_token_lifetime_seconds == 0 || oauth.refresh_token_lifetime_seconds == 0 {
        problems.add("oauth", "token lifetimes must be greater than zero");
    }
    if oauth.session_max_lifetime_seconds == 0 {
        problems.add(
            "oauth.session_max_lifetime_seconds",
            "must be greater than zero: a session that keeps refreshing must still end",
        );
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    OAuthConfig {
        prefix: if prefix.is_empty() {
            "/".into()
        } else {
            prefix.clone()
        },
        token_path: oauth.token_path,
        management_path: oauth.management_path,
        revoke_path: oauth.revoke_path,
        introspect_path: oauth.introspect_path,
        metadata: oauth.metadata,
        issuer: oauth.issuer.map(|i| i.trim_end_matches('/').to_string()),
        refresh_grace: Duration::from_secs(oauth.refresh_grace_seconds),
        lockout: lockout_policy(&oauth.lockout, oauth.lockout.max_failures),
        address_lockout: lockout_policy(&oauth.lockout, oauth.lockout.max_failures_per_address),
        access_token_lifetime: Duration::from_secs(oauth.access_token_lifetime_seconds),
        refresh_token_lifetime: Duration::from_secs(oauth.refresh_token_lifetime_seconds),
        bcrypt_cost: oauth.bcrypt_cost,
        bcrypt_workers: oauth.bcrypt_workers.unwrap_or(cores).max(1),
        bcrypt_queue: oauth.bcrypt_queue,
        legacy_plain_keys: oauth.legacy_plain_keys,
        allow_plaintext: oauth.allow_plaintext,
        session_max_lifetime: Duration::from_secs(oauth.session_max_lifetime_seconds),
        rate_limit: crate::config::RateLimits {
            refresh_token_per_minute: oauth.rate_limit.refresh_token_per_minute,
            client_credentials_per_minute: oauth.rate_limit.client_credentials_per_minute,
        },
    }
}

/// The username and the address policies share the window and the lock
/// times; only the threshold differs.
fn lockout_policy(lockout: &FileLockout, max_failures: u32) -> crate::lockout::LockoutPolicy {
    crate::lockout::LockoutPolicy {
        max_failures,
        window: Duration::from_secs(lockout.window_seconds),
        base_lock: Duration::from_secs(lockout.lock_seconds),
        max_lock: Duration::from_secs(lockout.max_lock_seconds),
    }
}
