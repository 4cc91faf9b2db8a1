//! Scale: translate, render and encode (time, and the batch's size) on
//! synthetic clusters of 1k / 10k / 50k pods with 100 / 1k / 5k policies,
//! 110 pods on the measured node; plus the whole sync (translate + render +
//! encode) at 10k pods / 1k policies.
//!
//! `cargo bench --bench scale` (unprivileged). `SCALE_QUICK=1` keeps only the
//! 10k-pod cases. Sizes (rules, sets, elements, script and batch bytes) are
//! printed once per case on stderr.
//!
//! Must not: touch the kernel (encode only builds bytes).

#[path = "common/gen.rs"]
mod gen;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use flock_netpol::apply::batch;
use flock_netpol::snapshot::Snapshot;
use flock_netpol::{render, translate};

const TABLE: &str = "flock-netpol";
const PODS: [usize; 3] = [1_000, 10_000, 50_000];
const POLICIES: [usize; 3] = [100, 1_000, 5_000];

fn cases() -> Vec<(usize, usize)> {
    let quick = std::env::var_os("SCALE_QUICK").is_some();
    PODS.iter()
        .filter(|&&p| !quick || p == 10_000)
        .flat_map(|&p| POLICIES.iter().map(move |&q| (p, q)))
        .collect()
}

fn snapshot(pods: usize, policies: usize) -> Snapshot {
    gen::generate(&gen::Params::new(pods, policies)).snapshot()
}

fn stages(c: &mut Criterion) {
    // The agent's allocator settings (see src/alloc.rs).
    flock_netpol::alloc::configure().expect("prctl(PR_SET_THP_DISABLE)");
    for (pods, policies) in cases() {
        let snap = snapshot(pods, policies);
        let t = translate::translate(&snap, gen::LOCAL_NODE, TABLE);
        let rs = t.ruleset;
        let script = render::render(&rs);
        let enc = batch::encode(&rs).expect("encode");
        eprintln!(
            "size {pods} pods / {policies} policies: {}; {} warnings; script {} bytes; batch {} messages, {} bytes",
            rs.stats(),
            t.warnings.len(),
            script.len(),
            enc.objects.len(),
            enc.bytes.len()
        );

        let mut g = c.benchmark_group(format!("{pods}-pods"));
        // Big cases take up to seconds per iteration: few flat samples.
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(if pods >= 50_000 { 6 } else { 2 }));
        g.bench_with_input(BenchmarkId::new("translate", policies), &snap, |b, snap| {
            b.iter(|| translate::translate(black_box(snap), gen::LOCAL_NODE, TABLE))
        });
        g.bench_with_input(BenchmarkId::new("render", policies), &rs, |b, rs| {
            b.iter(|| render::render(black_box(rs)))
        });
        g.bench_with_input(BenchmarkId::new("encode", policies), &rs, |b, rs| {
            b.iter(|| batch::encode(black_box(rs)).expect("encode"))
        });
        g.finish();
    }
}

/// The sync of issue 7's target: 10k pods, 1k policies, 110 local pods.
fn sync(c: &mut Criterion) {
    flock_netpol::alloc::configure().expect("prctl(PR_SET_THP_DISABLE)");
    let snap = snapshot(10_000, 1_000);
    let mut g = c.benchmark_group("sync");
    g.sample_size(30);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(
        "translate+render+encode/10k-pods-1k-policies-110-local",
        |b| {
            b.iter(|| {
                let rs = translate::translate(black_box(&snap), gen::LOCAL_NODE, TABLE).ruleset;
                let script = render::render(&rs);
                let enc = batch::encode(&rs).expect("encode");
                (script.len(), enc.bytes.len())
            })
        },
    );
    g.bench_function("translate+encode/10k-pods-1k-policies-110-local", |b| {
        b.iter(|| {
            let rs = translate::translate(black_box(&snap), gen::LOCAL_NODE, TABLE).ruleset;
            batch::encode(&rs).expect("encode").bytes.len()
        })
    });
    g.finish();
}

criterion_group!(benches, sync, stages);
criterion_main!(benches);
