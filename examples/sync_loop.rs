//! Run the sync of issue 7's target (translate + render + encode of node-0's
//! ruleset, 10k pods / 1k policies unless told otherwise) N times in a loop,
//! for a profiler: `perf record -g target/release/examples/sync_loop 200`.
//!
//! `cargo run --release --example sync_loop -- [N] [PODS] [POLICIES] [STAGES]`
//! where STAGES is any of `t`, `r`, `e` (default `tre`). Prints the median
//! and minimum wall time per stage.
//!
//! Must not: write anything; touch the kernel.

#[path = "../benches/common/gen.rs"]
mod gen;

use std::hint::black_box;
use std::time::{Duration, Instant};

use flock_netpol::apply::batch;
use flock_netpol::{render, translate};

fn main() {
    flock_netpol::alloc::configure().expect("prctl(PR_SET_THP_DISABLE)");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| args.get(i).map_or(d, |s| s.parse().expect("a number"));
    let (n, pods, policies) = (arg(0, 100), arg(1, 10_000), arg(2, 1_000));
    let stages = args.get(3).map_or("tre", String::as_str);
    let snap = gen::generate(&gen::Params::new(pods, policies)).snapshot();
    let rs = translate::translate(&snap, gen::LOCAL_NODE, "flock-netpol").ruleset;
    let mut times = [vec![], vec![], vec![]];
    for _ in 0..n {
        let t = Instant::now();
        let fresh = stages.contains('t').then(|| {
            translate::translate(black_box(&snap), gen::LOCAL_NODE, "flock-netpol").ruleset
        });
        times[0].push(t.elapsed());
        let rs = fresh.as_ref().unwrap_or(&rs);
        let t = Instant::now();
        if stages.contains('r') {
            black_box(render::render(rs));
        }
        times[1].push(t.elapsed());
        let t = Instant::now();
        if stages.contains('e') {
            black_box(batch::encode(rs).expect("encode"));
        }
        times[2].push(t.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (name, mut v) in ["translate", "render", "encode"].into_iter().zip(times) {
        v.sort();
        println!(
            "{name}: median {:.2} ms, min {:.2} ms",
            ms(v[v.len() / 2]),
            ms(v[0])
        );
    }
}
