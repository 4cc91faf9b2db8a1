//! The simulated cluster's shape: nodes and pod endpoints with their
//! addresses, derived from Pod objects; the plan file that netns-test.sh reads
//! to build the namespaces; and the namespace names.
//!
//! Must not: create namespaces or links (netns-test.sh does, in bash).
//!
//! Addressing (all inside 198.18.0.0/15 and fd00:198:18::/48): node number N
//! (1-based, in sorted node-name order) owns 198.18.0.N and fd00:198:18::N on
//! its loopback and the link-local fe80::N on each of its links; pods keep the
//! addresses of their manifests.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// A pod's network identity: one namespace with a veth to its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `namespace/name` of the pod in the manifests.
    pub key: String,
    pub node: String,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl Endpoint {
    pub fn ip(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::V4 => self.v4.map(IpAddr::V4),
            Family::V6 => self.v6.map(IpAddr::V6),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
}

/// Nodes (sorted) and endpoints (in manifest order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub nodes: Vec<String>,
    pub endpoints: Vec<Endpoint>,
}

impl Topology {
    /// Every running pod with an address of its own becomes an endpoint; the
    /// nodes are those the endpoints are scheduled on.
    pub fn from_objects(objects: &[Value]) -> Result<Topology> {
        let mut endpoints = Vec::new();
        for obj in objects.iter().filter(|o| o["kind"] == "Pod") {
            let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
            let name = obj["metadata"]["name"]
                .as_str()
                .context("a Pod without a name")?;
            let key = format!("{ns}/{name}");
            let phase = obj["status"]["phase"].as_str().unwrap_or("Running");
            if obj["spec"]["hostNetwork"] == true || matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            let Some(node) = obj["spec"]["nodeName"].as_str() else {
                continue;
            };
            let mut ep = Endpoint {
                key: key.clone(),
                node: node.to_string(),
                v4: None,
                v6: None,
            };
            let ips = obj["status"]["podIPs"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for ip in ips.iter().filter_map(|i| i["ip"].as_str()) {
                match ip
                    .parse::<IpAddr>()
                    .with_context(|| format!("Pod {key}: podIPs {ip}"))?
                {
                    IpAddr::V4(a) => ep.v4 = Some(a),
                    IpAddr::V6(a) => ep.v6 = Some(a),
                }
            }
            if ep.v4.is_some() || ep.v6.is_some() {
                endpoints.push(ep);
            }
        }
        let nodes: BTreeSet<String> = endpoints.iter().map(|e| e.node.clone()).collect();
        let topo = Topology {
            nodes: nodes.into_iter().collect(),
            endpoints,
        };
        topo.check()?;
        Ok(topo)
    }

    /// Refuse addresses outside the test ranges and duplicate addresses.
    fn check(&self) -> Result<()> {
        let mut seen = BTreeSet::new();
        for ep in &self.endpoints {
            if let Some(a) = ep.v4 {
                if a.octets()[0] != 198 || !(18..=19).contains(&a.octets()[1]) {
                    bail!("Pod {}: {a} is outside 198.18.0.0/15", ep.key);
                }
                if a.octets()[1] == 18 && a.octets()[2] == 0 {
                    bail!(
                        "Pod {}: {a} is in 198.18.0.0/24, kept for the nodes",
                        ep.key
                    );
                }
            }
            if let Some(a) = ep.v6 {
                if a.segments()[..3] != [0xfd00, 0x198, 0x18] || a.segments()[3] == 0 {
                    bail!(
                        "Pod {}: {a} is outside fd00:198:18::/48 (or in its node subnet ::/64)",
                        ep.key
                    );
                }
            }
            for ip in ep
                .v4
                .map(IpAddr::V4)
                .into_iter()
                .chain(ep.v6.map(IpAddr::V6))
            {
                if !seen.insert(ip) {
                    bail!("Pod {}: address {ip} is used twice", ep.key);
                }
            }
        }
        if self.nodes.len() > 250 {
            bail!("too many nodes");
        }
        Ok(())
    }

    /// 1-based number of a node.
    pub fn node_number(&self, node: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n == node)
            .map_or(0, |i| i + 1)
    }

    pub fn endpoint(&self, key: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.key == key)
    }

    /// The plan netns-test.sh reads, one line per object:
    /// `node NAME NUMBER IPV4 IPV6` and
    /// `pod NETNS NODE_NETNS IFNAME NODE_NUMBER IPV4|- IPV6|-`.
    pub fn plan_text(&self, prefix: &str) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let n = self.node_number(node);
            let _ = writeln!(
                out,
                "node {} {n} {} {}",
                node_netns(prefix, node),
                node_v4(n),
                node_v6(n)
            );
        }
        for (i, ep) in self.endpoints.iter().enumerate() {
            let n = self.node_number(&ep.node);
            let v4 = ep.v4.map_or("-".to_string(), |a| a.to_string());
            let v6 = ep.v6.map_or("-".to_string(), |a| a.to_string());
            let _ = writeln!(
                out,
                "pod {} {} p{i} {n} {v4} {v6}",
                pod_netns(prefix, &ep.key),
                node_netns(prefix, &ep.node)
            );
        }
        out
    }
}

/// The node's own IPv4 address (on its loopback).
pub fn node_v4(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, n as u8)
}

/// The node's own IPv6 address (on its loopback).
pub fn node_v6(n: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x198, 0x18, 0, 0, 0, 0, n as u16)
}

pub fn node_ip(n: usize, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(node_v4(n)),
        Family::V6 => IpAddr::V6(node_v6(n)),
    }
}

/// `PREFIXn_NODE`.
pub fn node_netns(prefix: &str, node: &str) -> String {
    format!("{prefix}n_{node}")
}

/// `PREFIXp_NAMESPACE_NAME` (`_` never occurs in Kubernetes names, so this
/// cannot collide).
pub fn pod_netns(prefix: &str, key: &str) -> String {
    format!("{prefix}p_{}", key.replace('/', "_"))
}

/// Read objects from YAML (multi-document) or JSON text; `kind: List` is
/// flattened.
pub fn parse_objects(text: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).context("not YAML")?;
    let mut out = Vec::new();
    for doc in docs {
        if doc["kind"] == "List" {
            out.extend(doc["items"].as_array().cloned().unwrap_or_default());
        } else if !doc.is_null() {
            out.push(doc);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_become_endpoints_and_finished_pods_do_not() {
        let objs = parse_objects(
            "kind: Pod\nmetadata: {namespace: x, name: a}\nspec: {nodeName: node-2}\n\
             status: {phase: Running, podIPs: [{ip: 198.18.2.2}, {ip: 'fd00:198:18:2::2'}]}\n---\n\
             kind: Pod\nmetadata: {namespace: x, name: old}\nspec: {nodeName: node-1}\n\
             status: {phase: Succeeded, podIPs: [{ip: 198.18.1.9}]}\n",
        )
        .unwrap();
        let t = Topology::from_objects(&objs).unwrap();
        assert_eq!(t.nodes, vec!["node-2".to_string()]);
        assert_eq!(t.endpoints.len(), 1);
        assert_eq!(
            t.plan_text("fnp-1-"),
            "node fnp-1-n_node-2 1 198.18.0.1 fd00:198:18::1\n\
             pod fnp-1-p_x_a fnp-1-n_node-2 p0 1 198.18.2.2 fd00:198:18:2::2\n"
        );
    }

    #[test]
    fn addresses_outside_the_test_ranges_are_refused() {
        let objs = parse_objects(
            "kind: Pod\nmetadata: {namespace: x, name: a}\nspec: {nodeName: node-9}\n\
             status: {podIPs: [{ip: 10.0.0.1}]}\n",
        )
        .unwrap();
        let e = Topology::from_objects(&objs).unwrap_err().to_string();
        assert!(e.contains("outside 198.18.0.0/15"), "{e}");
    }
}
