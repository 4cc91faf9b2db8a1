//! The reconcile loop on tokio's paused clock: debounce, the bound under
//! constant churn, skipping unchanged rulesets, backoff after failed commits,
//! periodic resync, shutdown. The translator is a stand-in (one chain per
//! pod) so these tests exercise the loop, not the translation.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flock_netpol::apply::fake::Fake;
use flock_netpol::config::{Config, LogFormat, Mode};
use flock_netpol::metrics::Metrics;
use flock_netpol::model::{Chain, RuleSet, Warning};
use flock_netpol::reconcile::{Reconciler, Source, Timing};
use flock_netpol::snapshot::{Labels, Phase, Pod, Snapshot};
use flock_netpol::translate::Translation;
use tokio::sync::{watch, Notify};
use tokio::time::{advance, Instant};

/// A source whose pods the test sets; counts how often it was read.
#[derive(Clone, Default)]
struct TestSource {
    pods: Arc<Mutex<Vec<String>>>,
    reads: Arc<AtomicUsize>,
}

impl TestSource {
    fn set_pods(&self, names: &[&str]) {
        *self.pods.lock().unwrap() = names.iter().map(|s| s.to_string()).collect();
    }
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Source for TestSource {
    fn snapshot(&mut self) -> Result<(Snapshot, Vec<Warning>), String> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let pods = self
            .pods
            .lock()
            .unwrap()
            .iter()
            .map(|name| Pod {
                namespace: "x".into(),
                name: name.clone(),
                labels: Labels::new(),
                node: Some("n1".into()),
                host_network: false,
                phase: Phase::Running,
                terminating: false,
                ips: vec![],
                ports: vec![],
            })
            .collect();
        Ok((
            Snapshot {
                pods,
                ..Snapshot::default()
            },
            vec![],
        ))
    }
}

/// One empty chain per pod: distinct pods give distinct rulesets.
fn chain_per_pod(snapshot: &Snapshot, _node: &str, table: &str) -> Translation {
    let mut ruleset = RuleSet::new(table);
    ruleset.chains = snapshot
        .pods
        .iter()
        .map(|p| {
            let chain = Chain {
                base: None,
                rules: vec![],
                comment: p.key(),
            };
            (format!("pod-{}", p.name), chain)
        })
        .collect::<BTreeMap<_, _>>();
    Translation {
        ruleset,
        warnings: vec![],
    }
}

fn config() -> Config {
    Config {
        mode: Mode::Daemon,
        node: "n1".into(),
        manifests: vec![],
        table: "t".into(),
        kubeconfig: None,
        metrics_addr: None,
        debounce: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
        resync: None,
        log_format: LogFormat::Text,
    }
}

struct Loop {
    source: TestSource,
    fake: Fake,
    trigger: Arc<Notify>,
    stop: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<()>,
}

fn start(timing: Timing) -> Loop {
    let source = TestSource::default();
    source.set_pods(&["a"]);
    let fake = Fake::new();
    let trigger = Arc::new(Notify::new());
    let (stop, shutdown) = watch::channel(false);
    let metrics = Metrics::new();
    let r = Reconciler::new(
        source.clone(),
        fake.clone(),
        &config(),
        timing,
        metrics.clone(),
    )
    .with_translator(chain_per_pod);
    let task = tokio::spawn(r.run(trigger.clone(), shutdown));
    Loop {
        source,
        fake,
        trigger,
        stop,
        metrics,
        task,
    }
}

fn timing() -> Timing {
    Timing::from_config(&config())
}

/// Let every ready task run (the clock is paused, so this takes no time).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    // spawn_blocking commits finish on another thread: give them real time.
    std::thread::sleep(Duration::from_millis(5));
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Settle until `done` holds: commits run on the blocking pool in real time,
/// which a loaded machine can delay past one `settle` (bounded: 5 s).
async fn settle_until(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() && std::time::Instant::now() < deadline {
        settle().await;
    }
}

/// Advance the paused clock in small steps, letting tasks run in between.
async fn run_for(d: Duration) {
    run_in_steps(d, Duration::from_millis(5)).await
}

async fn run_in_steps(d: Duration, step: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        advance(step).await;
        settle().await;
    }
}

fn chains(rs: &RuleSet) -> Vec<String> {
    rs.chains.keys().cloned().collect()
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_makes_one_sync_after_the_quiet_time() {
    let l = start(timing());
    run_for(Duration::from_millis(10)).await;
    settle_until(|| l.fake.commit_count() >= 1).await;
    assert_eq!(l.fake.commit_count(), 1, "the start-up sync commits");
    let reads = l.source.reads();
    // Ten changes, 20 ms apart: each one restarts the 100 ms quiet time.
    for i in 0..10 {
        l.source.set_pods(&["a", "b"][..1 + (i % 2)]);
        l.trigger.notify_one();
        run_for(Duration::from_millis(20)).await;
    }
    l.source.set_pods(&["a", "b"]);
    assert_eq!(l.source.reads(), reads, "no sync during the burst");
    run_for(Duration::from_millis(150)).await;
    assert_eq!(l.source.reads(), reads + 1, "exactly one sync after it");
    settle_until(|| l.fake.commit_count() >= 2).await;
    assert_eq!(l.fake.commit_count(), 2);
    assert_eq!(chains(&l.fake.last().unwrap()), ["pod-a", "pod-b"]);
    l.stop.send(true).unwrap();
    l.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn constant_churn_still_syncs_within_the_maximum_delay() {
    let l = start(timing());
    run_for(Duration::from_millis(10)).await;
    let reads = l.source.reads();
    let started = Instant::now();
    // A change every 50 ms forever would starve a pure debounce.
    while l.source.reads() == reads {
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "no sync within 1.5 s of churn (max delay 1 s)"
        );
        l.trigger.notify_one();
        run_for(Duration::from_millis(50)).await;
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "synced after {waited:?}, before the burst bound"
    );
    l.stop.send(true).unwrap();
    l.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_ruleset_is_not_committed_again() {
    let l = start(timing());
    run_for(Duration::from_millis(10)).await;
    settle_until(|| l.fake.commit_count() >= 1).await;
    assert_eq!(l.fake.commit_count(), 1);
    l.trigger.notify_one();
    run_for(Duration::from_millis(300)).await;
    assert_eq!(l.source.reads(), 2, "the change was looked at");
    assert_eq!(l.fake.attempts(), 1, "but nothing was sent");
    assert!(l
        .metrics
        .render()
        .contains("flock_netpol_syncs_total{result=\"skipped\"} 1\n"));
    l.stop.send(true).unwrap();
    l.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn failed_commits_back_off_exponentially_and_keep_the_previous_ruleset() {
    let l = start(timing());
    run_for(Duration::from_millis(10)).await;
    let before = l.fake.last().unwrap();
    l.fake.fail_next(3);
    l.source.set_pods(&["a", "b"]);
    l.trigger.notify_one();
    // Change at 0: sync at 100 ms fails; retries at +0.5 s, +1 s, +2 s.
    let t0 = Instant::now();
    let mut attempt_times = Vec::new();
    let mut seen = l.fake.attempts();
    while attempt_times.len() < 4 {
        assert!(t0.elapsed() < Duration::from_secs(10), "retries stopped");
        run_for(Duration::from_millis(5)).await;
        if l.fake.attempts() > seen {
            seen = l.fake.attempts();
            attempt_times.push(t0.elapsed());
            if attempt_times.len() < 4 {
                assert_eq!(l.fake.last().unwrap(), before, "previous ruleset stays");
            }
        }
    }
    let gaps: Vec<u128> = attempt_times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    for (gap, want) in gaps.iter().zip([500u128, 1000, 2000]) {
        assert!(
            gap.abs_diff(want) <= 20,
            "retry gaps {gaps:?}, want about [500, 1000, 2000]"
        );
    }
    assert_eq!(chains(&l.fake.last().unwrap()), ["pod-a", "pod-b"]);
    assert!(l
        .metrics
        .render()
        .contains("flock_netpol_syncs_total{result=\"failed\"} 3\n"));
    l.stop.send(true).unwrap();
    l.task.await.unwrap();
}

#[test]
fn the_backoff_doubles_up_to_its_cap() {
    let t = timing();
    let delays: Vec<u64> = (1..=9).map(|n| t.backoff(n).as_millis() as u64).collect();
    assert_eq!(
        delays,
        [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    );
}

#[tokio::test(start_paused = true)]
async fn the_periodic_resync_commits_even_an_unchanged_ruleset() {
    let mut t = timing();
    t.resync = Some(Duration::from_secs(60));
    let l = start(t);
    run_for(Duration::from_millis(10)).await;
    settle_until(|| l.fake.commit_count() >= 1).await;
    assert_eq!(l.fake.commit_count(), 1);
    run_in_steps(Duration::from_secs(59), Duration::from_millis(500)).await;
    assert_eq!(l.fake.commit_count(), 1, "nothing before the period");
    run_in_steps(Duration::from_secs(2), Duration::from_millis(500)).await;
    settle_until(|| l.fake.commit_count() >= 2).await;
    assert_eq!(l.fake.commit_count(), 2, "re-committed at the period");
    let commits = l.fake.commits();
    assert_eq!(commits[0], commits[1]);
    l.stop.send(true).unwrap();
    l.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_debounce_stops_without_committing() {
    let l = start(timing());
    run_for(Duration::from_millis(10)).await;
    l.source.set_pods(&["a", "b"]);
    l.trigger.notify_one();
    run_for(Duration::from_millis(30)).await;
    l.stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(1), l.task)
        .await
        .expect("the loop stops promptly")
        .unwrap();
    assert_eq!(l.fake.commit_count(), 1);
}

/// Log lines written by the code under test (one current-thread runtime, so
/// a thread-local subscriber sees the loop's events).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn one_info_line_per_commit_and_one_per_skip() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let l = start(timing());
    run_for(Duration::from_millis(10)).await;
    l.trigger.notify_one(); // unchanged: skipped
    run_for(Duration::from_millis(300)).await;
    l.source.set_pods(&["a", "b"]);
    l.trigger.notify_one();
    run_for(Duration::from_millis(300)).await;
    l.stop.send(true).unwrap();
    l.task.await.unwrap();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let commits: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("committed ruleset"))
        .collect();
    assert_eq!(commits.len(), 2, "{text}");
    for line in &commits {
        for field in [
            "rules=",
            "sets=",
            "elements=",
            "bytes=",
            "duration_ms=",
            "script_hash=",
        ] {
            assert!(line.contains(field), "{field} missing in {line}");
        }
    }
    assert_eq!(text.matches("commit skipped").count(), 1, "{text}");
}
