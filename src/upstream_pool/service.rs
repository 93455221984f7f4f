//! The background service that keeps every pool current: one task per
//! upstream on one Pingora service (and so one runtime), rather than a
//! service and its threads per upstream. It follows reloads: a pool a new
//! configuration brings gets its task, a pool it drops has its task
//! stopped, and a pool it kept goes on undisturbed.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::UpstreamPool;

pub struct Maintenance {
    /// The pools of the configuration being served, replaced on reload.
    pub pools: watch::Receiver<Vec<Arc<UpstreamPool>>>,
}

#[async_trait]
impl BackgroundService for Maintenance {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut pools = self.pools.clone();
        let mut running: Vec<(Arc<UpstreamPool>, JoinHandle<()>)> = Vec::new();
        loop {
            let wanted = pools.borrow_and_update().clone();
            let (stop, start) = changes(&running, &wanted);
            for index in stop.into_iter().rev() {
                let (pool, task) = running.remove(index);
                task.abort();
                tracing::debug!(
                    upstream = pool.name(),
                    "stopped the maintenance of a replaced upstream"
                );
            }
            for pool in start {
                let (task_pool, task_shutdown) = (pool.clone(), shutdown.clone());
                let task = tokio::spawn(async move { task_pool.maintain(task_shutdown).await });
                running.push((pool, task));
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                changed = pools.changed() => if changed.is_err() {
                    // No more reloads: serve these until shutdown.
                    let _ = shutdown.changed().await;
                    break;
                },
            }
        }
        for (_, task) in running {
            if let Err(error) = task.await {
                tracing::error!(%error, "an upstream's maintenance task failed");
            }
        }
    }
}

/// Which running tasks to stop (indexes, ascending) and which pools to
/// start, to go from `running` to `wanted`. Pools are the same pool when
/// they are the same `Arc`.
fn changes<T, H>(running: &[(Arc<T>, H)], wanted: &[Arc<T>]) -> (Vec<usize>, Vec<Arc<T>>) {
    let stop = running
        .iter()
        .enumerate()
        .filter(|(_, (pool, _))| !wanted.iter().any(|w| Arc::ptr_eq(w, pool)))
        .map(|(index, _)| index)
        .collect();
    let start = wanted
        .iter()
        .filter(|w| !running.iter().any(|(pool, _)| Arc::ptr_eq(w, pool)))
        .cloned()
        .collect();
    (stop, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_pools_go_on_dropped_ones_stop_new_ones_start() {
        let (a, b, c) = (Arc::new('a'), Arc::new('b'), Arc::new('c'));
        let same_as_a = Arc::new('a');
        let running = vec![(a.clone(), ()), (b.clone(), ())];
        // (wanted, stopped indexes, started)
        type Case = (Vec<Arc<char>>, Vec<usize>, Vec<char>);
        let cases: Vec<Case> = vec![
            (vec![a.clone(), b.clone()], vec![], vec![]),
            (vec![b.clone()], vec![0], vec![]),
            (vec![a.clone(), b.clone(), c.clone()], vec![], vec!['c']),
            (vec![c.clone()], vec![0, 1], vec!['c']),
            // Equal settings are not the same pool: a rebuilt one starts.
            (vec![same_as_a, b.clone()], vec![0], vec!['a']),
            (vec![], vec![0, 1], vec![]),
        ];
        for (wanted, stopped, started) in cases {
            let (stop, start) = changes(&running, &wanted);
            assert_eq!(stop, stopped, "{wanted:?}");
            let start: Vec<char> = start.iter().map(|p| **p).collect();
            assert_eq!(start, started, "{wanted:?}");
        }
    }
}
