//! The cluster index the translator queries: peer pods sorted by
//! (namespace, name) and numbered, namespaces with their labels, a label
//! index for selector look-ups, the local pods, and (built on first use) a
//! sorted index of pod IPs for ipBlock range queries.
//!
//! Built once per translation, independent of the order of the snapshot's
//! lists. Must not: hold policies, or iterate a hash map (hash maps here are
//! only looked up, so nothing depends on hash order).

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range as IdxRange;

use super::cidr::{self, Range};
use super::selector::{Anchor, Selector};
use crate::model::Family;
use crate::snapshot::{ContainerPort, Labels, Pod, Snapshot};

/// A small, fast, deterministic hasher for the label index (keys are short
/// strings; the maps are only looked up, never iterated).
#[derive(Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The label every namespace carries (set by the API server).
pub const NS_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A namespace that has peer pods.
#[derive(Debug)]
pub struct NsEntry<'a> {
    pub name: &'a str,
    /// Its labels, always including `kubernetes.io/metadata.name`.
    pub labels: Labels,
    /// Indices of its pods in `Cluster::pods` (contiguous, by name).
    pub pods: IdxRange<u32>,
}

/// Pods and namespaces, indexed.
#[derive(Debug)]
pub struct Cluster<'a> {
    /// Peer pods (`Pod::is_peer`), sorted by (namespace, name), one per key.
    pub pods: Vec<&'a Pod>,
    /// Namespace index (into `namespaces`) of each pod.
    pub pod_ns: Vec<u32>,
    /// Namespaces that have peer pods, sorted by name.
    pub namespaces: Vec<NsEntry<'a>>,
    /// Indices of the local pods (peers scheduled on the node), ascending.
    pub local: Vec<u32>,
    /// `(key, value)` -> pods with that label, ascending.
    by_value: FastMap<(&'a str, &'a str), Vec<u32>>,
    /// `key` -> pods with that label key, ascending.
    by_key: FastMap<&'a str, Vec<u32>>,
    /// Per family: (address, pod) sorted by address.
    ips: [OnceCell<Vec<(u128, u32)>>; 2],
    /// Every named container port of the peer pods, by pod: one pass over
    /// the pods, then each port name's look-ups scan this flat list.
    named_ports: OnceCell<Vec<(u32, &'a ContainerPort)>>,
    /// Memo of pod selector matches: policies repeat selectors (the same
    /// peers in many policies, or one template in many namespaces).
    matched: RefCell<Matched>,
}

/// Pods matching a selector, per namespace, computed on first use.
#[derive(Debug, Default)]
struct Matched {
    /// Selector -> its index in `per_ns`.
    ids: BTreeMap<Selector, usize>,
    /// `per_ns[selector][namespace]`: the namespace's pods matching the
    /// selector, ascending, once computed.
    per_ns: Vec<Vec<Option<Box<[u32]>>>>,
}

/// Index of a family in per-family arrays.
pub fn fam_idx(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// Both families, in the order everything is emitted.
pub const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

impl<'a> Cluster<'a> {
    /// Index `snapshot` for `node`. Only label keys in `keys` are indexed
    /// (the keys selectors can look up: see `Selector::anchors`); selectors
    /// still check every requirement against a pod's labels.
    pub fn new(snapshot: &'a Snapshot, node: &str, keys: &BTreeSet<&str>) -> Cluster<'a> {
        // One pod per (namespace, name): the smallest by full order, so the
        // choice does not depend on input order.
        let mut all: Vec<&Pod> = snapshot.pods.iter().collect();
        all.sort_by(|a, b| {
            (&a.namespace, &a.name)
                .cmp(&(&b.namespace, &b.name))
                .then_with(|| a.cmp(b))
        });
        all.dedup_by(|b, a| a.namespace == b.namespace && a.name == b.name);
        let pods: Vec<&Pod> = all.into_iter().filter(|p| p.is_peer()).collect();

        let mut ns_labels: BTreeMap<&str, &Labels> = BTreeMap::new();
        for ns in &snapshot.namespaces {
            // Duplicates: keep the smallest label set, whatever the order.
            ns_labels
                .entry(ns.name.as_str())
                .and_modify(|l| *l = (*l).min(&ns.labels))
                .or_insert(&ns.labels);
        }

        let mut namespaces: Vec<NsEntry> = Vec::new();
        let mut pod_ns = Vec::with_capacity(pods.len());
        let mut by_value: FastMap<(&str, &str), Vec<u32>> = FastMap::default();
        let mut by_key: FastMap<&str, Vec<u32>> = FastMap::default();
        let mut local = Vec::new();
        for (i, p) in pods.iter().enumerate() {
            let i = i as u32;
            if namespaces.last().is_none_or(|n| n.name != p.namespace) {
                let mut labels = ns_labels
                    .get(p.namespace.as_str())
                    .map(|l| (*l).clone())
                    .unwrap_or_default();
                labels.insert(NS_NAME_LABEL.to_string(), p.namespace.clone());
                namespaces.push(NsEntry {
                    name: &p.namespace,
                    labels,
                    pods: i..i,
                });
            }
            let last = namespaces.len() - 1;
            namespaces[last].pods.end = i + 1;
            pod_ns.push(last as u32);
            for (k, v) in p.labels.iter().filter(|(k, _)| keys.contains(k.as_str())) {
                by_value.entry((k, v)).or_default().push(i);
                by_key.entry(k).or_default().push(i);
            }
            if p.node.as_deref() == Some(node) {
                local.push(i);
            }
        }
        Cluster {
            pods,
            pod_ns,
            namespaces,
            local,
            by_value,
            by_key,
            ips: [OnceCell::new(), OnceCell::new()],
            named_ports: OnceCell::new(),
            matched: RefCell::default(),
        }
    }

    /// Index of namespace `name`, when it has peer pods.
    pub fn ns_index(&self, name: &str) -> Option<u32> {
        self.namespaces
            .binary_search_by(|n| n.name.cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    /// Namespaces (with peer pods) whose labels match `sel`, ascending.
    pub fn namespaces_matching(&self, sel: &Selector) -> Vec<u32> {
        (0..self.namespaces.len() as u32)
            .filter(|&i| sel.matches(&self.namespaces[i as usize].labels))
            .collect()
    }

    /// Pods of the namespaces `scope` (ascending) whose labels match `sel`,
    /// ascending.
    pub fn pods_matching(&self, scope: &[u32], sel: &Selector) -> Vec<u32> {
        if sel.is_everything() {
            return scope
                .iter()
                .flat_map(|&n| self.namespaces[n as usize].pods.clone())
                .collect();
        }
        let mut memo = self.matched.borrow_mut();
        let Matched { ids, per_ns } = &mut *memo;
        let id = *ids.entry(sel.clone()).or_insert_with(|| {
            per_ns.push(vec![None; self.namespaces.len()]);
            per_ns.len() - 1
        });
        let mut out = Vec::new();
        for &n in scope {
            let slot = &mut per_ns[id][n as usize];
            let pods = slot.get_or_insert_with(|| self.match_in(n, sel));
            out.extend_from_slice(pods);
        }
        out
    }

    /// Pods of namespace `n` matching `sel`, ascending: the candidates of
    /// its most selective positive requirement when it has one, else every
    /// pod of the namespace, filtered.
    fn match_in(&self, n: u32, sel: &Selector) -> Box<[u32]> {
        let range = self.namespaces[n as usize].pods.clone();
        let empty: Vec<u32> = Vec::new();
        let in_ns = |list: &Vec<u32>| -> (usize, usize) {
            let lo = list.partition_point(|&i| i < range.start);
            let hi = list.partition_point(|&i| i < range.end);
            (lo, hi)
        };
        let mut best: Option<(usize, Vec<&[u32]>)> = None;
        for a in sel.anchors() {
            let lists: Vec<&Vec<u32>> = match a {
                Anchor::Value(k, v) => vec![self.by_value.get(&(k, v)).unwrap_or(&empty)],
                Anchor::Values(k, vs) => vs
                    .iter()
                    .map(|v| self.by_value.get(&(k, v.as_str())).unwrap_or(&empty))
                    .collect(),
                Anchor::Key(k) => vec![self.by_key.get(k).unwrap_or(&empty)],
            };
            let slices: Vec<&[u32]> = lists
                .into_iter()
                .map(|l| {
                    let (lo, hi) = in_ns(l);
                    &l[lo..hi]
                })
                .collect();
            let size: usize = slices.iter().map(|s| s.len()).sum();
            if best.as_ref().is_none_or(|(b, _)| size < *b) {
                best = Some((size, slices));
            }
        }
        let matches = |&i: &u32| sel.matches(&self.pods[i as usize].labels);
        match best {
            Some((_, slices)) => {
                let mut v: Vec<u32> = slices.into_iter().flatten().copied().collect();
                if v.len() > 1 {
                    v.sort_unstable();
                    v.dedup();
                }
                v.retain(matches);
                v.into_boxed_slice()
            }
            None => range.filter(matches).collect(),
        }
    }

    /// `(pod, port)` of every named container port of every peer pod,
    /// ascending by pod.
    pub fn named_ports(&self) -> &[(u32, &'a ContainerPort)] {
        self.named_ports.get_or_init(|| {
            let mut v = Vec::new();
            for (i, p) in self.pods.iter().enumerate() {
                let named = p.ports.iter().filter(|cp| cp.name.is_some());
                v.extend(named.map(|cp| (i as u32, cp)));
            }
            v
        })
    }

    /// Per family, `(address, pod)` of every peer pod address, ascending.
    pub fn ips_sorted(&self, family: Family) -> &[(u128, u32)] {
        self.ips[fam_idx(family)].get_or_init(|| {
            let mut v: Vec<(u128, u32)> = self
                .pods
                .iter()
                .enumerate()
                .flat_map(|(i, p)| {
                    p.ips
                        .iter()
                        .filter(|a| Family::of(a) == family)
                        .map(move |a| (cidr::to_num(a), i as u32))
                })
                .collect();
            v.sort_unstable();
            v
        })
    }

    /// `(address, pod)` of every peer pod address of `family` inside
    /// `ranges` (sorted, merged), ascending by address.
    pub fn pods_in_ranges(&self, family: Family, ranges: &[Range]) -> Vec<(u128, u32)> {
        let idx = self.ips_sorted(family);
        let mut out = Vec::new();
        for &(s, e) in ranges {
            let from = idx.partition_point(|x| x.0 < s);
            out.extend(idx[from..].iter().take_while(|x| x.0 <= e).copied());
        }
        out
    }
}
