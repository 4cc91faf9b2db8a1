//! Translator: pure `(Snapshot, node name) -> RuleSet` plus warnings.
//!
//! # Parts
//!
//! - [`validate`]: a NetworkPolicy spec checked like the API server does and
//!   compiled (with [`selector`], [`ports`], [`cidr`]).
//! - [`index`]: pods and namespaces, numbered and indexed for selectors.
//! - [`peers`]: a rule's peers resolved to pods and address ranges.
//! - [`build`]: chains, maps and sets assembled into the `RuleSet`.
//!
//! Must not: do I/O, log, read a clock, or depend on hash order.
//!
//! # The ruleset it builds (table `inet <table>`)
//!
//! ```text
//! map ingress-v4 { type ipv4_addr : verdict; elements = { <local pod IPv4> : jump pin-<pod> } }
//! map ingress-v6 / egress-v4 / egress-v6       (same, keyed by IPv6 / by source)
//! set <peer sets> { type ipv4_addr; flags interval; elements = { ... } }   (and ipv6_addr)
//!
//! chain forward {
//!     type filter hook forward priority filter; policy accept;
//!     ct state established,related accept            # replies of allowed connections
//!     meta l4proto ipv6-icmp icmpv6 type >= 133 icmpv6 type <= 137 accept   # neighbour discovery
//!     ip saddr vmap @egress-v4                        # isolated local sources: egress check
//!     ip6 saddr vmap @egress-v6
//!     ip daddr vmap @ingress-v4                       # isolated local destinations: ingress check
//!     ip6 daddr vmap @ingress-v6
//! }
//! chain pin-<pod> {             # one per ingress-isolated local pod
//!     ip saddr <pod IPv4> accept    # a pod to itself (hairpin)
//!     ip6 saddr <pod IPv6> accept
//!     jump in-<class>
//! }
//! chain in-<class> {            # shared by pods with the same effective ingress rules
//!     ip saddr @<peers> meta l4proto tcp th dport 80 accept   # policy ns/name
//!     ...
//!     counter drop                                            # default deny
//! }
//! chain pout-<pod> { ip daddr <own IP> return ...; jump out-<class> }
//! chain out-<class> { ... return ...; counter drop }   # egress allows `return` to forward
//! ```
//!
//! Node-to-pod traffic leaves through the output hook and is not filtered
//! (kubelet probes); pod-to-node traffic reaches the input hook, also not
//! filtered. Everything not in a map (pods not isolated, remote pods) passes
//! our table untouched; other tables still decide for themselves.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{RuleSet, Warning};
use crate::snapshot::{Policy, Snapshot};

pub mod build;
pub mod cidr;
pub mod index;
pub mod peers;
pub mod ports;
pub mod selector;
pub mod validate;

#[cfg(test)]
mod tests;

use index::Cluster;
use validate::{Compiled, Dir};

/// What the translator produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub ruleset: RuleSet,
    /// Problems in the input; every object named stays fail-closed.
    pub warnings: Vec<Warning>,
}

/// Build the ruleset that enforces `snapshot`'s policies on `node`'s pods, in
/// table `table`.
pub fn translate(snapshot: &Snapshot, node: &str, table: &str) -> Translation {
    let mut warnings = Vec::new();
    let compiled: Vec<Compiled> = sorted_policies(snapshot)
        .into_iter()
        .map(|p| validate::compile(p, &mut warnings))
        .collect();
    let cluster = Cluster::new(snapshot, node, &validate::anchor_keys(&compiled));
    let ips = local_ips(&cluster, &mut warnings);

    // Local pods by namespace: position in `cluster.local`.
    let mut by_ns: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (li, &pod) in cluster.local.iter().enumerate() {
        by_ns
            .entry(cluster.pods[pod as usize].namespace.as_str())
            .or_default()
            .push(li);
    }
    // Per local pod, the policies selecting it: [ingress, egress].
    let mut selecting: Vec<[Vec<usize>; 2]> = vec![Default::default(); cluster.local.len()];
    for (pi, c) in compiled.iter().enumerate() {
        for &li in by_ns.get(c.policy.namespace.as_str()).into_iter().flatten() {
            let pod = cluster.pods[cluster.local[li] as usize];
            if c.selector.as_ref().is_none_or(|s| s.matches(&pod.labels)) {
                if c.ingress {
                    selecting[li][0].push(pi);
                }
                if c.egress {
                    selecting[li][1].push(pi);
                }
            }
        }
    }

    let mut b = build::Builder::new(&cluster, &compiled, table);
    for (li, &pod) in cluster.local.iter().enumerate() {
        if ips[li].is_empty() {
            continue;
        }
        for (d, dir) in [Dir::Ingress, Dir::Egress].into_iter().enumerate() {
            if !selecting[li][d].is_empty() {
                b.isolate(pod, &ips[li], dir, &selecting[li][d]);
            }
        }
    }
    Translation {
        ruleset: b.finish(),
        warnings,
    }
}

/// Policies sorted by (namespace, name), one per key (for duplicates, the
/// one whose spec serializes smallest, so input order does not matter).
fn sorted_policies(snapshot: &Snapshot) -> Vec<&Policy> {
    let mut v: Vec<&Policy> = snapshot.policies.iter().collect();
    v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut out: Vec<&Policy> = Vec::with_capacity(v.len());
    for p in v {
        match out.last_mut() {
            Some(last) if last.namespace == p.namespace && last.name == p.name => {
                let text = |x: &Policy| serde_json::to_string(&x.spec).unwrap_or_default();
                if text(p) < text(last) {
                    *last = p;
                }
            }
            _ => out.push(p),
        }
    }
    out
}

/// The addresses each local pod keeps (position in `cluster.local`): its
/// IPs, minus those an earlier local pod (by namespace/name) already holds,
/// which are warned about.
fn local_ips(cluster: &Cluster, warnings: &mut Vec<Warning>) -> Vec<Vec<IpAddr>> {
    let mut owner: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(cluster.local.len());
    for &pod in &cluster.local {
        let p = cluster.pods[pod as usize];
        let mut kept = Vec::new();
        for ip in &p.ips {
            if kept.contains(ip) {
                continue;
            }
            match owner.get(ip) {
                Some(first) => warnings.push(Warning {
                    object: format!("Pod {}", p.key()),
                    field: "status.podIPs".into(),
                    message: format!(
                        "{ip} is also the address of local pod {first}; only {first}'s rules apply to it"
                    ),
                }),
                None => {
                    owner.insert(*ip, p.key());
                    kept.push(*ip);
                }
            }
        }
        out.push(kept);
    }
    out
}
