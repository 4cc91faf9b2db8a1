//! Pipeline benches: translate, render and encode of the measured node's
//! ruleset, for synthetic clusters (see `common/gen.rs`). `cargo bench --bench
//! pipeline`; numbers are in BENCHMARKS.md.
//!
//! With `FLOCK_BENCH_CPU=1` it prints, instead of criterion's wall-clock
//! statistics, the median CPU time of this thread per run of each stage
//! (useful on a shared machine, where wall clock measures the neighbours).

#[path = "common/gen.rs"]
mod gen;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion};
use flock_netpol::apply::batch;
use flock_netpol::model::DEFAULT_TABLE;
use flock_netpol::render::render;
use flock_netpol::snapshot::Snapshot;
use flock_netpol::translate::translate;

const NODE: &str = gen::LOCAL_NODE;

/// (pods, policies); 110 pods on the measured node.
const SIZES: [(usize, usize); 3] = [(1_000, 100), (10_000, 100), (10_000, 1_000)];

fn cluster((pods, policies): (usize, usize)) -> Snapshot {
    gen::generate(&gen::Params::new(pods, policies)).snapshot()
}

fn pipeline(c: &mut Criterion) {
    // The agent's allocator settings (see src/alloc.rs).
    flock_netpol::alloc::configure().expect("prctl(PR_SET_THP_DISABLE)");
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for size in SIZES {
        let snap = cluster(size);
        let id = format!("{}pods-{}policies", size.0, size.1);
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

/// CPU time consumed by this thread so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Median thread CPU time of `runs` calls of `f` (after two warm-up calls).
fn cpu_median<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    black_box(f());
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t0 = thread_cpu();
            black_box(f());
            thread_cpu() - t0
        })
        .collect();
    v.sort();
    v[runs / 2]
}

fn cpu_report() {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for size in SIZES {
        let snap = cluster(size);
        let rs = translate(&snap, NODE, DEFAULT_TABLE).ruleset;
        let t = cpu_median(21, || translate(&snap, NODE, DEFAULT_TABLE));
        let r = cpu_median(21, || render(&rs));
        let e = cpu_median(21, || batch::encode(&rs));
        println!(
            "{:>6} pods {:>5} policies: translate {:7.2} ms  render {:7.2} ms  encode {:7.2} ms  sum {:7.2} ms  ({})",
            size.0,
            size.1,
            ms(t),
            ms(r),
            ms(e),
            ms(t + r + e),
            rs.stats()
        );
    }
}

criterion_group!(benches, pipeline);

fn main() {
    flock_netpol::alloc::configure().expect("prctl(PR_SET_THP_DISABLE)");
    if std::env::var_os("FLOCK_BENCH_CPU").is_some() {
        cpu_report();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
