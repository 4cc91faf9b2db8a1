//! `/metrics`, `/healthz` and `/readyz` of a running daemon (against the fake
//! API server), before and after its stores synced.

mod daemon_common;
mod fake_apiserver;

use std::net::SocketAddr;
use std::time::Duration;

use daemon_common::{config, Daemon};
use fake_apiserver::{namespace, pod, FakeApiServer, Kind};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path`; (status code, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .expect("answer within 5 s")
        .unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Value of an unlabelled (or exactly labelled) sample.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn health_readiness_and_metrics_follow_the_daemon() {
    let server = FakeApiServer::start().await;
    for o in [
        namespace("x", json!({})),
        pod("x", "a", "node-a", "198.18.1.1", json!({"app": "a"})),
        pod("x", "b", "node-b", "198.18.2.1", json!({"app": "b"})),
    ] {
        server.apply(o);
    }
    server.set_list_failing(Kind::NetworkPolicy, true);
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let mut cfg = config();
    cfg.kubeconfig = Some(server.kubeconfig(dir.path()));
    cfg.metrics_addr = Some(addr);
    let d = Daemon::start(cfg);
    let fake = d.fake.clone();

    // Alive but not ready while the policy store cannot sync.
    let mut healthy = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            healthy = get(addr, "/healthz").await.0 == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(healthy, "/healthz answers 200");
    let (code, _) = get(addr, "/readyz").await;
    assert_eq!(code, 503, "not ready before the stores synced");
    let (_, text) = get(addr, "/metrics").await;
    assert_eq!(sample(&text, "flock_netpol_ready"), Some(0.0));

    server.set_list_failing(Kind::NetworkPolicy, false);
    assert!(fake.wait_for_commits(1, Duration::from_secs(20)).await);
    let mut ready = false;
    for _ in 0..100 {
        if get(addr, "/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz turns 200 after the first commit");

    let (code, text) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(
        sample(&text, "flock_netpol_syncs_total{result=\"committed\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "flock_netpol_pods"), Some(2.0));
    assert_eq!(sample(&text, "flock_netpol_namespaces"), Some(1.0));
    assert_eq!(sample(&text, "flock_netpol_policies"), Some(0.0));
    // Every sync (the commit, and skipped ones after late notifications)
    // lands in the histogram.
    let syncs: f64 = ["committed", "skipped", "failed"]
        .iter()
        .map(|r| {
            sample(
                &text,
                &format!("flock_netpol_syncs_total{{result=\"{r}\"}}"),
            )
            .unwrap()
        })
        .sum();
    assert_eq!(
        sample(&text, "flock_netpol_sync_duration_seconds_count"),
        Some(syncs)
    );
    assert_eq!(
        sample(&text, "flock_netpol_syncs_total{result=\"failed\"}"),
        Some(0.0)
    );
    assert!(sample(&text, "flock_netpol_last_successful_sync_timestamp_seconds").unwrap() > 1e9);
    let rules = fake.last().unwrap().stats().rules as f64;
    assert_eq!(sample(&text, "flock_netpol_committed_rules"), Some(rules));
    for family in [
        "committed_sets",
        "committed_elements",
        "committed_bytes",
        "translation_warnings",
    ] {
        assert!(
            text.contains(&format!("# TYPE flock_netpol_{family} gauge")),
            "{family} missing"
        );
    }
    assert_eq!(get(addr, "/nope").await.0, 404);

    d.stop().await;
}
