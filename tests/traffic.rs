//! Real traffic through a ruleset committed by the binary: two pod
//! namespaces routed through a node namespace (veths, /32 and /128 routes,
//! addresses only in 198.18.0.0/15 and fd00:198:18::/48). A
//! default-deny-ingress policy committed with `--once` blocks a TCP connect
//! and a UDP echo that worked before, over IPv4 and IPv6; `--cleanup`
//! restores them. Root only; every namespace is removed by a Drop guard.

mod common;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PORT: u16 = 8080;
const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

const CLIENT_V4: &str = "198.18.1.10";
const CLIENT_V6: &str = "fd00:198:18:1::10";
const SERVER_V4: &str = "198.18.1.11";
const SERVER_V6: &str = "fd00:198:18:1::11";
/// The node's side of every pod veth (the pods' gateway).
const GATEWAY_V4: &str = "198.18.0.1";
const GATEWAY_V6: &str = "fe80::1";

/// Named namespaces `fnp-apply-<pid>-<role>`, deleted on drop.
struct Topology {
    node: String,
    client: String,
    server: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sysctl(ns: &str, key: &str, value: &str) {
    ip(&[
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("{key}={value}"),
    ]);
}

impl Topology {
    fn new() -> Topology {
        let pid = std::process::id();
        let t = Topology {
            node: format!("fnp-apply-{pid}-node"),
            client: format!("fnp-apply-{pid}-client"),
            server: format!("fnp-apply-{pid}-server"),
        };
        for ns in [&t.node, &t.client, &t.server] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            for k in ["all", "default"] {
                sysctl(ns, &format!("net.ipv6.conf.{k}.accept_dad"), "0");
                sysctl(ns, &format!("net.ipv4.conf.{k}.rp_filter"), "0");
            }
        }
        sysctl(&t.node, "net.ipv4.ip_forward", "1");
        sysctl(&t.node, "net.ipv6.conf.all.forwarding", "1");
        t.pod(&t.client.clone(), "vc", CLIENT_V4, CLIENT_V6);
        t.pod(&t.server.clone(), "vs", SERVER_V4, SERVER_V6);
        t
    }

    /// A pod namespace joined to the node by veth `host` (node side) /
    /// `eth0` (pod side), Calico style.
    fn pod(&self, ns: &str, host: &str, v4: &str, v6: &str) {
        let node = &self.node;
        ip(&[
            "-n", node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        ip(&[
            "-n",
            node,
            "addr",
            "add",
            &format!("{GATEWAY_V4}/32"),
            "dev",
            host,
        ]);
        ip(&[
            "-n",
            node,
            "addr",
            "add",
            &format!("{GATEWAY_V6}/64"),
            "dev",
            host,
        ]);
        ip(&["-n", node, "link", "set", host, "up"]);
        ip(&["-n", node, "route", "add", &format!("{v4}/32"), "dev", host]);
        ip(&[
            "-n",
            node,
            "-6",
            "route",
            "add",
            &format!("{v6}/128"),
            "dev",
            host,
        ]);
        ip(&["-n", ns, "addr", "add", &format!("{v4}/32"), "dev", "eth0"]);
        ip(&["-n", ns, "addr", "add", &format!("{v6}/128"), "dev", "eth0"]);
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
        ip(&["-n", ns, "route", "add", GATEWAY_V4, "dev", "eth0"]);
        ip(&[
            "-n", ns, "route", "add", "default", "via", GATEWAY_V4, "dev", "eth0",
        ]);
        ip(&[
            "-n", ns, "-6", "route", "add", "default", "via", GATEWAY_V6, "dev", "eth0",
        ]);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.client, &self.server, &self.node] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// TCP accept and UDP echo servers on both families in the server
/// namespace, until `stop` (polling, so every loop is bounded).
fn servers(ns: &str, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    common::in_named_netns(ns, move || {
        let tcp: Vec<TcpListener> = [SERVER_V4, SERVER_V6]
            .iter()
            .map(|a| TcpListener::bind((a.parse::<IpAddr>().unwrap(), PORT)).unwrap())
            .collect();
        let udp: Vec<UdpSocket> = [SERVER_V4, SERVER_V6]
            .iter()
            .map(|a| UdpSocket::bind((a.parse::<IpAddr>().unwrap(), PORT)).unwrap())
            .collect();
        for l in &tcp {
            l.set_nonblocking(true).unwrap();
        }
        for u in &udp {
            u.set_nonblocking(true).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            for l in &tcp {
                if let Ok((mut s, _)) = l.accept() {
                    let _ = s.write_all(b"hi");
                }
            }
            for u in &udp {
                if let Ok((n, from)) = u.recv_from(&mut buf) {
                    let _ = u.send_to(&buf[..n], from);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

/// (tcp v4, udp v4, tcp v6, udp v6): whether each probe from the client
/// namespace to the server got through.
fn probe(ns: &str) -> [bool; 4] {
    common::in_named_netns(ns, || {
        let mut out = [false; 4];
        for (i, server) in [SERVER_V4, SERVER_V6].iter().enumerate() {
            let to = SocketAddr::new(server.parse().unwrap(), PORT);
            out[2 * i] = TcpStream::connect_timeout(&to, PROBE_TIMEOUT).is_ok();
            // A fresh source port per probe: no old conntrack entry helps.
            let local: SocketAddr = if i == 0 {
                format!("{CLIENT_V4}:0").parse().unwrap()
            } else {
                format!("[{CLIENT_V6}]:0").parse().unwrap()
            };
            let u = UdpSocket::bind(local).unwrap();
            u.set_read_timeout(Some(PROBE_TIMEOUT)).unwrap();
            let mut buf = [0u8; 16];
            out[2 * i + 1] = u.send_to(b"ping", to).is_ok()
                && u.recv_from(&mut buf)
                    .is_ok_and(|(n, _)| &buf[..n] == b"ping");
        }
        out
    })
    .join()
    .unwrap()
}

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: x, labels: {app: client}}
spec:
  nodeName: node-1
  containers: [{name: c, image: registry.example/agnhost:2.52}]
status:
  phase: Running
  podIPs: [{ip: 198.18.1.10}, {ip: "fd00:198:18:1::10"}]
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: x, labels: {app: server}}
spec:
  nodeName: node-1
  containers: [{name: s, image: registry.example/agnhost:2.52}]
status:
  phase: Running
  podIPs: [{ip: 198.18.1.11}, {ip: "fd00:198:18:1::11"}]
"#;

fn binary_in(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_flock-netpol")])
        .args(args)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin") // for `ip` only
        .output()
        .expect("ip netns exec runs");
    assert!(
        out.status.success(),
        "flock-netpol {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn default_deny_ingress_blocks_tcp_and_udp_on_both_families_until_cleanup() {
    if common::skip_unless_root(
        "default_deny_ingress_blocks_tcp_and_udp_on_both_families_until_cleanup",
    ) {
        return;
    }
    let topo = Topology::new();
    let stop = Arc::new(AtomicBool::new(false));
    let server = servers(&topo.server, stop.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), MANIFESTS).unwrap();
    let manifests = dir.path().to_str().unwrap().to_string();

    // Wait (bounded) for the servers to listen and routes to settle.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before = probe(&topo.client);
    while before != [true; 4] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        before = probe(&topo.client);
    }
    let node_args = [
        "--node",
        "node-1",
        "--manifests",
        &manifests,
        "--table",
        "fnp-traffic",
    ];
    binary_in(&topo.node, &[&node_args[..], &["--once"]].concat());
    let during = probe(&topo.client);
    binary_in(
        &topo.node,
        &["--node", "node-1", "--table", "fnp-traffic", "--cleanup"],
    );
    let after = probe(&topo.client);
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();

    // [tcp v4, udp v4, tcp v6, udp v6]
    assert_eq!(before, [true; 4], "open before any policy");
    assert_eq!(during, [false; 4], "default-deny-ingress blocks all four");
    assert_eq!(after, [true; 4], "--cleanup restores all four");
}
