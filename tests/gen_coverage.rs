//! The shared cluster generator really produces the variety the property
//! tests rely on (otherwise a green property test would prove little).

mod common;

use common::gen;
use flock_netpol::snapshot::Phase;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

#[test]
fn the_cluster_generator_covers_every_kind_of_pod_and_policy_field() {
    let mut runner = TestRunner::deterministic();
    let strategy = gen::cluster();
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    let mut note = |k: &'static str, hit: bool| *seen.entry(k).or_default() += usize::from(hit);
    for _ in 0..500 {
        let snap = strategy.new_tree(&mut runner).unwrap().current();
        let pods = &snap.pods;
        note("host network pod", pods.iter().any(|p| p.host_network));
        note(
            "finished pod",
            pods.iter()
                .any(|p| p.phase == Phase::Succeeded || p.phase == Phase::Failed),
        );
        note("pod without ip", pods.iter().any(|p| p.ips.is_empty()));
        note(
            "dual-stack pod",
            pods.iter().any(|p| p.ips.len() == 2 && !p.host_network),
        );
        note(
            "ipv6-only pod",
            pods.iter().any(|p| p.ips.len() == 1 && p.ips[0].is_ipv6()),
        );
        note(
            "named container port",
            pods.iter()
                .any(|p| p.ports.iter().any(|c| c.name.is_some())),
        );
        note(
            "finished pod whose ip a live pod holds",
            pods.iter().any(|a| {
                a.phase.is_terminal()
                    && pods
                        .iter()
                        .any(|b| b.is_peer() && b.ips.iter().any(|ip| a.ips.contains(ip)))
            }),
        );
        note(
            "pod in a namespace without object",
            pods.iter()
                .any(|p| !snap.namespaces.iter().any(|n| n.name == p.namespace)),
        );
        let text = format!("{:?}", snap.policies);
        note("policy", !snap.policies.is_empty());
        for (name, needle) in [
            ("except", "except: Some([\""),
            ("ipv6 block", "cidr: \"fd00"),
            ("end port", "end_port: Some"),
            ("named port", "port: Some(String"),
            ("NotIn", "\"NotIn\""),
            ("DoesNotExist", "\"DoesNotExist\""),
            ("SCTP", "\"SCTP\""),
            ("absent policyTypes", "policy_types: None"),
            ("empty policyTypes", "policy_types: Some([])"),
            ("empty from/to", "from: Some([])"),
            ("invalid operator", "\"Equals\""),
            ("invalid cidr", "not-a-cidr"),
            ("cidr with host bits", "cidr: \"198.18.1.10/2"),
        ] {
            note(name, text.contains(needle));
        }
    }
    let missing: Vec<_> = seen
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    assert!(
        missing.is_empty(),
        "never generated: {missing:?} ({seen:?})"
    );
    eprintln!("coverage over 500 clusters: {seen:?}");
}
