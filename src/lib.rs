//! portcullis: an authenticating reverse-proxy gateway on Pingora.
//!
//! Reading order, following a request: `config` (what the operator wrote),
//! `app` (wiring), `state`, `upstream_pool`, `connection_guard`, `gateway`
//! (the Pingora hooks), `request_target`, `route`, `auth`, `owned_headers`,
//! `forwarding`, `client_address`, `tokens` and `redis_connection` (the hot
//! path), `respond`, `body`; then `oauth` (the authorization server),
//! `sessions`, `store`, `lockout`, `rate_limit`, `password`, `clock`;
//! `management`, `admin_auth`, `accounts`; and around them `reload`,
//! `sweeper`,
//! `metrics`, `log_writer`, `log_format`, `tls`, `cli` with
//! `control_socket`. ARCHITECTURE.md maps each.
//! (rustfmt keeps the declarations below in alphabetical order.)

/// Account operations with their revocations, shared by CLI and management.
pub mod accounts;
/// HTTP Basic sign-in of the administrator, with lockout.
pub mod admin_auth;
/// Wiring: backends, Pingora services, startup checks.
pub mod app;
/// Bearer parsing and identity-header stripping (pure).
pub mod auth;
/// Bounded reading of request bodies the gateway answers itself.
pub mod body;
/// The command line: serve, check-config, user and client administration.
pub mod cli;
/// The client's address, behind trusted proxies or not (pure).
pub mod client_address;
/// Where "now" comes from: the system clock, or a manual one in tests.
pub mod clock;
/// `gateway.yaml`: file structs and the checked [`config::Config`].
pub mod config;
/// The cap on client connections and the request-head deadline.
pub mod connection_guard;
/// How the CLI reaches a running gateway: the control socket's client.
pub mod control_socket;
/// X-Forwarded-*, Forwarded and X-Request-Id for the upstream (pure).
pub mod forwarding;
/// The Pingora hooks.
pub mod gateway;
/// Brute-force lockout of the password grant, shared by all instances.
pub mod lockout;
/// Log lines: the fast plain format (pure).
pub mod log_format;
/// Log lines as JSON objects, for collectors.
pub mod log_json;
/// Logs to stderr in batches, flushed at exit.
pub mod log_writer;
/// The admin page and JSON API.
pub mod management;
/// Every metric name.
pub mod metrics;
/// The authorization server under `/oauth`.
pub mod oauth;
/// The metrics listener: /metrics, /healthz, /readyz.
pub mod ops_listener;
/// The one table of headers the gateway owns upstream.
pub mod owned_headers;
/// bcrypt on a bounded blocking pool.
pub mod password;
/// Per-client limits on the grants that cost no bcrypt.
pub mod rate_limit;
/// The lazily made, bounded, self-healing Redis connection.
pub mod redis_connection;
/// SIGHUP: read gateway.yaml again and swap it in whole; the pid file.
pub mod reload;
/// Request-target and Host checks, path normalization (pure).
pub mod request_target;
/// The one writer of responses the gateway makes itself.
pub mod respond;
/// Path → endpoint or upstream route (pure).
pub mod route;
/// The session lifecycle: ending sessions, rotation, retries (pure steps).
pub mod sessions;
/// The gateway's own JWT signing keys: made, rotated, published as a JWKS.
pub mod signing_keys;
/// The services, the running configuration's state, and its swap.
pub mod state;
/// Users, clients and sessions: embedded (SQLite) and MongoDB backends.
pub mod store;
/// Deletes expired sessions in the background.
pub mod sweeper;
#[cfg(test)]
mod test_support;
/// Certificates for the HTTPS listener.
pub mod tls;
/// Access tokens: memory and Redis backends.
pub mod tokens;
/// Round-robin selection of an upstream's servers.
pub mod upstream_pool;
