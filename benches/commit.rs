//! Commit cost: the same 1,000-local-pod ruleset committed over netlink (the
//! apply stage) and by `nft -f` of its rendered script, interleaved, in one
//! throwaway network namespace; plus the batch encode time and size.
//!
//! Run as root: `cargo bench --bench commit` (skips with a message
//! otherwise). `ROUNDS=N` sets the number of rounds (default 15).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flock_netpol::apply::{self, batch};
use flock_netpol::snapshot::{ContainerPort, Namespace, Phase, Pod, Policy, Snapshot};
use flock_netpol::{render, translate};

const LOCAL_PODS: usize = 1_000;
const REMOTE_PODS: usize = 3_000;
const NAMESPACES: usize = 20;
const TABLE: &str = "fnp-bench";

fn pod(i: usize, node: &str, n: usize) -> Pod {
    let ns = format!("ns-{}", i % NAMESPACES);
    let v4 = Ipv4Addr::from(0xc612_0000u32 + ((n as u32 + 1) << 12) + i as u32);
    let v6 = Ipv6Addr::from(
        u128::from("fd00:198:18::".parse::<Ipv6Addr>().unwrap())
            + ((n as u128 + 1) << 64)
            + i as u128,
    );
    Pod {
        namespace: ns,
        name: format!("{node}-pod-{i}"),
        labels: BTreeMap::from([
            ("app".to_string(), format!("app-{}", i % 7)),
            (
                "tier".to_string(),
                ["web", "db", "cache"][i % 3].to_string(),
            ),
        ]),
        node: Some(node.to_string()),
        host_network: false,
        phase: Phase::Running,
        terminating: false,
        ips: vec![IpAddr::V4(v4), IpAddr::V6(v6)],
        ports: vec![ContainerPort {
            name: Some("http".into()),
            port: 8080,
            protocol: "TCP".into(),
        }],
    }
}

/// Per namespace: default deny (both directions), allow web from the same
/// namespace's app-1 pods on 80 and named port http, db from web in any
/// namespace labelled team=a, egress to an ipBlock with except, and DNS.
fn policies(ns: &str) -> Vec<Policy> {
    let spec = |v: serde_json::Value| serde_json::from_value(v).expect("policy spec");
    vec![
        Policy {
            namespace: ns.into(),
            name: "default-deny".into(),
            spec: spec(
                serde_json::json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            ),
        },
        Policy {
            namespace: ns.into(),
            name: "web".into(),
            spec: spec(serde_json::json!({
                "podSelector": {"matchLabels": {"tier": "web"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "app-1"}}}],
                             "ports": [{"port": 80}, {"port": "http"}]}]
            })),
        },
        Policy {
            namespace: ns.into(),
            name: "db".into(),
            spec: spec(serde_json::json!({
                "podSelector": {"matchLabels": {"tier": "db"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}},
                                       "podSelector": {"matchLabels": {"tier": "web"}}}],
                             "ports": [{"port": 5432}]}]
            })),
        },
        Policy {
            namespace: ns.into(),
            name: "egress".into(),
            spec: spec(serde_json::json!({
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {"to": [{"ipBlock": {"cidr": "198.18.0.0/15", "except": ["198.18.255.0/24"]}},
                            {"ipBlock": {"cidr": "fd00:198:18::/48", "except": ["fd00:198:18:ff::/64"]}}]},
                    {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
                ]
            })),
        },
    ]
}

fn snapshot() -> Snapshot {
    let mut pods: Vec<Pod> = (0..LOCAL_PODS).map(|i| pod(i, "node-1", 0)).collect();
    pods.extend((0..REMOTE_PODS).map(|i| pod(i, &format!("node-{}", 2 + i % 30), 1 + i % 30)));
    let namespaces = (0..NAMESPACES)
        .map(|i| Namespace {
            name: format!("ns-{i}"),
            labels: BTreeMap::from([("team".to_string(), ["a", "b"][i % 2].to_string())]),
        })
        .collect();
    let policies = (0..NAMESPACES)
        .flat_map(|i| policies(&format!("ns-{i}")))
        .collect();
    let mut snap = Snapshot {
        pods,
        namespaces,
        policies,
    };
    snap.normalize();
    snap
}

fn nft_f(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(())
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// `median (min-max)` in milliseconds.
fn spread(v: &[Duration]) -> String {
    let (lo, hi) = (v.iter().min().unwrap(), v.iter().max().unwrap());
    format!("{:.1} ms ({:.1}-{:.1})", ms(median(v)), ms(*lo), ms(*hi))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP commit bench: needs root for a throwaway network namespace");
        return;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        println!("SKIP commit bench: nft is not installed");
        return;
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);

    let t = Instant::now();
    let snap = snapshot();
    let rs = translate::translate(&snap, "node-1", TABLE).ruleset;
    let translate_time = t.elapsed();
    let script = render::render(&rs);
    println!(
        "ruleset: {} (translate {:.1} ms)",
        rs.stats(),
        ms(translate_time)
    );
    println!("script: {} bytes", script.len());

    let mut encodes = Vec::new();
    let mut enc = None;
    for _ in 0..rounds {
        let t = Instant::now();
        enc = Some(batch::encode(&rs).expect("encode"));
        encodes.push(t.elapsed());
    }
    let enc = enc.expect("at least one round");
    println!(
        "batch: {} messages, {} bytes; encode median {:.2} ms",
        enc.objects.len(),
        enc.bytes.len(),
        ms(median(&encodes))
    );

    let (netlink, nft) = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        let (mut netlink, mut nft) = (Vec::new(), Vec::new());
        // One warm-up of each, then interleaved rounds; every round is a full
        // atomic replace of the table that is there.
        apply::commit_once(&rs).expect("netlink commit");
        nft_f(&script).expect("nft -f");
        for _ in 0..rounds {
            let t = Instant::now();
            apply::commit_once(&rs).expect("netlink commit");
            netlink.push(t.elapsed());
            let t = Instant::now();
            nft_f(&script).expect("nft -f");
            nft.push(t.elapsed());
        }
        (netlink, nft)
    })
    .join()
    .expect("bench thread");
    let (a, b) = (median(&netlink), median(&nft));
    println!(
        "commit, median (min-max) of {rounds}: netlink {}, nft -f {}, ratio nft/netlink {:.2}x",
        spread(&netlink),
        spread(&nft),
        b.as_secs_f64() / a.as_secs_f64()
    );
}
