//! Peer resolution: a rule's compiled peers (selectors, ipBlocks) against the
//! cluster index, giving the peer pods and the address ranges they stand for;
//! and, for egress named ports, the destination addresses grouped by the port
//! number the name resolves to on each destination pod.
//!
//! Must not: build rules or sets (it returns numbers and ranges).

use std::collections::BTreeMap;

use super::cidr::{self, Range};
use super::index::{fam_idx, Cluster, FAMILIES};
use super::ports;
use super::validate::{NsScope, Peer};
use crate::model::{Family, Proto};

/// The peers of one rule, resolved. Ordered so that rules with the same
/// peers can share what is computed from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resolved {
    /// Peer pods selected by podSelector/namespaceSelector, ascending.
    pub pods: Vec<u32>,
    /// ipBlock ranges per family (index by `fam_idx`), sorted and merged.
    pub blocks: [Vec<Range>; 2],
}

/// Resolve `peers` of a policy of namespace `policy_ns` (peers are OR-ed).
pub fn resolve(cluster: &Cluster, policy_ns: &str, peers: &[Peer]) -> Resolved {
    let mut pods: Vec<u32> = Vec::new();
    let mut blocks: [Vec<Range>; 2] = [Vec::new(), Vec::new()];
    for peer in peers {
        match peer {
            Peer::Block { family, ranges } => {
                blocks[fam_idx(*family)].extend_from_slice(ranges);
            }
            Peer::Pods { ns, pods: sel } => {
                let scope: Vec<u32> = match ns {
                    NsScope::Own => cluster.ns_index(policy_ns).into_iter().collect(),
                    NsScope::Matching(nsel) => cluster.namespaces_matching(nsel),
                };
                pods.extend(cluster.pods_matching(&scope, sel));
            }
        }
    }
    if peers.len() > 1 {
        pods.sort_unstable();
        pods.dedup();
    }
    Resolved {
        pods,
        blocks: blocks.map(cidr::merge),
    }
}

/// Every address of `family` the peers stand for: the pods' addresses and
/// the ipBlock ranges, sorted and merged.
pub fn addresses(cluster: &Cluster, r: &Resolved, family: Family) -> Vec<Range> {
    let blocks = &r.blocks[fam_idx(family)];
    let mut v: Vec<Range> = Vec::with_capacity(r.pods.len() + blocks.len());
    if r.pods.len() * 8 > cluster.pods.len() {
        // Many pods: walk the cluster's address-sorted index once instead
        // of sorting their addresses.
        let mut member = vec![false; cluster.pods.len()];
        for &i in &r.pods {
            member[i as usize] = true;
        }
        let ips = cluster.ips_sorted(family).iter();
        v.extend(
            ips.filter(|(_, pod)| member[*pod as usize])
                .map(|&(n, _)| (n, n)),
        );
    } else {
        for &i in &r.pods {
            for a in &cluster.pods[i as usize].ips {
                if Family::of(a) == family {
                    let n = cidr::to_num(a);
                    v.push((n, n));
                }
            }
        }
    }
    v.extend_from_slice(blocks);
    cidr::merge(v)
}

/// Where one port name (with its protocol) resolves, for every peer pod:
/// computed once per translation, then looked up per destination pod.
#[derive(Debug, Clone, Default)]
pub struct NamedIndex {
    /// `ports[offsets[i]..offsets[i + 1]]` are pod `i`'s numbers.
    offsets: Vec<u32>,
    ports: Vec<u16>,
}

impl NamedIndex {
    pub fn new(cluster: &Cluster, name: &str, proto: Proto) -> NamedIndex {
        let mut offsets = Vec::with_capacity(cluster.pods.len() + 1);
        let mut ports = Vec::new();
        offsets.push(0);
        let named = cluster
            .named_ports()
            .iter()
            .filter(|(_, cp)| ports::is_named(cp, name, proto));
        for &(pod, cp) in named {
            // Close the pods before this one (they resolve nothing more).
            while offsets.len() <= pod as usize {
                offsets.push(ports.len() as u32);
            }
            let start = offsets[pod as usize] as usize;
            if !ports[start..].contains(&cp.port) {
                ports.push(cp.port);
                ports[start..].sort_unstable();
            }
        }
        while offsets.len() <= cluster.pods.len() {
            offsets.push(ports.len() as u32);
        }
        NamedIndex { offsets, ports }
    }

    /// The numbers the name resolves to on pod `pod`.
    pub fn of(&self, pod: u32) -> &[u16] {
        let i = pod as usize;
        &self.ports[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

/// Destination addresses for an egress named port, by resolved port number:
/// every peer pod address (a pod selected by a selector, or whose address is
/// inside an ipBlock; every peer pod when `r` is `None`, i.e. any
/// destination) whose pod resolves the name (`named`) to that number.
/// Addresses that are not pod addresses never match a named port.
pub fn named_destinations(
    cluster: &Cluster,
    r: Option<&Resolved>,
    named: &NamedIndex,
) -> BTreeMap<u16, [Vec<Range>; 2]> {
    let mut by_port: BTreeMap<u16, [Vec<Range>; 2]> = BTreeMap::new();
    let mut add = |pod: u32, addr: u128, family: Family| {
        for &port in named.of(pod) {
            by_port.entry(port).or_default()[fam_idx(family)].push((addr, addr));
        }
    };
    let all: Vec<u32>;
    let pods: &[u32] = match r {
        Some(r) => &r.pods,
        None => {
            all = (0..cluster.pods.len() as u32).collect();
            &all
        }
    };
    for &i in pods {
        if named.of(i).is_empty() {
            continue;
        }
        for a in &cluster.pods[i as usize].ips {
            add(i, cidr::to_num(a), Family::of(a));
        }
    }
    if let Some(r) = r {
        for family in FAMILIES
            .into_iter()
            .filter(|f| !r.blocks[fam_idx(*f)].is_empty())
        {
            for (addr, pod) in cluster.pods_in_ranges(family, &r.blocks[fam_idx(family)]) {
                add(pod, addr, family);
            }
        }
    }
    by_port
        .into_iter()
        .map(|(port, fams)| (port, fams.map(cidr::merge)))
        .collect()
}
