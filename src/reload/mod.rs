//! Live reload: on SIGHUP (`portcullis reload` sends it through the pid
//! file), the gateway reads gateway.yaml again and swaps in what it says,
//! whole, or keeps running what it has.
//!
//! A reload is prepared off to the side (read, checked, certificate
//! loaded, pools built and resolved) and then committed in two stores: the
//! certificate, then the state. Nothing a request holds is touched:
//! requests in flight finish on the snapshot they took, idle keep-alive
//! connections stay open (downstream and upstream), and an upstream whose
//! settings did not change keeps its pool, with its health and ejections.
//!
//! - A file with problems is refused with one log line per problem, and
//!   counted `portcullis_config_reloads_total{result="refused"}`.
//! - A setting that needs a restart keeps its running value and is named in
//!   the log ([`crate::config::keep_restart_only`]).

pub mod pid_file;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{self, keep_restart_only, ProcessEnvironment};
use crate::metrics::{self, ReloadResult};
use crate::state::{AppState, LiveState};
use crate::tls::ListenerCertificate;
use crate::upstream_pool::UpstreamPool;

/// Listens for SIGHUP and reloads; owns the pid file.
pub struct Reloader {
    pub live: Arc<LiveState>,
    pub config_path: PathBuf,
    /// The HTTPS listener's, when there is one.
    pub certificate: Option<Arc<ListenerCertificate>>,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP: reload needs a restart");
                return;
            }
        };
        let pid_path = pid_file::path(&self.live.current().config.data_dir);
        if let Err(error) = pid_file::write(&pid_path) {
            tracing::warn!(%error, path = %pid_path.display(), "cannot write the pid file; `portcullis reload` will not find this gateway (SIGHUP still reloads)");
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                received = hangups.recv() => match received {
                    Some(()) => {
                        self.reload().await;
                    }
                    None => break,
                },
            }
        }
        pid_file::remove_if_ours(&pid_path);
    }
}

/// A configuration ready to swap in.
struct Prepared {
    state: AppState,
    certificate: Option<Arc<rustls::sign::CertifiedKey>>,
    /// Restart-only settings the file changed.
    kept: Vec<&'static str>,
}

impl Reloader {
    /// One reload, start to end: applied whole, or refused and logged.
    pub async fn reload(&self) -> ReloadResult {
        let running = self.live.current();
        tracing::info!(path = %self.config_path.display(), "reloading the configuration");
        let prepared = match self.prepare(&running).await {
            Ok(prepared) => prepared,
            Err(problems) => {
                for (setting, problem) in &problems {
                    tracing::error!(setting = %setting, problem = %problem, "configuration reload refused");
                }
                tracing::error!(
                    problems = problems.len(),
                    running = %short(&running.config_hash),
                    "configuration reload refused; the running configuration stays"
                );
                metrics::config_reloaded(ReloadResult::Refused);
                return ReloadResult::Refused;
            }
        };
        for setting in &prepared.kept {
            tracing::warn!(setting, "this setting changed but needs a restart (or `serve --upgrade`); the running value stays until then");
        }
        if let (Some(listener), Some(certified)) = (&self.certificate, prepared.certificate) {
            listener.replace(certified);
        }
        self.commit(&running, prepared.state)
    }

    fn commit(&self, running: &AppState, state: AppState) -> ReloadResult {
        forget_removed_servers(&running.upstreams, &state.upstreams);
        metrics::running_config(&state.config_hash);
        tracing::info!(
            config = %short(&state.config_hash),
            previous = %short(&running.config_hash),
            routes = state.config.routes.iter().count(),
            upstreams = state.upstreams.len(),
            "configuration reloaded"
        );
        self.live.replace(state);
        metrics::config_reloaded(ReloadResult::Applied);
        ReloadResult::Applied
    }

    /// Everything that can fail, before anything is swapped: `Err` has
    /// each problem as (setting, what is wrong).
    async fn prepare(&self, running: &Arc<AppState>) -> Result<Prepared, Vec<(String, String)>> {
        let (config, hash) =
            config::load_hashed(&self.config_path, &ProcessEnvironment).map_err(|errors| {
                errors
                    .0
                    .into_iter()
                    .map(|problem| (problem.path, problem.message))
                    .collect::<Vec<_>>()
            })?;
        let (config, kept) = keep_restart_only(&running.config, config);
        // The running HTTPS listener stays (restart-only), so a gateway
        // with a certificate to replace still has `listen.https`.
        let certificate = match (&self.certificate, &config.https) {
            (Some(_), Some(https)) => Some(
                crate::tls::listener_certificate(https, &config.data_dir)
                    .map_err(|e| vec![("listen.https".to_string(), format!("{e:#}"))])?,
            ),
            _ => None,
        };
        // Off the runtime: a changed administrator's password is hashed.
        let (services, previous) = (running.services.clone(), running.clone());
        let built = tokio::task::spawn_blocking(move || {
            AppState::build(config, hash, services, Some(&previous))
        })
        .await;
        let (state, made) = match built {
            Ok(Ok(built)) => built,
            Ok(Err(error)) => return Err(vec![("(state)".into(), format!("{error:#}"))]),
            Err(error) => return Err(vec![("(state)".into(), error.to_string())]),
        };
        // New pools learn their addresses before they serve a request.
        for pool in &made {
            pool.resolve().await;
        }
        Ok(Prepared {
            state,
            certificate,
            kept,
        })
    }
}

/// Health gauges of servers no pool has any more.
fn forget_removed_servers(old: &[Arc<UpstreamPool>], new: &[Arc<UpstreamPool>]) {
    for pool in old {
        for entry in pool.entries() {
            let still = new
                .iter()
                .any(|p| p.name() == pool.name() && p.entries().contains(entry));
            if !still {
                metrics::upstream_server_removed(pool.name(), entry);
            }
        }
    }
}

/// The first 16 hex digits: enough to tell configurations apart in a log.
fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}
