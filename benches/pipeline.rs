//! Pipeline benches: translate, render and encode of the measured node's
//! ruleset, for synthetic clusters (see `common`). `cargo bench --bench
//! pipeline`; numbers are in BENCHMARKS.md.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{cluster, Size, NODE};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use flock_netpol::apply::batch;
use flock_netpol::model::DEFAULT_TABLE;
use flock_netpol::render::render;
use flock_netpol::translate::translate;

const SIZES: [Size; 3] = [
    Size {
        pods: 1_000,
        policies: 100,
    },
    Size {
        pods: 10_000,
        policies: 100,
    },
    Size {
        pods: 10_000,
        policies: 1_000,
    },
];

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for size in SIZES {
        let snap = cluster(size);
        let id = format!("{}pods-{}policies", size.pods, size.policies);
        let t = translate(&snap, NODE, DEFAULT_TABLE);
        assert!(
            t.warnings.is_empty(),
            "generated cluster is valid: {:?}",
            t.warnings
        );
        let rs = t.ruleset;
        let script = render(&rs);
        let enc = batch::encode(&rs).expect("encodes");
        eprintln!(
            "{id}: {}; script {} bytes; batch {} bytes, {} messages",
            rs.stats(),
            script.len(),
            enc.bytes.len(),
            enc.objects.len()
        );
        g.bench_with_input(BenchmarkId::new("translate", &id), &snap, |b, s| {
            b.iter(|| translate(black_box(s), NODE, DEFAULT_TABLE))
        });
        g.bench_with_input(BenchmarkId::new("render", &id), &rs, |b, rs| {
            b.iter(|| render(black_box(rs)))
        });
        g.bench_with_input(BenchmarkId::new("encode", &id), &rs, |b, rs| {
            b.iter(|| batch::encode(black_box(rs)))
        });
        g.bench_with_input(
            BenchmarkId::new("translate+render+encode", &id),
            &snap,
            |b, s| {
                b.iter(|| {
                    let rs = translate(black_box(s), NODE, DEFAULT_TABLE).ruleset;
                    (render(&rs).len(), batch::encode(&rs).map(|e| e.bytes.len()))
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
