//! Policies the API server would reject: a warning naming the policy and the
//! field, the policy opens nothing, its pods stay isolated, the rest of the
//! node is unaffected.

use serde_json::{json, Value};

use super::fixture::*;
use super::walk::{allowed, egress, ingress, Outcome};
use crate::model::Proto;
use crate::snapshot::Snapshot;
use crate::translate::Translation;

const A: &str = "198.18.0.1";
const B: &str = "198.18.0.2";
const OTHER: &str = "198.18.5.1";
const PEER: &str = "198.18.1.1";

/// x/a (app=a) and x/b (app=b) local, z/o local in another namespace,
/// y/p remote; the bad policy `x/bad` with `spec`, plus a valid policy
/// `x/good` that opens TCP 80 to x/b, and one in z that opens z/o.
fn with_bad(spec: Value) -> (Snapshot, Translation) {
    let s = snap(
        vec![
            pod("x", "a", NODE, &[A], &[("app", "a")]),
            pod("x", "b", NODE, &[B], &[("app", "b")]),
            pod("z", "o", NODE, &[OTHER], &[("app", "a")]),
            pod("y", "p", "node-2", &[PEER], &[("app", "a")]),
        ],
        vec![],
        vec![
            policy("x", "bad", spec),
            policy(
                "x",
                "good",
                json!({"podSelector": {"matchLabels": {"app": "b"}}, "ingress": [{"ports": [{"port": 80}]}]}),
            ),
            policy(
                "z",
                "open",
                json!({"podSelector": {}, "ingress": [{}], "egress": [{}]}),
            ),
        ],
    );
    let t = run(&s);
    (s, t)
}

/// The one warning's field, checking it names the bad policy.
fn only_warning(t: &Translation) -> String {
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    assert_eq!(t.warnings[0].object, "NetworkPolicy x/bad");
    t.warnings[0].field.clone()
}

/// x/a (selected by the bad ingress policy) is isolated with nothing
/// allowed; x/b still gets what x/good allows; z/o is untouched.
fn assert_fail_closed_ingress(t: &Translation) {
    let rs = &t.ruleset;
    assert_eq!(ingress(rs, PEER, A, Proto::Tcp, 80), Outcome::Dropped);
    assert_eq!(ingress(rs, PEER, A, Proto::Udp, 53), Outcome::Dropped);
    assert!(allowed(&ingress(rs, PEER, B, Proto::Tcp, 80)));
    assert!(allowed(&ingress(rs, PEER, OTHER, Proto::Tcp, 1)));
    assert!(allowed(&egress(rs, OTHER, PEER, Proto::Tcp, 1)));
}

/// The egress check of `src` for TCP port 80 to the remote peer.
fn out80(t: &Translation, src: &str) -> Outcome {
    egress(&t.ruleset, src, PEER, Proto::Tcp, 80)
}

fn bad_ingress_peer(peer: Value) -> Value {
    json!({"podSelector": {"matchLabels": {"app": "a"}},
           "ingress": [{"from": [{"podSelector": {}}, peer], "ports": [{"port": 80}]}]})
}

#[test]
fn invalid_cidr_warns_and_keeps_selected_pods_isolated() {
    let (_, t) = with_bad(bad_ingress_peer(
        json!({"ipBlock": {"cidr": "198.18.0.0/33"}}),
    ));
    assert_eq!(only_warning(&t), "spec.ingress[0].from[1].ipBlock.cidr");
    assert_fail_closed_ingress(&t);
}

#[test]
fn except_outside_cidr_or_of_other_family_warns() {
    let (_, t) = with_bad(bad_ingress_peer(json!({"ipBlock": {
        "cidr": "198.18.0.0/24", "except": ["198.18.0.0/28", "198.18.1.0/28"]
    }})));
    assert_eq!(
        only_warning(&t),
        "spec.ingress[0].from[1].ipBlock.except[1]"
    );
    assert_fail_closed_ingress(&t);
    let (_, t) = with_bad(bad_ingress_peer(json!({"ipBlock": {
        "cidr": "198.18.0.0/24", "except": ["fd00:198:18::/64"]
    }})));
    assert_eq!(
        only_warning(&t),
        "spec.ingress[0].from[1].ipBlock.except[0]"
    );
    let (_, t) = with_bad(bad_ingress_peer(json!({"ipBlock": {
        "cidr": "198.18.0.0/24", "except": ["198.18.0.0/24"]
    }})));
    assert_eq!(
        only_warning(&t),
        "spec.ingress[0].from[1].ipBlock.except[0]",
        "not a strict subset"
    );
}

#[test]
fn port_out_of_range_warns() {
    for port in [0, 65536, -1] {
        let (_, t) = with_bad(json!({"podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"ports": [{"port": 80}, {"port": port}]}]}));
        assert_eq!(only_warning(&t), "spec.ingress[0].ports[1].port");
        assert_fail_closed_ingress(&t);
    }
}

#[test]
fn end_port_without_numeric_port_or_below_port_warns() {
    for ports in [
        json!([{"endPort": 90}]),
        json!([{"port": "web", "endPort": 90}]),
        json!([{"port": 91, "endPort": 90}]),
    ] {
        let (_, t) = with_bad(
            json!({"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"ports": ports}]}),
        );
        assert_eq!(only_warning(&t), "spec.ingress[0].ports[0].endPort");
        assert_fail_closed_ingress(&t);
    }
}

#[test]
fn unknown_protocol_warns() {
    for proto in ["tcp", "ICMP", ""] {
        let (_, t) = with_bad(json!({"podSelector": {"matchLabels": {"app": "a"}},
            "ingress": [{"ports": [{"port": 80, "protocol": proto}]}]}));
        assert_eq!(only_warning(&t), "spec.ingress[0].ports[0].protocol");
        assert_fail_closed_ingress(&t);
    }
}

#[test]
fn unknown_selector_operator_warns() {
    let (_, t) = with_bad(bad_ingress_peer(
        json!({"namespaceSelector": {"matchExpressions": [
            {"key": "k", "operator": "Equals", "values": ["v"]}
        ]}}),
    ));
    assert_eq!(
        only_warning(&t),
        "spec.ingress[0].from[1].namespaceSelector.matchExpressions[0].operator"
    );
    assert_fail_closed_ingress(&t);
}

#[test]
fn in_without_values_and_exists_with_values_warn() {
    let (_, t) = with_bad(bad_ingress_peer(
        json!({"podSelector": {"matchExpressions": [
            {"key": "k", "operator": "NotIn", "values": []}
        ]}}),
    ));
    assert_eq!(
        only_warning(&t),
        "spec.ingress[0].from[1].podSelector.matchExpressions[0].values"
    );
    assert_fail_closed_ingress(&t);
    let (_, t) = with_bad(bad_ingress_peer(
        json!({"podSelector": {"matchExpressions": [
            {"key": "k", "operator": "Exists", "values": ["v"]}
        ]}}),
    ));
    assert_eq!(
        only_warning(&t),
        "spec.ingress[0].from[1].podSelector.matchExpressions[0].values"
    );
}

#[test]
fn peer_with_ipblock_and_selector_warns() {
    let (_, t) = with_bad(bad_ingress_peer(json!({
        "ipBlock": {"cidr": "198.18.0.0/16"}, "podSelector": {}
    })));
    assert_eq!(only_warning(&t), "spec.ingress[0].from[1]");
    assert_fail_closed_ingress(&t);
}

#[test]
fn empty_peer_warns() {
    let (_, t) = with_bad(bad_ingress_peer(json!({})));
    assert_eq!(only_warning(&t), "spec.ingress[0].from[1]");
    assert_fail_closed_ingress(&t);
}

#[test]
fn invalid_egress_rule_keeps_egress_isolated() {
    let (_, t) = with_bad(json!({"podSelector": {"matchLabels": {"app": "a"}},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "nonsense"}}]}]}));
    assert_eq!(only_warning(&t), "spec.egress[0].to[0].ipBlock.cidr");
    assert_eq!(out80(&t, A), Outcome::Dropped);
    assert_eq!(
        ingress(&t.ruleset, PEER, A, Proto::Tcp, 80),
        Outcome::NotIsolated
    );
}

#[test]
fn unknown_policy_type_isolates_both_directions() {
    let (_, t) = with_bad(json!({"podSelector": {"matchLabels": {"app": "a"}},
        "policyTypes": ["Ingress", "Sideways"], "ingress": [{}]}));
    assert_eq!(only_warning(&t), "spec.policyTypes[1]");
    assert_fail_closed_ingress(&t);
    assert_eq!(out80(&t, A), Outcome::Dropped);
    // x/b is not selected by the bad policy: still egress-unrestricted.
    assert_eq!(out80(&t, B), Outcome::NotIsolated);
}

#[test]
fn invalid_pod_selector_isolates_every_pod_of_the_namespace() {
    let (_, t) = with_bad(
        json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Bogus"}]},
        "ingress": [{}]}),
    );
    assert_eq!(
        only_warning(&t),
        "spec.podSelector.matchExpressions[0].operator"
    );
    let rs = &t.ruleset;
    assert_eq!(ingress(rs, PEER, A, Proto::Tcp, 80), Outcome::Dropped);
    // x/b: isolated by the bad policy too, x/good still opens port 80.
    assert!(allowed(&ingress(rs, PEER, B, Proto::Tcp, 80)));
    assert_eq!(ingress(rs, PEER, B, Proto::Tcp, 81), Outcome::Dropped);
    // Other namespaces are unaffected.
    assert!(allowed(&ingress(rs, PEER, OTHER, Proto::Tcp, 81)));
}

#[test]
fn invalid_port_name_warns() {
    let (_, t) = with_bad(json!({"podSelector": {"matchLabels": {"app": "a"}},
        "ingress": [{"ports": [{"port": "HTTP_1"}]}]}));
    assert_eq!(only_warning(&t), "spec.ingress[0].ports[0].port");
    assert_fail_closed_ingress(&t);
}

#[test]
fn too_many_policy_types_isolate_both_directions() {
    let (_, t) = with_bad(json!({"podSelector": {"matchLabels": {"app": "a"}},
        "policyTypes": ["Ingress", "Ingress", "Egress"]}));
    assert_eq!(only_warning(&t), "spec.policyTypes");
    assert_eq!(out80(&t, A), Outcome::Dropped);
}

#[test]
fn never_panics_on_odd_input() {
    let odd = [
        json!({}),
        json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "::/0", "except": ["::/1", "8000::/1"]}}]}]}),
        json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["0.0.0.0/1", "128.0.0.0/1"]}}]}]}),
        json!({"podSelector": {}, "egress": [{"ports": [{"port": 65535, "endPort": 65535}, {"port": "x"}]}]}),
        json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "1.2.3.4/"}}]}]}),
        json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "/8"}}]}]}),
        json!({"podSelector": {}, "policyTypes": []}),
        json!({"podSelector": {"matchLabels": {"": ""}}, "egress": [{"to": [{"namespaceSelector": {"matchExpressions": []}}]}]}),
    ];
    for spec in odd {
        let (s, t) = with_bad(spec.clone());
        // Everything referenced exists.
        let rs = &t.ruleset;
        for c in rs.chains.values() {
            for r in &c.rules {
                if let crate::model::Verdict::Jump(j) = &r.verdict {
                    assert!(rs.chains.contains_key(j), "{spec}: dangling {j}");
                }
            }
        }
        assert_eq!(run(&s), t);
    }
}

#[test]
fn invalid_label_key_or_value_warns() {
    let (_, t) = with_bad(bad_ingress_peer(
        json!({"podSelector": {"matchLabels": {"app": "not valid"}}}),
    ));
    assert_eq!(
        only_warning(&t),
        "spec.ingress[0].from[1].podSelector.matchLabels[app]"
    );
    assert_fail_closed_ingress(&t);
}
