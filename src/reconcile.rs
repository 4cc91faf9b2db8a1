//! Reconcile: debounce -> snapshot -> translate -> commit -> metrics.
//!
//! One loop owns the dataplane. Change notifications (from the informers or
//! the manifest watcher) are merged: a sync starts after `debounce` of quiet,
//! or at the latest `max_delay` after the first change of a burst. A ruleset
//! equal to the one in force is not sent again, except by the periodic
//! resync, which re-commits it (repairing a table someone else altered). A
//! failed sync leaves the previous ruleset in force and is retried with
//! exponential backoff (capped); changes arriving meanwhile wait for the
//! retry.
//!
//! Must not: read a `Store` or a `Client` (it sees a `Source` of owned
//! snapshots), delete the table, or commit before its caller says the input
//! is complete (the agent starts the loop only once every store synced).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};

use crate::apply::{CommitReport, Dataplane};
use crate::config::Config;
use crate::metrics::{Metrics, SyncResult};
use crate::model::{RuleSet, Warning};
use crate::snapshot::Snapshot;
use crate::translate::Translation;
use crate::{names, render, translate};

/// Where snapshots come from: the informers' stores or the manifest files.
pub trait Source: Send {
    /// The current, complete picture of the cluster. An `Err` (for example a
    /// manifest that no longer parses) fails the sync; the previous ruleset
    /// stays in force.
    /// Objects that could not be read come back as warnings.
    fn snapshot(&mut self) -> Result<(Snapshot, Vec<Warning>), String>;
}

/// The loop's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Quiet time after a change before a sync.
    pub debounce: Duration,
    /// Longest a sync is postponed under constant churn.
    pub max_delay: Duration,
    /// Period of the forced re-commit; `None` disables it.
    pub resync: Option<Duration>,
    /// First retry delay after a failed sync; doubles per failure.
    pub backoff_min: Duration,
    /// Cap of the retry delay.
    pub backoff_max: Duration,
}

impl Timing {
    pub fn from_config(config: &Config) -> Timing {
        Timing {
            debounce: config.debounce,
            max_delay: config.max_delay,
            resync: config.resync,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }

    /// Delay before retry number `failures` (1 for the first failure).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.backoff_min
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

/// Why a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Start,
    Change,
    Retry,
    Resync,
}

/// How one sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed(CommitReport),
    /// Unchanged ruleset, nothing sent.
    Skipped,
    Failed(String),
}

/// Owns the dataplane and the last committed ruleset.
pub struct Reconciler<S, D> {
    source: S,
    /// `None` only while a commit runs on the blocking pool.
    dataplane: Option<D>,
    node: String,
    table: String,
    timing: Timing,
    metrics: Arc<Metrics>,
    /// The ruleset in force (last successful commit).
    last: Option<RuleSet>,
    /// Warnings of the previous translation, to log only new ones.
    last_warnings: Vec<Warning>,
    /// `translate::translate`, or a stand-in in tests of the loop itself.
    translator: Translator,
    /// Where each sync's snapshot is published, for observers (tests).
    snapshots: Option<watch::Sender<Option<Arc<Snapshot>>>>,
}

/// The translator's signature.
pub type Translator = fn(&Snapshot, &str, &str) -> Translation;

impl<S: Source, D: Dataplane + 'static> Reconciler<S, D> {
    pub fn new(
        source: S,
        dataplane: D,
        config: &Config,
        timing: Timing,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reconciler {
            source,
            dataplane: Some(dataplane),
            node: config.node.clone(),
            table: config.table.clone(),
            timing,
            metrics,
            last: None,
            last_warnings: Vec::new(),
            translator: translate::translate,
            snapshots: None,
        }
    }

    /// Use another translator (tests of the loop itself).
    pub fn with_translator(mut self, translator: Translator) -> Self {
        self.translator = translator;
        self
    }

    /// Publish every sync's snapshot to `tx`.
    pub fn with_snapshot_sink(mut self, tx: watch::Sender<Option<Arc<Snapshot>>>) -> Self {
        self.snapshots = Some(tx);
        self
    }

    /// One sync: snapshot, translate, and commit unless unchanged (`force`
    /// commits anyway).
    #[tracing::instrument(skip(self), fields(node = %self.node))]
    pub async fn sync(&mut self, reason: Reason) -> Outcome {
        let started = Instant::now();
        let outcome = self.sync_inner(reason).await;
        let result = match &outcome {
            Outcome::Committed(_) => SyncResult::Committed,
            Outcome::Skipped => SyncResult::Skipped,
            Outcome::Failed(_) => SyncResult::Failed,
        };
        self.metrics.record_sync(result, started.elapsed());
        crate::alloc::release_free_memory();
        outcome
    }

    async fn sync_inner(&mut self, reason: Reason) -> Outcome {
        let started = Instant::now();
        let (snapshot, mut warnings) = match self.source.snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(
                    "cannot build the snapshot, the previous ruleset stays in force: {e}"
                );
                return Outcome::Failed(e);
            }
        };
        let out = (self.translator)(&snapshot, &self.node, &self.table);
        warnings.extend(out.warnings);
        self.metrics.record_input(
            snapshot.pods.len(),
            snapshot.namespaces.len(),
            snapshot.policies.len(),
            warnings.len(),
        );
        if warnings != self.last_warnings {
            for w in warnings.iter().filter(|w| !self.last_warnings.contains(w)) {
                tracing::warn!(object = %w.object, field = %w.field, "{}", w.message);
            }
            self.last_warnings = warnings;
        }
        // Only an observer needs the snapshot after translation: without
        // one it is freed before the commit (it is large at scale).
        let snapshot = self.snapshots.is_some().then_some(snapshot);
        let outcome = self.commit_if_changed(out.ruleset, reason, started).await;
        if let (Some(tx), Some(snapshot)) = (&self.snapshots, snapshot) {
            tx.send_replace(Some(Arc::new(snapshot)));
        }
        outcome
    }

    async fn commit_if_changed(
        &mut self,
        rs: RuleSet,
        reason: Reason,
        started: Instant,
    ) -> Outcome {
        if reason != Reason::Resync && self.last.as_ref() == Some(&rs) {
            tracing::info!("ruleset unchanged, commit skipped");
            return Outcome::Skipped;
        }
        let (rs, result) = self.commit(rs, reason == Reason::Resync).await;
        match result {
            Ok(report) if report.skipped => {
                tracing::info!("ruleset unchanged (dataplane), commit skipped");
                self.last = Some(rs);
                Outcome::Skipped
            }
            Ok(report) => {
                let stats = rs.stats();
                let script_hash = names::short_hash(render::render(&rs).as_bytes(), 16);
                self.metrics.record_commit(stats, report.bytes);
                tracing::info!(
                    rules = stats.rules,
                    sets = stats.sets + stats.maps,
                    elements = stats.set_elements + stats.map_elements,
                    bytes = report.bytes,
                    duration_ms = started.elapsed().as_secs_f64() * 1e3,
                    script_hash = %script_hash,
                    "committed ruleset"
                );
                self.last = Some(rs);
                Outcome::Committed(report)
            }
            Err(e) => {
                tracing::error!("commit failed, the previous ruleset stays in force: {e}");
                Outcome::Failed(e)
            }
        }
    }

    /// Commit on the blocking pool (netlink I/O blocks).
    /// `force` makes the dataplane send even a ruleset it remembers.
    /// The ruleset comes back with the result (an empty stand-in if the
    /// commit panicked; it is only logged then).
    async fn commit(
        &mut self,
        rs: RuleSet,
        force: bool,
    ) -> (RuleSet, Result<CommitReport, String>) {
        let Some(mut dataplane) = self.dataplane.take() else {
            return (rs, Err("dataplane lost by an earlier panic".into()));
        };
        let fallback = RuleSet::new(rs.table.clone());
        let joined = tokio::task::spawn_blocking(move || {
            if force {
                dataplane.forget();
            }
            let result = dataplane.commit(&rs).map_err(|e| e.to_string());
            (dataplane, rs, result)
        })
        .await;
        match joined {
            Ok((dataplane, rs, result)) => {
                self.dataplane = Some(dataplane);
                (rs, result)
            }
            Err(e) => (fallback, Err(format!("commit task panicked: {e}"))),
        }
    }

    /// Sync now, then on every (debounced) change, retry, and resync, until
    /// `shutdown` turns true. Never deletes the table.
    pub async fn run(mut self, trigger: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        let mut retry_at: Option<Instant> = None;
        let mut next_resync = self.timing.resync.map(|r| Instant::now() + r);
        let mut reason = Reason::Start;
        loop {
            if let Some(at) = retry_at {
                // Back off: changes arriving meanwhile wait for the retry.
                if !sleep_or_shutdown(at, &mut shutdown).await {
                    return;
                }
            }
            match self.sync(reason).await {
                Outcome::Failed(_) => {
                    failures += 1;
                    let delay = self.timing.backoff(failures);
                    tracing::info!(
                        failures,
                        retry_in_ms = delay.as_millis() as u64,
                        "will retry"
                    );
                    retry_at = Some(Instant::now() + delay);
                    reason = Reason::Retry;
                    continue;
                }
                Outcome::Committed(_) | Outcome::Skipped => {
                    failures = 0;
                    retry_at = None;
                }
            }
            if reason == Reason::Resync || next_resync.is_none_or(|t| t <= Instant::now()) {
                next_resync = self.timing.resync.map(|r| Instant::now() + r);
            }
            reason = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = trigger.notified() => Reason::Change,
                _ = sleep_until_opt(next_resync) => Reason::Resync,
            };
            if reason == Reason::Change && !debounce(&trigger, &self.timing, &mut shutdown).await {
                return;
            }
        }
    }
}

/// Wait for the end of a burst: `debounce` without a new notification, or
/// `max_delay` since the burst started. False when shutting down.
async fn debounce(trigger: &Notify, timing: &Timing, shutdown: &mut watch::Receiver<bool>) -> bool {
    let start = Instant::now();
    let hard = start + timing.max_delay;
    let mut quiet = start + timing.debounce;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => return false,
            _ = sleep_until(quiet.min(hard)) => return true,
            _ = trigger.notified() => quiet = Instant::now() + timing.debounce,
        }
    }
}

/// Sleep until `at`; false when shutdown came first.
async fn sleep_or_shutdown(at: Instant, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        biased;
        _ = shutdown.wait_for(|stop| *stop) => false,
        _ = sleep_until(at) => true,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}
