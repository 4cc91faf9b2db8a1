//! The daemon: informers (or watched manifests) -> reconcile loop -> apply,
//! plus the metrics server and signal handling.
//!
//! Start-up commits nothing until every store has synced: the table a
//! previous run left stays in force until then. SIGTERM/SIGINT stop the loop
//! (a commit in progress completes first) and never delete the table.
//!
//! Must not: delete or flush the table, or commit from anywhere but the
//! reconcile loop.

use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::apply::{Dataplane, Kernel};
use crate::config::Config;
use crate::informers::{self, files, InformerError};
use crate::metrics::{self, Metrics};
use crate::reconcile::{Reconciler, Source, Timing};
use crate::snapshot::Snapshot;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot listen on --metrics-addr {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Informer(#[from] InformerError),
}

/// What a running daemon is given besides its configuration.
pub struct Context<D> {
    pub dataplane: D,
    /// Turns true to stop.
    pub shutdown: watch::Receiver<bool>,
    pub metrics: Arc<Metrics>,
    /// Receives each sync's snapshot (tests observe the input this way).
    pub snapshots: Option<watch::Sender<Option<Arc<Snapshot>>>>,
}

/// Run until SIGTERM/SIGINT, committing to the kernel. Never deletes the
/// table on the way out.
pub async fn run(config: Config) -> Result<(), AgentError> {
    let shutdown = shutdown_on_signals()?;
    run_with(
        config,
        Context {
            dataplane: Kernel::new(),
            shutdown,
            metrics: Metrics::new(),
            snapshots: None,
        },
    )
    .await
}

/// Run with a given dataplane until `ctx.shutdown` turns true.
pub async fn run_with<D: Dataplane + 'static>(
    config: Config,
    ctx: Context<D>,
) -> Result<(), AgentError> {
    let Context {
        dataplane,
        mut shutdown,
        metrics,
        snapshots,
    } = ctx;
    let _metrics_server = match config.metrics_addr {
        Some(addr) => {
            let listener = metrics::bind(addr)
                .await
                .map_err(|source| AgentError::Metrics { addr, source })?;
            tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
            Some(AbortOnDrop(tokio::spawn(metrics::serve(
                listener,
                metrics.clone(),
            ))))
        }
        None => None,
    };
    let trigger = Arc::new(Notify::new());
    let timing = Timing::from_config(&config);
    if !config.manifests.is_empty() {
        tracing::info!(paths = ?config.manifests, "daemon mode on manifests; watching the files");
        let baseline = files::fingerprint(&config.manifests);
        let _watcher = AbortOnDrop(tokio::spawn(files::watch(
            config.manifests.clone(),
            baseline,
            trigger.clone(),
            files::POLL_INTERVAL,
        )));
        metrics.set_synced(true);
        let source = files::ManifestSource {
            paths: config.manifests.clone(),
        };
        let reconciler = Reconciler::new(source, dataplane, &config, timing, metrics);
        with_sink(reconciler, snapshots)
            .run(trigger, shutdown)
            .await;
    } else {
        let client = informers::client(&config).await?;
        let informers = informers::start(client, trigger.clone());
        tracing::info!(
            table = %config.table,
            "waiting for the pod, namespace and policy stores to sync; the table in force stays until then"
        );
        tokio::select! {
            ready = informers.stores.wait_until_ready() => ready?,
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!("stopped before the stores synced; table left as it was");
                return Ok(());
            }
        }
        tracing::info!("stores synced");
        metrics.set_synced(true);
        let reconciler = Reconciler::new(
            informers.stores.clone(),
            dataplane,
            &config,
            timing,
            metrics,
        );
        with_sink(reconciler, snapshots)
            .run(trigger, shutdown)
            .await;
    }
    tracing::info!(table = %config.table, "shutting down; table inet {} stays in force", config.table);
    Ok(())
}

fn with_sink<S: Source, D: Dataplane + 'static>(
    r: Reconciler<S, D>,
    sink: Option<watch::Sender<Option<Arc<Snapshot>>>>,
) -> Reconciler<S, D> {
    match sink {
        Some(tx) => r.with_snapshot_sink(tx),
        None => r,
    }
}

/// Aborts a background task when the daemon returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A shutdown signal that turns true on SIGTERM or SIGINT.
fn shutdown_on_signals() -> Result<watch::Receiver<bool>, AgentError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(AgentError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(AgentError::Signals)?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name} received, stopping");
        let _ = tx.send(true);
    });
    Ok(rx)
}
