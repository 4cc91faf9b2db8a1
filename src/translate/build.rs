//! Assembling the `RuleSet`: the `forward` base chain, the dispatch maps, the
//! per-pod chains (hairpin, then a jump to the class chain), the shared class
//! chains named by a hash of their content, and the peer sets.
//!
//! Peer sets are shared by content: every rule whose peers stand for the same
//! addresses (in the same direction and family) uses one set, named after the
//! smallest of the names its rules would give it alone (policy, direction,
//! rule, family). Pod churn changes a set's elements, not its name; a name
//! changes only when the sharing itself changes.
//!
//! Must not: validate policies or select pods (it is given compiled policies
//! and, per local pod, the policies that select it).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::rc::Rc;

use super::cidr;
use super::index::{Cluster, FAMILIES};
use super::peers::{self, NamedIndex, Resolved};
use super::ports::{self, PortMatch};
use super::validate::{Compiled, Dir, Peer};
use crate::model::{
    AddrField, AddrSet, BaseChain, Chain, ChainPolicy, CtStates, Family, Hook, Match, Proto, Rule,
    RuleSet, Verdict, VerdictMap,
};
use crate::names;
use crate::snapshot::ContainerPort;

/// Longest rule comment (bytes).
pub const MAX_COMMENT: usize = 128;

/// Name of the dispatch map of a direction and family.
pub fn map_name(dir: Dir, family: Family) -> &'static str {
    match (dir, family) {
        (Dir::Ingress, Family::V4) => "ingress-v4",
        (Dir::Ingress, Family::V6) => "ingress-v6",
        (Dir::Egress, Family::V4) => "egress-v4",
        (Dir::Egress, Family::V6) => "egress-v6",
    }
}

/// The address a direction's checks read: the source for ingress (who
/// talks to the pod), the destination for egress.
fn peer_field(dir: Dir) -> AddrField {
    match dir {
        Dir::Ingress => AddrField::Saddr,
        Dir::Egress => AddrField::Daddr,
    }
}

/// Ingress allows end our table's processing (`accept`); egress allows
/// `return` to `forward`, which then runs the destination's ingress check.
fn allow_verdict(dir: Dir) -> Verdict {
    match dir {
        Dir::Ingress => Verdict::Accept,
        Dir::Egress => Verdict::Return,
    }
}

fn fam_tag(f: Family) -> &'static str {
    match f {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

/// `s` cut to at most `MAX_COMMENT` bytes, on a character boundary.
pub fn cap_comment(mut s: String) -> String {
    if s.len() > MAX_COMMENT {
        let mut end = MAX_COMMENT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Destinations by resolved port number, per family.
type ByPort = BTreeMap<u16, [Vec<cidr::Range>; 2]>;

/// One (port name, protocol) of egress rules: where it resolves per pod, and
/// the destinations already computed for a set of peers (policies often
/// share peers, e.g. "the pods of namespace monitoring").
struct NamedPorts {
    index: NamedIndex,
    done: BTreeMap<Option<Rc<Resolved>>, Rc<ByPort>>,
}

/// Key of a per-rule cache: (policy index, direction, rule index).
type RuleKey = (usize, Dir, usize);

/// Builds one `RuleSet`, caching what is shared between pods.
pub struct Builder<'c, 'a> {
    cluster: &'c Cluster<'a>,
    policies: &'c [Compiled<'a>],
    rs: RuleSet,
    resolved: BTreeMap<RuleKey, Rc<Resolved>>,
    /// Resolved peers by what they say: (peers, the policy's namespace when
    /// a peer draws from it). Policies repeat peers (one template in many
    /// namespaces, "the monitoring pods" everywhere): each is resolved once.
    by_peers: BTreeMap<(&'c [Peer], Option<&'c str>), Rc<Resolved>>,
    /// Address matches of a rule: one per family with addresses, `[None]`
    /// for "any peer", empty when the rule's peers are no address at all.
    addr: BTreeMap<RuleKey, Vec<Option<Match>>>,
    /// (policy, rule, port index) -> (resolved port, destination set match).
    named: BTreeMap<(usize, usize, usize), Vec<(u16, Match)>>,
    /// Where each (port name, protocol) of an egress rule resolves.
    named_index: BTreeMap<(String, Proto), NamedPorts>,
    /// Egress class chain by selecting policies (egress rules do not depend
    /// on the pod they isolate).
    egress_classes: BTreeMap<Vec<usize>, String>,
    /// Ingress class chain by selecting policies and, when one of them has
    /// a named port, the receiving pod's declared ports (where the names
    /// resolve): pods of one workload share the work.
    ingress_classes: BTreeMap<(Vec<usize>, Vec<ContainerPort>), String>,
    /// Peer sets by content: (direction, family, merged ranges) -> index
    /// into `shared`.
    set_ids: BTreeMap<(Dir, Family, Vec<cidr::Range>), usize>,
    shared: Vec<SharedSet>,
    /// The set per family (index into `shared`) of each distinct peer
    /// selection, per direction: rules with the same peers skip recomputing
    /// the addresses.
    by_resolved: BTreeMap<(Dir, Rc<Resolved>), [Option<usize>; 2]>,
    /// The same, by the address of the `Resolved` (only looked up; every
    /// `Rc` lives as long as the builder, so an address is never reused).
    by_address: BTreeMap<(Dir, *const Resolved), [Option<usize>; 2]>,
    /// Class chains by (build-time) name, with the policies selecting the
    /// pods that use them (for the chain's comment).
    classes: BTreeMap<String, BTreeSet<usize>>,
}

/// One peer set and the rules that use it.
struct SharedSet {
    /// Its name while building: the name its first rule would give it.
    name: String,
    /// Every rule using it: (the name that rule would give it, the rule as
    /// the comment shows it).
    users: Vec<(String, String)>,
}

impl<'c, 'a> Builder<'c, 'a> {
    pub fn new(cluster: &'c Cluster<'a>, policies: &'c [Compiled<'a>], table: &str) -> Self {
        let mut rs = RuleSet::new(table);
        rs.chains.insert("forward".into(), forward_chain());
        for dir in [Dir::Ingress, Dir::Egress] {
            for family in FAMILIES {
                let comment = match dir {
                    Dir::Ingress => "ingress check by destination local pod",
                    Dir::Egress => "egress check by source local pod",
                };
                rs.maps.insert(
                    map_name(dir, family).into(),
                    VerdictMap::new(
                        family,
                        BTreeMap::new(),
                        format!("{comment} ({})", fam_tag(family)),
                    ),
                );
            }
        }
        Builder {
            cluster,
            policies,
            rs,
            resolved: BTreeMap::new(),
            by_peers: BTreeMap::new(),
            addr: BTreeMap::new(),
            named: BTreeMap::new(),
            named_index: BTreeMap::new(),
            egress_classes: BTreeMap::new(),
            ingress_classes: BTreeMap::new(),
            set_ids: BTreeMap::new(),
            shared: Vec::new(),
            by_resolved: BTreeMap::new(),
            by_address: BTreeMap::new(),
            classes: BTreeMap::new(),
        }
    }

    /// The finished ruleset: each shared set takes the smallest of its
    /// users' names, and each class chain the hash of its final rules.
    pub fn finish(mut self) -> RuleSet {
        let mut renamed: BTreeMap<String, String> = BTreeMap::new();
        let mut sets = std::mem::take(&mut self.rs.sets);
        for s in &mut self.shared {
            s.users.sort();
            s.users.dedup();
            let Some(mut set) = sets.remove(&s.name) else {
                continue;
            };
            let first = s.users[0].0.clone();
            set.comment = set_comment(set.family, &s.users);
            if first != s.name {
                renamed.insert(s.name.clone(), first.clone());
            }
            self.rs.sets.insert(first, set);
        }
        if !renamed.is_empty() {
            for r in self.rs.chains.values_mut().flat_map(|c| c.rules.iter_mut()) {
                for m in &mut r.matches {
                    if let Match::AddrInSet { set, .. } = m {
                        if let Some(n) = renamed.get(set) {
                            set.clone_from(n);
                        }
                    }
                }
            }
        }
        // Class chains: take them all out, then put them back under the
        // hash of their final rules (set names are part of it).
        let mut jumps: BTreeMap<String, String> = BTreeMap::new();
        let mut classes = Vec::with_capacity(self.classes.len());
        for (old, policies) in std::mem::take(&mut self.classes) {
            if let Some(chain) = self.rs.chains.remove(&old) {
                classes.push((old, policies, chain));
            }
        }
        for (old, policies, mut chain) in classes {
            let dir = if old.starts_with("in-") {
                Dir::Ingress
            } else {
                Dir::Egress
            };
            let keys: Vec<&str> = policies
                .iter()
                .map(|&pi| self.policies[pi].key.as_str())
                .collect();
            chain.comment = listed(&format!("{} rules of", dir.field()), &keys);
            let name = class_name(dir, &chain.rules);
            if name != old {
                jumps.insert(old, name.clone());
            }
            self.rs.chains.insert(name, chain);
        }
        if !jumps.is_empty() {
            for r in self.rs.chains.values_mut().flat_map(|c| c.rules.iter_mut()) {
                if let Verdict::Jump(to) = &mut r.verdict {
                    if let Some(n) = jumps.get(to) {
                        to.clone_from(n);
                    }
                }
            }
        }
        self.rs
    }

    /// Isolate local pod `pod` (index into the cluster's pods) in `dir`:
    /// its chain, its class chain, and map elements for its `ips`.
    /// `selecting` are the indices of the policies selecting it, ascending.
    pub fn isolate(&mut self, pod: u32, ips: &[IpAddr], dir: Dir, selecting: &[usize]) {
        let class = match dir {
            Dir::Egress => match self.egress_classes.get(selecting) {
                Some(c) => c.clone(),
                None => {
                    let c = self.class_chain(pod, dir, selecting);
                    self.egress_classes.insert(selecting.to_vec(), c.clone());
                    c
                }
            },
            Dir::Ingress => {
                let named = selecting.iter().any(|&pi| {
                    self.policies[pi].ingress_rules.iter().any(|r| {
                        r.ports
                            .iter()
                            .any(|p| matches!(p.port, PortMatch::Named(_)))
                    })
                });
                let ports = if named {
                    self.cluster.pods[pod as usize].ports.clone()
                } else {
                    Vec::new()
                };
                let key = (selecting.to_vec(), ports);
                match self.ingress_classes.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let c = self.class_chain(pod, dir, selecting);
                        self.ingress_classes.insert(key, c.clone());
                        c
                    }
                }
            }
        };
        self.classes
            .entry(class.clone())
            .or_default()
            .extend(selecting.iter().copied());
        let p = self.cluster.pods[pod as usize];
        let key = p.key();
        let (prefix, own, verdict) = match dir {
            Dir::Ingress => ("pin", AddrField::Saddr, Verdict::Accept),
            Dir::Egress => ("pout", AddrField::Daddr, Verdict::Return),
        };
        let name = names::object_name(prefix, &key, &key);
        let mut rules: Vec<Rule> = ips
            .iter()
            // `ip saddr 198.18.0.5 accept` / `ip6 daddr fd00:198:18::5 return`
            .map(|&addr| {
                Rule::new(
                    vec![Match::AddrEq { field: own, addr }],
                    verdict.clone(),
                    "pod to itself",
                )
            })
            .collect();
        // `jump in-<hash>` / `jump out-<hash>`
        rules.push(Rule::new(
            vec![],
            Verdict::Jump(class),
            cap_comment(format!("{key} {}", dir.field())),
        ));
        self.rs.chains.insert(
            name.clone(),
            Chain::regular(rules, format!("{} of pod {key}", dir.field())),
        );
        for addr in ips {
            let map = map_name(dir, Family::of(addr));
            if let Some(m) = self.rs.maps.get_mut(map) {
                m.elements.insert(*addr, name.clone());
            }
        }
    }

    /// The class chain for these selecting policies (and, for ingress, this
    /// receiving pod's named ports); created when new. Returns its name.
    fn class_chain(&mut self, pod: u32, dir: Dir, selecting: &[usize]) -> String {
        let mut rules = Vec::new();
        for &pi in selecting {
            for ri in 0..self.policies[pi].rules(dir).len() {
                self.rule_allows(pi, dir, ri, pod, &mut rules);
            }
        }
        dedup_keep_first(&mut rules);
        // `counter drop`
        rules.push(
            Rule::new(
                vec![],
                Verdict::Drop,
                format!("default deny {}", dir.field()),
            )
            .counted(),
        );
        let name = class_name(dir, &rules);
        if !self.rs.chains.contains_key(&name) {
            // The comment is written by `finish`, which knows every pod
            // using the chain.
            self.rs
                .chains
                .insert(name.clone(), Chain::regular(rules, String::new()));
        }
        name
    }

    /// Append the allow rules of rule `ri` of policy `pi` in `dir`, for the
    /// local pod `pod` (whose ports resolve ingress named ports).
    fn rule_allows(&mut self, pi: usize, dir: Dir, ri: usize, pod: u32, out: &mut Vec<Rule>) {
        let policies = self.policies;
        let policy = &policies[pi];
        let spec_rule = &policy.rules(dir)[ri];
        // Egress named ports use their own destination sets: the rule's plain
        // address sets are only made when something uses them.
        let needs_addrs = spec_rule.ports.is_empty()
            || dir == Dir::Ingress
            || spec_rule
                .ports
                .iter()
                .any(|p| !matches!(p.port, PortMatch::Named(_)));
        let addrs = if needs_addrs {
            self.addr_matches(pi, dir, ri)
        } else {
            Vec::new()
        };
        let comment = cap_comment(format!("{} {}[{ri}]", policy.key, dir.field()));
        let verdict = allow_verdict(dir);
        let with = |am: &Option<Match>, rest: &[Match]| {
            let mut m: Vec<Match> = am.iter().cloned().collect();
            m.extend_from_slice(rest);
            Rule::new(m, verdict.clone(), &comment)
        };
        if spec_rule.ports.is_empty() {
            out.extend(addrs.iter().map(|am| with(am, &[])));
            return;
        }
        for (j, spec) in spec_rule.ports.iter().enumerate() {
            // `meta l4proto tcp`
            let l4 = Match::L4Proto(spec.proto);
            match &spec.port {
                PortMatch::All => {
                    out.extend(addrs.iter().map(|am| with(am, std::slice::from_ref(&l4))))
                }
                PortMatch::Range(lo, hi) => {
                    // `th dport 80` / `th dport >= 80 th dport <= 90`
                    let dport = Match::Dport { lo: *lo, hi: *hi };
                    out.extend(
                        addrs
                            .iter()
                            .map(|am| with(am, &[l4.clone(), dport.clone()])),
                    );
                }
                PortMatch::Named(n) if dir == Dir::Ingress => {
                    let receiver = self.cluster.pods[pod as usize];
                    for port in ports::resolve(receiver, n, spec.proto) {
                        let dport = Match::Dport { lo: port, hi: port };
                        out.extend(
                            addrs
                                .iter()
                                .map(|am| with(am, &[l4.clone(), dport.clone()])),
                        );
                    }
                }
                PortMatch::Named(n) => {
                    let (n, proto) = (n.clone(), spec.proto);
                    for (port, set) in self.named_egress(pi, ri, j, &n, proto) {
                        let dport = Match::Dport { lo: port, hi: port };
                        out.push(with(&Some(set), &[l4.clone(), dport]));
                    }
                }
            }
        }
    }

    fn resolved(&mut self, k: RuleKey) -> &Rc<Resolved> {
        let (pi, dir, ri) = k;
        let (cluster, policies) = (self.cluster, self.policies);
        let by_peers = &mut self.by_peers;
        self.resolved.entry(k).or_insert_with(|| {
            let c = &policies[pi];
            let peers = c.rules(dir)[ri].peers.as_deref().unwrap_or_default();
            let ns = c.policy.namespace.as_str();
            let own = peers.iter().any(Peer::draws_from_own_namespace);
            let r = by_peers
                .entry((peers, own.then_some(ns)))
                .or_insert_with(|| Rc::new(peers::resolve(cluster, ns, peers)));
            Rc::clone(r)
        })
    }

    fn addr_matches(&mut self, pi: usize, dir: Dir, ri: usize) -> Vec<Option<Match>> {
        let k = (pi, dir, ri);
        if let Some(v) = self.addr.get(&k) {
            return v.clone();
        }
        let mut v = Vec::new();
        if self.policies[pi].rules(dir)[ri].peers.is_none() {
            v.push(None);
        } else {
            let (cluster, policies) = (self.cluster, self.policies);
            // The name this rule gives its set, per family: formatted only
            // for a family that has addresses.
            let origin = |family| set_name(&policies[pi], dir, ri, family, None);
            let mut origins: [Option<(String, String)>; 2] = [None, None];
            let key = (dir, Rc::clone(self.resolved(k)));
            // Rules with the same peers share one `Resolved` (see
            // `resolved`): look it up by address first, by content after.
            let at = (dir, Rc::as_ptr(&key.1));
            let ids = match self.by_address.get(&at) {
                Some(ids) => *ids,
                None => match self.by_resolved.get(&key) {
                    Some(ids) => *ids,
                    None => {
                        let mut ids = [None, None];
                        for ((slot, family), o) in ids.iter_mut().zip(FAMILIES).zip(&mut origins) {
                            let ranges = peers::addresses(cluster, &key.1, family);
                            if !ranges.is_empty() {
                                let name = &o.get_or_insert_with(|| origin(family)).0;
                                *slot = Some(self.share(dir, family, ranges, name));
                            }
                        }
                        self.by_resolved.insert(key, ids);
                        ids
                    }
                },
            };
            self.by_address.insert(at, ids);
            for ((id, family), o) in ids.into_iter().zip(FAMILIES).zip(origins) {
                let Some(id) = id else { continue };
                let set = self.use_set(id, o.unwrap_or_else(|| origin(family)));
                // `ip saddr @<set>` / `ip6 daddr @<set>`
                v.push(Some(Match::addr_in(peer_field(dir), family, set)));
            }
        }
        self.addr.insert(k, v.clone());
        v
    }

    /// Egress named port `j` of rule `ri` of policy `pi`: one destination
    /// set match per (resolved port, family).
    fn named_egress(
        &mut self,
        pi: usize,
        ri: usize,
        j: usize,
        name: &str,
        proto: Proto,
    ) -> Vec<(u16, Match)> {
        if let Some(v) = self.named.get(&(pi, ri, j)) {
            return v.clone();
        }
        let cluster = self.cluster;
        let any = self.policies[pi].egress_rules[ri].peers.is_none();
        let r = (!any).then(|| Rc::clone(self.resolved((pi, Dir::Egress, ri))));
        let np = self
            .named_index
            .entry((name.to_string(), proto))
            .or_insert_with(|| NamedPorts {
                index: NamedIndex::new(cluster, name, proto),
                done: BTreeMap::new(),
            });
        let by_port = Rc::clone(np.done.entry(r).or_insert_with_key(|r| {
            Rc::new(peers::named_destinations(cluster, r.as_deref(), &np.index))
        }));
        let mut v = Vec::new();
        for (&port, fams) in by_port.iter() {
            for (family, ranges) in FAMILIES.into_iter().zip(fams) {
                if ranges.is_empty() {
                    continue;
                }
                let origin = set_name(&self.policies[pi], Dir::Egress, ri, family, Some((j, port)));
                let id = self.share(Dir::Egress, family, ranges.clone(), &origin.0);
                let set = self.use_set(id, origin);
                // `ip daddr @<set>`
                v.push((port, Match::daddr_in(family, set)));
            }
        }
        self.named.insert((pi, ri, j), v.clone());
        v
    }

    /// The shared set holding exactly `ranges` (merged) for `dir` and
    /// `family`, created under `name` when new. Returns its index;
    /// `use_set` registers the rule using it.
    fn share(&mut self, dir: Dir, family: Family, ranges: Vec<cidr::Range>, name: &str) -> usize {
        let key = (dir, family, ranges);
        if let Some(&id) = self.set_ids.get(&key) {
            return id;
        }
        let id = self.shared.len();
        let name = name.to_string();
        let elements = cidr::to_intervals(family, &key.2);
        self.rs
            .sets
            .insert(name.clone(), AddrSet::new(family, elements, String::new()));
        self.shared.push(SharedSet {
            name,
            users: Vec::new(),
        });
        self.set_ids.insert(key, id);
        id
    }

    /// Record that the rule `origin` uses shared set `id`; returns the
    /// set's name for now (`finish` may rename it).
    fn use_set(&mut self, id: usize, origin: (String, String)) -> String {
        let s = &mut self.shared[id];
        s.users.push(origin);
        s.name.clone()
    }
}

/// `<in|out>-<hash of the rules>`: the name of a class chain.
fn class_name(dir: Dir, rules: &[Rule]) -> String {
    let prefix = match dir {
        Dir::Ingress => "in",
        Dir::Egress => "out",
    };
    let mut h = names::Fnv::default();
    // Hashing cannot fail.
    let _ = canonical(rules, &mut h);
    format!("{prefix}-{}", h.hex(16))
}

/// Longest comment of a set or a chain: they are shown in the script only,
/// not stored in the kernel, so they may be longer than a rule's.
const MAX_SCRIPT_COMMENT: usize = 240;

/// `"<head> a, b, c"`, cut to `MAX_SCRIPT_COMMENT` bytes at an item boundary
/// with `" and N more"` when it does not fit.
fn listed(head: &str, items: &[&str]) -> String {
    let mut s = head.to_string();
    for (i, item) in items.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        // Room for this item, and for the " and N more" of what follows it.
        let more = if i + 1 < items.len() { 16 } else { 0 };
        if i > 0 && s.len() + sep.len() + item.len() + more > MAX_SCRIPT_COMMENT {
            let _ = write!(s, " and {} more", items.len() - i);
            return s;
        }
        s.push_str(sep);
        s.push_str(item);
    }
    // Only a first item alone can still be too long.
    let mut end = s.len().min(MAX_SCRIPT_COMMENT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// A shared set's comment: its family and the rules using it.
fn set_comment(family: Family, users: &[(String, String)]) -> String {
    let rules: Vec<&str> = users.iter().map(|(_, d)| d.as_str()).collect();
    listed(&format!("peers ({}) of", fam_tag(family)), &rules)
}

/// The name a rule gives its peer set, from its origin only (policy,
/// direction, rule, family, and for egress named ports the port index and
/// resolved number); and the rule as a set's comment lists it.
fn set_name(
    c: &Compiled,
    dir: Dir,
    ri: usize,
    family: Family,
    port: Option<(usize, u16)>,
) -> (String, String) {
    let (p, ns, n) = (c.key.as_str(), &c.policy.namespace, &c.policy.name);
    let prefix = match (dir, family) {
        (Dir::Ingress, Family::V4) => "src4",
        (Dir::Ingress, Family::V6) => "src6",
        (Dir::Egress, Family::V4) => "dst4",
        (Dir::Egress, Family::V6) => "dst6",
    };
    let d = dir.field();
    let f = fam_tag(family);
    match port {
        None => (
            names::object_name_fmt(
                prefix,
                format_args!("{ns}-{n}-{ri}"),
                format_args!("{p}/{d}/{ri}/{f}"),
            ),
            format!("{p} {d}[{ri}]"),
        ),
        Some((j, num)) => (
            names::object_name_fmt(
                prefix,
                format_args!("{ns}-{n}-{ri}-p{j}-{num}"),
                format_args!("{p}/{d}/{ri}/{f}/{j}/{num}"),
            ),
            format!("{p} {d}[{ri}].ports[{j}]={num}"),
        ),
    }
}

/// Drop exact repeats of a rule (keeping the first), which change nothing.
fn dedup_keep_first(rules: &mut Vec<Rule>) {
    // Sort positions by rule (then position): a repeat follows its first.
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by(|&a, &b| rules[a].cmp(&rules[b]).then(a.cmp(&b)));
    let mut keep = vec![true; rules.len()];
    for w in order.windows(2) {
        if rules[w[0]] == rules[w[1]] {
            keep[w[1]] = false;
        }
    }
    let mut keep = keep.into_iter();
    rules.retain(|_| keep.next().unwrap_or(true));
}

/// A stable text of rules, the input of a class chain's name hash (does not
/// depend on Debug formats), written to `s` (the hasher).
fn canonical(rules: &[Rule], s: &mut impl std::fmt::Write) -> std::fmt::Result {
    for r in rules {
        for m in &r.matches {
            match m {
                Match::CtState(st) => write!(s, "ct {} ", st.0),
                Match::AddrInSet { field, family, set } => {
                    write!(s, "{} {} @{set} ", fam_tag(*family), field_tag(*field))
                }
                Match::AddrEq { field, addr } => write!(s, "{} {addr} ", field_tag(*field)),
                Match::L4Proto(p) => write!(s, "l4 {} ", p.number()),
                Match::Dport { lo, hi } => write!(s, "dport {lo}-{hi} "),
                Match::Icmpv6Type { lo, hi } => write!(s, "icmpv6 {lo}-{hi} "),
            }?;
        }
        if r.counter {
            s.write_str("counter ")?;
        }
        match &r.verdict {
            Verdict::Accept => write!(s, "accept"),
            Verdict::Drop => write!(s, "drop"),
            Verdict::Return => write!(s, "return"),
            Verdict::Jump(c) => write!(s, "jump {c}"),
            Verdict::Vmap { field, family, map } => {
                write!(s, "{} {} vmap @{map}", fam_tag(*family), field_tag(*field))
            }
        }?;
        writeln!(s, " # {}", r.comment)?;
    }
    Ok(())
}

fn field_tag(f: AddrField) -> &'static str {
    match f {
        AddrField::Saddr => "saddr",
        AddrField::Daddr => "daddr",
    }
}

/// The `forward` base chain, exactly as the module doc shows it.
fn forward_chain() -> Chain {
    let est = CtStates::ESTABLISHED.union(CtStates::RELATED);
    let mut rules = vec![
        // `ct state established,related accept`
        Rule::new(
            vec![Match::CtState(est)],
            Verdict::Accept,
            "replies of allowed connections",
        ),
        // `meta l4proto ipv6-icmp icmpv6 type >= 133 icmpv6 type <= 137 accept`
        Rule::new(
            vec![
                Match::L4Proto(Proto::Icmpv6),
                Match::Icmpv6Type { lo: 133, hi: 137 },
            ],
            Verdict::Accept,
            "IPv6 neighbour discovery",
        ),
    ];
    for dir in [Dir::Egress, Dir::Ingress] {
        for family in FAMILIES {
            let field = match dir {
                Dir::Egress => AddrField::Saddr,
                Dir::Ingress => AddrField::Daddr,
            };
            // `ip saddr vmap @egress-v4` ... `ip6 daddr vmap @ingress-v6`
            rules.push(Rule::new(
                vec![],
                Verdict::vmap(field, family, map_name(dir, family)),
                format!(
                    "{} of isolated local pods ({})",
                    dir.field(),
                    fam_tag(family)
                ),
            ));
        }
    }
    Chain::base(
        BaseChain::new(Hook::Forward, 0, ChainPolicy::Accept),
        rules,
        "dispatch of pod traffic to the per-pod checks",
    )
}
