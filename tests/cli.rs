//! The binary, run as an operator runs it (no cluster, no privileges).

use std::process::{Command, Output};

fn flock_netpol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flock-netpol"))
        .args(args)
        .env_remove("NODE_NAME")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

#[test]
fn a_malformed_manifest_exits_2_naming_file_document_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x}\n\
         spec:\n  containers:\n  - name: c\n    ports:\n    - containerPort: abc\n",
    )
    .unwrap();
    let out = flock_netpol(&[
        "--node",
        "n1",
        "--manifests",
        bad.to_str().unwrap(),
        "--dump-script",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "no script on bad input");
    for part in [
        bad.to_str().unwrap(),
        "document 2",
        "Pod x/a",
        "spec.containers[0].ports[0].containerPort",
    ] {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
}

#[test]
fn a_missing_manifest_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let path = missing.to_str().unwrap();
    let out = flock_netpol(&["--node", "n1", "--manifests", path, "--dump-script"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(path));
}

#[test]
fn a_good_manifest_dumps_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = flock_netpol(&[
        "--node",
        "n1",
        "--manifests",
        good.to_str().unwrap(),
        "--dump-script",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("table inet"));
}
