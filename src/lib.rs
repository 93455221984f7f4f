//! portcullis: an authenticating reverse-proxy gateway on Pingora.
//!
//! Modules in reading order, from the request's point of view:

/// Wiring: backends, Pingora services, startup checks.
pub mod app;
/// Bearer parsing and identity-header stripping (pure).
pub mod auth;
/// The command line: serve, check-config, user and client administration.
pub mod cli;
/// `gateway.yaml`: file structs and the checked [`config::Config`].
pub mod config;
/// The Pingora hooks.
pub mod gateway;
/// Every metric name.
pub mod metrics;
/// The authorization server under `/oauth`.
pub mod oauth;
/// bcrypt on a bounded blocking pool.
pub mod password;
/// The one writer of responses the gateway makes itself.
pub mod respond;
/// Path → endpoint or upstream route (pure).
pub mod route;
/// Users and clients: embedded (SQLite) and MongoDB backends.
pub mod store;
/// Certificates for the HTTPS listener.
pub mod tls;
/// Access and refresh tokens: memory and Redis backends.
pub mod tokens;
