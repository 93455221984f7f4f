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
        "Requests answered, by route and HTTP status.",
        &["route", "status"]
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
        "portcullis_client_connections",
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

/// Registers every metric so each appears (at zero) from the first scrape.
pub fn register_all() {
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

pub fn request_done(route: &str, status: u16, seconds: f64) {
    let mut buffer = itoa_buffer();
    REQUESTS
        .with_label_values(&[route, status_label(status, &mut buffer)])
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
}
