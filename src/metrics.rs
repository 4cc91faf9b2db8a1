//! Metrics and health endpoints: a tiny HTTP/1.1 server on tokio serving
//! `/metrics` (Prometheus text format 0.0.4), `/healthz` (the process is
//! alive) and `/readyz` (stores synced and the last commit succeeded).
//!
//! The metrics (all prefixed `flock_netpol_`): `syncs_total{result=
//! "committed"|"skipped"|"failed"}`, `sync_duration_seconds` (histogram),
//! `last_successful_sync_timestamp_seconds`, `committed_rules`,
//! `committed_sets` (sets and verdict maps), `committed_elements`,
//! `committed_bytes` (of the last batch), `translation_warnings`, `pods`,
//! `namespaces`, `policies` (seen in the last sync), `ready`.
//!
//! Must not: block the reconcile loop (the loop only updates counters under a
//! short lock), or hold anything but numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::model::Stats;

/// Upper bounds (seconds) of the sync duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// How a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncResult {
    /// A ruleset was committed.
    Committed,
    /// The ruleset equals the one in force: nothing was sent.
    Skipped,
    /// Building the snapshot or the commit failed; the previous ruleset stays.
    Failed,
}

impl SyncResult {
    fn label(self) -> &'static str {
        match self {
            SyncResult::Committed => "committed",
            SyncResult::Skipped => "skipped",
            SyncResult::Failed => "failed",
        }
    }
}

/// Everything the daemon reports. Shared (`Arc`) between the reconcile loop,
/// the informers and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Every store has synced (or the manifests were read once).
    synced: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    syncs: BTreeMap<SyncResult, u64>,
    /// Per bucket of `BUCKETS` (not cumulative; summed when rendered).
    duration_buckets: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    /// Unix time of the last successful sync (committed or skipped).
    last_success: Option<f64>,
    /// The last sync succeeded (`None` before the first one).
    last_ok: Option<bool>,
    /// Size of the ruleset in force (last committed).
    committed: Stats,
    committed_bytes: u64,
    warnings: u64,
    pods: u64,
    namespaces: u64,
    policies: u64,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Counters stay meaningful even if a holder panicked.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record the end of a sync.
    pub fn record_sync(&self, result: SyncResult, duration: Duration) {
        let mut s = self.lock();
        *s.syncs.entry(result).or_default() += 1;
        let secs = duration.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.duration_buckets[i] += 1;
        }
        s.duration_sum += secs;
        s.duration_count += 1;
        let ok = result != SyncResult::Failed;
        s.last_ok = Some(ok);
        if ok {
            s.last_success = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64());
        }
    }

    /// Record the size of a ruleset just committed.
    pub fn record_commit(&self, stats: Stats, bytes: usize) {
        let mut s = self.lock();
        s.committed = stats;
        s.committed_bytes = bytes as u64;
    }

    /// Objects in the snapshot of the last sync, and its translation warnings.
    pub fn record_input(&self, pods: usize, namespaces: usize, policies: usize, warnings: usize) {
        let mut s = self.lock();
        s.pods = pods as u64;
        s.namespaces = namespaces as u64;
        s.policies = policies as u64;
        s.warnings = warnings as u64;
    }

    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
    }

    /// Stores synced and the last sync succeeded.
    pub fn ready(&self) -> bool {
        self.synced.load(Ordering::SeqCst) && self.lock().last_ok == Some(true)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        family(&mut out, "syncs_total", "counter", "Syncs by result.");
        for r in [
            SyncResult::Committed,
            SyncResult::Skipped,
            SyncResult::Failed,
        ] {
            let n = s.syncs.get(&r).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "flock_netpol_syncs_total{{result=\"{}\"}} {n}",
                r.label()
            );
        }
        family(
            &mut out,
            "sync_duration_seconds",
            "histogram",
            "Duration of a sync (snapshot, translate, commit).",
        );
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(s.duration_buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "flock_netpol_sync_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "flock_netpol_sync_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            s.duration_count
        );
        let _ = writeln!(
            out,
            "flock_netpol_sync_duration_seconds_sum {}",
            s.duration_sum
        );
        let _ = writeln!(
            out,
            "flock_netpol_sync_duration_seconds_count {}",
            s.duration_count
        );
        let gauges: [(&str, &str, f64); 10] = [
            (
                "last_successful_sync_timestamp_seconds",
                "Unix time of the last successful sync (0: none yet).",
                s.last_success.unwrap_or(0.0),
            ),
            (
                "committed_rules",
                "Rules in the ruleset in force.",
                s.committed.rules as f64,
            ),
            (
                "committed_sets",
                "Sets and verdict maps in the ruleset in force.",
                (s.committed.sets + s.committed.maps) as f64,
            ),
            (
                "committed_elements",
                "Set and map elements in the ruleset in force.",
                (s.committed.set_elements + s.committed.map_elements) as f64,
            ),
            (
                "committed_bytes",
                "Bytes of the last committed batch.",
                s.committed_bytes as f64,
            ),
            (
                "translation_warnings",
                "Warnings of the last translation (objects kept fail-closed).",
                s.warnings as f64,
            ),
            ("pods", "Pods seen (all namespaces).", s.pods as f64),
            ("namespaces", "Namespaces seen.", s.namespaces as f64),
            ("policies", "NetworkPolicies seen.", s.policies as f64),
            (
                "ready",
                "1 when the stores synced and the last sync succeeded.",
                if self.synced.load(Ordering::SeqCst) && s.last_ok == Some(true) {
                    1.0
                } else {
                    0.0
                },
            ),
        ];
        for (name, help, value) in gauges {
            family(&mut out, name, "gauge", help);
            let _ = writeln!(out, "flock_netpol_{name} {value}");
        }
        out
    }
}

/// `# HELP` and `# TYPE` lines of one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP flock_netpol_{name} {help}");
    let _ = writeln!(out, "# TYPE flock_netpol_{name} {kind}");
}

/// Bind the HTTP server's socket (separately from serving, so a bad address
/// fails at start-up).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve `/metrics`, `/healthz` and `/readyz` forever (one task per
/// connection, one request per connection).
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("metrics server: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let answer = tokio::time::timeout(Duration::from_secs(5), handle(stream, &metrics));
            if let Ok(Err(e)) = answer.await {
                tracing::debug!("metrics server: {e}");
            }
        });
    }
}

async fn handle(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 16 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/readyz") if metrics.ready() => ("200 OK", "text/plain", "ready\n".to_string()),
        ("GET", "/readyz") => (
            "503 Service Unavailable",
            "text/plain",
            "not ready: stores not synced or last sync failed\n".to_string(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_sync_and_a_successful_last_sync() {
        let m = Metrics::default();
        assert!(!m.ready());
        m.set_synced(true);
        assert!(!m.ready(), "no sync yet");
        m.record_sync(SyncResult::Committed, Duration::from_millis(3));
        assert!(m.ready());
        m.record_sync(SyncResult::Failed, Duration::from_millis(3));
        assert!(!m.ready());
        m.record_sync(SyncResult::Skipped, Duration::from_millis(3));
        assert!(m.ready());
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_counts_by_result() {
        let m = Metrics::default();
        m.record_sync(SyncResult::Committed, Duration::from_millis(2));
        m.record_sync(SyncResult::Failed, Duration::from_millis(200));
        m.record_sync(SyncResult::Failed, Duration::from_secs(60));
        let text = m.render();
        assert!(text.contains("flock_netpol_syncs_total{result=\"failed\"} 2\n"));
        assert!(text.contains("flock_netpol_syncs_total{result=\"committed\"} 1\n"));
        assert!(text.contains("flock_netpol_sync_duration_seconds_bucket{le=\"0.0025\"} 1\n"));
        assert!(text.contains("flock_netpol_sync_duration_seconds_bucket{le=\"0.25\"} 2\n"));
        assert!(text.contains("flock_netpol_sync_duration_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("flock_netpol_sync_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("flock_netpol_sync_duration_seconds_count 3\n"));
    }
}
