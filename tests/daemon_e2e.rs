//! End to end, as root: the real binary in daemon mode inside a node network
//! namespace, watching the fake API server (also served inside that
//! namespace, on its 127.0.0.1), enforcing on two pod namespaces routed
//! through the node. Real TCP probes over IPv4 and IPv6 observe:
//!
//! 1. no policy: open;
//! 2. a default-deny ingress policy for app=server: the server pod isolated;
//! 3. a new pod with app=server appears: isolated as soon as it is known;
//! 4. the policy is deleted: traffic reopens;
//! 5. SIGTERM: the daemon exits 0 and the table stays in force.
//!
//! Each transition is waited for within a bound and its latency (API change
//! to the first probe seeing it) printed; there is no timing assertion.
//! A second test checks SIGTERM in manifests mode in a throwaway namespace.
//! Root only; namespaces and processes are removed by name and pid on drop.

mod common;
mod fake_apiserver;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fake_apiserver::{namespace, pod, policy, FakeApiServer, Kind};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

const NODE: &str = "node-1";
const TABLE: &str = "fnp-e2e";
const PORT: u16 = 8081;
/// Bound of every wait for a transition.
const BOUND: Duration = Duration::from_secs(15);

/// (name, IPv4, IPv6) of the pods; the node side is 198.18.3.1 / fe80::1.
const CLIENT: (&str, &str, &str) = ("client", "198.18.3.10", "fd00:198:18:3::10");
const SERVER: (&str, &str, &str) = ("server", "198.18.3.11", "fd00:198:18:3::11");
const LATE: (&str, &str, &str) = ("late", "198.18.3.12", "fd00:198:18:3::12");

/// Namespaces `fnp-daemon-<pid>-<role>` and the daemon process, removed on
/// drop (by pid and by name).
struct World {
    prefix: String,
    daemon: Option<Child>,
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl World {
    fn ns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// The node namespace and one namespace per pod, each pod behind a
    /// veth with a /32 and a /128 route on the node.
    fn build() -> World {
        let w = World {
            prefix: format!("fnp-daemon-{}-", std::process::id()),
            daemon: None,
        };
        let node = w.ns("node");
        let mut script = format!("netns add {node}\n");
        for (name, _, _) in [CLIENT, SERVER, LATE] {
            script += &format!("netns add {}\n", w.ns(name));
        }
        run_batch(None, &script);
        for ns in [node.clone(), w.ns("client"), w.ns("server"), w.ns("late")] {
            let sysctls = "net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
                           net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
                           net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1";
            let mut args = vec!["netns", "exec", &ns, "sysctl", "-qw"];
            args.extend(sysctls.split_whitespace());
            run("ip", &args);
        }
        let mut on_node = "link set lo up\n".to_string();
        for (i, (name, v4, v6)) in [CLIENT, SERVER, LATE].into_iter().enumerate() {
            let pod_ns = w.ns(name);
            let host = format!("veth{i}");
            on_node += &format!(
                "link add {host} type veth peer name eth0 netns {pod_ns}\n\
                 addr add 198.18.3.1/32 dev {host}\n\
                 addr add fe80::1/64 dev {host}\n\
                 link set {host} up\n\
                 route add {v4}/32 dev {host}\n\
                 route add {v6}/128 dev {host}\n"
            );
        }
        run_batch(Some(&node), &on_node);
        for (name, v4, v6) in [CLIENT, SERVER, LATE] {
            let in_pod = format!(
                "link set lo up\n\
                 addr add {v4}/32 dev eth0\n\
                 addr add {v6}/128 dev eth0\n\
                 link set eth0 up\n\
                 route add 198.18.3.1 dev eth0\n\
                 route add default via 198.18.3.1 dev eth0\n\
                 route add ::/0 via fe80::1 dev eth0\n"
            );
            run_batch(Some(&w.ns(name)), &in_pod);
        }
        w
    }
}

/// `ip [-n ns] -batch -` fed with `script`.
fn run_batch(ns: Option<&str>, script: &str) {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ip -batch failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for role in ["client", "server", "late", "node"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .status();
        }
    }
}

/// A TCP listener on both addresses of a pod, accepting until `stop`
/// (bounded by two minutes).
fn serve(ns: &str, v4: &'static str, v6: &'static str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    common::in_named_netns(ns, move || {
        let listeners: Vec<TcpListener> = [v4, v6]
            .iter()
            .map(|a| {
                let l = TcpListener::bind((a.parse::<std::net::IpAddr>().unwrap(), PORT)).unwrap();
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            for l in &listeners {
                while l.accept().is_ok() {}
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

/// From the client pod: can it connect to `to` over (IPv4, IPv6)?
fn reach(client_ns: &str, to: (&'static str, &'static str, &'static str)) -> (bool, bool) {
    common::in_named_netns(client_ns, move || {
        let connect = |ip: &str| {
            let addr = SocketAddr::new(ip.parse().unwrap(), PORT);
            TcpStream::connect_timeout(&addr, Duration::from_millis(150)).is_ok()
        };
        (connect(to.1), connect(to.2))
    })
    .join()
    .unwrap()
}

/// Poll until `reach` gives `want` (bounded); the time it took.
fn wait_reach(
    client_ns: &str,
    to: (&'static str, &'static str, &'static str),
    want: (bool, bool),
    what: &str,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = reach(client_ns, to);
        if got == want {
            let took = start.elapsed();
            eprintln!("LATENCY {what}: {} ms", took.as_millis());
            return took;
        }
        assert!(
            start.elapsed() < BOUND,
            "{what}: still {got:?} after {BOUND:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pod_object(p: (&str, &str, &str), labels: serde_json::Value) -> serde_json::Value {
    let mut o = pod("x", p.0, NODE, p.1, labels);
    o["status"]["podIPs"] = json!([{"ip": p.1}, {"ip": p.2}]);
    o
}

fn table_exists(node_ns: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", node_ns, "nft", "list", "table", "inet", TABLE,
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_daemon_isolates_a_new_pod_and_reopens_on_policy_deletion() {
    if common::skip_unless_root("the_daemon_isolates_a_new_pod_and_reopens_on_policy_deletion") {
        return;
    }
    let mut world = World::build();
    let node = world.ns("node");
    let client = world.ns("client");

    // The fake API server, inside the node namespace on its loopback.
    let (tx, rx) = mpsc::channel();
    let (stop_api_tx, stop_api_rx) = tokio::sync::oneshot::channel::<()>();
    let api_thread = common::in_named_netns(&node, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Arc::new(FakeApiServer::start().await);
            tx.send(server.clone()).unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(180), stop_api_rx).await;
        });
    });
    let api = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("fake API server up");
    api.apply(namespace("x", json!({})));
    api.apply(pod_object(CLIENT, json!({"app": "client"})));
    api.apply(pod_object(SERVER, json!({"app": "server"})));

    let stop = Arc::new(AtomicBool::new(false));
    let servers = [SERVER, LATE].map(|(name, v4, v6)| serve(&world.ns(name), v4, v6, stop.clone()));
    wait_reach(&client, SERVER, (true, true), "topology up (no agent)");

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let daemon = Command::new("ip")
        .args(["netns", "exec", &node, env!("CARGO_BIN_EXE_flock-netpol")])
        .args([
            "--node",
            NODE,
            "--table",
            TABLE,
            "--metrics-addr",
            "127.0.0.1:9743",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .spawn()
        .expect("daemon starts");
    let pid = Pid::from_raw(daemon.id() as i32);
    world.daemon = Some(daemon);

    // The first commit makes the table; traffic stays open without policy.
    let start = Instant::now();
    while !table_exists(&node) {
        assert!(start.elapsed() < BOUND, "no table after {BOUND:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "LATENCY daemon start to first commit: {} ms",
        start.elapsed().as_millis()
    );
    assert_eq!(reach(&client, SERVER), (true, true), "open without policy");
    assert_eq!(reach(&client, LATE), (true, true), "unknown pod is open");

    api.apply(policy(
        "x",
        "deny-server",
        json!({"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]}),
    ));
    wait_reach(
        &client,
        SERVER,
        (false, false),
        "policy added -> server isolated",
    );
    assert_eq!(
        reach(&client, LATE),
        (true, true),
        "the late pod is not known yet"
    );

    api.apply(pod_object(LATE, json!({"app": "server"})));
    wait_reach(&client, LATE, (false, false), "new pod added -> isolated");

    api.delete(Kind::NetworkPolicy, "x", "deny-server");
    wait_reach(
        &client,
        SERVER,
        (true, true),
        "policy deleted -> server reopened",
    );
    wait_reach(
        &client,
        LATE,
        (true, true),
        "policy deleted -> late pod reopened",
    );

    // Deny again, then SIGTERM: the table and its isolation stay.
    api.apply(policy(
        "x",
        "deny-server",
        json!({"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]}),
    ));
    wait_reach(&client, SERVER, (false, false), "policy re-added");
    kill(pid, Signal::SIGTERM).unwrap();
    let mut daemon = world.daemon.take().unwrap();
    let status = wait_exit(&mut daemon);
    assert!(status.success(), "SIGTERM exit status {status}");
    assert!(table_exists(&node), "the table survives SIGTERM");
    assert_eq!(
        reach(&client, SERVER),
        (false, false),
        "still isolated after exit"
    );

    stop.store(true, Ordering::Relaxed);
    for s in servers {
        s.join().unwrap();
    }
    let _ = stop_api_tx.send(());
    api_thread.join().unwrap();
}

/// Wait (bounded) for a child to exit.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > BOUND {
            let _ = child.kill();
            panic!("did not exit within {BOUND:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_leaves_the_table_in_place_in_manifests_mode() {
    if common::skip_unless_root("sigterm_leaves_the_table_in_place_in_manifests_mode") {
        return;
    }
    common::in_netns(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ns.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_flock-netpol"))
            .args(["--node", NODE, "--table", TABLE, "--metrics-addr", "off"])
            .arg("--manifests")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("daemon starts");
        let listed = || common::nft(&["list", "table", "inet", TABLE], None).is_ok();
        let start = Instant::now();
        while !listed() {
            if start.elapsed() > BOUND {
                let _ = child.kill();
                panic!("no table after {BOUND:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = wait_exit(&mut child);
        assert!(status.success(), "exit status {status}");
        assert!(listed(), "the table survives SIGTERM");
    });
}
