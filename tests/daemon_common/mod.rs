//! Shared by the daemon tests: a configuration with short timings, and a
//! daemon started on a fake dataplane that a test can observe and stop.

#![allow(dead_code)] // each test crate uses a different part of this module

use std::sync::Arc;
use std::time::Duration;

use flock_netpol::agent::{self, AgentError, Context};
use flock_netpol::apply::fake::Fake;
use flock_netpol::config::{Config, LogFormat, Mode};
use flock_netpol::metrics::Metrics;
use flock_netpol::snapshot::Snapshot;
use tokio::sync::watch;

pub const NODE: &str = "node-a";
pub const TABLE: &str = "flock-netpol";
/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(20);

/// Daemon mode on node `NODE`, debounce 20 ms, max delay 200 ms, no resync,
/// no metrics server, no input (the test sets kubeconfig or manifests).
pub fn config() -> Config {
    Config {
        mode: Mode::Daemon,
        node: NODE.into(),
        manifests: vec![],
        table: TABLE.into(),
        kubeconfig: None,
        metrics_addr: None,
        debounce: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        resync: None,
        log_format: LogFormat::Text,
    }
}

/// A daemon running on a task, committing to `fake`.
pub struct Daemon {
    pub fake: Fake,
    pub metrics: Arc<Metrics>,
    /// Each sync's snapshot.
    pub snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), AgentError>>,
}

impl Daemon {
    pub fn start(config: Config) -> Daemon {
        let fake = Fake::new();
        let metrics = Metrics::new();
        let (stop, shutdown) = watch::channel(false);
        let (sink, snapshots) = watch::channel(None);
        let ctx = Context {
            dataplane: fake.clone(),
            shutdown,
            metrics: metrics.clone(),
            snapshots: Some(sink),
        };
        let task = tokio::spawn(agent::run_with(config, ctx));
        Daemon {
            fake,
            metrics,
            snapshots,
            stop,
            task,
        }
    }

    /// Wait (bounded) until a sync saw exactly `want`.
    pub async fn synced(&mut self, want: &Snapshot) {
        let ok = tokio::time::timeout(
            WAIT,
            self.snapshots
                .wait_for(|s| s.as_deref().is_some_and(|s| s == want)),
        )
        .await
        .is_ok();
        if !ok {
            panic!(
                "the daemon did not converge within {WAIT:?}\nwant {want:#?}\nlast {:#?}",
                self.snapshots.borrow()
            );
        }
    }

    /// Stop it and check it exits cleanly.
    pub async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the daemon stops")
            .unwrap()
            .expect("the daemon exits cleanly");
    }
}
