//! The suite's base cluster, the upstream conformance model: namespaces x, y,
//! z (label `ns: NAME`) with pods a, b, c (label `pod: NAME`), each serving
//! TCP and UDP on ports 80 and 81 through the named container ports
//! serve-80-tcp, serve-80-udp, serve-81-tcp, serve-81-udp. Pods alternate
//! between node-1 and node-2, so every namespace spans both nodes.
//!
//! Must not: depend on a case; cases change this model through their steps.

use serde_json::{json, Value};

pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const PODS: [&str; 3] = ["a", "b", "c"];

/// Namespaces then pods, as Kubernetes objects.
pub fn base_objects() -> Vec<Value> {
    let mut out: Vec<Value> = NAMESPACES.iter().map(|ns| namespace(ns)).collect();
    let mut per_node = [1u8; 2];
    for (i, (ns, pod)) in NAMESPACES
        .iter()
        .flat_map(|ns| PODS.iter().map(move |p| (*ns, *p)))
        .enumerate()
    {
        let node = i % 2;
        per_node[node] += 1;
        out.push(pod_object(ns, pod, node + 1, per_node[node]));
    }
    out
}

fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"ns": name}}
    })
}

/// Pod `ns/name` on node-`node` with host number `host` in that node's
/// subnets 198.18.NODE.0/24 and fd00:198:18:NODE::/64.
fn pod_object(ns: &str, name: &str, node: usize, host: u8) -> Value {
    let ports: Vec<Value> = [80, 81]
        .iter()
        .flat_map(|p| {
            ["TCP", "UDP"].iter().map(move |proto| {
                json!({
                    "name": format!("serve-{p}-{}", proto.to_lowercase()),
                    "containerPort": p, "protocol": proto
                })
            })
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": ns, "name": name, "labels": {"pod": name}},
        "spec": {
            "nodeName": format!("node-{node}"),
            "containers": [{"name": "server", "image": "netns-probe", "ports": ports}]
        },
        "status": {
            "phase": "Running",
            "podIP": format!("198.18.{node}.{host}"),
            "podIPs": [{"ip": format!("198.18.{node}.{host}")}, {"ip": format!("fd00:198:18:{node}::{host}")}]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Topology;

    #[test]
    fn the_base_model_spreads_every_namespace_over_both_nodes() {
        let t = Topology::from_objects(&base_objects()).unwrap();
        assert_eq!(t.endpoints.len(), 9);
        assert_eq!(t.nodes, ["node-1", "node-2"]);
        for ns in NAMESPACES {
            let nodes: std::collections::BTreeSet<_> = t
                .endpoints
                .iter()
                .filter(|e| e.key.starts_with(&format!("{ns}/")))
                .map(|e| e.node.clone())
                .collect();
            assert_eq!(nodes.len(), 2, "namespace {ns}");
        }
    }
}
