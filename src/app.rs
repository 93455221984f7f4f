//! The one place that picks concrete backends and wires Pingora services.
//! The shared state it builds is [`crate::state::AppState`].
//!
//! [`serve`] checks everything that can fail at startup (ports, certificate,
//! stores) and exits with one clear line if something does; only then does it
//! hand control to Pingora, which never returns.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use pingora::listeners::tls::TlsSettings;
use pingora::prelude::*;
use pingora::proxy::HttpProxy;
use pingora::server::configuration::ServerConf;
use pingora::services::listening::Service;

use crate::admin_auth::CsrfKey;
use crate::config::{Config, StoreConfig, TokenConfig};
use crate::connection_guard::GuardedApp;
use crate::gateway::{Gateway, ListenerRole};
use crate::lockout::memory::MemoryLockout;
use crate::lockout::redis::RedisLockout;
use crate::lockout::LockoutStore;
use crate::password::PasswordHasher;
use crate::rate_limit::memory::MemoryRateLimit;
use crate::rate_limit::redis::RedisRateLimit;
use crate::rate_limit::RateLimiter;

use crate::reload::Reloader;
use crate::state::{AppState, LiveState, Services};
use crate::store::embedded::EmbeddedStore;
use crate::store::mongo::MongoStore;
use crate::store::{Store, StoreError};
use crate::tls::ListenerCertificate;
use crate::tokens::memory::MemoryTokens;
use crate::tokens::redis::RedisTokens;
use crate::tokens::TokenStore;
use crate::upstream_pool::{Maintenance, SystemResolver};

/// Opens the configured user store. MongoDB is connected lazily; see
/// [`check_backends`] for the startup check.
pub fn open_store(config: &StoreConfig) -> Result<Store> {
    Ok(match config {
        StoreConfig::Embedded { path } => Store::Embedded(
            EmbeddedStore::open(path)
                .map_err(|e| anyhow!("cannot open the embedded store: {e}"))?,
        ),
        StoreConfig::Mongodb {
            uri,
            database,
            timeout,
        } => Store::Mongo(MongoStore::new(uri, database, *timeout)),
    })
}

pub fn open_tokens(config: &Config) -> Result<TokenStore> {
    Ok(match &config.tokens {
        TokenConfig::Memory { max_tokens } => TokenStore::Memory(MemoryTokens::new(*max_tokens)),
        TokenConfig::Redis { url, timeout } => TokenStore::Redis(
            RedisTokens::new(url, *timeout, config.oauth.legacy_plain_keys)
                .context("tokens.redis.url is not a valid Redis URL")?,
        ),
    })
}

/// Rate-limit counts live beside the access tokens too, shared in Redis.
pub fn open_rate_limiter(config: &Config) -> Result<RateLimiter> {
    Ok(match &config.tokens {
        TokenConfig::Memory { .. } => RateLimiter::Memory(MemoryRateLimit::new()),
        TokenConfig::Redis { url, timeout } => RateLimiter::Redis(RedisRateLimit::new(
            redis::Client::open(url.as_str())
                .context("tokens.redis.url is not a valid Redis URL")?,
            *timeout,
        )),
    })
}

/// Lockout counters live beside the access tokens: in Redis they are shared
/// by every instance, so a lock holds wherever the attacker connects.
pub fn open_lockout(config: &Config) -> Result<LockoutStore> {
    Ok(match &config.tokens {
        TokenConfig::Memory { .. } => LockoutStore::Memory(MemoryLockout::new()),
        TokenConfig::Redis { url, timeout } => LockoutStore::Redis(RedisLockout::new(
            redis::Client::open(url.as_str())
                .context("tokens.redis.url is not a valid Redis URL")?,
            *timeout,
        )),
    })
}

/// Connects to MongoDB and Redis once, creates MongoDB's indexes, and drops
/// the connections: the services make their own on their own runtimes.
pub fn check_backends(config: &Config) -> Result<()> {
    check_store(config)?;
    block_on(async {
        if let TokenConfig::Redis { .. } = &config.tokens {
            open_tokens(config)?.ping().await.map_err(|e| {
                anyhow!("cannot reach Redis ({e}); check tokens.redis.url or PORTCULLIS_REDIS_URL")
            })?;
        }
        Ok(())
    })
}

/// Connects to MongoDB (if configured) and creates its indexes.
pub fn check_store(config: &Config) -> Result<()> {
    let StoreConfig::Mongodb {
        uri,
        database,
        timeout,
    } = &config.store
    else {
        return Ok(());
    };
    block_on(async {
        let store = MongoStore::new(uri, database, *timeout);
        store.ping().await.map_err(|e| {
            anyhow!("cannot reach MongoDB at the configured URI ({e}); check store.mongodb.uri or PORTCULLIS_MONGODB_URI")
        })?;
        store.ensure_indexes().await.map_err(|e| match e {
            StoreError::Duplicate(what) => {
                anyhow!("cannot create MongoDB's unique indexes: duplicate {what}")
            }
            other => anyhow!("cannot create MongoDB's indexes: {other}"),
        })
    })
}

fn block_on<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime for the startup checks")?
        .block_on(work)
}

/// Fails with a clear message if a listener address is taken. Pingora would
/// only find out after forking its services, with a less helpful error.
fn check_addresses_free(config: &Config) -> Result<()> {
    let listeners: [(&str, Option<SocketAddr>); 4] = [
        (
            "listen.https.address",
            config.https.as_ref().map(|h| h.address),
        ),
        ("listen.http.address", config.http),
        ("listen.metrics.address", config.metrics),
        ("management.address", config.management.address),
    ];
    for (setting, address) in listeners {
        let Some(address) = address else { continue };
        TcpListener::bind(address).map_err(|e| {
            anyhow!("cannot listen on {address} ({setting}): {e}; stop the other process or change {setting}")
        })?;
    }
    Ok(())
}

fn pingora_conf(config: &Config) -> ServerConf {
    // Users edit gateway.yaml only; Pingora's settings are derived from it.
    ServerConf {
        threads: config.server.threads,
        // The blocking pool runs store calls only (bcrypt has its own
        // threads), and the embedded store serializes on one connection:
        // a few threads are plenty, and each idle one would keep its own
        // allocator heap (peak RSS, benches/RESULTS.md).
        max_blocking_threads: Some(4),
        grace_period_seconds: Some(config.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(config.server.shutdown_timeout_seconds),
        daemon: false,
        pid_file: config.data_dir.join("portcullis.pid").display().to_string(),
        upgrade_sock: config.data_dir.join("upgrade.sock").display().to_string(),
        upstream_keepalive_pool_size: config.server.upstream_keepalive_pool_size,
        ..ServerConf::default()
    }
}

/// The stores, hasher and CSRF key: made once, kept across reloads.
pub fn build_services(config: &Config) -> Result<Services> {
    let hasher = PasswordHasher::new(
        config.oauth.bcrypt_cost,
        config.oauth.bcrypt_workers,
        config.oauth.bcrypt_queue,
    );
    hasher
        .prepare_decoy()
        .map_err(|e| anyhow!("cannot prepare the password hasher: {e}"))?;
    Ok(Services {
        store: open_store(&config.store)?,
        tokens: open_tokens(config)?,
        lockout: open_lockout(config)?,
        rate_limiter: open_rate_limiter(config)?,
        hasher,
        csrf_key: CsrfKey::load(config.management.csrf_secret.as_deref(), &config.data_dir)?,
        resolver: Arc::new(SystemResolver),
    })
}

/// Builds the first state from a checked configuration, its upstream names
/// looked up once before serving: a name that does not resolve is a
/// warning and a server out of rotation, since the containers behind it
/// may start after the gateway.
pub fn build_state(config: Config, config_hash: String) -> Result<AppState> {
    let services = Arc::new(build_services(&config)?);
    let (state, pools) = AppState::build(config, config_hash, services, None)?;
    block_on(async {
        for pool in &pools {
            pool.resolve().await;
        }
        Ok(())
    })?;
    Ok(state)
}

/// The gateway's proxy for one set of listeners, inside the connection
/// guard (cap on connections, request-head deadline), with bounded HTTP/2.
fn guarded_gateway_service(
    server: &Server,
    live: &Arc<LiveState>,
    role: ListenerRole,
    name: &str,
) -> Service<GuardedApp<HttpProxy<Gateway>>> {
    let gateway = Gateway {
        live: live.clone(),
        role,
    };
    // Restart-only settings (see config::keep_restart_only): read once.
    let server_config = live.current().config.server.clone();
    let mut proxy = pingora::proxy::http_proxy(&server.configuration, gateway);
    proxy.h2_options = Some(http2_options(server_config.http2_max_concurrent_streams));
    // Pingora ends the runtimes a grace period after shutdown begins: the
    // drain must end first for the last requests to be answered.
    let drain = std::time::Duration::from_millis(
        (server_config.grace_period_seconds * 1000).saturating_sub(500),
    );
    let guarded = GuardedApp::new(proxy, server_config.connection_limits, drain);
    let filter = guarded.filter();
    let mut service = Service::new(name.to_string(), guarded);
    service.set_connection_filter(filter);
    service
}

/// HTTP/2 server settings: Pingora's bounded defaults (header list size),
/// our stream cap, and h2's budgets for streams a client resets (rapid
/// reset, CVE-2023-44487) or makes us reset (CVE-2025-8671), past which the
/// connection is closed with ENHANCE_YOUR_CALM.
fn http2_options(max_concurrent_streams: u32) -> pingora::protocols::http::v2::server::H2Options {
    let mut options = pingora::protocols::http::v2::server::default_h2_options();
    options
        .max_concurrent_streams(max_concurrent_streams)
        .max_pending_accept_reset_streams(20)
        .max_concurrent_reset_streams(50)
        .max_local_error_reset_streams(Some(256));
    options
}

/// How `serve` starts.
pub struct Launch {
    pub config: Config,
    /// Hex SHA-256 of the file `config` was read from.
    pub config_hash: String,
    /// The file, read again on SIGHUP.
    pub config_path: std::path::PathBuf,
    /// `serve --upgrade`: take the listening sockets of the running
    /// gateway (Pingora's graceful upgrade) instead of binding them.
    pub upgrade: bool,
}

/// Starts the gateway. Returns only on a startup failure.
pub fn serve(launch: Launch) -> Result<()> {
    let Launch {
        config,
        config_hash,
        config_path,
        upgrade,
    } = launch;
    // Until the reloader listens for it, SIGHUP's default would end the
    // process: ignored instead, so an early reload is a no-op, not a crash.
    // SAFETY: setting a signal's disposition to SIG_IGN has no handler to run.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    if !upgrade {
        // The sockets are the running gateway's, handed over on SIGQUIT.
        check_addresses_free(&config)?;
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder `{}` (data_dir)",
            config.data_dir.display()
        )
    })?;
    let certificate = match &config.https {
        Some(https) => Some(Arc::new(ListenerCertificate::new(
            crate::tls::listener_certificate(https, &config.data_dir)?,
        ))),
        None => None,
    };
    check_backends(&config)?;
    crate::metrics::register_all();
    crate::metrics::running_config(&config_hash);

    let options = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(options), pingora_conf(&config));
    server.bootstrap();

    let listeners = (config.http, config.https.clone(), config.metrics);
    let live = Arc::new(LiveState::new(build_state(config, config_hash)?));
    let state = live.current();
    if state.config.oauth.metadata && state.config.oauth.issuer.is_none() {
        tracing::warn!("oauth.issuer is not set: the metadata document names its issuer and endpoints after each request's Host; set oauth.issuer to the gateway's public https:// URL");
    }
    let mut proxy = guarded_gateway_service(&server, &live, ListenerRole::Public, "portcullis");
    if let Some(address) = listeners.0 {
        proxy.add_tcp(&address.to_string());
        tracing::info!(%address, "listening for HTTP");
    }
    if let (Some(https), Some(certificate)) = (listeners.1, &certificate) {
        // No paths: the resolver gives the certificate at each handshake,
        // and a reload replaces it there.
        let mut tls =
            TlsSettings::intermediate("", "").map_err(|e| anyhow!("cannot set up TLS: {e}"))?;
        tls.set_cert_resolver(certificate.clone());
        if https.http2 {
            tls.enable_h2();
        }
        proxy.add_tls_with_settings(&https.address.to_string(), None, tls);
        tracing::info!(address = %https.address, "listening for HTTPS");
    }
    server.add_service(proxy);
    server.add_service(pingora::services::background::background_service(
        "upstream maintenance",
        Maintenance {
            pools: live.pools(),
        },
    ));
    server.add_service(pingora::services::background::background_service(
        "session sweeper",
        crate::sweeper::SessionSweeper {
            services: state.services.clone(),
        },
    ));
    server.add_service(pingora::services::background::background_service(
        "configuration reload",
        Reloader {
            live: live.clone(),
            config_path,
            certificate,
        },
    ));
    if let Some(address) = state.config.management.address {
        let mut management = guarded_gateway_service(
            &server,
            &live,
            ListenerRole::Management,
            "portcullis management",
        );
        management.add_tcp(&address.to_string());
        server.add_service(management);
        tracing::info!(%address, "serving management on its own listener");
    }
    let control_socket = crate::control_socket::socket_path(&state.config.data_dir);
    let mut control =
        guarded_gateway_service(&server, &live, ListenerRole::Control, "portcullis control");
    control.add_uds(
        &control_socket.display().to_string(),
        Some(std::fs::Permissions::from_mode(0o600)),
    );
    server.add_service(control);
    tracing::info!(path = %control_socket.display(), "serving the CLI on the control socket");
    if let Some(address) = listeners.2 {
        let ops = crate::ops_listener::OpsApp { live: live.clone() };
        let mut metrics = Service::new(
            "portcullis metrics".to_string(),
            pingora::apps::http_app::HttpServer::new_app(ops),
        );
        metrics.add_tcp(&address.to_string());
        server.add_service(metrics);
        tracing::info!(%address, "serving Prometheus metrics");
    }
    drop(state);
    server.run_forever()
}
