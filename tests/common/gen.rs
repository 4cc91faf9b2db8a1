//! Random clusters for property tests: proptest strategies that build a whole
//! `Snapshot` (namespaces, pods, NetworkPolicies) on two nodes.
//!
//! Shared by the semantics property test (translator vs reference evaluator)
//! and the apply parity test. Must not: depend on the translator, read files
//! or use addresses outside 198.18.0.0/15 and fd00:198:18::/48.
//!
//! What it covers: 1-4 namespaces (and pods in namespaces that have no
//! Namespace object), 1-12 pods (IPv4-only, IPv6-only, dual-stack,
//! host-network, Pending/Unknown/Succeeded/Failed, without IP, unscheduled,
//! terminating, finished pods whose IP a live pod reuses), named container
//! ports over TCP/UDP/SCTP, and 0-5 policies with everything the API has
//! (selectors with matchLabels and all four operators, ipBlock with except in
//! both families, numeric and named ports, endPort, every protocol,
//! policyTypes present, empty or absent, empty vs absent lists) plus,
//! occasionally, a field the API server would reject.
//!
//! Address plan (so selectors and CIDRs often hit something):
//! - pod `i` on node `n` (0 or 1): `198.18.<n+1>.<10+i>` and
//!   `fd00:198:18:<n+1>::<10+i>` (hex);
//! - host-network pods: their node's address `198.18.0.<n+1>` /
//!   `fd00:198:18::<n+1>`;
//! - [`EXTERNAL_IPS`]: addresses that belong to no pod.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flock_netpol::snapshot::{ContainerPort, Labels, Namespace, Phase, Pod, Policy, Snapshot};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// The two nodes of every generated cluster.
pub const NODES: [&str; 2] = ["node-1", "node-2"];
/// Namespace names pods and policies are drawn from.
pub const NAMESPACES: [&str; 4] = ["x", "y", "z", "w"];
/// Addresses of no pod and no node (all inside the allowed ranges).
pub const EXTERNAL_IPS: [&str; 4] = [
    "198.19.0.5",
    "198.18.3.7",
    "fd00:198:18:3::5",
    "fd00:198:18:0:ffff::1",
];

const POD_KEYS: [&str; 3] = ["app", "tier", "team"];
const POD_VALUES: [&str; 3] = ["a", "b", "c"];
const NS_KEYS: [&str; 3] = ["team", "env", "kubernetes.io/metadata.name"];
const NS_VALUES: [&str; 4] = ["a", "b", "x", "y"];
const PORT_NAMES: [&str; 4] = ["http", "dns", "metrics", "web"];
const PORTS: [u16; 5] = [53, 80, 81, 8080, 9090];
const PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];
const METADATA_NAME: &str = "kubernetes.io/metadata.name";

/// Address of pod slot `i` on node `node` (0-based), IPv4.
pub fn pod_ipv4(node: usize, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, node as u8 + 1, 10 + i as u8)
}

/// Address of pod slot `i` on node `node` (0-based), IPv6.
pub fn pod_ipv6(node: usize, i: usize) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfd00,
        0x198,
        0x18,
        node as u16 + 1,
        0,
        0,
        0,
        0x10 + i as u16,
    )
}

/// Node `node`'s own addresses (what host-network pods show as pod IPs).
pub fn node_ips(node: usize) -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, node as u8 + 1)),
        IpAddr::V6(Ipv6Addr::new(
            0xfd00,
            0x198,
            0x18,
            0,
            0,
            0,
            0,
            node as u16 + 1,
        )),
    ]
}

/// Every address worth probing in `snap`: the IPs of every pod (peers or
/// not, host-network ones included), plus [`EXTERNAL_IPS`]; sorted, unique.
pub fn addresses(snap: &Snapshot) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = snap.pods.iter().flat_map(|p| p.ips.clone()).collect();
    out.extend(EXTERNAL_IPS.iter().map(|s| s.parse::<IpAddr>().unwrap()));
    out.sort();
    out.dedup();
    out
}

/// A random cluster, normalized (lists sorted by namespace/name).
pub fn cluster() -> impl Strategy<Value = Snapshot> {
    (namespaces(), vec(pod_draw(), 1..=12), vec(policy(), 0..=5)).prop_map(
        |(namespaces, pod_draws, policies)| {
            let pods = build_pods(&pod_draws);
            let policies = policies
                .into_iter()
                .enumerate()
                .map(|(i, (namespace, spec))| Policy {
                    namespace,
                    name: format!("np{i}"),
                    spec,
                })
                .collect();
            Snapshot::normalized(pods, namespaces, policies)
        },
    )
}

/// Each key absent or set to one of `values`, drawn as one number (one
/// draw is much cheaper than a collection in unoptimized test builds, and
/// still shrinks towards "no labels").
fn labels(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> impl Strategy<Value = Labels> {
    let choices = values.len() as u32 + 1;
    (0..choices.pow(keys.len() as u32)).prop_map(move |mut code| {
        let mut out = Labels::new();
        for k in keys {
            let v = code % choices;
            code /= choices;
            if v > 0 {
                out.insert(k.to_string(), values[v as usize - 1].to_string());
            }
        }
        out
    })
}

/// A non-empty subset of [`NAMESPACES`] with Namespace objects, random labels
/// and always `kubernetes.io/metadata.name` (as the API server sets it).
fn namespaces() -> impl Strategy<Value = Vec<Namespace>> {
    (
        proptest::sample::subsequence(NAMESPACES.to_vec(), 1..=4),
        vec(labels(&NS_KEYS[..2], &NS_VALUES[..2]), 4),
    )
        .prop_map(|(names, labels)| {
            names
                .into_iter()
                .zip(labels)
                .map(|(name, mut labels)| {
                    labels.insert(METADATA_NAME.to_string(), name.to_string());
                    Namespace {
                        name: name.to_string(),
                        labels,
                    }
                })
                .collect()
        })
}

/// How a generated pod lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Running,
    Pending,
    Unknown,
    HostNetwork,
    Succeeded,
    Failed,
    NoIp,
    Unscheduled,
}

/// Address families of a pod with IPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stack {
    V4,
    V6,
    Dual,
}

/// The random draws for one pod, before addresses are assigned.
#[derive(Debug, Clone)]
struct PodDraw {
    namespace: &'static str,
    labels: Labels,
    node: usize,
    kind: Kind,
    stack: Stack,
    terminating: bool,
    /// For finished pods: reuse the addresses of this pod slot (mod count).
    reuse: Option<usize>,
    ports: Vec<ContainerPort>,
}

fn pod_draw() -> impl Strategy<Value = PodDraw> {
    let kind = prop_oneof![
        12 => Just(Kind::Running),
        1 => Just(Kind::Pending),
        1 => Just(Kind::Unknown),
        1 => Just(Kind::HostNetwork),
        1 => Just(Kind::Succeeded),
        1 => Just(Kind::Failed),
        1 => Just(Kind::NoIp),
        1 => Just(Kind::Unscheduled),
    ];
    let stack = prop_oneof![2 => Just(Stack::V4), 1 => Just(Stack::V6), 3 => Just(Stack::Dual)];
    let namespace = prop_oneof![8 => select(&NAMESPACES[..3]), 1 => Just(NAMESPACES[3])];
    (
        namespace,
        labels(&POD_KEYS, &POD_VALUES),
        0..2usize,
        kind,
        stack,
        prop::bool::weighted(0.1),
        prop::option::of(0..12usize),
        vec(container_port(), 0..=3),
    )
        .prop_map(
            |(namespace, labels, node, kind, stack, terminating, reuse, ports)| {
                let mut ports = ports;
                // A pod's named ports are unique per (name, protocol).
                ports.sort_by(|a: &ContainerPort, b| {
                    (&a.name, &a.protocol).cmp(&(&b.name, &b.protocol))
                });
                ports.dedup_by(|a, b| {
                    a.name.is_some() && a.name == b.name && a.protocol == b.protocol
                });
                PodDraw {
                    namespace,
                    labels,
                    node,
                    kind,
                    stack,
                    terminating,
                    reuse,
                    ports,
                }
            },
        )
}

fn container_port() -> impl Strategy<Value = ContainerPort> {
    (
        prop::option::weighted(0.7, select(&PORT_NAMES[..])),
        select(&PORTS[..]),
        select(&PROTOCOLS[..]),
    )
        .prop_map(|(name, port, protocol)| ContainerPort {
            name: name.map(str::to_string),
            port,
            protocol: protocol.to_string(),
        })
}

fn slot_ips(node: usize, i: usize, stack: Stack) -> Vec<IpAddr> {
    let v4 = IpAddr::V4(pod_ipv4(node, i));
    let v6 = IpAddr::V6(pod_ipv6(node, i));
    match stack {
        Stack::V4 => vec![v4],
        Stack::V6 => vec![v6],
        Stack::Dual => vec![v4, v6],
    }
}

fn build_pods(draws: &[PodDraw]) -> Vec<Pod> {
    let n = draws.len();
    draws
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (phase, host_network, node) = match d.kind {
                Kind::Running => (Phase::Running, false, Some(d.node)),
                Kind::Pending => (Phase::Pending, false, Some(d.node)),
                Kind::Unknown => (Phase::Unknown, false, Some(d.node)),
                Kind::HostNetwork => (Phase::Running, true, Some(d.node)),
                Kind::Succeeded => (Phase::Succeeded, false, Some(d.node)),
                Kind::Failed => (Phase::Failed, false, Some(d.node)),
                Kind::NoIp => (Phase::Pending, false, Some(d.node)),
                Kind::Unscheduled => (Phase::Pending, false, None),
            };
            let ips = match d.kind {
                Kind::NoIp | Kind::Unscheduled => Vec::new(),
                Kind::HostNetwork => node_ips(d.node),
                Kind::Succeeded | Kind::Failed => match d.reuse.map(|r| r % n) {
                    // A live pod may already hold the finished pod's address.
                    Some(r) if r != i => slot_ips(draws[r].node, r, draws[r].stack),
                    _ => slot_ips(d.node, i, d.stack),
                },
                _ => slot_ips(d.node, i, d.stack),
            };
            Pod {
                namespace: d.namespace.to_string(),
                name: format!("p{i}"),
                labels: d.labels.clone(),
                node: node.map(|n| NODES[n].to_string()),
                host_network,
                phase,
                terminating: d.terminating,
                ips,
                ports: d.ports.clone(),
            }
        })
        .collect()
}

// ---- policies ----------------------------------------------------------------

fn policy() -> impl Strategy<Value = (String, NetworkPolicySpec)> {
    let pod_selector = prop_oneof![
        1 => Just(None),
        6 => selector(&POD_KEYS, &POD_VALUES).prop_map(Some),
    ];
    (
        select(&NAMESPACES[..]),
        pod_selector,
        policy_types(),
        rules(ingress_rule()),
        rules(egress_rule()),
    )
        .prop_map(|(ns, pod_selector, policy_types, ingress, egress)| {
            (
                ns.to_string(),
                NetworkPolicySpec {
                    pod_selector,
                    policy_types,
                    ingress,
                    egress,
                },
            )
        })
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn policy_types() -> impl Strategy<Value = Option<Vec<String>>> {
    prop_oneof![
        20 => Just(None),
        4 => Just(Some(Vec::new())),
        12 => Just(Some(strings(&["Ingress"]))),
        12 => Just(Some(strings(&["Egress"]))),
        12 => Just(Some(strings(&["Ingress", "Egress"]))),
        4 => Just(Some(strings(&["Egress", "Ingress"]))),
        4 => Just(Some(strings(&["Egress", "Egress"]))),
        // Rejected by the API server.
        1 => select(vec![
            strings(&["ingress"]),
            strings(&["Ingress", "Both"]),
            strings(&["Ingress", "Egress", "Ingress"]),
        ])
        .prop_map(Some),
    ]
}

/// A list of rules: absent, empty, or 1-2 rules.
fn rules<R: std::fmt::Debug + Clone + 'static>(
    rule: impl Strategy<Value = R> + 'static,
) -> impl Strategy<Value = Option<Vec<R>>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Vec::new())),
        6 => vec(rule, 1..=2).prop_map(Some),
    ]
}

fn peers() -> impl Strategy<Value = Option<Vec<NetworkPolicyPeer>>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Vec::new())),
        6 => vec(peer(), 1..=3).prop_map(Some),
    ]
}

fn ports() -> impl Strategy<Value = Option<Vec<NetworkPolicyPort>>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Vec::new())),
        5 => vec(port(), 1..=2).prop_map(Some),
    ]
}

fn ingress_rule() -> impl Strategy<Value = NetworkPolicyIngressRule> {
    (peers(), ports()).prop_map(|(from, ports)| NetworkPolicyIngressRule { from, ports })
}

fn egress_rule() -> impl Strategy<Value = NetworkPolicyEgressRule> {
    (peers(), ports()).prop_map(|(to, ports)| NetworkPolicyEgressRule { to, ports })
}

fn peer() -> impl Strategy<Value = NetworkPolicyPeer> {
    let pod_sel = || selector(&POD_KEYS, &POD_VALUES);
    let ns_sel = || selector(&NS_KEYS, &NS_VALUES);
    prop_oneof![
        20 => pod_sel().prop_map(|s| NetworkPolicyPeer { pod_selector: Some(s), ..Default::default() }),
        15 => ns_sel().prop_map(|s| NetworkPolicyPeer { namespace_selector: Some(s), ..Default::default() }),
        15 => (pod_sel(), ns_sel()).prop_map(|(p, n)| NetworkPolicyPeer {
            pod_selector: Some(p),
            namespace_selector: Some(n),
            ..Default::default()
        }),
        25 => ip_block().prop_map(|b| NetworkPolicyPeer { ip_block: Some(b), ..Default::default() }),
        // Rejected: no peer at all, or ipBlock with a selector.
        1 => (ip_block(), pod_sel(), prop::bool::ANY).prop_map(|(b, s, empty)| if empty {
            NetworkPolicyPeer::default()
        } else {
            NetworkPolicyPeer { ip_block: Some(b), pod_selector: Some(s), ..Default::default() }
        }),
    ]
}

/// A label selector over `keys` x `values`: empty (`{}`), matchLabels,
/// matchExpressions with all four operators, or both; rarely invalid.
fn selector(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> impl Strategy<Value = LabelSelector> {
    let match_labels = vec((select(keys), select(values)), 1..=2).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    });
    let exprs = || vec(requirement(keys, values), 1..=2);
    prop_oneof![
        3 => Just(LabelSelector::default()),
        1 => Just(LabelSelector { match_labels: Some(BTreeMap::new()), match_expressions: Some(Vec::new()) }),
        4 => match_labels.clone().prop_map(|m| LabelSelector { match_labels: Some(m), match_expressions: None }),
        4 => exprs().prop_map(|e| LabelSelector { match_labels: None, match_expressions: Some(e) }),
        1 => (match_labels, exprs()).prop_map(|(m, e)| LabelSelector { match_labels: Some(m), match_expressions: Some(e) }),
    ]
}

fn requirement(
    keys: &'static [&'static str],
    values: &'static [&'static str],
) -> impl Strategy<Value = LabelSelectorRequirement> {
    let some_values = vec(select(values), 1..=2).prop_map(|v| Some(strings(&v)));
    let set_op = (select(vec!["In", "NotIn"]), some_values.clone());
    let exists_op = (
        select(vec!["Exists", "DoesNotExist"]),
        prop_oneof![Just(None), Just(Some(Vec::new()))],
    );
    let invalid = prop_oneof![
        // Unknown operators (names are case-sensitive).
        (select(vec!["in", "Equals"]), some_values.clone()),
        // In / NotIn need values; Exists / DoesNotExist take none.
        (
            select(vec!["In", "NotIn"]),
            prop_oneof![Just(None), Just(Some(Vec::new()))]
        ),
        (select(vec!["Exists", "DoesNotExist"]), some_values),
    ];
    (
        select(keys),
        prop_oneof![
            50 => set_op.boxed(),
            40 => exists_op.boxed(),
            1 => invalid.boxed(),
        ],
    )
        .prop_map(|(key, (op, values))| LabelSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values,
        })
}

// ---- ipBlock -------------------------------------------------------------------

/// 198.18.0.0 as an integer: every generated IPv4 address is inside /15.
const V4_BASE: u32 = 0xc612_0000;
/// fd00:198:18:: as an integer: every generated IPv6 address is inside /48.
const V6_BASE: u128 = 0xfd00_0198_0018 << 80;

/// An IPv4 address inside 198.18.0.0/15, biased towards pod and node slots.
fn v4_addr() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => (1..=2u32, 8..=24u32).prop_map(|(n, h)| V4_BASE | n << 8 | h),
        1 => (1..=2u32).prop_map(|n| V4_BASE | n),
        2 => (0..0x2_0000u32).prop_map(|o| V4_BASE | o),
    ]
}

/// An IPv6 address inside fd00:198:18::/48, biased towards pod and node slots.
fn v6_addr() -> impl Strategy<Value = u128> {
    prop_oneof![
        4 => (1..=2u128, 8..=0x1cu128).prop_map(|(n, h)| V6_BASE | n << 64 | h),
        1 => (1..=2u128).prop_map(|n| V6_BASE | n),
        2 => (0..4u128, any::<u64>()).prop_map(|(s, low)| V6_BASE | s << 64 | low as u128),
    ]
}

/// Text of address `a` (IPv4 when `bits` is 32) with prefix length `len`.
fn cidr_text(a: u128, bits: u32, len: u32) -> String {
    if bits == 32 {
        format!("{}/{len}", Ipv4Addr::from(a as u32))
    } else {
        format!("{}/{len}", Ipv6Addr::from(a))
    }
}

/// A CIDR over a `bits`-wide address space and 0-2 strict sub-prefixes of
/// it (up to `max_extra` bits longer). Canonical, except that one block in
/// twenty keeps host bits in its cidr (the API server accepts and masks
/// them).
fn block<S: Strategy<Value = u128>>(
    addr: impl Fn() -> S,
    bits: u32,
    lens: Vec<u32>,
    max_extra: u32,
) -> impl Strategy<Value = IPBlock> {
    (
        addr(),
        select(lens),
        vec((addr(), 1..=max_extra), 0..=2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.05),
    )
        .prop_map(move |(addr, len, excepts, absent, sloppy)| {
            let full = if bits == 32 {
                u128::from(u32::MAX)
            } else {
                u128::MAX
            };
            let mask = |len: u32| {
                if len == 0 {
                    0
                } else {
                    (full << (bits - len)) & full
                }
            };
            let host = full & !mask(len);
            let except: Vec<String> = excepts
                .into_iter()
                .filter(|_| len < bits)
                .map(|(x, extra)| {
                    let sub = (len + extra).min(bits);
                    cidr_text(((addr & !host) | (x & host)) & mask(sub), bits, sub)
                })
                .collect();
            let cidr = if sloppy { addr } else { addr & mask(len) };
            IPBlock {
                cidr: cidr_text(cidr, bits, len),
                except: if except.is_empty() && absent {
                    None
                } else {
                    Some(except)
                },
            }
        })
}

fn v4_block() -> impl Strategy<Value = IPBlock> {
    let lens = vec![15, 16, 22, 23, 24, 26, 27, 28, 30, 31, 32];
    block(|| v4_addr().prop_map(u128::from), 32, lens, 8)
}

fn v6_block() -> impl Strategy<Value = IPBlock> {
    let lens = vec![48, 56, 62, 63, 64, 96, 120, 124, 126, 127, 128];
    block(v6_addr, 128, lens, 16)
}

/// Blocks the API server rejects.
fn invalid_block() -> impl Strategy<Value = IPBlock> {
    let block = |cidr: &str, except: &[&str]| IPBlock {
        cidr: cidr.to_string(),
        except: Some(strings(except)),
    };
    select(vec![
        block("198.18.0.0/33", &[]),
        block("198.18.300.0/24", &[]),
        block("fd00:198:18::/129", &[]),
        block("not-a-cidr", &[]),
        block("", &[]),
        block("198.18.1.10", &[]),
        // except outside the cidr, equal to it, of the other family, unparsable
        block("198.18.1.0/24", &["198.18.2.0/25"]),
        block("198.18.1.0/24", &["198.18.1.0/24"]),
        block("198.18.1.0/24", &["fd00:198:18:1::/64"]),
        block("fd00:198:18:1::/64", &["fd00:198:18:1::/60"]),
        block("fd00:198:18:1::/64", &["bogus"]),
    ])
}

fn ip_block() -> impl Strategy<Value = IPBlock> {
    prop_oneof![8 => v4_block(), 6 => v6_block(), 1 => invalid_block()]
}

// ---- ports ---------------------------------------------------------------------

fn port() -> impl Strategy<Value = NetworkPolicyPort> {
    let protocol = prop_oneof![
        15 => Just(None),
        10 => Just(Some("TCP".to_string())),
        10 => Just(Some("UDP".to_string())),
        10 => Just(Some("SCTP".to_string())),
        // Rejected: protocol names are case-sensitive; ICMP is not allowed.
        1 => select(vec!["tcp", "ICMP"]).prop_map(|p| Some(p.to_string())),
    ];
    let number = prop_oneof![4 => select(&PORTS[..]).prop_map(i32::from), 1 => 1..=65535i32];
    let (int, name) = (IntOrString::Int, |s: &str| {
        IntOrString::String(s.to_string())
    });
    let value = prop_oneof![
        10 => Just((None, None)),
        25 => number.clone().prop_map(move |p| (Some(int(p)), None)),
        // Ranges: endPort >= port (up to the last port).
        15 => (number, prop_oneof![3 => 0..=10i32, 1 => Just(65535)])
            .prop_map(move |(p, d)| (Some(int(p)), Some(if d == 65535 { 65535 } else { (p + d).min(65535) }))),
        15 => select(vec!["http", "dns", "metrics", "web", "nope"]).prop_map(move |n| (Some(name(n)), None)),
        // Rejected: out of range, endPort without or below port or with a
        // name, names that are not IANA service names.
        1 => select(vec![
            (Some(int(0)), None),
            (Some(int(65536)), None),
            (Some(int(81)), Some(80)),
            (None, Some(80)),
            (Some(name("http")), Some(90)),
            (Some(int(80)), Some(65536)),
            (Some(name("Http")), None),
            (Some(name("abcdefghijklmnop")), None),
            (Some(name("-web")), None),
        ]),
    ];
    (protocol, value).prop_map(|(protocol, (port, end_port))| NetworkPolicyPort {
        protocol,
        port,
        end_port,
    })
}
