//! Snapshot builders for the translator's tests.

use std::net::IpAddr;

use serde_json::Value;

use crate::model::{Interval, RuleSet};
use crate::snapshot::{ContainerPort, Labels, Namespace, Phase, Pod, Policy, Snapshot};
use crate::translate::{translate, Translation};

pub const NODE: &str = "node-1";
pub const TABLE: &str = "flock-netpol";

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A running pod on `node` with `ips` and `labels`.
pub fn pod(ns: &str, name: &str, node: &str, ips: &[&str], l: &[(&str, &str)]) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(l),
        node: Some(node.into()),
        host_network: false,
        phase: Phase::Running,
        terminating: false,
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        ports: Vec::new(),
    }
}

/// `pod` with container ports `(name, number, protocol)`.
pub fn with_ports(mut p: Pod, ports: &[(&str, u16, &str)]) -> Pod {
    p.ports = ports
        .iter()
        .map(|(n, port, proto)| ContainerPort {
            name: Some(n.to_string()),
            port: *port,
            protocol: proto.to_string(),
        })
        .collect();
    p
}

pub fn namespace(name: &str, l: &[(&str, &str)]) -> Namespace {
    Namespace {
        name: name.into(),
        labels: labels(l),
    }
}

/// A policy from its spec as JSON (the API's field names).
pub fn policy(ns: &str, name: &str, spec: Value) -> Policy {
    Policy {
        namespace: ns.into(),
        name: name.into(),
        spec: serde_json::from_value(spec).expect("test spec parses"),
    }
}

pub fn snap(pods: Vec<Pod>, namespaces: Vec<Namespace>, policies: Vec<Policy>) -> Snapshot {
    Snapshot {
        pods,
        namespaces,
        policies,
    }
}

pub fn run(s: &Snapshot) -> Translation {
    translate(s, NODE, TABLE)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Interval from two addresses.
pub fn iv(a: &str, b: &str) -> Interval {
    Interval {
        start: ip(a),
        end: ip(b),
    }
}

/// Elements of every set whose name starts with `prefix`.
pub fn sets_with_prefix<'a>(rs: &'a RuleSet, prefix: &str) -> Vec<(&'a String, &'a [Interval])> {
    rs.sets
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(n, s)| (n, s.elements.as_slice()))
        .collect()
}
