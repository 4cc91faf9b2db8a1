//! Follow one packet through a produced `RuleSet`, starting at the per-pod
//! chain the dispatch map names, to see what our table decides.

use std::net::IpAddr;

use crate::model::{AddrField, Family, Match, Proto, Rule, RuleSet, Verdict};
use crate::translate::build::map_name;
use crate::translate::validate::Dir;

/// A new connection's first packet.
#[derive(Debug, Clone, Copy)]
pub struct Pkt {
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    pub proto: Proto,
    pub dport: u16,
}

/// What a direction's check decides for `pkt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The local pod is not isolated in this direction (no map element).
    NotIsolated,
    /// Allowed; the comment of the rule that allowed it.
    Allowed(String),
    Dropped,
}

fn addr(pkt: &Pkt, f: AddrField) -> IpAddr {
    match f {
        AddrField::Saddr => pkt.saddr,
        AddrField::Daddr => pkt.daddr,
    }
}

fn holds(rs: &RuleSet, m: &Match, pkt: &Pkt) -> bool {
    match m {
        Match::CtState(_) => false,
        Match::AddrInSet { field, family, set } => {
            let a = addr(pkt, *field);
            let s = rs
                .sets
                .get(set)
                .unwrap_or_else(|| panic!("dangling set {set}"));
            assert_eq!(s.family, *family, "set {set} family");
            Family::of(&a) == *family && s.elements.iter().any(|iv| iv.start <= a && a <= iv.end)
        }
        Match::AddrEq { field, addr: want } => addr(pkt, *field) == *want,
        Match::L4Proto(p) => pkt.proto == *p,
        Match::Dport { lo, hi } => (*lo..=*hi).contains(&pkt.dport),
        Match::Icmpv6Type { .. } => false,
    }
}

enum Step {
    Final(bool, String),
    Return,
}

fn run_chain(rs: &RuleSet, chain: &str, pkt: &Pkt, depth: usize) -> Step {
    assert!(depth < 8, "jump loop at {chain}");
    let c = rs
        .chains
        .get(chain)
        .unwrap_or_else(|| panic!("dangling chain {chain}"));
    for r in &c.rules {
        if !r.matches.iter().all(|m| holds(rs, m, pkt)) {
            continue;
        }
        match &r.verdict {
            Verdict::Accept => return Step::Final(true, r.comment.clone()),
            Verdict::Drop => return Step::Final(false, r.comment.clone()),
            Verdict::Return => return Step::Final(true, r.comment.clone()),
            Verdict::Jump(t) => match run_chain(rs, t, pkt, depth + 1) {
                Step::Return => continue,
                fin => return fin,
            },
            Verdict::Vmap { .. } => unreachable!("vmap outside forward"),
        }
    }
    Step::Return
}

/// The `dir` check of local pod address `local` for `pkt`.
pub fn check(rs: &RuleSet, dir: Dir, pkt: Pkt) -> Outcome {
    let local = match dir {
        Dir::Ingress => pkt.daddr,
        Dir::Egress => pkt.saddr,
    };
    let map = &rs.maps[map_name(dir, Family::of(&local))];
    let Some(chain) = map.elements.get(&local) else {
        return Outcome::NotIsolated;
    };
    match run_chain(rs, chain, &pkt, 0) {
        Step::Final(true, c) => Outcome::Allowed(c),
        Step::Final(false, _) => Outcome::Dropped,
        Step::Return => Outcome::Allowed("end of chain".into()),
    }
}

/// Ingress check of `dst` (local) for a packet from `src`.
pub fn ingress(rs: &RuleSet, src: &str, dst: &str, proto: Proto, dport: u16) -> Outcome {
    check(rs, Dir::Ingress, pkt(src, dst, proto, dport))
}

/// Egress check of `src` (local) for a packet to `dst`.
pub fn egress(rs: &RuleSet, src: &str, dst: &str, proto: Proto, dport: u16) -> Outcome {
    check(rs, Dir::Egress, pkt(src, dst, proto, dport))
}

fn pkt(src: &str, dst: &str, proto: Proto, dport: u16) -> Pkt {
    Pkt {
        saddr: src.parse().unwrap(),
        daddr: dst.parse().unwrap(),
        proto,
        dport,
    }
}

pub fn allowed(o: &Outcome) -> bool {
    matches!(o, Outcome::Allowed(_))
}

/// The allow rules (all but the final drop) of the class chain `local`'s
/// `dir` chain jumps to.
pub fn class_rules<'a>(rs: &'a RuleSet, dir: Dir, local: &str) -> &'a [Rule] {
    let local: IpAddr = local.parse().unwrap();
    let pod_chain = &rs.maps[map_name(dir, Family::of(&local))].elements[&local];
    let class = match &rs.chains[pod_chain].rules.last().unwrap().verdict {
        Verdict::Jump(c) => c,
        v => panic!("pod chain ends in {v:?}"),
    };
    let rules = &rs.chains[class].rules;
    &rules[..rules.len() - 1]
}

/// Name of the class chain of `local` in `dir`.
pub fn class_name(rs: &RuleSet, dir: Dir, local: &str) -> String {
    let local: IpAddr = local.parse().unwrap();
    let pod_chain = &rs.maps[map_name(dir, Family::of(&local))].elements[&local];
    match &rs.chains[pod_chain].rules.last().unwrap().verdict {
        Verdict::Jump(c) => c.clone(),
        v => panic!("pod chain ends in {v:?}"),
    }
}
