//! Hand-built rulesets whose verdicts follow from nftables' documented
//! semantics (chains, jumps, verdict maps, interval sets, base chain policy).

use std::collections::BTreeMap;

use super::*;
use crate::model::{AddrSet, BaseChain, Interval, VerdictMap};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A base chain on the forward hook.
fn base(priority: i32, policy: ChainPolicy, rules: Vec<Rule>) -> Chain {
    Chain::base(BaseChain::new(Hook::Forward, priority, policy), rules, "")
}

fn regular(rules: Vec<Rule>) -> Chain {
    Chain::regular(rules, "")
}

fn set(family: Family, ranges: &[(&str, &str)]) -> AddrSet {
    let elements = ranges
        .iter()
        .map(|(a, b)| Interval::new(ip(a), ip(b)))
        .collect();
    AddrSet::new(family, elements, "")
}

fn tcp(src: &str, dst: &str, port: u16) -> Packet {
    Packet::first(ip(src), ip(dst), Proto::Tcp, port)
}

fn ruleset(chains: Vec<(&str, Chain)>) -> RuleSet {
    let mut rs = RuleSet::new("t");
    for (name, c) in chains {
        rs.chains.insert(name.to_string(), c);
    }
    rs
}

/// Only a `forward` base chain (priority 0) with these rules.
fn forward(policy: ChainPolicy, rules: Vec<Rule>) -> RuleSet {
    ruleset(vec![("forward", base(0, policy, rules))])
}

fn decision(rs: &RuleSet, pkt: &Packet) -> Decision {
    eval(rs, pkt).unwrap().decision
}

#[test]
fn a_table_without_a_forward_base_chain_accepts() {
    let input = BaseChain::new(Hook::Input, 0, ChainPolicy::Drop);
    let rs = ruleset(vec![("in", Chain::base(input, vec![], ""))]);
    assert_eq!(
        decision(&rs, &tcp("198.18.1.1", "198.18.1.2", 80)),
        Decision::Accept
    );
}

#[test]
fn the_end_of_a_base_chain_applies_its_policy() {
    let pkt = tcp("198.18.1.1", "198.18.1.2", 80);
    let out = eval(&forward(ChainPolicy::Drop, vec![]), &pkt).unwrap();
    assert_eq!(out.decision, Decision::Drop);
    assert_eq!((out.chain.as_str(), out.rule), ("forward", None));
    let rs = forward(ChainPolicy::Accept, vec![]);
    assert_eq!(decision(&rs, &pkt), Decision::Accept);
    // `return` in a base chain also means "apply the policy".
    let rs = forward(
        ChainPolicy::Drop,
        vec![
            Rule::new(vec![], Verdict::Return, "r"),
            Rule::new(vec![], Verdict::Accept, "a"),
        ],
    );
    assert_eq!(decision(&rs, &pkt), Decision::Drop);
}

#[test]
fn a_first_packet_is_new_and_not_established() {
    let rs = forward(
        ChainPolicy::Accept,
        vec![
            Rule::new(
                vec![Match::CtState(
                    CtStates::ESTABLISHED.union(CtStates::RELATED),
                )],
                Verdict::Accept,
                "est",
            ),
            Rule::new(vec![Match::CtState(CtStates::NEW)], Verdict::Drop, "new"),
        ],
    );
    let mut pkt = tcp("198.18.1.1", "198.18.1.2", 80);
    let out = eval(&rs, &pkt).unwrap();
    assert_eq!(
        (out.decision, out.comment.as_str()),
        (Decision::Drop, "new")
    );
    pkt.ct = CtStates::ESTABLISHED;
    assert_eq!(decision(&rs, &pkt), Decision::Accept);
}

#[test]
fn interval_sets_match_inclusive_ranges_of_their_own_family_only() {
    let mut rs = forward(
        ChainPolicy::Drop,
        vec![
            Rule::new(
                vec![Match::saddr_in(Family::V4, "v4")],
                Verdict::Accept,
                "v4",
            ),
            Rule::new(
                vec![Match::saddr_in(Family::V6, "v6")],
                Verdict::Accept,
                "v6",
            ),
        ],
    );
    rs.sets.insert(
        "v4".into(),
        set(
            Family::V4,
            &[("198.18.1.0", "198.18.1.127"), ("198.18.2.5", "198.18.2.5")],
        ),
    );
    rs.sets.insert(
        "v6".into(),
        set(Family::V6, &[("fd00:198:18:1::", "fd00:198:18:1::ff")]),
    );
    let d = |src: &str, dst: &str| decision(&rs, &tcp(src, dst, 80));
    assert_eq!(d("198.18.1.0", "198.18.9.9"), Decision::Accept);
    assert_eq!(d("198.18.1.127", "198.18.9.9"), Decision::Accept);
    assert_eq!(d("198.18.1.128", "198.18.9.9"), Decision::Drop);
    assert_eq!(d("198.18.2.5", "198.18.9.9"), Decision::Accept);
    assert_eq!(d("198.18.2.6", "198.18.9.9"), Decision::Drop);
    assert_eq!(d("fd00:198:18:1::ff", "fd00:198:18:9::1"), Decision::Accept);
    assert_eq!(d("fd00:198:18:1::100", "fd00:198:18:9::1"), Decision::Drop);
}

#[test]
fn address_protocol_and_port_matches_compare_the_packet() {
    let rs = forward(
        ChainPolicy::Drop,
        vec![Rule::new(
            vec![
                Match::daddr_eq(ip("198.18.1.2")),
                Match::L4Proto(Proto::Udp),
                Match::Dport { lo: 1000, hi: 1010 },
            ],
            Verdict::Accept,
            "udp range",
        )],
    );
    let udp = |dst: &str, port| Packet::first(ip("198.18.1.1"), ip(dst), Proto::Udp, port);
    assert_eq!(decision(&rs, &udp("198.18.1.2", 1000)), Decision::Accept);
    assert_eq!(decision(&rs, &udp("198.18.1.2", 1010)), Decision::Accept);
    assert_eq!(decision(&rs, &udp("198.18.1.2", 1011)), Decision::Drop);
    assert_eq!(decision(&rs, &udp("198.18.1.3", 1005)), Decision::Drop);
    assert_eq!(
        decision(&rs, &tcp("198.18.1.1", "198.18.1.2", 1005)),
        Decision::Drop
    );
}

#[test]
fn icmpv6_type_ranges_match_neighbour_discovery() {
    let rs = forward(
        ChainPolicy::Drop,
        vec![Rule::new(
            vec![
                Match::L4Proto(Proto::Icmpv6),
                Match::Icmpv6Type { lo: 133, hi: 137 },
            ],
            Verdict::Accept,
            "nd",
        )],
    );
    let icmp = |t| Packet {
        src: ip("fd00:198:18:1::1"),
        dst: ip("fd00:198:18:1::2"),
        proto: Proto::Icmpv6,
        dport: None,
        icmpv6_type: Some(t),
        ct: CtStates::NEW,
    };
    assert_eq!(decision(&rs, &icmp(135)), Decision::Accept);
    assert_eq!(decision(&rs, &icmp(128)), Decision::Drop);
    assert_eq!(decision(&rs, &icmp(138)), Decision::Drop);
}

/// forward: vmap on daddr -> pin chain; pin: accept port 80, else return;
/// after the vmap: drop "after".
fn dispatch() -> RuleSet {
    let mut rs = ruleset(vec![
        (
            "forward",
            base(
                0,
                ChainPolicy::Accept,
                vec![
                    Rule::new(
                        vec![],
                        Verdict::vmap(AddrField::Daddr, Family::V4, "in4"),
                        "dispatch",
                    ),
                    Rule::new(
                        vec![Match::saddr_eq(ip("198.18.1.66"))],
                        Verdict::Drop,
                        "after",
                    ),
                ],
            ),
        ),
        (
            "pin",
            regular(vec![
                Rule::new(
                    vec![Match::L4Proto(Proto::Tcp), Match::dport(80)],
                    Verdict::Accept,
                    "web",
                ),
                Rule::new(
                    vec![Match::L4Proto(Proto::Tcp), Match::dport(81)],
                    Verdict::Return,
                    "back",
                ),
                Rule::new(vec![], Verdict::jump("deny"), "to deny"),
            ]),
        ),
        (
            "deny",
            regular(vec![Rule::new(vec![], Verdict::Drop, "default deny")]),
        ),
    ]);
    let elements = BTreeMap::from([(ip("198.18.1.2"), "pin".to_string())]);
    let in4 = VerdictMap::new(Family::V4, elements, "");
    rs.maps.insert("in4".into(), in4);
    rs
}

#[test]
fn verdict_maps_jump_on_a_hit_and_do_nothing_on_a_miss() {
    let rs = dispatch();
    let out = eval(&rs, &tcp("198.18.1.1", "198.18.1.2", 80)).unwrap();
    assert_eq!(
        (out.decision, out.chain.as_str(), out.rule),
        (Decision::Accept, "pin", Some(0))
    );
    assert_eq!(out.trace[0].action, "vmap in4: 198.18.1.2 -> jump pin");
    let out = eval(&rs, &tcp("198.18.1.1", "198.18.1.2", 22)).unwrap();
    assert_eq!(
        (out.decision, out.chain.as_str(), out.comment.as_str()),
        (Decision::Drop, "deny", "default deny")
    );
    assert_eq!(out.trace.len(), 3, "{out}");
    // Not in the map: the next rule runs, then the policy.
    let out = eval(&rs, &tcp("198.18.1.1", "198.18.1.3", 22)).unwrap();
    assert_eq!((out.decision, out.rule), (Decision::Accept, None));
    assert_eq!(
        decision(&rs, &tcp("198.18.1.66", "198.18.1.3", 22)),
        Decision::Drop
    );
    // An IPv6 packet never reads an IPv4 map.
    assert_eq!(
        decision(&rs, &tcp("fd00:198:18::1", "fd00:198:18::2", 22)),
        Decision::Accept
    );
}

#[test]
fn return_goes_back_to_the_rule_after_the_jump() {
    let rs = dispatch();
    // pin returns on port 81: back in forward, "after" drops 198.18.1.66 only.
    assert_eq!(
        decision(&rs, &tcp("198.18.1.1", "198.18.1.2", 81)),
        Decision::Accept
    );
    let out = eval(&rs, &tcp("198.18.1.66", "198.18.1.2", 81)).unwrap();
    assert_eq!(
        (out.decision, out.chain.as_str(), out.comment.as_str()),
        (Decision::Drop, "forward", "after")
    );
}

#[test]
fn an_accept_ends_one_base_chain_but_the_next_one_still_runs() {
    let rs = ruleset(vec![
        ("b-late", base(10, ChainPolicy::Drop, vec![])),
        (
            "a-early",
            base(
                -10,
                ChainPolicy::Accept,
                vec![Rule::new(vec![], Verdict::Accept, "ok")],
            ),
        ),
    ]);
    let out = eval(&rs, &tcp("198.18.1.1", "198.18.1.2", 80)).unwrap();
    assert_eq!(
        (out.decision, out.chain.as_str()),
        (Decision::Drop, "b-late")
    );
    assert_eq!(out.trace[0].chain, "a-early");
}

fn error(rs: &RuleSet) -> EvalError {
    eval(rs, &tcp("198.18.1.1", "198.18.1.2", 80)).unwrap_err()
}

#[test]
fn dangling_names_loops_and_deep_stacks_are_errors() {
    let jump = |t: &str| Rule::new(vec![], Verdict::jump(t), "j");
    let rs = forward(ChainPolicy::Accept, vec![jump("nowhere")]);
    assert!(matches!(error(&rs), EvalError::UnknownChain { .. }));
    let rs = forward(
        ChainPolicy::Accept,
        vec![Rule::new(
            vec![Match::saddr_in(Family::V4, "nope")],
            Verdict::Accept,
            "s",
        )],
    );
    assert!(matches!(error(&rs), EvalError::UnknownSet { .. }));
    let vmap = Verdict::vmap(AddrField::Saddr, Family::V4, "nope");
    let rs = forward(ChainPolicy::Accept, vec![Rule::new(vec![], vmap, "m")]);
    assert!(matches!(error(&rs), EvalError::UnknownMap { .. }));
    let mut rs = forward(
        ChainPolicy::Accept,
        vec![Rule::new(
            vec![Match::saddr_in(Family::V4, "s6")],
            Verdict::Accept,
            "s",
        )],
    );
    rs.sets.insert("s6".into(), set(Family::V6, &[]));
    assert!(matches!(error(&rs), EvalError::FamilyMismatch { .. }));
    let rs = ruleset(vec![
        ("forward", base(0, ChainPolicy::Accept, vec![jump("a")])),
        ("a", regular(vec![jump("b")])),
        ("b", regular(vec![jump("a")])),
    ]);
    assert!(matches!(error(&rs), EvalError::Loop { .. }));
    let rs = forward(ChainPolicy::Accept, vec![jump("forward")]);
    assert!(matches!(error(&rs), EvalError::JumpToBaseChain { .. }));
    // A chain of 16 jumps is fine, 17 is too deep.
    let deep = |n: usize| {
        let mut chains = vec![(
            "forward".to_string(),
            base(0, ChainPolicy::Drop, vec![jump("c1")]),
        )];
        for i in 1..=n {
            let next = if i == n {
                vec![Rule::new(vec![], Verdict::Accept, "bottom")]
            } else {
                vec![jump(&format!("c{}", i + 1))]
            };
            chains.push((format!("c{i}"), regular(next)));
        }
        let mut rs = RuleSet::new("t");
        rs.chains.extend(chains);
        rs
    };
    assert_eq!(
        decision(&deep(16), &tcp("198.18.1.1", "198.18.1.2", 80)),
        Decision::Accept
    );
    assert!(matches!(error(&deep(17)), EvalError::TooDeep { .. }));
}
