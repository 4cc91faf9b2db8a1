//! The one synthetic cluster generator of the benches, the bench example and
//! tests/bench_gen.rs: namespaces, pods spread over nodes, and a realistic
//! NetworkPolicy mix, deterministic for a seed.
//!
//! The cluster is made as Kubernetes manifests (JSON values, the shape
//! `kubectl get -o json` prints), and the `Snapshot` is derived from them by
//! the product's own converters, so the manifest file written for the RSS
//! runs, the objects the fake API server serves and the snapshot the
//! in-process benches use are the same cluster.
//!
//! Must not: use addresses outside 198.18.0.0/15 and fd00:198:18::/48,
//! depend on a clock or on hash order, or pull in an RNG crate.
//!
//! # Shape
//!
//! - `namespaces = clamp(pods / 100, 10, 500)`, labelled `team`, `env`.
//! - The first `local` pods (110 by default) run on [`LOCAL_NODE`]; the rest
//!   are spread round-robin over `ceil((pods - local) / 110)` other nodes.
//! - Pod `i` gets `198.18.0.0 + 256 + i` and `fd00:198:18:1::` + `i` (a /15
//!   holds 130k pods); labels `app`, `tier`, `version`, sometimes `release`;
//!   named container ports `http` 8080/TCP, `metrics` 9090/TCP, and `db`
//!   5432/TCP or `dns` 53/UDP + `dns-tcp` 53/TCP by tier. About 1% are
//!   Pending without an IP, 0.5% Succeeded, 0.5% host-network.
//! - Policy `j` lives in namespace `j % clamp(policies / 10, 1, namespaces)`
//!   (about ten per namespace that has any). Each such namespace's first
//!   policy is a default deny (of ingress, or of both directions in every
//!   other namespace), its second a default-deny of egress that allows DNS
//!   by named ports; the rest are drawn from: pod selector + named port,
//!   namespace AND pod selector, matchExpressions (In, NotIn, Exists,
//!   DoesNotExist) with an endPort range, ipBlock with except in both
//!   families and an endPort range, egress to selected pods on named ports,
//!   ingress from every namespace, egress to every pod of `env=prod`
//!   namespaces on a named port, and ingress from the own namespace with
//!   egress to an ipBlock with two excepts on 443.

#![allow(dead_code)] // each bench or example uses a different part of it

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use flock_netpol::convert;
use flock_netpol::snapshot::Snapshot;
use serde_json::{json, Value};

/// The node whose pods the benches enforce.
pub const LOCAL_NODE: &str = "node-0";
/// Pods per node, as kubelet's default `maxPods`.
pub const PODS_PER_NODE: usize = 110;

const TIERS: [&str; 5] = ["web", "api", "db", "cache", "worker"];
const TEAMS: usize = 8;
const ENVS: [&str; 3] = ["prod", "staging", "dev"];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub pods: usize,
    pub policies: usize,
    /// Pods on [`LOCAL_NODE`].
    pub local: usize,
    pub seed: u64,
}

impl Params {
    pub fn new(pods: usize, policies: usize) -> Params {
        Params {
            pods,
            policies,
            local: PODS_PER_NODE.min(pods),
            seed: 0x5eed_f10c,
        }
    }

    pub fn namespaces(&self) -> usize {
        (self.pods / 100).clamp(10, 500)
    }

    fn remote_nodes(&self) -> usize {
        (self.pods - self.local).div_ceil(PODS_PER_NODE).max(1)
    }
}

/// xorshift64*: small, deterministic, good enough to spread labels.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // xorshift must not start at 0.
        Rng((seed ^ 0x9e37_79b9_7f4a_7c15).max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The cluster as manifests: Namespaces, Pods, NetworkPolicies.
pub struct Cluster {
    pub namespaces: Vec<Value>,
    pub pods: Vec<Value>,
    pub policies: Vec<Value>,
}

pub fn ns_name(i: usize) -> String {
    format!("ns-{i:03}")
}

/// IPv4 address of pod `i`: 198.18.1.0 + i (inside 198.18.0.0/15).
pub fn pod_ipv4(i: usize) -> Ipv4Addr {
    assert!(i < 130_000, "pod {i} does not fit in 198.18.0.0/15");
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 1, 0)) + i as u32)
}

/// IPv6 address of pod `i`: fd00:198:18:1:: + i.
pub fn pod_ipv6(i: usize) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(Ipv6Addr::new(0xfd00, 0x198, 0x18, 1, 0, 0, 0, 0)) + i as u128)
}

/// Generate the cluster for `p`.
pub fn generate(p: &Params) -> Cluster {
    let mut rng = Rng::new(p.seed);
    let nss = p.namespaces();
    let namespaces = (0..nss)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": ns_name(i),
                "labels": {"team": format!("team-{}", i % TEAMS), "env": ENVS[i % ENVS.len()]}}})
        })
        .collect();
    let pods = (0..p.pods).map(|i| pod(p, i, &mut rng)).collect();
    // About ten policies per namespace that has any (not every namespace
    // has policies), so every policy count gets the whole mix.
    let with_policies = (p.policies / 10).clamp(1, nss);
    let policies = (0..p.policies)
        .map(|j| policy(j, with_policies, &mut rng))
        .collect();
    Cluster {
        namespaces,
        pods,
        policies,
    }
}

fn pod(p: &Params, i: usize, rng: &mut Rng) -> Value {
    let node = if i < p.local {
        LOCAL_NODE.to_string()
    } else {
        format!("node-{}", 1 + (i - p.local) % p.remote_nodes())
    };
    let tier = TIERS[rng.below(TIERS.len())];
    let mut labels = json!({
        "app": format!("app-{}", rng.below(20)),
        "tier": tier,
        "version": if rng.below(2) == 0 { "v1" } else { "v2" },
    });
    if rng.below(4) == 0 {
        labels["release"] = json!("canary");
    }
    let mut ports = vec![
        json!({"name": "http", "containerPort": 8080, "protocol": "TCP"}),
        json!({"name": "metrics", "containerPort": 9090}),
    ];
    match tier {
        "db" => ports.push(json!({"name": "db", "containerPort": 5432, "protocol": "TCP"})),
        "worker" => {
            ports.push(json!({"name": "dns", "containerPort": 53, "protocol": "UDP"}));
            ports.push(json!({"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}));
        }
        _ => {}
    }
    let roll = rng.below(200);
    let (phase, host_network) = match roll {
        0 | 1 => ("Pending", false),
        2 => ("Succeeded", false),
        3 => ("Running", true),
        _ => ("Running", false),
    };
    let mut status = json!({"phase": phase});
    if phase != "Pending" {
        let ips: Vec<IpAddr> = if host_network {
            vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1))]
        } else {
            vec![IpAddr::V4(pod_ipv4(i)), IpAddr::V6(pod_ipv6(i))]
        };
        status["podIP"] = json!(ips[0].to_string());
        status["podIPs"] = ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect();
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "namespace": ns_name(i % p.namespaces()),
                     "labels": labels},
        "spec": {"nodeName": node, "hostNetwork": host_network,
                 "containers": [{"name": "main", "image": "registry.example/app:1", "ports": ports}]},
        "status": status,
    })
}

fn policy(j: usize, nss: usize, rng: &mut Rng) -> Value {
    let ns = ns_name(j % nss);
    let round = j / nss;
    let app = format!("app-{}", rng.below(20));
    let tier = TIERS[rng.below(TIERS.len())];
    let team = format!("team-{}", rng.below(TEAMS));
    let (kind, spec) = match (round, rng.below(8)) {
        (0, _) if (j % nss) % 2 == 1 => (
            "deny-all",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ),
        (0, _) => (
            "deny-ingress",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        ),
        (1, _) => (
            "deny-egress-allow-dns",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                "to": [{"namespaceSelector": {"matchLabels": {"team": "team-0"}},
                        "podSelector": {"matchLabels": {"tier": "worker"}}}],
                "ports": [{"port": "dns", "protocol": "UDP"}, {"port": "dns-tcp"}]}]}),
        ),
        (_, 0) => (
            "same-ns-named-port",
            json!({"podSelector": {"matchLabels": {"tier": tier}}, "ingress": [{
                "from": [{"podSelector": {"matchLabels": {"app": app}}}],
                "ports": [{"port": "http"}, {"port": 8443}]}]}),
        ),
        (_, 1) => (
            "ns-and-pod",
            json!({"podSelector": {"matchLabels": {"tier": "db"}}, "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {"team": team}},
                          "podSelector": {"matchLabels": {"tier": "api"}}}],
                "ports": [{"port": "db"}]}]}),
        ),
        (_, 2) => (
            "expressions",
            json!({"podSelector": {"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": [tier, "web"]},
                    {"key": "release", "operator": "DoesNotExist"}]},
                "ingress": [{"from": [{
                    "namespaceSelector": {"matchExpressions": [
                        {"key": "env", "operator": "NotIn", "values": ["dev"]}]},
                    "podSelector": {"matchExpressions": [
                        {"key": "app", "operator": "Exists"},
                        {"key": "version", "operator": "NotIn", "values": ["v1"]}]}}],
                    "ports": [{"port": 8080}, {"port": 9000, "endPort": 9100}]}]}),
        ),
        (_, 3) => {
            let v4 = (j % 200) as u8;
            let v6 = j % 0xffff;
            (
                "ipblock",
                json!({"podSelector": {"matchLabels": {"app": app}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [
                        {"ipBlock": {"cidr": "198.18.0.0/16", "except": [format!("198.18.{v4}.0/24")]}},
                        {"ipBlock": {"cidr": "fd00:198:18::/48", "except": [format!("fd00:198:18:{v6:x}::/64")]}}],
                        "ports": [{"port": 30000, "endPort": 32767}]}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "198.19.0.0/16",
                                                    "except": ["198.19.128.0/17"]}}]}]}),
            )
        }
        (_, 4) => (
            "egress-named-port",
            json!({"podSelector": {"matchLabels": {"tier": tier}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": team}},
                                    "podSelector": {"matchLabels": {"tier": "api"}}}],
                            "ports": [{"port": "http"}, {"port": "metrics"}]}]}),
        ),
        (_, 5) => (
            "metrics-from-all",
            json!({"podSelector": {}, "ingress": [{
                "from": [{"namespaceSelector": {}}], "ports": [{"port": "metrics"}]}]}),
        ),
        (_, 6) => (
            "egress-prod-namespaces",
            json!({"podSelector": {"matchLabels": {"tier": tier}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}],
                            "ports": [{"port": "http"}]}]}),
        ),
        _ => (
            "same-ns-and-https-out",
            json!({"podSelector": {"matchLabels": {"app": app}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}],
                "egress": [{"to": [{"ipBlock": {"cidr": "198.19.0.0/16",
                                                "except": ["198.19.10.0/24", "198.19.20.0/24"]}}],
                            "ports": [{"port": 443}]}]}),
        ),
    };
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": format!("{kind}-{j:05}"), "namespace": ns},
        "spec": spec,
    })
}

impl Cluster {
    /// The snapshot the agent would build from these manifests.
    pub fn snapshot(&self) -> Snapshot {
        fn k8s<T: serde::de::DeserializeOwned>(v: &Value) -> T {
            serde_json::from_value(v.clone()).expect("generated object is well-formed")
        }
        let mut snap = Snapshot {
            namespaces: self
                .namespaces
                .iter()
                .map(|v| convert::namespace(&k8s(v)).expect("namespace"))
                .collect(),
            pods: self
                .pods
                .iter()
                .map(|v| convert::pod(&k8s(v)).expect("pod"))
                .collect(),
            policies: self
                .policies
                .iter()
                .map(|v| convert::policy(&k8s(v)).expect("policy"))
                .collect(),
        };
        snap.normalize();
        snap
    }

    /// Write the whole cluster as one `kind: List` JSON document.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let items: Vec<&Value> = self
            .namespaces
            .iter()
            .chain(&self.pods)
            .chain(&self.policies)
            .collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer(file, &list).map_err(std::io::Error::other)
    }
}
