//! Write a synthetic cluster (the benches' generator) as one JSON
//! `kind: List` manifest, for runs of the real binary (`--dump-script`,
//! `--manifests` daemon) and for the peak-RSS measurements of BENCHMARKS.md.
//!
//! `cargo run --release --example bench_cluster -- PODS POLICIES OUT.json [LOCAL_PODS]`
//! prints the ruleset size and the in-process stage times for node-0.
//!
//! Must not: write anywhere but OUT.

#[path = "../benches/common/gen.rs"]
mod gen;

use std::path::PathBuf;
use std::time::Instant;

use flock_netpol::apply::batch;
use flock_netpol::{render, translate};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pods, policies, out, local) = match args.as_slice() {
        [p, q, o] => (p, q, o, None),
        [p, q, o, l] => (p, q, o, Some(l.parse::<usize>()?)),
        _ => anyhow::bail!("usage: bench_cluster PODS POLICIES OUT.json [LOCAL_PODS]"),
    };
    let mut params = gen::Params::new(pods.parse()?, policies.parse()?);
    if let Some(local) = local {
        params.local = local.min(params.pods);
    }
    let cluster = gen::generate(&params);
    cluster.write_json(&PathBuf::from(out))?;
    let snap = cluster.snapshot();
    let t = Instant::now();
    let tr = translate::translate(&snap, gen::LOCAL_NODE, "flock-netpol");
    let t_translate = t.elapsed();
    let t = Instant::now();
    let script = render::render(&tr.ruleset);
    let t_render = t.elapsed();
    let t = Instant::now();
    let enc = batch::encode(&tr.ruleset)?;
    let t_encode = t.elapsed();
    println!(
        "{out}: {} namespaces, {} pods, {} policies; node {}: {}; {} warnings",
        snap.namespaces.len(),
        snap.pods.len(),
        snap.policies.len(),
        gen::LOCAL_NODE,
        tr.ruleset.stats(),
        tr.warnings.len()
    );
    println!(
        "one run: translate {:.2} ms, render {:.2} ms ({} bytes), encode {:.2} ms ({} bytes)",
        t_translate.as_secs_f64() * 1e3,
        t_render.as_secs_f64() * 1e3,
        script.len(),
        t_encode.as_secs_f64() * 1e3,
        enc.bytes.len()
    );
    // Where the volume comes from: peer sets with the same elements.
    let mut distinct = std::collections::BTreeMap::new();
    for set in tr.ruleset.sets.values() {
        distinct.insert((set.family, &set.elements), set.elements.len());
    }
    println!(
        "peer sets: {} ({} elements), distinct by content: {} ({} elements)",
        tr.ruleset.sets.len(),
        tr.ruleset.stats().set_elements,
        distinct.len(),
        distinct.values().sum::<usize>()
    );
    // The part of translate that does not depend on local pods (indexing the
    // cluster, compiling every policy).
    let t = Instant::now();
    let none = translate::translate(&snap, "no-such-node", "flock-netpol");
    println!(
        "translate for a node without pods: {:.2} ms ({})",
        t.elapsed().as_secs_f64() * 1e3,
        none.ruleset.stats()
    );
    Ok(())
}
