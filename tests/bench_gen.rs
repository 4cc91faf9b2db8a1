//! The benches' one cluster generator (benches/common/gen.rs): the manifest
//! it writes loads back as the very snapshot the benches use, every policy it
//! makes is valid, it is deterministic, and it stays inside the allowed
//! address ranges.

#[path = "../benches/common/gen.rs"]
mod gen;

use std::net::IpAddr;

use flock_netpol::{manifests, translate};

fn params() -> gen::Params {
    gen::Params::new(1_500, 120)
}

#[test]
fn the_written_manifest_loads_back_as_the_generated_snapshot() {
    let cluster = gen::generate(&params());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    cluster.write_json(&path).unwrap();
    let loaded = manifests::load(&[path]).unwrap();
    let snap = cluster.snapshot();
    assert_eq!(loaded, snap);
    assert_eq!(snap.pods.len(), 1_500);
    assert_eq!(snap.policies.len(), 120);
    assert_eq!(snap.namespaces.len(), params().namespaces());
}

#[test]
fn the_same_seed_gives_the_same_cluster_and_another_seed_does_not() {
    let a = gen::generate(&params()).snapshot();
    assert_eq!(a, gen::generate(&params()).snapshot());
    let mut other = params();
    other.seed += 1;
    assert_ne!(a, gen::generate(&other).snapshot());
}

#[test]
fn every_policy_is_valid_and_the_local_node_holds_its_pods() {
    let snap = gen::generate(&params()).snapshot();
    let out = translate::translate(&snap, gen::LOCAL_NODE, "t");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let local = snap
        .pods
        .iter()
        .filter(|p| p.node.as_deref() == Some(gen::LOCAL_NODE))
        .count();
    assert_eq!(local, gen::PODS_PER_NODE);
    // Both directions are isolated for some local pods: the maps are used.
    let stats = out.ruleset.stats();
    assert!(stats.map_elements > 0 && stats.set_elements > 0, "{stats}");
}

#[test]
fn every_address_is_inside_the_test_ranges() {
    let v4: ipnetwork::Ipv4Network = "198.18.0.0/15".parse().unwrap();
    let v6: ipnetwork::Ipv6Network = "fd00:198:18::/48".parse().unwrap();
    // The largest bench cluster's last pod (the benches go up to 50k).
    assert!(v4.contains(gen::pod_ipv4(49_999)));
    assert!(v6.contains(gen::pod_ipv6(49_999)));
    let snap = gen::generate(&params()).snapshot();
    let mut seen = std::collections::BTreeSet::new();
    for pod in snap.pods.iter().filter(|p| !p.host_network) {
        for ip in &pod.ips {
            match ip {
                IpAddr::V4(a) => assert!(v4.contains(*a), "{a}"),
                IpAddr::V6(a) => assert!(v6.contains(*a), "{a}"),
            }
            assert!(seen.insert(*ip), "{ip} given twice");
        }
    }
}

#[test]
fn the_policy_mix_has_every_kind_and_every_peer_form() {
    let cluster = gen::generate(&params());
    let kinds: std::collections::BTreeSet<String> = cluster
        .policies
        .iter()
        .map(|p| {
            let name = p["metadata"]["name"].as_str().unwrap();
            name.rsplit_once('-').unwrap().0.to_string()
        })
        .collect();
    let expected = [
        "deny-all",
        "deny-ingress",
        "deny-egress-allow-dns",
        "same-ns-named-port",
        "ns-and-pod",
        "expressions",
        "ipblock",
        "egress-named-port",
        "metrics-from-all",
        "egress-prod-namespaces",
        "same-ns-and-https-out",
    ];
    assert_eq!(
        kinds,
        expected.iter().map(|k| k.to_string()).collect(),
        "policy kinds"
    );
    // The forms issue 7 asks for, read from the specs themselves.
    let text = serde_json::to_string(&cluster.policies).unwrap();
    for form in [
        "\"namespaceSelector\"",
        "\"matchExpressions\"",
        "\"except\"",
        "\"endPort\"",
        "\"egress\"",
        "\"port\":\"http\"",
        "\"operator\":\"NotIn\"",
        "\"operator\":\"DoesNotExist\"",
    ] {
        assert!(text.contains(form), "no policy uses {form}");
    }
}
