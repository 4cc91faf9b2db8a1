//! One test per NetworkPolicy semantics item.

use serde_json::{json, Value};

use super::fixture::*;
use super::walk::{allowed, class_rules, egress, ingress, Outcome};
use crate::model::{Match, Proto};
use crate::snapshot::{Phase, Pod, Policy, Snapshot};
use crate::translate::validate::Dir;

const XA: &str = "198.18.0.1";
const XA6: &str = "fd00:198:18::1";
const XB: &str = "198.18.0.2";
const YA: &str = "198.18.1.1";
const YB: &str = "198.18.1.2";
const ZC: &str = "198.18.2.3";
const OUT: &str = "198.19.9.9";

/// x/a, x/b local (node-1); y/a, y/b, z/c remote. Namespace z is absent
/// from the snapshot.
fn pods() -> Vec<Pod> {
    vec![
        pod("x", "a", NODE, &[XA, XA6], &[("app", "a")]),
        pod("x", "b", NODE, &[XB], &[("app", "b")]),
        pod("y", "a", "node-2", &[YA], &[("app", "a")]),
        pod("y", "b", "node-2", &[YB], &[("app", "b")]),
        pod("z", "c", "node-2", &[ZC], &[("app", "c")]),
    ]
}

fn cluster(policies: Vec<Policy>) -> Snapshot {
    snap(
        pods(),
        vec![
            namespace("x", &[("team", "blue")]),
            namespace("y", &[("team", "red")]),
        ],
        policies,
    )
}

/// The cluster with the one policy `x/p`.
fn one(spec: Value) -> Snapshot {
    cluster(vec![policy("x", "p", spec)])
}

/// Ports of a pod of `pods()`: (index, [(name, number, protocol)]).
type PodPorts<'a> = (usize, &'a [(&'a str, u16, &'a str)]);

/// `one(spec)` with container ports on some of the pods.
fn ported(ports: &[PodPorts], spec: Value) -> Snapshot {
    let mut s = one(spec);
    for (i, p) in ports {
        s.pods[*i] = with_ports(s.pods[*i].clone(), p);
    }
    s
}

fn tcp_in(s: &Snapshot, src: &str, dst: &str, port: u16) -> bool {
    allowed(&ingress(&run(s).ruleset, src, dst, Proto::Tcp, port))
}

fn tcp_out(s: &Snapshot, src: &str, dst: &str, port: u16) -> bool {
    allowed(&egress(&run(s).ruleset, src, dst, Proto::Tcp, port))
}

fn deny_all_ingress(ns: &str) -> Policy {
    policy(
        ns,
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )
}

#[test]
fn pod_selected_by_no_policy_is_unrestricted() {
    let s = cluster(vec![policy(
        "x",
        "only-b",
        json!({"podSelector": {"matchLabels": {"app": "b"}}}),
    )]);
    let rs = run(&s).ruleset;
    assert_eq!(ingress(&rs, YA, XA, Proto::Tcp, 80), Outcome::NotIsolated);
    assert_eq!(egress(&rs, XA, YA, Proto::Tcp, 80), Outcome::NotIsolated);
    assert_eq!(ingress(&rs, YA, XB, Proto::Tcp, 80), Outcome::Dropped);
}

#[test]
fn isolation_is_per_direction() {
    let s = cluster(vec![policy(
        "x",
        "eg",
        json!({"podSelector": {}, "policyTypes": ["Egress"]}),
    )]);
    let rs = run(&s).ruleset;
    assert_eq!(ingress(&rs, YA, XA, Proto::Tcp, 80), Outcome::NotIsolated);
    assert_eq!(egress(&rs, XA, YA, Proto::Tcp, 80), Outcome::Dropped);
    assert!(rs.maps["ingress-v4"].elements.is_empty());
    assert_eq!(rs.maps["egress-v4"].elements.len(), 2);
}

#[test]
fn policy_types_omitted_means_ingress_only_unless_egress_rules_exist() {
    let empty_egress = one(json!({"podSelector": {}, "egress": []}));
    let rs = run(&empty_egress).ruleset;
    assert_eq!(ingress(&rs, YA, XA, Proto::Tcp, 80), Outcome::Dropped);
    assert_eq!(egress(&rs, XA, YA, Proto::Tcp, 80), Outcome::NotIsolated);

    let with_egress =
        one(json!({"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}));
    let rs = run(&with_egress).ruleset;
    assert_eq!(ingress(&rs, YA, XA, Proto::Tcp, 80), Outcome::Dropped);
    assert_eq!(egress(&rs, XA, YA, Proto::Tcp, 80), Outcome::Dropped);
    assert!(allowed(&egress(&rs, XA, YA, Proto::Udp, 53)));
}

#[test]
fn allows_of_all_selecting_policies_are_unioned() {
    let s = cluster(vec![
        policy(
            "x",
            "p1",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}),
        ),
        policy(
            "x",
            "p2",
            json!({"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": [{"port": 81}]}]}),
        ),
    ]);
    assert!(tcp_in(&s, YA, XA, 80));
    assert!(tcp_in(&s, YA, XA, 81));
    assert!(!tcp_in(&s, YA, XA, 82));
    assert!(tcp_in(&s, YA, XB, 80));
    assert!(!tcp_in(&s, YA, XB, 81));
}

#[test]
fn pod_selector_alone_selects_pods_of_the_policy_namespace() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}),
    );
    assert!(tcp_in(&s, XB, XA, 80));
    assert!(!tcp_in(&s, YB, XA, 80), "app=b of another namespace");
    assert!(!tcp_in(&s, YA, XA, 80));
}

#[test]
fn namespace_selector_alone_selects_all_pods_of_matching_namespaces() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "red"}}}]}]}),
    );
    assert!(tcp_in(&s, YA, XA, 80));
    assert!(tcp_in(&s, YB, XA, 80));
    assert!(!tcp_in(&s, XB, XA, 80));
    assert!(!tcp_in(&s, ZC, XA, 80));
}

#[test]
fn pod_and_namespace_selector_in_one_peer_are_anded() {
    let s = one(json!({"podSelector": {}, "ingress": [{"from": [{
        "namespaceSelector": {"matchLabels": {"team": "red"}},
        "podSelector": {"matchLabels": {"app": "b"}}
    }]}]}));
    assert!(tcp_in(&s, YB, XA, 80));
    assert!(!tcp_in(&s, YA, XA, 80));
    assert!(!tcp_in(&s, XB, XA, 80));
}

#[test]
fn separate_peers_are_ored() {
    let s = one(json!({"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "red"}}},
        {"podSelector": {"matchLabels": {"app": "b"}}}
    ]}]}));
    assert!(tcp_in(&s, YA, XA, 80));
    assert!(tcp_in(&s, XB, XA, 80));
    assert!(!tcp_in(&s, ZC, XA, 80));
}

#[test]
fn empty_from_list_allows_any_peer_without_address_match() {
    let s = one(json!({"podSelector": {}, "ingress": [{"from": [], "ports": [{"port": 80}]}]}));
    let rs = run(&s).ruleset;
    let rules = class_rules(&rs, Dir::Ingress, XA);
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].matches,
        vec![Match::L4Proto(Proto::Tcp), Match::Dport { lo: 80, hi: 80 }]
    );
    assert!(allowed(&ingress(&rs, OUT, XA, Proto::Tcp, 80)));
}

#[test]
fn absent_rules_list_allows_nothing() {
    let s = cluster(vec![deny_all_ingress("x")]);
    let rs = run(&s).ruleset;
    assert!(class_rules(&rs, Dir::Ingress, XA).is_empty());
    assert_eq!(ingress(&rs, YA, XA, Proto::Tcp, 80), Outcome::Dropped);
    assert!(rs.sets.is_empty());
}

#[test]
fn empty_selector_matches_everything() {
    let s = one(json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}));
    for src in [XB, YA, YB, ZC] {
        assert!(tcp_in(&s, src, XA, 80), "{src}");
    }
    assert!(!tcp_in(&s, OUT, XA, 80));
}

#[test]
fn match_expressions_in_notin_exists_doesnotexist_select_peers() {
    let peers = |expr: serde_json::Value| {
        one(json!({"podSelector": {}, "ingress": [{"from": [{
            "namespaceSelector": {}, "podSelector": {"matchExpressions": [expr]}
        }]}]}))
    };
    let s = peers(json!({"key": "app", "operator": "In", "values": ["a", "c"]}));
    assert!(tcp_in(&s, YA, XB, 80) && tcp_in(&s, ZC, XB, 80) && !tcp_in(&s, YB, XB, 80));
    let s = peers(json!({"key": "app", "operator": "NotIn", "values": ["a", "c"]}));
    assert!(!tcp_in(&s, YA, XB, 80) && !tcp_in(&s, ZC, XB, 80) && tcp_in(&s, YB, XB, 80));
    let s = peers(json!({"key": "app", "operator": "Exists"}));
    assert!(tcp_in(&s, YA, XB, 80) && tcp_in(&s, ZC, XB, 80));
    let s = peers(json!({"key": "app", "operator": "DoesNotExist"}));
    assert!(!tcp_in(&s, YA, XB, 80) && !tcp_in(&s, ZC, XB, 80));
}

#[test]
fn ipblock_except_v4_splits_into_intervals() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {
            "cidr": "198.18.0.0/16", "except": ["198.18.1.0/24", "198.18.0.0/31"]
        }}]}]}),
    );
    let rs = run(&s).ruleset;
    let sets = sets_with_prefix(&rs, "src4-");
    assert_eq!(sets.len(), 1);
    assert_eq!(
        sets[0].1,
        [
            iv("198.18.0.2", "198.18.0.255"),
            iv("198.18.2.0", "198.18.255.255")
        ]
    );
    assert!(sets_with_prefix(&rs, "src6-").is_empty());
}

#[test]
fn ipblock_except_v6_splits_into_intervals() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {
            "cidr": "fd00:198:18::/48", "except": ["fd00:198:18:1::/64"]
        }}]}]}),
    );
    let rs = run(&s).ruleset;
    let sets = sets_with_prefix(&rs, "src6-");
    assert_eq!(sets.len(), 1);
    assert_eq!(
        sets[0].1,
        [
            iv("fd00:198:18::", "fd00:198:18:0:ffff:ffff:ffff:ffff"),
            iv("fd00:198:18:2::", "fd00:198:18:ffff:ffff:ffff:ffff:ffff")
        ]
    );
    assert!(allowed(&ingress(&rs, "fd00:198:18::9", XA6, Proto::Tcp, 1)));
    assert!(!allowed(&ingress(
        &rs,
        "fd00:198:18:1::9",
        XA6,
        Proto::Tcp,
        1
    )));
}

#[test]
fn ipblock_matches_pod_ips_too() {
    // Egress to a named port through an ipBlock: the pods inside the block
    // resolve the name; the plain address set covers pod IPs as well.
    let s = ported(
        &[(3, &[("web", 8080, "TCP")])],
        json!({"podSelector": {}, "egress": [
            {"to": [{"ipBlock": {"cidr": "198.18.1.0/24"}}], "ports": [{"port": "web"}]},
            {"to": [{"ipBlock": {"cidr": "198.18.2.0/24"}}]}
        ]}),
    );
    assert!(tcp_out(&s, XA, YB, 8080));
    assert!(!tcp_out(&s, XA, YA, 8080));
    assert!(tcp_out(&s, XA, ZC, 5));
}

#[test]
fn ports_number_with_protocol_tcp_default_udp_sctp() {
    let s = one(json!({"podSelector": {}, "ingress": [{"ports": [
        {"port": 80}, {"port": 53, "protocol": "UDP"}, {"port": 9, "protocol": "SCTP"}
    ]}]}));
    let rs = run(&s).ruleset;
    let m: Vec<_> = class_rules(&rs, Dir::Ingress, XA)
        .iter()
        .map(|r| r.matches.clone())
        .collect();
    assert_eq!(
        m,
        vec![
            vec![Match::L4Proto(Proto::Tcp), Match::Dport { lo: 80, hi: 80 }],
            vec![Match::L4Proto(Proto::Udp), Match::Dport { lo: 53, hi: 53 }],
            vec![Match::L4Proto(Proto::Sctp), Match::Dport { lo: 9, hi: 9 }],
        ]
    );
    assert!(!allowed(&ingress(&rs, YA, XA, Proto::Udp, 80)));
}

#[test]
fn end_port_makes_a_port_range() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8080, "protocol": "UDP"}]}]}),
    );
    let rs = run(&s).ruleset;
    assert_eq!(
        class_rules(&rs, Dir::Ingress, XA)[0].matches,
        vec![
            Match::L4Proto(Proto::Udp),
            Match::Dport { lo: 8000, hi: 8080 }
        ]
    );
}

#[test]
fn empty_ports_allow_all_ports_and_protocols() {
    let s =
        one(json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}], "ports": []}]}));
    let rs = run(&s).ruleset;
    let rules = class_rules(&rs, Dir::Ingress, XA);
    assert_eq!(rules.len(), 2, "one rule per family, no port match");
    assert!(rules.iter().all(|r| r.matches.len() == 1));
    assert!(allowed(&ingress(&rs, XB, XA, Proto::Sctp, 7)));
}

#[test]
fn named_port_resolves_against_the_receiving_pod_for_ingress() {
    let s = ported(
        &[
            (0, &[("web", 8080, "TCP"), ("dns", 53, "UDP")]),
            (1, &[("web", 9090, "TCP")]),
        ],
        json!({"podSelector": {}, "ingress": [{"ports": [
            {"port": "web"}, {"port": "dns"}, {"port": "dns", "protocol": "UDP"}
        ]}]}),
    );
    let rs = run(&s).ruleset;
    assert!(allowed(&ingress(&rs, YA, XA, Proto::Tcp, 8080)));
    assert!(!allowed(&ingress(&rs, YA, XA, Proto::Tcp, 9090)));
    assert!(allowed(&ingress(&rs, YA, XA, Proto::Udp, 53)));
    assert!(allowed(&ingress(&rs, YA, XB, Proto::Tcp, 9090)));
    assert!(!allowed(&ingress(&rs, YA, XB, Proto::Tcp, 8080)));
    // The name matches with its protocol only: dns is UDP, the rule says TCP.
    assert!(!allowed(&ingress(&rs, YA, XA, Proto::Tcp, 53)));
}

#[test]
fn named_port_resolves_against_each_destination_pod_for_egress() {
    let s = ported(
        &[(2, &[("web", 8080, "TCP")]), (3, &[("web", 9090, "TCP")])],
        json!({"podSelector": {}, "egress": [{
            "to": [{"namespaceSelector": {}}], "ports": [{"port": "web"}]
        }]}),
    );
    let rs = run(&s).ruleset;
    assert!(tcp_out(&s, XA, YA, 8080));
    assert!(!tcp_out(&s, XA, YA, 9090));
    assert!(tcp_out(&s, XA, YB, 9090));
    assert!(!tcp_out(&s, XA, YB, 8080));
    // One destination set per resolved port number.
    let sets = sets_with_prefix(&rs, "dst4-");
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0].1.len() + sets[1].1.len(), 2);
}

#[test]
fn named_port_resolving_nowhere_allows_nothing() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"ports": [{"port": "nope"}]}],
                   "egress": [{"ports": [{"port": "nope"}]}]}),
    );
    let rs = run(&s).ruleset;
    assert!(class_rules(&rs, Dir::Ingress, XA).is_empty());
    assert!(class_rules(&rs, Dir::Egress, XA).is_empty());
    assert!(rs.sets.is_empty());
}

#[test]
fn non_pod_ips_never_match_a_named_port() {
    let s = ported(
        &[(2, &[("web", 8080, "TCP")])],
        json!({"podSelector": {}, "egress": [{
            "to": [{"ipBlock": {"cidr": "198.18.0.0/15"}}], "ports": [{"port": "web"}]
        }]}),
    );
    let rs = run(&s).ruleset;
    assert!(tcp_out(&s, XA, YA, 8080));
    assert!(!tcp_out(&s, XA, OUT, 8080));
    let sets = sets_with_prefix(&rs, "dst4-");
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].1, [iv(YA, YA)]);
}

#[test]
fn peer_pods_are_cluster_wide_from_every_node() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}],
               "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "red"}}}]}]}),
    );
    let mut s2 = s.clone();
    s2.pods
        .push(pod("x", "remote", "node-9", &["198.18.0.99"], &[]));
    assert!(tcp_in(&s2, "198.18.0.99", XA, 80));
    assert!(tcp_out(&s, XA, YB, 80));
}

#[test]
fn pods_without_ip_host_network_or_finished_are_never_peers() {
    let mut extra = vec![
        pod("x", "hostnet", "node-2", &["198.18.0.10"], &[]),
        pod("x", "done", "node-2", &["198.18.0.11"], &[]),
        pod("x", "failed", "node-2", &["198.18.0.12"], &[]),
        pod("x", "noip", "node-2", &[], &[]),
    ];
    extra[0].host_network = true;
    extra[1].phase = Phase::Succeeded;
    extra[2].phase = Phase::Failed;
    let mut s = one(json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}));
    s.pods.extend(extra);
    let rs = run(&s).ruleset;
    let sets = sets_with_prefix(&rs, "src4-");
    assert_eq!(sets[0].1, [iv(XA, XB)], "only x/a and x/b are peers");
}

#[test]
fn local_pods_without_ip_host_network_or_finished_get_no_rules() {
    let mut extra = vec![
        pod("x", "hostnet", NODE, &["198.18.0.10"], &[]),
        pod("x", "done", NODE, &["198.18.0.11"], &[]),
        pod("x", "noip", NODE, &[], &[]),
    ];
    extra[0].host_network = true;
    extra[1].phase = Phase::Succeeded;
    let mut s = cluster(vec![deny_all_ingress("x")]);
    s.pods.extend(extra);
    let rs = run(&s).ruleset;
    let keys: Vec<_> = rs.maps["ingress-v4"].elements.keys().copied().collect();
    assert_eq!(keys, vec![ip(XA), ip(XB)]);
}

#[test]
fn namespace_absent_from_snapshot_matches_only_its_name_label() {
    let by_name = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector":
            {"matchLabels": {"kubernetes.io/metadata.name": "z"}}}]}]}),
    );
    assert!(tcp_in(&by_name, ZC, XA, 80));
    let by_other = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector":
            {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}}]}]}),
    );
    assert!(tcp_in(&by_other, ZC, XA, 80), "z has no team label");
    assert!(!tcp_in(&by_other, YA, XA, 80));
}

#[test]
fn present_namespace_always_matches_its_name_label() {
    let s = one(
        json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector":
            {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}]}]}),
    );
    assert!(tcp_in(&s, YA, XA, 80));
    assert!(!tcp_in(&s, ZC, XA, 80));
}

#[test]
fn dual_stack_pods_get_v4_and_v6_entries_and_sets() {
    let mut ps = pods();
    ps[2].ips.push(ip("fd00:198:18:1::1"));
    let s = snap(
        ps,
        vec![],
        vec![policy(
            "x",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "a"}},
                   "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "a"}}}]}]}),
        )],
    );
    let rs = run(&s).ruleset;
    assert!(rs.maps["ingress-v4"].elements.contains_key(&ip(XA)));
    assert!(rs.maps["ingress-v6"].elements.contains_key(&ip(XA6)));
    assert_eq!(
        sets_with_prefix(&rs, "src4-")[0].1,
        [iv(XA, XA), iv(YA, YA)]
    );
    assert_eq!(
        sets_with_prefix(&rs, "src6-")[0].1,
        [iv(XA6, XA6), iv("fd00:198:18:1::1", "fd00:198:18:1::1")]
    );
    assert!(allowed(&ingress(
        &rs,
        "fd00:198:18:1::1",
        XA6,
        Proto::Tcp,
        80
    )));
}

#[test]
fn pod_to_itself_is_always_allowed() {
    let s = one(json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}));
    let rs = run(&s).ruleset;
    assert_eq!(
        ingress(&rs, XA, XA, Proto::Tcp, 80),
        Outcome::Allowed("pod to itself".into())
    );
    assert_eq!(
        egress(&rs, XA6, XA6, Proto::Udp, 80),
        Outcome::Allowed("pod to itself".into())
    );
    assert_eq!(ingress(&rs, XB, XA, Proto::Tcp, 80), Outcome::Dropped);
}
