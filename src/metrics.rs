//! Every metric name in one place. Registered in Prometheus's global
//! registry, which `pingora-prometheus` serves on the metrics listener.
//!
//! Label values come from closed sets (route prefixes from the config, status
//! codes, fixed reason strings): never from request data, so a client cannot
//! blow up the number of series.

use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

/// Why an authentication failed: the `reason` label of
/// `portcullis_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No bearer token on a protected route.
    Missing,
    /// More than one `Authorization` header.
    Duplicated,
    /// A bearer token that is not a b64token.
    Malformed,
    /// A well-formed token that is unknown, expired or revoked.
    InvalidToken,
    /// A valid token without the route's scopes.
    InsufficientScope,
    /// The token store could not answer (503).
    TokenStoreUnavailable,
    /// A password grant for a locked username or address.
    LockedOut,
    /// A password grant with a wrong username or password.
    WrongPassword,
    /// A refresh grant with an unknown or expired refresh token.
    BadRefreshToken,
    /// A retired refresh token presented again: the family is revoked.
    RefreshTokenReuse,
    /// A failed sign-in to management.
    ManagementSignIn,
    /// A refresh or client_credentials grant over the client's limit.
    RateLimited,
    /// A client that failed to authenticate at an OAuth endpoint.
    InvalidClient,
}

impl AuthFailure {
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Duplicated => "duplicated",
            AuthFailure::Malformed => "malformed",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::InsufficientScope => "insufficient_scope",
            AuthFailure::TokenStoreUnavailable => "token_store_unavailable",
            AuthFailure::LockedOut => "locked_out",
            AuthFailure::WrongPassword => "wrong_password",
            AuthFailure::BadRefreshToken => "bad_refresh_token",
            AuthFailure::RefreshTokenReuse => "refresh_token_reuse",
            AuthFailure::ManagementSignIn => "management_sign_in",
            AuthFailure::RateLimited => "rate_limited",
            AuthFailure::InvalidClient => "invalid_client",
        }
    }
}

/// The `type` label of `portcullis_tokens_revoked_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedToken {
    AccessToken,
    RefreshToken,
}

impl RevokedToken {
    pub fn label(self) -> &'static str {
        match self {
            RevokedToken::AccessToken => "access_token",
            RevokedToken::RefreshToken => "refresh_token",
        }
    }
}

static REQUESTS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_requests_total",
        "Requests answered, by route, method and HTTP status.",
        &["route", "method", "status"]
    )
    .expect("metric registers once")
});

static REQUEST_DURATION: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "portcullis_request_duration_seconds",
        "Time from request start to the end of the response, by route.",
        &["route"],
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    )
    .expect("metric registers once")
});

static AUTH_FAILURES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_auth_failures_total",
        "Authentication failures, by reason.",
        &["reason"]
    )
    .expect("metric registers once")
});

static TOKENS_ISSUED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_tokens_issued_total",
        "Access tokens issued, by grant type.",
        &["grant"]
    )
    .expect("metric registers once")
});

static TOKENS_REVOKED: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_tokens_revoked_total",
        "Tokens revoked at the revocation endpoint, by type.",
        &["type"]
    )
    .expect("metric registers once")
});

static TOKEN_STORE_UP: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "portcullis_token_store_up",
        "1 when the last token-store call succeeded, 0 when it failed."
    )
    .expect("metric registers once")
});

static CLIENT_CONNECTIONS: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "portcullis_connections_active",
        "Client connections open now, on every listener."
    )
    .expect("metric registers once")
});

static CONNECTIONS_REFUSED: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "portcullis_connections_refused_total",
        "Client connections closed at once because server.max_connections were open."
    )
    .expect("metric registers once")
});

static REQUEST_HEAD_TIMEOUTS: Lazy<IntCounter> = Lazy::new(|| {
    register_int_counter!(
        "portcullis_request_head_timeouts_total",
        "Client connections closed because a request head did not arrive within server.request_head_timeout_seconds."
    )
    .expect("metric registers once")
});

// The upstream labels are the configured upstream names and `servers`
// entries as written: a closed set, whatever the names resolve to.
static UPSTREAM_RETRIES: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_upstream_retries_total",
        "Requests sent again to an upstream after a failed attempt, by upstream.",
        &["upstream"]
    )
    .expect("metric registers once")
});

static UPSTREAM_SERVER_HEALTHY: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!(
        "portcullis_upstream_server_healthy",
        "1 when the configured server (an address, or a name with at least one of its addresses) is resolved, passes its health check and is not ejected; 0 otherwise.",
        &["upstream", "server"]
    )
    .expect("metric registers once")
});

static AUTH_DECISIONS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_auth_decisions_total",
        "What the proxy path decided for requests on routes, by outcome.",
        &["outcome"]
    )
    .expect("metric registers once")
});

static TOKEN_STORE_DURATION: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "portcullis_token_store_duration_seconds",
        "Time of one token-store call, by operation.",
        &["op"],
        vec![
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.3,
            1.0
        ]
    )
    .expect("metric registers once")
});

static TOKEN_STORE_ERRORS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_token_store_errors_total",
        "Token-store calls that failed (the request got 503), by operation.",
        &["op"]
    )
    .expect("metric registers once")
});

static UPSTREAM_DURATION: Lazy<HistogramVec> = Lazy::new(|| {
    register_histogram_vec!(
        "portcullis_upstream_duration_seconds",
        "Time from choosing an upstream server to its response head, by upstream.",
        &["upstream"],
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    )
    .expect("metric registers once")
});

static BCRYPT_QUEUE_DEPTH: Lazy<IntGauge> = Lazy::new(|| {
    register_int_gauge!(
        "portcullis_bcrypt_queue_depth",
        "Password checks and hashes running or waiting on the bcrypt threads."
    )
    .expect("metric registers once")
});

static BUILD_INFO: Lazy<IntGaugeVec> = Lazy::new(|| {
    register_int_gauge_vec!(
        "portcullis_build_info",
        "1, labelled with the version, the commit it was built from and the running configuration file's SHA-256 (first 16 hex digits).",
        &["version", "commit", "config"]
    )
    .expect("metric registers once")
});

static CONFIG_RELOADS: Lazy<IntCounterVec> = Lazy::new(|| {
    register_int_counter_vec!(
        "portcullis_config_reloads_total",
        "Configuration reloads (SIGHUP, `portcullis reload`), by result: applied, or refused (the file had problems; the running configuration stays).",
        &["result"]
    )
    .expect("metric registers once")
});

/// How a reload ended, for `portcullis_config_reloads_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadResult {
    Applied,
    Refused,
}

impl ReloadResult {
    fn label(self) -> &'static str {
        match self {
            ReloadResult::Applied => "applied",
            ReloadResult::Refused => "refused",
        }
    }
}

pub fn config_reloaded(result: ReloadResult) {
    CONFIG_RELOADS.with_label_values(&[result.label()]).inc();
}

/// `portcullis_build_info` names the configuration now running: the one
/// series, relabelled.
pub fn running_config(hash: &str) {
    BUILD_INFO.reset();
    BUILD_INFO
        .with_label_values(&[
            env!("CARGO_PKG_VERSION"),
            option_env!("PORTCULLIS_COMMIT").unwrap_or("unknown"),
            &hash[..hash.len().min(16)],
        ])
        .set(1);
}

/// What the proxy path decided, for `portcullis_auth_decisions_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A valid token with the route's scopes: forwarded with identity.
    Allowed,
    /// A route with `auth: none`: forwarded without a check.
    Public,
    /// 401 or 403.
    Refused,
    /// The token store could not answer: 503.
    Unavailable,
}

impl AuthOutcome {
    pub fn label(self) -> &'static str {
        match self {
            AuthOutcome::Allowed => "allowed",
            AuthOutcome::Public => "public",
            AuthOutcome::Refused => "refused",
            AuthOutcome::Unavailable => "unavailable",
        }
    }
}

/// A token-store operation, for its latency and error metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStoreOp {
    Find,
    Save,
    Delete,
}

impl TokenStoreOp {
    pub fn label(self) -> &'static str {
        match self {
            TokenStoreOp::Find => "find",
            TokenStoreOp::Save => "save",
            TokenStoreOp::Delete => "delete",
        }
    }
}

// The proxy path counts these on every request: the labelled series of a
// closed set are looked up once, not hashed per request.
static AUTH_DECISION_SERIES: Lazy<[IntCounter; 4]> = Lazy::new(|| {
    [
        AuthOutcome::Allowed,
        AuthOutcome::Public,
        AuthOutcome::Refused,
        AuthOutcome::Unavailable,
    ]
    .map(|outcome| AUTH_DECISIONS.with_label_values(&[outcome.label()]))
});

static TOKEN_STORE_SERIES: Lazy<[(prometheus::Histogram, IntCounter); 3]> = Lazy::new(|| {
    [TokenStoreOp::Find, TokenStoreOp::Save, TokenStoreOp::Delete].map(|op| {
        (
            TOKEN_STORE_DURATION.with_label_values(&[op.label()]),
            TOKEN_STORE_ERRORS.with_label_values(&[op.label()]),
        )
    })
});

pub fn auth_decision(outcome: AuthOutcome) {
    AUTH_DECISION_SERIES[outcome as usize].inc();
}

pub fn token_store_call(op: TokenStoreOp, seconds: f64, failed: bool) {
    let (duration, errors) = &TOKEN_STORE_SERIES[op as usize];
    duration.observe(seconds);
    if failed {
        errors.inc();
    }
}

/// The response-time series of one upstream, looked up once when its pool
/// is made rather than by label on every request.
pub fn upstream_duration(upstream: &str) -> prometheus::Histogram {
    UPSTREAM_DURATION.with_label_values(&[upstream])
}

pub fn bcrypt_queued(change: i64) {
    BCRYPT_QUEUE_DEPTH.add(change);
}

/// The method as a label: the methods RFC 9110 defines, else `other`, so
/// a client cannot make new series by inventing methods.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Registers every metric so each appears (at zero) from the first scrape.
pub fn register_all() {
    Lazy::force(&AUTH_DECISIONS);
    Lazy::force(&TOKEN_STORE_DURATION);
    Lazy::force(&TOKEN_STORE_ERRORS);
    Lazy::force(&UPSTREAM_DURATION);
    BCRYPT_QUEUE_DEPTH.set(0);
    for result in [ReloadResult::Applied, ReloadResult::Refused] {
        CONFIG_RELOADS.with_label_values(&[result.label()]);
    }
    Lazy::force(&REQUESTS);
    Lazy::force(&REQUEST_DURATION);
    Lazy::force(&AUTH_FAILURES);
    Lazy::force(&TOKENS_ISSUED);
    Lazy::force(&TOKENS_REVOKED);
    Lazy::force(&CLIENT_CONNECTIONS);
    Lazy::force(&CONNECTIONS_REFUSED);
    Lazy::force(&REQUEST_HEAD_TIMEOUTS);
    Lazy::force(&UPSTREAM_RETRIES);
    Lazy::force(&UPSTREAM_SERVER_HEALTHY);
    TOKEN_STORE_UP.set(1);
}

pub fn request_done(route: &str, method: &http::Method, status: u16, seconds: f64) {
    let mut buffer = itoa_buffer();
    REQUESTS
        .with_label_values(&[
            route,
            method_label(method),
            status_label(status, &mut buffer),
        ])
        .inc();
    REQUEST_DURATION
        .with_label_values(&[route])
        .observe(seconds);
}

pub fn auth_failure(reason: AuthFailure) {
    AUTH_FAILURES.with_label_values(&[reason.label()]).inc();
}

/// `grant` is a [`crate::store::GrantType`] name.
pub fn token_issued(grant: &'static str) {
    TOKENS_ISSUED.with_label_values(&[grant]).inc();
}

pub fn token_revoked(kind: RevokedToken) {
    TOKENS_REVOKED.with_label_values(&[kind.label()]).inc();
}

pub fn token_store_up(up: bool) {
    TOKEN_STORE_UP.set(i64::from(up));
}

pub fn connection_opened() {
    CLIENT_CONNECTIONS.inc();
}

pub fn connection_closed() {
    CLIENT_CONNECTIONS.dec();
}

pub fn connection_refused() {
    CONNECTIONS_REFUSED.inc();
}

pub fn request_head_timeout() {
    REQUEST_HEAD_TIMEOUTS.inc();
}

/// An upstream's counters start at zero, so a scrape shows every upstream.
pub fn upstream_configured(upstream: &str) {
    UPSTREAM_RETRIES.with_label_values(&[upstream]);
}

pub fn upstream_retry(upstream: &str) {
    UPSTREAM_RETRIES.with_label_values(&[upstream]).inc();
}

pub fn upstream_server_healthy(upstream: &str, server: &str, healthy: bool) {
    UPSTREAM_SERVER_HEALTHY
        .with_label_values(&[upstream, server])
        .set(i64::from(healthy));
}

/// A server a reload took out of an upstream (or the upstream itself):
/// its gauge goes, rather than showing its last state forever.
pub fn upstream_server_removed(upstream: &str, server: &str) {
    let _ = UPSTREAM_SERVER_HEALTHY.remove_label_values(&[upstream, server]);
}

fn itoa_buffer() -> [u8; 3] {
    [b'0'; 3]
}

/// Formats a status code without allocating: this runs on every request.
fn status_label(status: u16, buffer: &mut [u8; 3]) -> &str {
    if !(100..=999).contains(&status) {
        return "000";
    }
    buffer[0] = b'0' + (status / 100) as u8;
    buffer[1] = b'0' + (status / 10 % 10) as u8;
    buffer[2] = b'0' + (status % 10) as u8;
    std::str::from_utf8(buffer).unwrap_or("000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels() {
        let mut buffer = itoa_buffer();
        assert_eq!(status_label(200, &mut buffer), "200");
        assert_eq!(status_label(503, &mut buffer), "503");
        assert_eq!(status_label(0, &mut buffer), "000");
        assert_eq!(status_label(1000, &mut buffer), "000");
    }

    #[test]
    fn cached_series_carry_their_own_labels() {
        use prometheus::core::Collector;
        let labels = |collector: &dyn Collector| -> Vec<String> {
            collector
                .collect()
                .iter()
                .flat_map(|family| family.get_metric().to_vec())
                .flat_map(|metric| metric.get_label().to_vec())
                .map(|pair| pair.value().to_string())
                .collect()
        };
        for outcome in [
            AuthOutcome::Allowed,
            AuthOutcome::Public,
            AuthOutcome::Refused,
            AuthOutcome::Unavailable,
        ] {
            let series = &AUTH_DECISION_SERIES[outcome as usize];
            assert_eq!(labels(series), [outcome.label()]);
        }
        for op in [TokenStoreOp::Find, TokenStoreOp::Save, TokenStoreOp::Delete] {
            let (duration, errors) = &TOKEN_STORE_SERIES[op as usize];
            assert_eq!(labels(duration), [op.label()]);
            assert_eq!(labels(errors), [op.label()]);
        }
    }
}
