//! Synthetic cluster generator for the benches: namespaces, pods spread over
//! nodes (node-0, the measured node, holds the first 110), and a realistic
//! policy mix (default deny, pod and namespace selectors, matchExpressions,
//! ipBlock with except, named ports, endPort ranges, egress rules).
//!
//! Deterministic: the same sizes give the same cluster (no randomness).

#![allow(dead_code)] // each bench target uses a different part of this module

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flock_netpol::snapshot::{ContainerPort, Labels, Namespace, Phase, Pod, Policy, Snapshot};
use serde_json::{json, Value};

/// The node whose ruleset is measured.
pub const NODE: &str = "node-0";
/// Pods per node (the kubelet default maximum).
pub const PODS_PER_NODE: usize = 110;

/// Cluster size.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub pods: usize,
    pub policies: usize,
}

impl Size {
    /// One namespace per 50 pods (at least 2).
    pub fn namespaces(self) -> usize {
        (self.pods / 50).max(2)
    }
}

fn labels(pairs: &[(&str, String)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn port(name: &str, port: u16, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        port,
        protocol: protocol.into(),
    }
}

/// Pod `i`: namespace spread by a multiplier, node by blocks of 110, an IPv4
/// address in 198.18.0.0/15 and an IPv6 address in fd00:198:18::/64.
fn pod(i: usize, namespaces: usize) -> Pod {
    let ns = (i * 7919) % namespaces;
    let tier = ["web", "api", "db"][i % 3];
    let mut ports = vec![
        port("http", 8080 + (i % 3) as u16, "TCP"),
        port("metrics", 9090, "TCP"),
    ];
    if i.is_multiple_of(10) {
        ports.push(port("dns", 53, "UDP"));
        ports.push(port("dns-tcp", 53, "TCP"));
    }
    let n = u32::try_from(i + 1).expect("pod count fits u32");
    Pod {
        namespace: format!("ns-{ns}"),
        name: format!("pod-{i}"),
        labels: labels(&[
            ("app", format!("app{}", i % 20)),
            ("tier", tier.to_string()),
            ("version", format!("v{}", i % 4)),
        ]),
        node: Some(format!("node-{}", i / PODS_PER_NODE)),
        host_network: false,
        phase: Phase::Running,
        terminating: false,
        ips: vec![
            IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n)),
            IpAddr::V6(Ipv6Addr::from(
                u128::from("fd00:198:18::".parse::<Ipv6Addr>().unwrap()) + u128::from(n),
            )),
        ],
        ports,
    }
}

/// Policy `j` of the mix (eight kinds, cycling), in namespace `j % namespaces`.
fn policy_spec(j: usize, namespaces: usize) -> Value {
    let k = j / 8;
    let other_ns = format!("ns-{}", (j * 31 + 1) % namespaces);
    match j % 8 {
        0 => json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        1 => json!({"podSelector": {"matchLabels": {"app": format!("app{}", k % 20)}},
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}]}),
        2 => json!({"podSelector": {"matchLabels": {"tier": "web"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": format!("t{}", k % 10)}},
                                   "podSelector": {"matchLabels": {"tier": "web"}}}],
                         "ports": [{"port": "http"}]}]}),
        3 => {
            json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api", "db"]}]},
            "ingress": [{"from": [{"podSelector": {"matchExpressions": [
                {"key": "version", "operator": "NotIn", "values": ["v0"]},
                {"key": "app", "operator": "Exists"}]}}],
              "ports": [{"port": 8080, "endPort": 8090}, {"port": 9090}]}]})
        }
        4 => json!({"podSelector": {"matchLabels": {"version": format!("v{}", k % 4)}},
            "ingress": [{"from": [
                {"ipBlock": {"cidr": "198.18.0.0/16", "except": [format!("198.18.{}.0/24", k % 256)]}},
                {"ipBlock": {"cidr": "fd00:198:18::/48", "except": ["fd00:198:18::/64"]}}]}]}),
        5 => json!({"podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": other_ns}},
                                "podSelector": {"matchLabels": {"app": "app0"}}}],
                        "ports": [{"port": "dns", "protocol": "UDP"}, {"port": "dns-tcp"}]}]}),
        6 => json!({"podSelector": {"matchLabels": {"tier": "api"}}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}],
                        "ports": [{"port": "http"}]}]}),
        _ => json!({"podSelector": {"matchLabels": {"app": format!("app{}", k % 20)}},
            "egress": [{"to": [{"ipBlock": {"cidr": "198.19.0.0/16", "except": ["198.19.10.0/24", "198.19.20.0/24"]}}],
                        "ports": [{"port": 443}]}]}),
    }
}

/// The whole synthetic cluster.
pub fn cluster(size: Size) -> Snapshot {
    let nss = size.namespaces();
    let namespaces = (0..nss)
        .map(|i| Namespace {
            name: format!("ns-{i}"),
            labels: labels(&[
                ("kubernetes.io/metadata.name", format!("ns-{i}")),
                ("team", format!("t{}", i % 10)),
                ("env", ["prod", "staging", "dev"][i % 3].to_string()),
            ]),
        })
        .collect();
    let pods = (0..size.pods).map(|i| pod(i, nss)).collect();
    let policies = (0..size.policies)
        .map(|j| Policy {
            namespace: format!("ns-{}", j % nss),
            name: format!("policy-{j}"),
            spec: serde_json::from_value(policy_spec(j, nss)).expect("generated spec parses"),
        })
        .collect();
    let mut snap = Snapshot {
        pods,
        namespaces,
        policies,
    };
    // As the loaders and informers hand it over: lists sorted by key.
    snap.normalize();
    snap
}
