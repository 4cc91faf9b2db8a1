//! Commit cost: the same 1,000-local-pod ruleset (a cluster of the bench
//! generator, common/gen.rs) committed over netlink (the apply stage) and by
//! `nft -f` of its rendered script, interleaved, in one throwaway network
//! namespace; plus the batch encode time and size.
//!
//! Run as root: `cargo bench --bench commit` (skips with a message
//! otherwise). `ROUNDS=N` sets the number of rounds (default 15).

#[path = "common/gen.rs"]
mod gen;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flock_netpol::apply::{self, batch};
use flock_netpol::snapshot::Snapshot;
use flock_netpol::{render, translate};

const TABLE: &str = "fnp-bench";

/// The generator's cluster with 1,000 pods on the measured node: 4,000 pods,
/// 200 policies.
fn snapshot() -> Snapshot {
    let mut params = gen::Params::new(4_000, 200);
    params.local = 1_000;
    gen::generate(&params).snapshot()
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
    let rs = translate::translate(&snap, gen::LOCAL_NODE, TABLE).ruleset;
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
