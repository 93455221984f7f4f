//! portcullis: an authenticating reverse-proxy gateway on Pingora.
//!
//! Modules in reading order, from the request's point of view:

/// `gateway.yaml`: file structs and the checked [`config::Config`].
pub mod config;
/// Path → endpoint or upstream route (pure).
pub mod route;
/// Bearer parsing and identity-header stripping (pure).
pub mod auth;
/// The Pingora hooks.
pub mod gateway;
/// The one writer of responses the gateway makes itself.
pub mod respond;
/// The authorization server under `/oauth`.
pub mod oauth;
/// Access and refresh tokens: memory and Redis backends.
pub mod tokens;
/// Users and clients: embedded (SQLite) and MongoDB backends.
pub mod store;
/// bcrypt on a bounded blocking pool.
pub mod password;
/// Every metric name.
pub mod metrics;
/// Certificates for the HTTPS listener.
pub mod tls;
/// Wiring: backends, Pingora services, startup checks.
pub mod app;
/// The command line: serve, check-config, user and client administration.
pub mod cli;
