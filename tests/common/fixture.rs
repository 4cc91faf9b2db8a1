//! Hand-built `RuleSet`s shared by the kernel tests (`nft_apply`,
//! `apply_kernel`): the product's own skeleton plus objects that use every
//! kind of set, map, match and verdict.
//!
//! Must not: copy anything the translator makes (the `forward` chain and the
//! dispatch maps come from the translator itself, so they cannot drift).

use std::net::IpAddr;

use flock_netpol::model::{
    AddrField, AddrSet, Chain, CtStates, Family, Interval, Match, Proto, Rule, RuleSet, Verdict,
};
use flock_netpol::snapshot::Snapshot;
use flock_netpol::translate;

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// The interval `a-b`.
pub fn iv(a: &str, b: &str) -> Interval {
    Interval::new(ip(a), ip(b))
}

/// What the translator makes for a cluster without policies: the `forward`
/// base chain and the four empty dispatch maps (`ingress-v4`, `ingress-v6`,
/// `egress-v4`, `egress-v6`).
pub fn skeleton(table: &str) -> RuleSet {
    translate::translate(&Snapshot::default(), "node-a", table).ruleset
}

/// The skeleton plus, by hand: sets `peers-v4` (prefixes, a range, a single
/// address, intervals starting at 0.0.0.0 and ending at the all-ones
/// address), `peers-v6`, `all-v6` (`::/0`) and the empty `empty-v4`; map
/// elements sending 198.18.0.10, 198.18.0.11 and fd00:198:18::10 to chain
/// `pin-a`; chain `pin-a` (hairpin accepts, `jump in-a`) and chain `in-a`:
///
/// ```text
/// 0 ip saddr @peers-v4 meta l4proto tcp th dport 80 accept comment "x/allow-web"
/// 1 ip6 daddr @peers-v6 meta l4proto udp th dport >= 1000 th dport <= 2000 return comment "x/range"
/// 2 ct state new meta l4proto sctp drop comment "x/sctp"
/// 3 counter ip6 saddr vmap @egress-v6 comment "ingress \"dispatch\"\n"   (quotes and newline to clean)
/// 4 counter drop comment "default deny"
/// ```
pub fn sample(table: &str) -> RuleSet {
    let mut rs = skeleton(table);
    let peers_v4 = vec![
        iv("0.0.0.0", "0.255.255.255"),
        iv("198.18.0.0", "198.18.0.255"),
        Interval::single(ip("198.18.1.5")),
        iv("198.18.2.1", "198.18.2.9"),
        iv("255.255.255.0", "255.255.255.255"),
    ];
    let peers_v6 = vec![
        iv("fd00:198:18::", "fd00:198:18:0:ffff:ffff:ffff:ffff"),
        iv(
            "fd00:198:18:1::5",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ),
    ];
    let all_v6 = vec![iv("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")];
    for (name, family, elements) in [
        ("peers-v4", Family::V4, peers_v4),
        ("peers-v6", Family::V6, peers_v6),
        ("all-v6", Family::V6, all_v6),
        ("empty-v4", Family::V4, vec![]),
    ] {
        let set = AddrSet::new(family, elements, format!("{name} of the sample"));
        rs.sets.insert(name.into(), set);
    }
    for (map, addr) in [
        ("ingress-v4", "198.18.0.10"),
        ("ingress-v4", "198.18.0.11"),
        ("ingress-v6", "fd00:198:18::10"),
    ] {
        let elements = &mut rs.maps.get_mut(map).expect("skeleton map").elements;
        elements.insert(ip(addr), "pin-a".into());
    }
    let hairpin = |a: &str| Rule::new(vec![Match::saddr_eq(ip(a))], Verdict::Accept, "hairpin");
    let pin = vec![
        hairpin("198.18.0.10"),
        hairpin("fd00:198:18::10"),
        Rule::new(vec![], Verdict::jump("in-a"), ""),
    ];
    rs.chains
        .insert("pin-a".into(), Chain::regular(pin, "ingress of pod a"));
    let web = vec![
        Match::saddr_in(Family::V4, "peers-v4"),
        Match::L4Proto(Proto::Tcp),
        Match::dport(80),
    ];
    let range = vec![
        Match::daddr_in(Family::V6, "peers-v6"),
        Match::L4Proto(Proto::Udp),
        Match::Dport { lo: 1000, hi: 2000 },
    ];
    let sctp = vec![Match::CtState(CtStates::NEW), Match::L4Proto(Proto::Sctp)];
    let egress = Verdict::vmap(AddrField::Saddr, Family::V6, "egress-v6");
    let in_a = vec![
        Rule::new(web, Verdict::Accept, "x/allow-web"),
        Rule::new(range, Verdict::Return, "x/range"),
        Rule::new(sctp, Verdict::Drop, "x/sctp"),
        Rule::new(vec![], egress, "ingress \"dispatch\"\n").counted(),
        Rule::new(vec![], Verdict::Drop, "default deny").counted(),
    ];
    rs.chains
        .insert("in-a".into(), Chain::regular(in_a, "ingress rules of x"));
    rs
}
