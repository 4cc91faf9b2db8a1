//! The ruleset shape: base chain, maps, shared chains, set names, comments,
//! determinism.

use serde_json::json;

use super::fixture::*;
use super::walk::{class_name, class_rules, ingress, Outcome};
use crate::model::{
    AddrField, BaseChain, ChainPolicy, CtStates, Family, Hook, Match, Proto, Rule, Verdict,
};
use crate::snapshot::Snapshot;
use crate::translate::validate::Dir;

fn two_local_pods(policies: Vec<crate::snapshot::Policy>) -> Snapshot {
    snap(
        vec![
            pod("x", "a", NODE, &["198.18.0.1"], &[("app", "web")]),
            pod("x", "b", NODE, &["198.18.0.2"], &[("app", "web")]),
            pod("x", "c", NODE, &["198.18.0.3"], &[("app", "db")]),
            pod("y", "a", "node-2", &["198.18.1.1"], &[("app", "web")]),
        ],
        vec![namespace("x", &[]), namespace("y", &[])],
        policies,
    )
}

#[test]
fn forward_chain_and_maps_always_exist() {
    let rs = run(&Snapshot::default()).ruleset;
    assert_eq!(rs.table, TABLE);
    let fwd = &rs.chains["forward"];
    assert_eq!(
        fwd.base,
        Some(BaseChain {
            hook: Hook::Forward,
            priority: 0,
            policy: ChainPolicy::Accept
        })
    );
    let r = &fwd.rules;
    assert_eq!(r.len(), 6);
    assert_eq!(
        r[0].matches,
        vec![Match::CtState(
            CtStates::ESTABLISHED.union(CtStates::RELATED)
        )]
    );
    assert_eq!(r[0].verdict, Verdict::Accept);
    assert_eq!(
        r[1].matches,
        vec![
            Match::L4Proto(Proto::Icmpv6),
            Match::Icmpv6Type { lo: 133, hi: 137 }
        ]
    );
    let vmaps: Vec<_> = r[2..].iter().map(|r| r.verdict.clone()).collect();
    let vmap = |field, family, map: &str| Verdict::Vmap {
        field,
        family,
        map: map.into(),
    };
    assert_eq!(
        vmaps,
        vec![
            vmap(AddrField::Saddr, Family::V4, "egress-v4"),
            vmap(AddrField::Saddr, Family::V6, "egress-v6"),
            vmap(AddrField::Daddr, Family::V4, "ingress-v4"),
            vmap(AddrField::Daddr, Family::V6, "ingress-v6"),
        ]
    );
    let maps: Vec<_> = rs.maps.keys().cloned().collect();
    assert_eq!(maps, ["egress-v4", "egress-v6", "ingress-v4", "ingress-v6"]);
    assert!(rs.maps.values().all(|m| m.elements.is_empty()));
    assert_eq!(rs.chains.len(), 1);
    assert!(rs.sets.is_empty());
}

#[test]
fn pods_with_identical_rules_share_one_class_chain() {
    let s = two_local_pods(vec![
        policy(
            "x",
            "web",
            json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80}]}]}),
        ),
        policy("x", "all", json!({"podSelector": {}})),
    ]);
    let rs = run(&s).ruleset;
    let a = class_name(&rs, Dir::Ingress, "198.18.0.1");
    let b = class_name(&rs, Dir::Ingress, "198.18.0.2");
    let c = class_name(&rs, Dir::Ingress, "198.18.0.3");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.starts_with("in-"));
    // Three pod chains, two class chains, the base chain.
    assert_eq!(rs.chains.len(), 6);
    let class = &rs.chains[&a].rules;
    let last = class.last().unwrap();
    assert_eq!(last.verdict, Verdict::Drop);
    assert!(last.counter && last.matches.is_empty());
    assert_eq!(last.comment, "default deny ingress");
    // Each pod chain: hairpin, then the jump.
    let pod_chain = &rs.maps["ingress-v4"].elements[&ip("198.18.0.1")];
    assert!(pod_chain.starts_with("pin-x_a-"));
    assert_eq!(
        rs.chains[pod_chain].rules[0].matches,
        vec![Match::AddrEq {
            field: AddrField::Saddr,
            addr: ip("198.18.0.1")
        }]
    );
}

#[test]
fn egress_allows_return_and_ingress_allows_accept() {
    let s = two_local_pods(vec![policy(
        "x",
        "p",
        json!({"podSelector": {}, "ingress": [{}], "egress": [{}]}),
    )]);
    let rs = run(&s).ruleset;
    assert_eq!(
        class_rules(&rs, Dir::Ingress, "198.18.0.1")[0].verdict,
        Verdict::Accept
    );
    let out = class_rules(&rs, Dir::Egress, "198.18.0.1");
    assert_eq!(out[0].verdict, Verdict::Return);
    assert!(class_name(&rs, Dir::Egress, "198.18.0.1").starts_with("out-"));
    let pout = &rs.maps["egress-v4"].elements[&ip("198.18.0.1")];
    assert_eq!(rs.chains[pout].rules[0].verdict, Verdict::Return);
}

#[test]
fn peer_sets_are_named_by_origin_so_pod_churn_changes_elements_not_names() {
    let p = policy(
        "x",
        "p",
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
    );
    let s1 = two_local_pods(vec![p.clone()]);
    let mut s2 = s1.clone();
    s2.pods
        .push(pod("y", "new", "node-2", &["198.18.1.50"], &[]));
    let (r1, r2) = (run(&s1).ruleset, run(&s2).ruleset);
    let n1: Vec<_> = r1.sets.keys().collect();
    let n2: Vec<_> = r2.sets.keys().collect();
    assert_eq!(n1, n2);
    assert_ne!(r1.sets, r2.sets);
    assert_eq!(
        r1.chains.keys().collect::<Vec<_>>(),
        r2.chains.keys().collect::<Vec<_>>()
    );
    assert!(n1[0].starts_with("src4-x-p-0-"));
}

#[test]
fn rule_whose_peer_set_is_empty_is_skipped() {
    let s = two_local_pods(vec![policy(
        "x",
        "p",
        json!({"podSelector": {}, "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "nothing"}}}]},
            {"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}
        ]}),
    )]);
    let rs = run(&s).ruleset;
    let rules = class_rules(&rs, Dir::Ingress, "198.18.0.1");
    assert_eq!(rules.len(), 1, "only ingress[1], IPv4 only");
    assert_eq!(rules[0].comment, "x/p ingress[1]");
    assert_eq!(rs.sets.len(), 1);
}

#[test]
fn rule_comment_names_policy_and_rule_capped_at_128_bytes() {
    let long = "q".repeat(200);
    let s = two_local_pods(vec![
        policy(
            "x",
            "p",
            json!({"podSelector": {}, "ingress": [{}, {"ports": [{"port": 1}]}], "egress": [{}]}),
        ),
        policy("x", &long, json!({"podSelector": {}, "ingress": [{}]})),
    ]);
    let rs = run(&s).ruleset;
    let comments: Vec<_> = class_rules(&rs, Dir::Ingress, "198.18.0.1")
        .iter()
        .map(|r| r.comment.clone())
        .collect();
    assert_eq!(comments[0], "x/p ingress[0]");
    assert_eq!(comments[1], "x/p ingress[1]");
    assert_eq!(comments[2].len(), 128);
    assert!(comments[2].starts_with(&format!("x/{}", &long[..100])));
    assert_eq!(
        class_rules(&rs, Dir::Egress, "198.18.0.1")[0].comment,
        "x/p egress[0]"
    );
}

#[test]
fn duplicate_local_pod_ip_warns_and_keeps_first() {
    let mut s = two_local_pods(vec![policy(
        "x",
        "only-c",
        json!({"podSelector": {"matchLabels": {"app": "db"}}}),
    )]);
    // x/0dup sorts before x/c and takes its address.
    s.pods.push(pod("x", "0dup", NODE, &["198.18.0.3"], &[]));
    let t = run(&s);
    assert_eq!(t.warnings.len(), 1);
    assert_eq!(t.warnings[0].object, "Pod x/c");
    assert_eq!(t.warnings[0].field, "status.podIPs");
    // x/0dup is not selected: the address stays unrestricted.
    assert_eq!(
        ingress(&t.ruleset, "198.18.1.1", "198.18.0.3", Proto::Tcp, 80),
        Outcome::NotIsolated
    );
}

#[test]
fn output_is_independent_of_input_order() {
    let mut s = two_local_pods(vec![
        policy(
            "x",
            "a",
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
        ),
        policy(
            "x",
            "b",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "egress": [{"to": [{"ipBlock": {"cidr": "198.18.0.0/24", "except": ["198.18.0.0/30"]}}]}]}),
        ),
        policy("y", "c", json!({"podSelector": {}})),
    ]);
    s.namespaces.push(namespace("z", &[("k", "v")]));
    let base = run(&s);
    let mut r = s.clone();
    r.pods.reverse();
    r.namespaces.reverse();
    r.policies.reverse();
    assert_eq!(run(&r), base);
    r.pods.rotate_left(2);
    r.policies.rotate_left(1);
    assert_eq!(run(&r), base);
}

#[test]
fn rules_keep_match_order_addr_then_proto_then_port() {
    let s = two_local_pods(vec![policy(
        "x",
        "p",
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 443}]}]}),
    )]);
    let rs = run(&s).ruleset;
    let r: &Rule = &class_rules(&rs, Dir::Ingress, "198.18.0.1")[0];
    assert!(matches!(
        r.matches[0],
        Match::AddrInSet {
            field: AddrField::Saddr,
            family: Family::V4,
            ..
        }
    ));
    assert_eq!(r.matches[1], Match::L4Proto(Proto::Tcp));
    assert_eq!(r.matches[2], Match::Dport { lo: 443, hi: 443 });
}

/// The address set a class rule of `pod_ip` in `dir` reads, by the comment
/// of the rule (`ns/name ingress[i]`).
fn set_of_rule(rs: &crate::model::RuleSet, dir: Dir, pod_ip: &str, comment: &str) -> String {
    let rules = class_rules(rs, dir, pod_ip);
    let r = rules
        .iter()
        .find(|r| r.comment == comment)
        .unwrap_or_else(|| panic!("no rule {comment:?} in {rules:#?}"));
    match &r.matches[0] {
        Match::AddrInSet { set, .. } => set.clone(),
        m => panic!("rule {comment:?} starts with {m:?}"),
    }
}

#[test]
fn rules_with_the_same_peers_share_one_set_named_after_the_smallest_origin() {
    let from_y = json!({"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}
    ]});
    let s = two_local_pods(vec![
        policy("x", "zeta", from_y.clone()),
        policy("x", "alpha", from_y),
    ]);
    let rs = run(&s).ruleset;
    let a = set_of_rule(&rs, Dir::Ingress, "198.18.0.1", "x/alpha ingress[0]");
    let z = set_of_rule(&rs, Dir::Ingress, "198.18.0.1", "x/zeta ingress[0]");
    assert_eq!(a, z, "same peers, one set");
    assert!(a.starts_with("src4-x-alpha-0-"), "{a}");
    assert_eq!(rs.sets.len(), 1, "{:?}", rs.sets.keys());
    assert_eq!(
        rs.sets[&a].comment,
        "peers (v4) of x/alpha ingress[0], x/zeta ingress[0]"
    );
}

#[test]
fn sets_split_when_churn_makes_their_peers_differ_and_keep_their_names() {
    // Both select namespace y's pods; `zeta` also allows app=cache pods of
    // x, of which there are none at first.
    let alpha = json!({"podSelector": {}, "ingress": [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}
    ]});
    let zeta = json!({"podSelector": {}, "ingress": [
        {"from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}},
            {"podSelector": {"matchLabels": {"app": "cache"}}}
        ]}
    ]});
    let s1 = two_local_pods(vec![policy("x", "alpha", alpha), policy("x", "zeta", zeta)]);
    let r1 = run(&s1).ruleset;
    let shared = set_of_rule(&r1, Dir::Ingress, "198.18.0.1", "x/alpha ingress[0]");
    assert_eq!(
        shared,
        set_of_rule(&r1, Dir::Ingress, "198.18.0.1", "x/zeta ingress[0]")
    );
    let mut s2 = s1.clone();
    s2.pods.push(pod(
        "x",
        "cache",
        "node-2",
        &["198.18.1.9"],
        &[("app", "cache")],
    ));
    let r2 = run(&s2).ruleset;
    let a = set_of_rule(&r2, Dir::Ingress, "198.18.0.1", "x/alpha ingress[0]");
    let z = set_of_rule(&r2, Dir::Ingress, "198.18.0.1", "x/zeta ingress[0]");
    assert_eq!(a, shared, "the smallest origin keeps its name");
    assert_ne!(a, z);
    assert!(z.starts_with("src4-x-zeta-0-"), "{z}");
    assert_eq!(r2.sets[&a].elements.len() + 1, r2.sets[&z].elements.len());
}

#[test]
fn a_shared_class_chain_names_the_policies_of_every_pod_using_it() {
    // a and c are selected by different policies that allow nothing: both
    // end up with the same (drop only) ingress class chain.
    let s = two_local_pods(vec![
        policy(
            "x",
            "deny-web",
            json!({"podSelector": {"matchLabels": {"app": "web"}}}),
        ),
        policy(
            "x",
            "deny-db",
            json!({"podSelector": {"matchLabels": {"app": "db"}}}),
        ),
    ]);
    let rs = run(&s).ruleset;
    let web = class_name(&rs, Dir::Ingress, "198.18.0.1");
    assert_eq!(web, class_name(&rs, Dir::Ingress, "198.18.0.3"));
    assert_eq!(
        rs.chains[&web].comment,
        "ingress rules of x/deny-db, x/deny-web"
    );
}

#[test]
fn repeated_rules_are_emitted_once_in_first_seen_order() {
    let s = two_local_pods(vec![policy(
        "x",
        "p",
        json!({"podSelector": {}, "ingress": [{"ports": [
            {"port": 81}, {"port": 80}, {"port": 81}, {"port": 80}, {"port": 79}
        ]}]}),
    )]);
    let rs = run(&s).ruleset;
    let ports: Vec<u16> = class_rules(&rs, Dir::Ingress, "198.18.0.1")
        .iter()
        .filter_map(|r| {
            r.matches.iter().find_map(|m| match m {
                Match::Dport { lo, .. } => Some(*lo),
                _ => None,
            })
        })
        .collect();
    assert_eq!(ports, vec![81, 80, 79]);
}
