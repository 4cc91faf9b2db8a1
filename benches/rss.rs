//! Peak RSS of the real binary with a 10k-pod / 1k-policy cluster
//! (110 pods on the node):
//!
//! 1. `--dump-script --manifests cluster.json` (unprivileged): the child's
//!    `ru_maxrss` from wait4;
//! 2. as root, the daemon watching the fake API server (tests/fake_apiserver)
//!    that serves the same cluster, after its first commit: `VmHWM` of
//!    /proc/PID/status;
//! 3. as root, the daemon in `--manifests` watch mode on the same file.
//!
//! `cargo bench --bench rss`. The root parts run in a network namespace of
//! their own (the whole process unshares one first: the fake API server and
//! the daemon meet on its 127.0.0.1, and the table is committed there).
//! `RSS_PODS` / `RSS_POLICIES` change the size. `RSS_SERVE_SECS=N` skips the
//! fake-API-server measurement and serves the cluster for N seconds instead,
//! printing the command that runs a daemon against it (for heaptrack and
//! friends).
//!
//! Must not: touch the root network namespace, or wait without a bound.

#[path = "common/gen.rs"]
mod gen;

#[path = "../tests/fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_flock-netpol");
const BOUND: Duration = Duration::from_secs(120);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Run `cmd` to completion and return its peak RSS in KiB (wait4's rusage).
// The child is reaped by wait4 itself, which std's wait() cannot replace.
#[allow(clippy::zombie_processes)]
fn peak_of_run(cmd: &mut Command) -> u64 {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: plain wait4 on our own child with valid out pointers.
    let r = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut usage) };
    assert_eq!(r, pid.as_raw(), "wait4");
    let status = std::process::ExitStatus::from_raw(status);
    assert!(status.success(), "{cmd:?}: {status}");
    usage.ru_maxrss as u64
}

/// `VmHWM` and `VmRSS` (KiB) of a live process.
fn vm_hwm_rss(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Start the daemon with `args`, wait (bounded) for its first
/// "committed ruleset" log line, let it settle, read its memory, stop it.
fn daemon_peak(args: &[&str]) -> Result<(u64, u64, Duration), String> {
    let started = Instant::now();
    let mut child: Child = Command::new(BIN)
        .args(args)
        .args(["--metrics-addr", "off", "--table", "fnp-bench-rss"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("committed ruleset") {
                let _ = tx.send(Ok(()));
            } else if line.contains("ERROR") {
                let _ = tx.send(Err(line));
            }
        }
    });
    let result = match rx.recv_timeout(BOUND) {
        Ok(Ok(())) => {
            let to_commit = started.elapsed();
            std::thread::sleep(Duration::from_secs(2));
            let (hwm, rss) = vm_hwm_rss(child.id());
            Ok((hwm, rss, to_commit))
        }
        Ok(Err(line)) => Err(line),
        Err(_) => Err("no commit within the bound".into()),
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    result
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench --list
    }
    let params = gen::Params::new(env_or("RSS_PODS", 10_000), env_or("RSS_POLICIES", 1_000));
    let cluster = gen::generate(&params);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cluster.json");
    cluster.write_json(&file).expect("write manifest");
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "cluster: {} pods, {} policies, {} namespaces, {} local pods; manifest {:.1} MiB",
        params.pods,
        params.policies,
        params.namespaces(),
        params.local,
        size as f64 / (1 << 20) as f64
    );
    let file_arg = file.to_str().expect("utf-8 path");

    let kib = peak_of_run(Command::new(BIN).args([
        "--dump-script",
        "--node",
        gen::LOCAL_NODE,
        "--manifests",
        file_arg,
    ]));
    println!("peak RSS --dump-script: {:.1} MiB", mib(kib));

    if !nix::unistd::geteuid().is_root() {
        println!("SKIP daemon RSS: needs root (a network namespace to commit in)");
        return;
    }
    // Single-threaded so far: the whole process moves to a new netns.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("ip");
    assert!(up.success(), "ip link set lo up");

    report(
        "daemon --manifests (watch mode)",
        daemon_peak(&["--node", gen::LOCAL_NODE, "--manifests", file_arg]),
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt.block_on(fake_apiserver::FakeApiServer::start());
    for obj in cluster
        .namespaces
        .iter()
        .chain(&cluster.pods)
        .chain(&cluster.policies)
    {
        server.apply(obj.clone());
    }
    let kubeconfig = server.kubeconfig(dir.path());
    if let Some(secs) = std::env::var("RSS_SERVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        // For profiling by hand: keep serving, bounded, and say where.
        println!(
            "serving for {secs} s: nsenter --net=/proc/{}/ns/net {BIN} --node {} --kubeconfig {}",
            std::process::id(),
            gen::LOCAL_NODE,
            kubeconfig.display()
        );
        std::thread::sleep(Duration::from_secs(secs));
        return;
    }
    report(
        "daemon on the fake API server",
        daemon_peak(&[
            "--node",
            gen::LOCAL_NODE,
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8 path"),
        ]),
    );
    drop(server);
}

fn report(what: &str, r: Result<(u64, u64, Duration), String>) {
    match r {
        Ok((hwm, rss, t)) => println!(
            "peak RSS {what}: {:.1} MiB (RSS after the first commit + 2 s: {:.1} MiB; first commit {:.2} s after start)",
            mib(hwm),
            mib(rss),
            t.as_secs_f64()
        ),
        Err(e) => println!("FAILED {what}: {e}"),
    }
}
