//! Hand-worked cases, one per item of the semantics checklist. Every expected
//! answer comes from reading the NetworkPolicy API reference, not from code.

use super::*;
use crate::snapshot::{ContainerPort, Namespace};
use serde_json::json;

const XA: &str = "198.18.1.10"; // x/a app=a, also fd00:198:18:1::10; http TCP 80, dns UDP 53
const XA6: &str = "fd00:198:18:1::10";
const XB: &str = "198.18.1.11"; // x/b app=b tier=web; http TCP 8080
const YA: &str = "198.18.2.10"; // y/a app=a
const ZC: &str = "198.18.2.12"; // z/c app=c, namespace z has no object
const HOST: &str = "198.18.0.1"; // x/host, host network
const DONE: &str = "198.18.1.20"; // x/done app=a, Succeeded
const EXT: &str = "198.19.0.5";

fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(ns: &str, name: &str, kv: &[(&str, &str)], ips: &[&str]) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels(kv),
        node: Some("node-1".into()),
        host_network: false,
        phase: Phase::Running,
        terminating: false,
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        ports: Vec::new(),
    }
}

fn cport(name: &str, port: u16, protocol: &str) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        port,
        protocol: protocol.into(),
    }
}

fn cluster(policies: Vec<serde_json::Value>) -> Snapshot {
    let mut xa = pod("x", "a", &[("app", "a")], &[XA, XA6]);
    xa.ports = vec![cport("http", 80, "TCP"), cport("dns", 53, "UDP")];
    let mut xb = pod("x", "b", &[("app", "b"), ("tier", "web")], &[XB]);
    xb.ports = vec![cport("http", 8080, "TCP")];
    let mut host = pod("x", "host", &[("app", "a")], &[HOST]);
    host.host_network = true;
    let mut done = pod("x", "done", &[("app", "a")], &[DONE]);
    done.phase = Phase::Succeeded;
    let ns = |name: &str, kv: &[(&str, &str)]| {
        let mut l = labels(kv);
        l.insert("kubernetes.io/metadata.name".into(), name.into());
        Namespace {
            name: name.into(),
            labels: l,
        }
    };
    Snapshot {
        pods: vec![
            xa,
            xb,
            pod("y", "a", &[("app", "a")], &[YA]),
            pod("z", "c", &[("app", "c")], &[ZC]),
            host,
            done,
        ],
        namespaces: vec![ns("x", &[("team", "a")]), ns("y", &[("team", "b")])],
        policies: policies
            .into_iter()
            .enumerate()
            .map(|(i, v)| Policy {
                namespace: v["ns"].as_str().unwrap_or("x").to_string(),
                name: format!("np{i}"),
                spec: serde_json::from_value(v["spec"].clone()).unwrap(),
            })
            .collect(),
    }
}

fn np(spec: serde_json::Value) -> serde_json::Value {
    json!({ "spec": spec })
}

fn np_in(ns: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({ "ns": ns, "spec": spec })
}

fn ok(s: &Snapshot, src: &str, dst: &str, proto: L4, port: u16) -> bool {
    allowed(
        s,
        &Conn {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            port,
        },
    )
}

fn tcp(s: &Snapshot, src: &str, dst: &str, port: u16) -> bool {
    ok(s, src, dst, L4::Tcp, port)
}

fn select_a() -> serde_json::Value {
    json!({ "matchLabels": { "app": "a" } })
}

#[test]
fn without_policies_everything_is_allowed() {
    let s = cluster(vec![]);
    assert!(tcp(&s, XB, XA, 80) && tcp(&s, EXT, XA, 1) && tcp(&s, XA, EXT, 443));
    assert!(ok(&s, XA, YA, L4::Sctp, 9));
}

#[test]
fn a_selected_pod_is_default_deny_for_ingress_and_others_are_untouched() {
    let s = cluster(vec![np(json!({ "podSelector": select_a() }))]);
    assert!(!tcp(&s, XB, XA, 80), "x/a is isolated for ingress");
    assert!(!tcp(&s, EXT, XA, 80));
    assert!(tcp(&s, XA, XB, 80), "x/a egress is not isolated");
    assert!(tcp(&s, XA, EXT, 80));
    assert!(
        tcp(&s, XA, YA, 80),
        "y/a is in another namespace: not selected"
    );
}

#[test]
fn policy_types_omitted_means_ingress_plus_egress_only_with_an_egress_rule() {
    // `egress: []` adds nothing: only ingress isolated.
    let s = cluster(vec![np(json!({ "podSelector": select_a(), "egress": [] }))]);
    assert!(tcp(&s, XA, XB, 80));
    assert!(!tcp(&s, XB, XA, 80));
    // One egress rule: egress isolated too, that rule allows x/b only.
    let s = cluster(vec![np(json!({
        "podSelector": select_a(),
        "egress": [{ "to": [{ "podSelector": { "matchLabels": { "app": "b" } } }] }]
    }))]);
    assert!(tcp(&s, XA, XB, 80));
    assert!(!tcp(&s, XA, YA, 80));
    assert!(!tcp(&s, XA, EXT, 80));
}

#[test]
fn an_empty_policy_types_list_is_defaulted_like_an_absent_one() {
    let s = cluster(vec![np(json!({
        "podSelector": select_a(), "policyTypes": [],
        "egress": [{ "to": [{ "podSelector": {} }] }]
    }))]);
    assert!(!tcp(&s, XB, XA, 80), "ingress isolated");
    assert!(tcp(&s, XA, XB, 80), "egress to x pods allowed");
    assert!(!tcp(&s, XA, EXT, 80), "egress isolated");
}

#[test]
fn egress_only_policy_types_leave_ingress_open() {
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "policyTypes": ["Egress"] }),
    )]);
    assert!(tcp(&s, XB, XA, 80));
    assert!(!tcp(&s, XA, XB, 80));
    assert!(!tcp(&s, XA, EXT, 53));
}

#[test]
fn a_connection_needs_the_sources_egress_and_the_destinations_ingress() {
    let s = cluster(vec![
        // x/b may only send to y.
        np(
            json!({ "podSelector": { "matchLabels": { "app": "b" } }, "policyTypes": ["Egress"],
            "egress": [{ "to": [{ "namespaceSelector": { "matchLabels": { "team": "b" } } }] }] }),
        ),
        // y/a accepts only from x/b.
        np_in(
            "y",
            json!({ "podSelector": {}, "ingress": [{ "from": [{
            "namespaceSelector": {}, "podSelector": { "matchLabels": { "app": "b" } } }] }] }),
        ),
    ]);
    assert!(tcp(&s, XB, YA, 80));
    assert!(!tcp(&s, XA, YA, 80), "y/a's ingress refuses x/a");
    assert!(!tcp(&s, XB, XA, 80), "x/b's egress refuses x");
    assert!(tcp(&s, XA, XB, 80), "x/b's ingress is not isolated");
}

#[test]
fn pod_selector_alone_selects_pods_of_the_policy_namespace_only() {
    let s = cluster(vec![np(json!({ "podSelector": {},
        "ingress": [{ "from": [{ "podSelector": { "matchLabels": { "app": "a" } } }] }] }))]);
    assert!(tcp(&s, XA, XB, 80));
    assert!(!tcp(&s, YA, XB, 80), "y/a has app=a but lives in y");
}

#[test]
fn namespace_selector_alone_selects_every_pod_of_matching_namespaces() {
    let s = cluster(vec![np(json!({ "podSelector": {},
        "ingress": [{ "from": [{ "namespaceSelector": { "matchLabels": { "team": "b" } } }] }] }))]);
    assert!(tcp(&s, YA, XB, 80));
    assert!(!tcp(&s, XA, XB, 80), "x is team=a");
    assert!(!tcp(&s, ZC, XB, 80));
}

#[test]
fn both_selectors_in_one_peer_are_anded_and_separate_peers_are_ored() {
    let and = cluster(vec![np(
        json!({ "podSelector": {}, "ingress": [{ "from": [{
        "namespaceSelector": { "matchLabels": { "team": "b" } },
        "podSelector": { "matchLabels": { "app": "c" } } }] }] }),
    )]);
    assert!(!tcp(&and, YA, XB, 80), "y/a is app=a");
    assert!(!tcp(&and, ZC, XB, 80), "z is not team=b");
    let or = cluster(vec![np(json!({ "podSelector": {}, "ingress": [{ "from": [
        { "namespaceSelector": { "matchLabels": { "team": "b" } } },
        { "podSelector": { "matchLabels": { "app": "b" } } }] }] }))]);
    assert!(tcp(&or, YA, XA, 80));
    assert!(tcp(&or, XB, XA, 80));
    assert!(!tcp(&or, ZC, XA, 80));
}

#[test]
fn a_namespace_without_an_object_has_only_its_name_label() {
    let s = cluster(vec![np(json!({ "podSelector": {}, "ingress": [{ "from": [
        { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "z" } } }] }] }))]);
    assert!(tcp(&s, ZC, XA, 80));
    assert!(!tcp(&s, YA, XA, 80));
    let s = cluster(vec![np(json!({ "podSelector": {}, "ingress": [{ "from": [
        { "namespaceSelector": { "matchExpressions": [{ "key": "team", "operator": "DoesNotExist" }] } }] }] }))]);
    assert!(tcp(&s, ZC, XA, 80));
    assert!(!tcp(&s, YA, XA, 80));
}

#[test]
fn an_empty_from_list_allows_any_peer_and_absent_rules_allow_nothing() {
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "ingress": [{ "from": [] }] }),
    )]);
    assert!(tcp(&s, EXT, XA, 80) && tcp(&s, YA, XA, 1));
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "ingress": [{}] }),
    )]);
    assert!(tcp(&s, EXT, XA, 80));
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "ingress": [] }),
    )]);
    assert!(!tcp(&s, EXT, XA, 80));
}

#[test]
fn an_empty_selector_matches_everything() {
    let s = cluster(vec![np(json!({ "podSelector": {}, "ingress": [{ "from": [
        { "namespaceSelector": {} }] }] }))]);
    assert!(tcp(&s, ZC, XB, 80) && tcp(&s, YA, XA, 80));
    assert!(!tcp(&s, EXT, XA, 80), "selectors only match pods");
}

#[test]
fn match_expressions_support_in_notin_exists_and_doesnotexist() {
    let peer = |op: &str, values: Option<Vec<&str>>| {
        let mut req = json!({ "key": "tier", "operator": op });
        if let Some(v) = values {
            req["values"] = json!(v);
        }
        cluster(vec![np_in(
            "y",
            json!({ "podSelector": {}, "ingress": [{ "from": [
            { "namespaceSelector": {}, "podSelector": { "matchExpressions": [req] } }] }] }),
        )])
    };
    let s = peer("In", Some(vec!["web", "db"]));
    assert!(tcp(&s, XB, YA, 80) && !tcp(&s, XA, YA, 80));
    let s = peer("NotIn", Some(vec!["web"]));
    assert!(
        !tcp(&s, XB, YA, 80) && tcp(&s, XA, YA, 80),
        "NotIn matches a missing key"
    );
    let s = peer("Exists", None);
    assert!(tcp(&s, XB, YA, 80) && !tcp(&s, XA, YA, 80));
    let s = peer("DoesNotExist", None);
    assert!(!tcp(&s, XB, YA, 80) && tcp(&s, XA, YA, 80));
}

#[test]
fn ip_block_with_except_matches_addresses_including_pod_ips_in_both_families() {
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "ingress": [{ "from": [
        { "ipBlock": { "cidr": "198.18.0.0/15", "except": ["198.18.2.0/24"] } },
        { "ipBlock": { "cidr": "fd00:198:18::/48", "except": ["fd00:198:18:1::11/128"] } }] }] }),
    )]);
    assert!(tcp(&s, EXT, XA, 80));
    assert!(tcp(&s, XB, XA, 80), "a pod IP inside the block");
    assert!(!tcp(&s, YA, XA, 80), "excepted");
    assert!(tcp(&s, "fd00:198:18:2::1", XA6, 80));
    assert!(!tcp(&s, "fd00:198:18:1::11", XA6, 80), "excepted");
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "policyTypes": ["Egress"],
        "egress": [{ "to": [{ "ipBlock": { "cidr": "198.18.1.0/28" } }] }] }),
    )]);
    assert!(tcp(&s, XA, XB, 80) && !tcp(&s, XA, EXT, 80) && !tcp(&s, XA, DONE, 80));
    assert!(
        !tcp(&s, XA6, "fd00:198:18:1::11", 80),
        "an IPv4 block never matches IPv6"
    );
}

#[test]
fn ports_default_to_tcp_and_take_numbers_ranges_and_protocols() {
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "ingress": [{ "ports": [
        { "port": 80 },
        { "protocol": "UDP", "port": 1000, "endPort": 1010 },
        { "protocol": "SCTP" }] }] }),
    )]);
    assert!(tcp(&s, XB, XA, 80) && !ok(&s, XB, XA, L4::Udp, 80) && !tcp(&s, XB, XA, 81));
    assert!(ok(&s, XB, XA, L4::Udp, 1000) && ok(&s, XB, XA, L4::Udp, 1010));
    assert!(!ok(&s, XB, XA, L4::Udp, 1011) && !tcp(&s, XB, XA, 1005));
    assert!(ok(&s, XB, XA, L4::Sctp, 1) && ok(&s, XB, XA, L4::Sctp, 65535));
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "ingress": [{ "ports": [] }] }),
    )]);
    assert!(ok(&s, XB, XA, L4::Sctp, 7) && tcp(&s, EXT, XA, 1));
}

#[test]
fn a_named_port_resolves_against_the_receiving_pod_by_name_and_protocol() {
    // Ingress: x/a names dns UDP 53 and http TCP 80.
    let s = cluster(vec![np(
        json!({ "podSelector": {}, "ingress": [{ "ports": [
        { "port": "dns", "protocol": "UDP" }, { "port": "http" }] }] }),
    )]);
    assert!(ok(&s, YA, XA, L4::Udp, 53));
    assert!(!tcp(&s, YA, XA, 53), "dns is UDP on x/a");
    assert!(tcp(&s, YA, XA, 80) && !tcp(&s, YA, XA, 8080));
    assert!(
        tcp(&s, YA, XB, 8080) && !tcp(&s, YA, XB, 80),
        "x/b names 8080 http"
    );
    // Egress: the destination pod's ports; an address of no pod names nothing.
    let s = cluster(vec![np(
        json!({ "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{ "ports": [{ "port": "http" }] }] }),
    )]);
    assert!(tcp(&s, XB, XA, 80) && !tcp(&s, XB, XA, 8080));
    assert!(tcp(&s, XA, XB, 8080) && !tcp(&s, XA, XB, 80));
    assert!(!tcp(&s, XA, EXT, 80) && !tcp(&s, XA, YA, 80));
    // A name nobody declares allows nothing; nor does one declared only for
    // another protocol (x/a's dns is UDP, the rule's protocol is TCP).
    let s = cluster(vec![np(
        json!({ "podSelector": {}, "ingress": [{ "ports": [
        { "port": "nope" }, { "port": "dns" }] }] }),
    )]);
    assert!(!tcp(&s, YA, XA, 80) && !tcp(&s, YA, XB, 8080));
    assert!(!tcp(&s, YA, XA, 53) && !ok(&s, YA, XA, L4::Udp, 53));
}

#[test]
fn host_network_finished_and_ip_less_pods_are_never_peers_nor_targets() {
    let s = cluster(vec![np(
        json!({ "podSelector": {}, "ingress": [{ "from": [{ "podSelector": select_a() }] }] }),
    )]);
    assert!(tcp(&s, XA, HOST, 80), "host network pod gets no policy");
    assert!(tcp(&s, XA, DONE, 80), "a finished pod's IP is no pod");
    assert!(!tcp(&s, HOST, XB, 80), "host network pod is no app=a peer");
    assert!(!tcp(&s, DONE, XB, 80), "finished pod is no app=a peer");
    assert!(tcp(&s, XA, XB, 80));
}

#[test]
fn a_pod_may_always_talk_to_itself() {
    let s = cluster(vec![np(
        json!({ "podSelector": {}, "policyTypes": ["Ingress", "Egress"] }),
    )]);
    assert!(tcp(&s, XA, XA, 80) && tcp(&s, XA6, XA6, 1));
    assert!(!tcp(&s, XA, XB, 80));
}

#[test]
fn a_policy_the_api_server_rejects_opens_nothing_but_still_isolates() {
    // Bad CIDR: the valid rule next to it opens nothing either.
    let s = cluster(vec![np(json!({ "podSelector": select_a(), "ingress": [
        { "from": [{ "ipBlock": { "cidr": "198.18.0.0/33" } }] }, {} ] }))]);
    assert!(!tcp(&s, XB, XA, 80));
    assert!(tcp(&s, XA, XB, 80), "x/b is not selected");
    // Invalid podSelector: every pod of the namespace is isolated.
    let s = cluster(vec![np(json!({ "podSelector": { "matchExpressions": [
        { "key": "app", "operator": "Equals", "values": ["zz"] }] } }))]);
    assert!(!tcp(&s, XA, XB, 80) && !tcp(&s, YA, XA, 80));
    assert!(tcp(&s, XA, YA, 80), "y is untouched");
    // Unusable policyTypes: both directions.
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "policyTypes": ["Ingress", "Both"],
        "ingress": [{}], "egress": [{}] }),
    )]);
    assert!(!tcp(&s, XB, XA, 80) && !tcp(&s, XA, XB, 80));
    // A bad egress port invalidates the whole policy, ingress rules included.
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "policyTypes": ["Ingress"],
        "ingress": [{}], "egress": [{ "ports": [{ "protocol": "ICMP" }] }] }),
    )]);
    assert!(!tcp(&s, XB, XA, 80));
    assert!(
        tcp(&s, XA, XB, 80),
        "valid policyTypes: egress not isolated"
    );
    // A valid policy next to it still opens what it opens.
    let s = cluster(vec![
        np(json!({ "podSelector": select_a(), "ingress": [{ "ports": [{ "port": 0 }] }] })),
        np(json!({ "podSelector": {}, "ingress": [{ "ports": [{ "port": 80 }] }] })),
    ]);
    assert!(tcp(&s, XB, XA, 80) && !tcp(&s, XB, XA, 81));
}

fn errors(spec: serde_json::Value) -> Vec<String> {
    policy_errors(&serde_json::from_value(spec).unwrap())
}

#[test]
fn validation_rejects_what_the_api_server_rejects() {
    let bad = [
        json!({ "policyTypes": ["ingress"] }),
        json!({ "policyTypes": ["Ingress", "Egress", "Ingress"] }),
        json!({ "podSelector": { "matchExpressions": [{ "key": "a", "operator": "In" }] } }),
        json!({ "podSelector": { "matchExpressions": [{ "key": "a", "operator": "Exists", "values": ["x"] }] } }),
        json!({ "podSelector": { "matchLabels": { "bad key": "x" } } }),
        json!({ "ingress": [{ "ports": [{ "protocol": "tcp" }] }] }),
        json!({ "ingress": [{ "ports": [{ "port": 65536 }] }] }),
        json!({ "ingress": [{ "ports": [{ "port": "Http" }] }] }),
        json!({ "ingress": [{ "ports": [{ "port": "abcdefghijklmnop" }] }] }),
        json!({ "ingress": [{ "ports": [{ "port": "80" }] }] }),
        json!({ "ingress": [{ "ports": [{ "endPort": 80 }] }] }),
        json!({ "ingress": [{ "ports": [{ "port": 81, "endPort": 80 }] }] }),
        json!({ "ingress": [{ "ports": [{ "port": "http", "endPort": 80 }] }] }),
        json!({ "ingress": [{ "ports": [{ "port": 80, "endPort": 65536 }] }] }),
        json!({ "ingress": [{ "from": [{}] }] }),
        json!({ "ingress": [{ "from": [{ "ipBlock": { "cidr": "198.18.0.0/16" }, "podSelector": {} }] }] }),
        json!({ "egress": [{ "to": [{ "ipBlock": { "cidr": "198.18.0.0" } }] }] }),
        json!({ "egress": [{ "to": [{ "ipBlock": { "cidr": "198.18.1.0/24", "except": ["198.18.1.0/24"] } }] }] }),
        json!({ "egress": [{ "to": [{ "ipBlock": { "cidr": "198.18.1.0/24", "except": ["198.18.2.0/25"] } }] }] }),
        json!({ "egress": [{ "to": [{ "ipBlock": { "cidr": "198.18.1.0/24", "except": ["fd00:198:18::/64"] } }] }] }),
    ];
    for spec in bad {
        assert!(!errors(spec.clone()).is_empty(), "accepted: {spec}");
    }
    let good = [
        json!({}),
        json!({ "policyTypes": ["Egress", "Egress"] }),
        json!({ "podSelector": { "matchExpressions": [{ "key": "kubernetes.io/metadata.name", "operator": "Exists", "values": [] }] } }),
        json!({ "ingress": [{ "ports": [{ "port": 80, "endPort": 80 }, { "port": "web-1" }, { "protocol": "SCTP" }] }] }),
        json!({ "egress": [{ "to": [{ "ipBlock": { "cidr": "198.18.1.0/24", "except": ["198.18.1.128/25", "198.18.1.7/32"] } }] }] }),
        json!({ "egress": [{ "to": [{ "namespaceSelector": {}, "podSelector": {} }] }] }),
    ];
    for spec in good {
        assert_eq!(
            errors(spec.clone()),
            Vec::<String>::new(),
            "rejected: {spec}"
        );
    }
}

#[test]
fn dual_stack_pods_are_isolated_and_matched_through_either_address() {
    let s = cluster(vec![np(
        json!({ "podSelector": select_a(), "ingress": [{ "from": [
        { "ipBlock": { "cidr": "fd00:198:18:3::/64" } }] }] }),
    )]);
    assert!(tcp(&s, "fd00:198:18:3::5", XA6, 80));
    assert!(
        !tcp(&s, "fd00:198:18:2::1", XA6, 80),
        "isolated through its IPv6 address"
    );
    assert!(!tcp(&s, EXT, XA, 80), "and through its IPv4 address");
    let s = cluster(vec![np(
        json!({ "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{ "to": [{ "podSelector": select_a() }] }] }),
    )]);
    assert!(tcp(&s, XB, XA, 80));
    assert!(
        !tcp(&s, XA6, "fd00:198:18:1::11", 80),
        "no app=a pod owns that address"
    );
}
