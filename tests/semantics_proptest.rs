//! Property tests of the translator against the independent reference
//! evaluator, over random clusters (tests/common/gen.rs):
//!
//! 1. For every connection between the cluster's addresses (pod IPs of every
//!    kind plus external ones), the packet-level outcome of the rulesets the
//!    translator makes for the two nodes equals `reference::allowed`. The
//!    first packet crosses the forward hook of the source's node when the
//!    source is a pod there, and of the destination's node when the
//!    destination is a pod there (once when both are on the same node); it
//!    goes through iff every table it crosses accepts it.
//! 2. Every policy the reference finds invalid gets a warning naming it;
//!    established packets and IPv6 neighbour discovery always pass.
//! 3. The output does not depend on the order of the snapshot's lists.
//!
//! Not modelled (not forward traffic, deliberately unfiltered by the design):
//! a pod talking to its own node's addresses, and host-network pods talking
//! to pods of their own node.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;

use common::gen;
use flock_netpol::eval::{self, Decision, Packet};
use flock_netpol::model::{CtStates, Proto, RuleSet};
use flock_netpol::reference::{self, Conn, L4};
use flock_netpol::render::render;
use flock_netpol::snapshot::{Pod, Snapshot};
use flock_netpol::translate::{translate, Translation};
use proptest::prelude::*;
use proptest::test_runner::Config;

const TABLE: &str = "flock-netpol";

/// (protocol, port) probes: container ports of the generator (53, 80, 81,
/// 8080, 9090), over each protocol, plus one port no container names.
const PROBES: [(L4, u16); 8] = [
    (L4::Tcp, 80),
    (L4::Tcp, 81),
    (L4::Udp, 53),
    (L4::Tcp, 8080),
    (L4::Sctp, 9090),
    (L4::Udp, 80),
    (L4::Tcp, 53),
    (L4::Tcp, 4000),
];

fn proto(l4: L4) -> Proto {
    match l4 {
        L4::Tcp => Proto::Tcp,
        L4::Udp => Proto::Udp,
        L4::Sctp => Proto::Sctp,
    }
}

/// Index of the node whose live (non host-network) pod owns `ip`.
fn pod_node(snap: &Snapshot, ip: IpAddr) -> Option<usize> {
    snap.pods
        .iter()
        .find(|p| p.is_peer() && p.ips.contains(&ip))
        .and_then(|p| p.node.as_deref())
        .and_then(|n| gen::NODES.iter().position(|x| *x == n))
}

/// Index of the node `ip` is an address of.
fn node_of_address(ip: IpAddr) -> Option<usize> {
    (0..gen::NODES.len()).find(|n| gen::node_ips(*n).contains(&ip))
}

fn describe_pod(p: &Pod) -> String {
    format!(
        "  pod {} node={:?} hostNetwork={} phase={:?} ips={:?} labels={:?} ports={:?}",
        p.key(),
        p.node,
        p.host_network,
        p.phase,
        p.ips,
        p.labels,
        p.ports
            .iter()
            .map(|c| format!(
                "{}:{}/{}",
                c.name.as_deref().unwrap_or("-"),
                c.port,
                c.protocol
            ))
            .collect::<Vec<_>>()
    )
}

/// The cluster in a form a person can read in a failure message.
fn describe(snap: &Snapshot) -> String {
    let mut out = vec!["cluster:".to_string()];
    for ns in &snap.namespaces {
        out.push(format!("  namespace {} {:?}", ns.name, ns.labels));
    }
    out.extend(snap.pods.iter().map(describe_pod));
    for p in &snap.policies {
        out.push(format!(
            "  policy {} {}",
            p.key(),
            serde_json::to_string(&p.spec).unwrap()
        ));
    }
    out.join("\n")
}

/// What the rulesets say about `conn`: `None` when no table of ours sees it
/// (or it is traffic this design leaves unfiltered), else the decision and
/// an explanation per node crossed.
fn dataplane(
    snap: &Snapshot,
    rulesets: &[RuleSet],
    conn: &Conn,
) -> Result<Option<(bool, String)>, String> {
    let src_node = pod_node(snap, conn.src);
    let dst_node = pod_node(snap, conn.dst);
    if (src_node.is_some() && src_node == node_of_address(conn.dst))
        || (dst_node.is_some() && dst_node == node_of_address(conn.src))
    {
        return Ok(None);
    }
    let nodes: BTreeSet<usize> = src_node.into_iter().chain(dst_node).collect();
    if nodes.is_empty() {
        return Ok(None);
    }
    let pkt = Packet::first(conn.src, conn.dst, proto(conn.proto), conn.port);
    let mut accepted = true;
    let mut why = Vec::new();
    for n in nodes {
        let out = eval::eval(&rulesets[n], &pkt).map_err(|e| format!("{}: {e}", gen::NODES[n]))?;
        accepted &= out.decision == Decision::Accept;
        why.push(format!("{}: {out}", gen::NODES[n]));
    }
    Ok(Some((accepted, why.join("\n"))))
}

fn check_against_reference(snap: &Snapshot, probe_seed: u64) -> Result<usize, TestCaseError> {
    let translations: Vec<Translation> = gen::NODES
        .iter()
        .map(|n| translate(snap, n, TABLE))
        .collect();
    let rulesets: Vec<RuleSet> = translations.iter().map(|t| t.ruleset.clone()).collect();
    // Every policy the API server would reject is named in a warning.
    for p in &snap.policies {
        let errors = reference::policy_errors(&p.spec);
        let named = translations
            .iter()
            .flat_map(|t| &t.warnings)
            .any(|w| w.object.contains(&p.key()));
        prop_assert!(
            errors.is_empty() || named,
            "policy {} is invalid ({errors:?}) but no warning names it\n{}",
            p.key(),
            describe(snap)
        );
    }
    let addrs = gen::addresses(snap);
    always_allowed(snap, &rulesets, &addrs)?;
    let mut checked = 0;
    let mut pair = 0u64;
    for &src in &addrs {
        for &dst in &addrs {
            if src.is_ipv4() != dst.is_ipv4() {
                continue;
            }
            pair += 1;
            // Two probes per pair, spread over the list by the case's seed.
            for k in 0..2u64 {
                let i = (probe_seed.wrapping_add(pair * 7 + k * 3) % PROBES.len() as u64) as usize;
                let (l4, port) = PROBES[i];
                let conn = Conn {
                    src,
                    dst,
                    proto: l4,
                    port,
                };
                let got = dataplane(snap, &rulesets, &conn)
                    .map_err(|e| TestCaseError::fail(format!("{conn}: {e}\n{}", describe(snap))))?;
                let Some((accepted, why)) = got else { continue };
                let want = reference::decide(snap, &conn);
                checked += 1;
                prop_assert_eq!(
                    accepted,
                    want.allowed(),
                    "\n{}\nconnection {}\nreference: {:?}\nrulesets:\n{}\nwarnings: {:?}",
                    describe(snap),
                    conn,
                    want,
                    why,
                    translations
                        .iter()
                        .flat_map(|t| &t.warnings)
                        .map(|w| w.to_string())
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    Ok(checked)
}

/// Whatever the policies: packets of established connections and IPv6
/// neighbour discovery (ICMPv6 types 133-137) pass every node's table.
fn always_allowed(
    snap: &Snapshot,
    rulesets: &[RuleSet],
    addrs: &[IpAddr],
) -> Result<(), TestCaseError> {
    let v6: Vec<IpAddr> = addrs.iter().copied().filter(IpAddr::is_ipv6).collect();
    for (n, rs) in rulesets.iter().enumerate() {
        for &src in addrs {
            for &dst in addrs.iter().filter(|d| d.is_ipv4() == src.is_ipv4()) {
                let mut reply = Packet::first(src, dst, Proto::Tcp, 80);
                reply.ct = CtStates::ESTABLISHED;
                let out = eval::eval(rs, &reply).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(
                    out.decision,
                    Decision::Accept,
                    "{} established {} -> {}: {}\n{}",
                    gen::NODES[n],
                    src,
                    dst,
                    out,
                    describe(snap)
                );
            }
        }
        for &src in &v6 {
            for &dst in &v6 {
                for t in [133u8, 135, 136, 137] {
                    let nd = Packet {
                        src,
                        dst,
                        proto: Proto::Icmpv6,
                        dport: None,
                        icmpv6_type: Some(t),
                        ct: CtStates::NEW,
                    };
                    let out =
                        eval::eval(rs, &nd).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(
                        out.decision,
                        Decision::Accept,
                        "{} icmpv6 type {} {} -> {}: {}\n{}",
                        gen::NODES[n],
                        t,
                        src,
                        dst,
                        out,
                        describe(snap)
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: 10_000,
        // A failure prints the whole cluster; shrinking keeps it small.
        max_shrink_iters: 2_000,
        ..Config::default()
    })]

    #[test]
    fn the_rulesets_decide_every_connection_as_the_reference_does(
        snap in gen::cluster(),
        probe_seed in any::<u64>(),
    ) {
        check_against_reference(&snap, probe_seed)?;
    }
}

proptest! {
    #![proptest_config(Config { cases: 2_000, ..Config::default() })]

    #[test]
    fn the_output_does_not_depend_on_the_order_of_the_input(
        (snap, shuffled) in gen::cluster().prop_flat_map(|s| {
            let lists = (
                Just(s.pods.clone()).prop_shuffle(),
                Just(s.namespaces.clone()).prop_shuffle(),
                Just(s.policies.clone()).prop_shuffle(),
            );
            (Just(s), lists).prop_map(|(s, (pods, namespaces, policies))| {
                let shuffled = Snapshot { pods, namespaces, policies };
                (s, shuffled)
            })
        }),
    ) {
        for node in gen::NODES {
            let a = translate(&snap, node, TABLE);
            let b = translate(&shuffled, node, TABLE);
            prop_assert_eq!(&a.ruleset, &b.ruleset, "{} on {}", describe(&snap), node);
            prop_assert_eq!(render(&a.ruleset), render(&b.ruleset));
            let (mut wa, mut wb) = (a.warnings.clone(), b.warnings.clone());
            wa.sort();
            wb.sort();
            prop_assert_eq!(wa, wb);
        }
    }
}
