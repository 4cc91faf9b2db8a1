//! Reference evaluator: does the Kubernetes NetworkPolicy v1 API allow this
//! one connection in this cluster? Written straight from the API reference
//! (networking.k8s.io/v1 NetworkPolicy, its defaulting and its validation),
//! one connection at a time, by looping over policies.
//!
//! It is the oracle the translator is checked against, so it must stay
//! independent of it: it must not use `crate::translate` (or anything that
//! code shares), do I/O, or try to be fast. Simple and obviously right wins.
//!
//! The rules it applies:
//! - A connection is allowed iff the source pod's egress allows it (when the
//!   source is a pod isolated for egress) AND the destination pod's ingress
//!   allows it (when the destination is a pod isolated for ingress). Addresses
//!   that belong to no pod have no policies. A pod to itself is always allowed.
//! - Only pods with an IP of their own that are not host-network and not
//!   Succeeded/Failed are pods here (as peers and as policy targets); any
//!   other address is just an address (ipBlock may still match it).
//! - A pod is isolated in a direction when a policy of its namespace selects
//!   it and has that direction in its policyTypes. policyTypes omitted or
//!   empty: Ingress, plus Egress when `spec.egress` has at least one rule.
//! - A policy the API server would reject (see [`policy_errors`]) allows
//!   nothing but still isolates: the pods its podSelector selects (every pod
//!   of the namespace when that selector is itself invalid), in the
//!   directions of its policyTypes (both when policyTypes is unusable).
//! - Peers: ipBlock (cidr minus except) matches any address, pod or not;
//!   podSelector alone = pods of the policy's namespace; namespaceSelector
//!   alone = every pod of the matching namespaces; both = AND. Absent or
//!   empty `from`/`to` = everyone; absent or empty `ports` = everything.
//! - Ports: protocol defaults to TCP; a number (with endPort: a range); a
//!   name resolves against the container ports (name AND protocol) of the
//!   pod receiving the connection: the selected pod for ingress, the
//!   destination pod for egress (no pod there: the name matches nothing).
//! - A namespace without a Namespace object has only the label
//!   `kubernetes.io/metadata.name: <name>`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::snapshot::{Labels, Phase, Pod, Policy, Snapshot};

/// Transport protocol of a probed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    Tcp,
    Udp,
    Sctp,
}

impl L4 {
    /// The protocol's name in the Kubernetes API.
    pub fn api_name(self) -> &'static str {
        match self {
            L4::Tcp => "TCP",
            L4::Udp => "UDP",
            L4::Sctp => "SCTP",
        }
    }
}

/// The first packet of a connection: from `src` to `dst`, `proto` to `port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Conn {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: L4,
    pub port: u16,
}

impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} {}/{}",
            self.src,
            self.dst,
            self.proto.api_name(),
            self.port
        )
    }
}

/// What one direction (the source's egress or the destination's ingress)
/// says about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// The address is no pod (or a pod no policy may target).
    NoPod,
    /// The pod is not isolated in this direction.
    NotIsolated,
    /// Allowed by this policy (`namespace/name`).
    AllowedBy(String),
    /// Isolated by these policies, and none allows it.
    Denied(Vec<String>),
}

impl Side {
    pub fn allows(&self) -> bool {
        !matches!(self, Side::Denied(_))
    }
}

/// The reference's full answer for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Source and destination are the same pod (always allowed).
    pub same_pod: bool,
    pub egress: Side,
    pub ingress: Side,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.same_pod || (self.egress.allows() && self.ingress.allows())
    }
}

/// Is `conn` allowed by the policies of `snap`?
pub fn allowed(snap: &Snapshot, conn: &Conn) -> bool {
    decide(snap, conn).allowed()
}

/// Why `conn` is allowed or not.
pub fn decide(snap: &Snapshot, conn: &Conn) -> Decision {
    let src_pod = pod_of(snap, conn.src);
    let dst_pod = pod_of(snap, conn.dst);
    let same_pod = match (src_pod, dst_pod) {
        (Some(s), Some(d)) => s.namespace == d.namespace && s.name == d.name,
        _ => false,
    };
    let egress = match src_pod {
        None => Side::NoPod,
        Some(pod) => side(snap, pod, Direction::Egress, conn, dst_pod),
    };
    let ingress = match dst_pod {
        None => Side::NoPod,
        Some(pod) => side(snap, pod, Direction::Ingress, conn, src_pod),
    };
    Decision {
        same_pod,
        egress,
        ingress,
    }
}

/// Whether a pod takes part in policy at all (as target or peer).
fn is_policy_pod(pod: &Pod) -> bool {
    !pod.host_network
        && !matches!(pod.phase, Phase::Succeeded | Phase::Failed)
        && !pod.ips.is_empty()
}

/// The pod that owns `ip`, if any pod that takes part in policy does.
fn pod_of(snap: &Snapshot, ip: IpAddr) -> Option<&Pod> {
    snap.pods
        .iter()
        .find(|p| is_policy_pod(p) && p.ips.contains(&ip))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// Evaluate one direction for `pod`: its egress (remote = destination) or its
/// ingress (remote = source).
fn side(snap: &Snapshot, pod: &Pod, dir: Direction, conn: &Conn, remote_pod: Option<&Pod>) -> Side {
    let mut isolating = Vec::new();
    for policy in snap
        .policies
        .iter()
        .filter(|p| p.namespace == pod.namespace)
    {
        let spec = &policy.spec;
        let selects = match &spec.pod_selector {
            None => true,
            // An invalid podSelector isolates the whole namespace.
            Some(sel) if !selector_errors(sel).is_empty() => true,
            Some(sel) => selector_matches(sel, &pod.labels),
        };
        if !selects {
            continue;
        }
        let (ingress, egress) = policy_types(spec);
        let applies = match dir {
            Direction::Ingress => ingress,
            Direction::Egress => egress,
        };
        if !applies {
            continue;
        }
        isolating.push(policy.key());
        if policy_errors(spec).is_empty() && policy_allows(snap, policy, pod, dir, conn, remote_pod)
        {
            return Side::AllowedBy(policy.key());
        }
    }
    if isolating.is_empty() {
        Side::NotIsolated
    } else {
        Side::Denied(isolating)
    }
}

/// (isolates ingress, isolates egress), with the API server's defaulting.
/// Unusable policyTypes (unknown names, more than two) isolate both.
fn policy_types(spec: &NetworkPolicySpec) -> (bool, bool) {
    match spec.policy_types.as_deref() {
        None | Some([]) => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
        Some(types) if policy_types_errors(types).is_empty() => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        Some(_) => (true, true),
    }
}

/// Whether one valid policy that isolates `pod` in `dir` allows `conn`.
fn policy_allows(
    snap: &Snapshot,
    policy: &Policy,
    pod: &Pod,
    dir: Direction,
    conn: &Conn,
    remote_pod: Option<&Pod>,
) -> bool {
    let remote_ip = match dir {
        Direction::Ingress => conn.src,
        Direction::Egress => conn.dst,
    };
    // The pod whose container ports name the ports of the rule.
    let receiver = match dir {
        Direction::Ingress => Some(pod),
        Direction::Egress => remote_pod,
    };
    let rule_allows = |peers: &Option<Vec<NetworkPolicyPeer>>,
                       ports: &Option<Vec<NetworkPolicyPort>>| {
        let peer_ok = match peers.as_deref() {
            None | Some([]) => true,
            Some(peers) => peers
                .iter()
                .any(|p| peer_matches(snap, p, &policy.namespace, remote_ip, remote_pod)),
        };
        let port_ok = match ports.as_deref() {
            None | Some([]) => true,
            Some(ports) => ports.iter().any(|p| port_matches(p, conn, receiver)),
        };
        peer_ok && port_ok
    };
    match dir {
        Direction::Ingress => policy
            .spec
            .ingress
            .iter()
            .flatten()
            .any(|r| rule_allows(&r.from, &r.ports)),
        Direction::Egress => policy
            .spec
            .egress
            .iter()
            .flatten()
            .any(|r| rule_allows(&r.to, &r.ports)),
    }
}

/// Labels of namespace `name` (only its name label when it has no object).
fn namespace_labels(snap: &Snapshot, name: &str) -> Labels {
    match snap.namespaces.iter().find(|n| n.name == name) {
        Some(ns) => ns.labels.clone(),
        None => BTreeMap::from([("kubernetes.io/metadata.name".to_string(), name.to_string())]),
    }
}

fn peer_matches(
    snap: &Snapshot,
    peer: &NetworkPolicyPeer,
    policy_ns: &str,
    remote_ip: IpAddr,
    remote_pod: Option<&Pod>,
) -> bool {
    if let Some(block) = &peer.ip_block {
        return ip_block_matches(block, remote_ip);
    }
    let Some(pod) = remote_pod else {
        return false;
    };
    let ns_ok = match &peer.namespace_selector {
        Some(sel) => selector_matches(sel, &namespace_labels(snap, &pod.namespace)),
        None => pod.namespace == policy_ns,
    };
    let pod_ok = match &peer.pod_selector {
        Some(sel) => selector_matches(sel, &pod.labels),
        None => true,
    };
    ns_ok && pod_ok
}

fn ip_block_matches(block: &IPBlock, ip: IpAddr) -> bool {
    let Ok(cidr) = Cidr::parse(&block.cidr) else {
        return false;
    };
    cidr.contains(ip)
        && !block
            .except
            .iter()
            .flatten()
            .any(|e| Cidr::parse(e).is_ok_and(|e| e.contains(ip)))
}

fn port_matches(port: &NetworkPolicyPort, conn: &Conn, receiver: Option<&Pod>) -> bool {
    let proto = port.protocol.as_deref().unwrap_or("TCP");
    if proto != conn.proto.api_name() {
        return false;
    }
    match &port.port {
        None => true,
        Some(IntOrString::Int(n)) => {
            let lo = i64::from(*n);
            let hi = port.end_port.map_or(lo, i64::from);
            (lo..=hi).contains(&i64::from(conn.port))
        }
        Some(IntOrString::String(name)) => receiver.is_some_and(|pod| {
            pod.ports.iter().any(|cp| {
                cp.name.as_deref() == Some(name.as_str())
                    && cp.protocol == proto
                    && cp.port == conn.port
            })
        }),
    }
}

/// `matchLabels` AND every `matchExpressions` entry; `{}` matches everything.
fn selector_matches(sel: &LabelSelector, labels: &Labels) -> bool {
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or(&[]);
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

// ---- validation, as the API server does it --------------------------------------

/// An IP prefix: network address (host bits cleared) and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// `a.b.c.d/n` or `x::y/n`; host bits are allowed and cleared (the API
    /// server parses CIDRs the same lenient way).
    fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (no prefix length)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR (bad address)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{s:?} is not a CIDR (bad prefix length)"))?;
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(len)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(len)).into()),
        };
        Ok(Cidr { addr, len })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.len) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.len) == u128::from(n),
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

/// Everything the API server would reject in `spec` (empty = valid).
pub fn policy_errors(spec: &NetworkPolicySpec) -> Vec<String> {
    let mut errs = Vec::new();
    if let Some(sel) = &spec.pod_selector {
        errs.extend(selector_errors(sel));
    }
    if let Some(types) = &spec.policy_types {
        errs.extend(policy_types_errors(types));
    }
    for rule in spec.ingress.iter().flatten() {
        errs.extend(rule_errors(&rule.from, &rule.ports));
    }
    for rule in spec.egress.iter().flatten() {
        errs.extend(rule_errors(&rule.to, &rule.ports));
    }
    errs
}

fn policy_types_errors(types: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    if types.len() > 2 {
        errs.push("policyTypes: more than two".to_string());
    }
    for t in types {
        if t != "Ingress" && t != "Egress" {
            errs.push(format!("policyTypes: {t:?} is neither Ingress nor Egress"));
        }
    }
    errs
}

fn rule_errors(
    peers: &Option<Vec<NetworkPolicyPeer>>,
    ports: &Option<Vec<NetworkPolicyPort>>,
) -> Vec<String> {
    let mut errs = Vec::new();
    for port in ports.iter().flatten() {
        errs.extend(port_errors(port));
    }
    for peer in peers.iter().flatten() {
        errs.extend(peer_errors(peer));
    }
    errs
}

fn port_errors(port: &NetworkPolicyPort) -> Vec<String> {
    let mut errs = Vec::new();
    if let Some(p) = &port.protocol {
        if !["TCP", "UDP", "SCTP"].contains(&p.as_str()) {
            errs.push(format!("protocol {p:?} is not TCP, UDP or SCTP"));
        }
    }
    match &port.port {
        Some(IntOrString::Int(n)) if !(1..=65535).contains(n) => {
            errs.push(format!("port {n} is not in 1-65535"));
        }
        Some(IntOrString::String(name)) if !is_port_name(name) => {
            errs.push(format!("port {name:?} is not a valid port name"));
        }
        _ => {}
    }
    if let Some(end) = port.end_port {
        match &port.port {
            None => errs.push("endPort without port".to_string()),
            Some(IntOrString::String(_)) => errs.push("endPort with a named port".to_string()),
            Some(IntOrString::Int(n)) if end < *n => errs.push(format!("endPort {end} < port {n}")),
            Some(IntOrString::Int(_)) => {}
        }
        if !(1..=65535).contains(&end) {
            errs.push(format!("endPort {end} is not in 1-65535"));
        }
    }
    errs
}

/// IANA_SVC_NAME: 1-15 of `[a-z0-9-]`, at least one letter, no leading,
/// trailing or doubled hyphen.
fn is_port_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn peer_errors(peer: &NetworkPolicyPeer) -> Vec<String> {
    let mut errs = Vec::new();
    let count = usize::from(peer.pod_selector.is_some())
        + usize::from(peer.namespace_selector.is_some())
        + usize::from(peer.ip_block.is_some());
    if count == 0 {
        errs.push("peer: must specify a peer".to_string());
    } else if count > 1 && peer.ip_block.is_some() {
        errs.push("peer: ipBlock together with a selector".to_string());
    }
    for sel in [&peer.pod_selector, &peer.namespace_selector]
        .into_iter()
        .flatten()
    {
        errs.extend(selector_errors(sel));
    }
    if let Some(block) = &peer.ip_block {
        errs.extend(ip_block_errors(block));
    }
    errs
}

fn ip_block_errors(block: &IPBlock) -> Vec<String> {
    let cidr = match Cidr::parse(&block.cidr) {
        Ok(c) => c,
        Err(e) => return vec![format!("ipBlock.cidr: {e}")],
    };
    let mut errs = Vec::new();
    for e in block.except.iter().flatten() {
        match Cidr::parse(e) {
            Err(msg) => errs.push(format!("ipBlock.except: {msg}")),
            Ok(ex) if !(cidr.contains(ex.addr) && ex.len > cidr.len) => {
                errs.push(format!(
                    "ipBlock.except: {e:?} is not a strict subset of the cidr"
                ));
            }
            Ok(_) => {}
        }
    }
    errs
}

fn selector_errors(sel: &LabelSelector) -> Vec<String> {
    let mut errs = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        if !is_label_key(k) {
            errs.push(format!("matchLabels: bad key {k:?}"));
        }
        if !is_label_value(v) {
            errs.push(format!("matchLabels: bad value {v:?}"));
        }
    }
    for req in sel.match_expressions.iter().flatten() {
        if !is_label_key(&req.key) {
            errs.push(format!("matchExpressions: bad key {:?}", req.key));
        }
        let n = req.values.as_ref().map_or(0, Vec::len);
        match req.operator.as_str() {
            "In" | "NotIn" if n == 0 => {
                errs.push(format!("matchExpressions: {} needs values", req.operator));
            }
            "Exists" | "DoesNotExist" if n > 0 => {
                errs.push(format!(
                    "matchExpressions: {} takes no values",
                    req.operator
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(format!("matchExpressions: unknown operator {op:?}")),
        }
        for v in req.values.iter().flatten() {
            if !is_label_value(v) {
                errs.push(format!("matchExpressions: bad value {v:?}"));
            }
        }
    }
    errs
}

/// `[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?`, at most `max` long.
fn is_label_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

/// A qualified name: optional DNS-subdomain prefix and `/`, then a name.
fn is_label_key(s: &str) -> bool {
    match s.split_once('/') {
        None => is_label_name(s, 63),
        Some((prefix, name)) => {
            is_label_name(name, 63)
                && prefix.len() <= 253
                && prefix.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                        && !part.starts_with('-')
                        && !part.ends_with('-')
                })
        }
    }
}

fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s, 63)
}

#[cfg(test)]
mod tests;
