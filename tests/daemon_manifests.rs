//! Daemon mode on `--manifests`: the files are watched and every change of
//! content is reconciled; a manifest that stops parsing keeps the previous
//! ruleset in force.

mod daemon_common;

use std::path::Path;
use std::time::Duration;

use daemon_common::{config, Daemon, NODE, TABLE};
use flock_netpol::{manifests, translate};

const NAMESPACES: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: x}
";

fn pods(b_label: &str) -> String {
    format!(
        "
apiVersion: v1
kind: Pod
metadata: {{name: a, namespace: x, labels: {{app: a}}}}
spec: {{nodeName: node-a, containers: [{{name: c, ports: [{{containerPort: 80}}]}}]}}
status: {{phase: Running, podIP: 198.18.1.1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: b, namespace: x, labels: {{app: {b_label}}}}}
spec: {{nodeName: node-b, containers: [{{name: c}}]}}
status: {{phase: Running, podIP: 198.18.2.1}}
"
    )
}

const POLICY: &str = "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-b, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}]}]
";

/// Wait until the daemon synced exactly what the directory holds now, and
/// the ruleset in force is its translation.
async fn converges(dir: &Path, d: &mut Daemon) {
    let want = manifests::load(&[dir.to_path_buf()]).expect("test manifests load");
    d.synced(&want).await;
    let rs = translate::translate(&want, NODE, TABLE).ruleset;
    assert_eq!(d.fake.last(), Some(rs));
}

#[tokio::test]
async fn edits_of_watched_manifests_are_reconciled() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ns.yaml"), NAMESPACES).unwrap();
    std::fs::write(dir.path().join("pods.yaml"), pods("b")).unwrap();
    let mut cfg = config();
    cfg.manifests = vec![dir.path().to_path_buf()];
    let mut d = Daemon::start(cfg);
    converges(dir.path(), &mut d).await;

    // A new file.
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    converges(dir.path(), &mut d).await;
    assert_eq!(d.snapshots.borrow().as_ref().unwrap().policies.len(), 1);

    // An edit in place: the peer is relabelled.
    std::fs::write(dir.path().join("pods.yaml"), pods("z")).unwrap();
    converges(dir.path(), &mut d).await;

    // A broken file: the sync fails and the previous ruleset stays.
    let before = (d.fake.last(), d.fake.commit_count());
    std::fs::write(dir.path().join("broken.yaml"), "kind: [unclosed\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!((d.fake.last(), d.fake.commit_count()), before);

    // Fixed again (removed): back in business.
    std::fs::remove_file(dir.path().join("broken.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("policy.yaml")).unwrap();
    converges(dir.path(), &mut d).await;
    assert!(d.snapshots.borrow().as_ref().unwrap().policies.is_empty());
    d.stop().await;
}
