//! Validation and compilation of one NetworkPolicy: its spec, checked the way
//! the API server checks it, becomes a `Compiled` policy (selectors, peers,
//! ports in our own types). A policy with any error opens nothing, but still
//! isolates the pods it selects (fail closed).
//!
//! Must not: look at pods or namespaces (that is peer resolution), or build
//! rules.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyPeer, NetworkPolicyPort};

use super::cidr::{self, Range};
use super::ports::{self, PortSpec};
use super::selector::{Anchor, Selector};
use crate::model::{Family, Warning};
use crate::snapshot::Policy;

/// Errors found in one object: `(field path, message)`, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(String, String)>);

impl FieldErrors {
    pub fn push(&mut self, field: String, message: String) {
        self.0.push((field, message));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A field path below `parent` (`<parent>.<name>` or `<parent>.<name>[i]`),
/// formatted only when an error names it: most policies have none, and
/// their paths are never written out.
#[derive(Clone, Copy)]
pub struct Path<'a> {
    parent: &'a dyn fmt::Display,
    name: &'static str,
    index: Option<usize>,
}

impl<'a> Path<'a> {
    pub fn field(parent: &'a dyn fmt::Display, name: &'static str) -> Path<'a> {
        Path {
            parent,
            name,
            index: None,
        }
    }

    pub fn item(parent: &'a dyn fmt::Display, name: &'static str, index: usize) -> Path<'a> {
        Path {
            parent,
            name,
            index: Some(index),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.parent, self.name)?;
        match self.index {
            Some(i) => write!(f, "[{i}]"),
            None => Ok(()),
        }
    }
}

/// Direction of a rule, as the spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    Ingress,
    Egress,
}

impl Dir {
    /// `ingress` / `egress`, as in field paths and comments.
    pub fn field(self) -> &'static str {
        match self {
            Dir::Ingress => "ingress",
            Dir::Egress => "egress",
        }
    }
}

/// Which namespaces a pod peer draws from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NsScope {
    /// No `namespaceSelector`: the policy's own namespace.
    Own,
    Matching(Selector),
}

/// One compiled peer of `from` / `to`. Ordered so that rules with the same
/// peers can share their resolution.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    /// Pods of the scope's namespaces matching `pods` (`{}` when absent).
    Pods { ns: NsScope, pods: Selector },
    /// `cidr` minus `except`, merged ranges of one family.
    Block { family: Family, ranges: Vec<Range> },
}

impl Peer {
    /// Whether the peer's pods come from the policy's own namespace (its
    /// resolution depends on that namespace).
    pub fn draws_from_own_namespace(&self) -> bool {
        matches!(
            self,
            Peer::Pods {
                ns: NsScope::Own,
                ..
            }
        )
    }
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `None`: `from`/`to` absent or empty, any peer (no address match).
    pub peers: Option<Vec<Peer>>,
    /// Empty: every port and protocol.
    pub ports: Vec<PortSpec>,
}

/// A policy, validated and compiled.
#[derive(Debug, Clone)]
pub struct Compiled<'a> {
    pub policy: &'a Policy,
    /// `namespace/name`.
    pub key: String,
    /// `None` when `spec.podSelector` is invalid: every pod of the namespace
    /// is selected (and isolated).
    pub selector: Option<Selector>,
    pub ingress: bool,
    pub egress: bool,
    /// Whether the whole spec is valid; an invalid policy has no rules.
    pub valid: bool,
    pub ingress_rules: Vec<Rule>,
    pub egress_rules: Vec<Rule>,
}

impl Compiled<'_> {
    pub fn isolates(&self, dir: Dir) -> bool {
        match dir {
            Dir::Ingress => self.ingress,
            Dir::Egress => self.egress,
        }
    }

    pub fn rules(&self, dir: Dir) -> &[Rule] {
        match dir {
            Dir::Ingress => &self.ingress_rules,
            Dir::Egress => &self.egress_rules,
        }
    }
}

/// The label keys the peers' pod selectors of `policies` can look pods up
/// by (their positive requirements).
pub fn anchor_keys<'p>(policies: &'p [Compiled]) -> BTreeSet<&'p str> {
    let mut keys = BTreeSet::new();
    let peers = policies
        .iter()
        .flat_map(|c| c.ingress_rules.iter().chain(&c.egress_rules))
        .flat_map(|r| r.peers.iter().flatten());
    for peer in peers {
        if let Peer::Pods { pods, .. } = peer {
            keys.extend(pods.anchors().map(|a| match a {
                Anchor::Value(k, _) | Anchor::Values(k, _) | Anchor::Key(k) => k,
            }));
        }
    }
    keys
}

/// Validate and compile `p`; every error becomes a warning naming
/// `NetworkPolicy ns/name` and the field.
pub fn compile<'a>(p: &'a Policy, warnings: &mut Vec<Warning>) -> Compiled<'a> {
    let spec = &p.spec;
    let mut errs = FieldErrors::default();
    let selector = match &spec.pod_selector {
        None => Some(Selector::everything()),
        Some(s) => Selector::compile(s, &"spec.podSelector", &mut errs),
    };
    let (isolates_in, isolates_out) = policy_types(p, &mut errs);
    let ingress = spec.ingress.iter().flatten().enumerate();
    let mut ingress_rules: Vec<Rule> = ingress
        .map(|(i, r)| {
            let path = Path::item(&"spec", "ingress", i);
            rule(
                r.from.as_deref(),
                r.ports.as_deref(),
                &path,
                "from",
                &mut errs,
            )
        })
        .collect();
    let egress = spec.egress.iter().flatten().enumerate();
    let mut egress_rules: Vec<Rule> = egress
        .map(|(i, r)| {
            let path = Path::item(&"spec", "egress", i);
            rule(r.to.as_deref(), r.ports.as_deref(), &path, "to", &mut errs)
        })
        .collect();
    let valid = errs.is_empty();
    let key = p.key();
    for (field, message) in errs.0 {
        warnings.push(Warning {
            object: format!("NetworkPolicy {key}"),
            field,
            message: format!(
                "{message}; this policy opens nothing, the pods it selects stay isolated"
            ),
        });
    }
    if !valid {
        ingress_rules.clear();
        egress_rules.clear();
    }
    Compiled {
        policy: p,
        key,
        selector,
        ingress: isolates_in,
        egress: isolates_out,
        valid,
        ingress_rules,
        egress_rules,
    }
}

/// The directions the policy isolates. Omitted (or empty) `policyTypes`:
/// Ingress, plus Egress when `spec.egress` has a rule. Unusable
/// `policyTypes`: both (fail closed).
fn policy_types(p: &Policy, errs: &mut FieldErrors) -> (bool, bool) {
    let types = match p.spec.policy_types.as_deref() {
        None | Some([]) => {
            let has_egress = p.spec.egress.as_ref().is_some_and(|e| !e.is_empty());
            return (true, has_egress);
        }
        Some(t) => t,
    };
    let before = errs.len();
    if types.len() > 2 {
        errs.push(
            "spec.policyTypes".into(),
            "may not specify more than two policyTypes".into(),
        );
    }
    let (mut ingress, mut egress) = (false, false);
    for (i, t) in types.iter().enumerate() {
        match t.as_str() {
            "Ingress" => ingress = true,
            "Egress" => egress = true,
            other => errs.push(
                format!("spec.policyTypes[{i}]"),
                format!("unknown policy type {other:?} (Ingress or Egress)"),
            ),
        }
    }
    if errs.len() > before {
        return (true, true);
    }
    (ingress, egress)
}

fn rule(
    peers: Option<&[NetworkPolicyPeer]>,
    ports: Option<&[NetworkPolicyPort]>,
    path: &Path,
    peers_field: &'static str,
    errs: &mut FieldErrors,
) -> Rule {
    let peers = match peers {
        None | Some([]) => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .filter_map(|(i, pr)| peer(pr, &Path::item(path, peers_field, i), errs))
                .collect(),
        ),
    };
    let ports = ports
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, pt)| ports::compile(pt, &Path::item(path, "ports", i), errs))
        .collect();
    Rule { peers, ports }
}

fn peer(p: &NetworkPolicyPeer, path: &Path, errs: &mut FieldErrors) -> Option<Peer> {
    match (&p.ip_block, &p.pod_selector, &p.namespace_selector) {
        (None, None, None) => {
            errs.push(
                path.to_string(),
                "must specify a podSelector, a namespaceSelector or an ipBlock".into(),
            );
            None
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            errs.push(
                path.to_string(),
                "ipBlock may not be combined with podSelector or namespaceSelector".into(),
            );
            None
        }
        (Some(b), None, None) => ip_block(b, &Path::field(path, "ipBlock"), errs),
        (None, pods, ns) => {
            let pods = match pods {
                None => Some(Selector::everything()),
                Some(s) => Selector::compile(s, &Path::field(path, "podSelector"), errs),
            };
            let ns = match ns {
                None => Some(NsScope::Own),
                Some(s) => Selector::compile(s, &Path::field(path, "namespaceSelector"), errs)
                    .map(NsScope::Matching),
            };
            Some(Peer::Pods {
                ns: ns?,
                pods: pods?,
            })
        }
    }
}

fn ip_block(b: &IPBlock, path: &Path, errs: &mut FieldErrors) -> Option<Peer> {
    let cidr = match cidr::parse(&b.cidr) {
        Ok(c) => c,
        Err(e) => {
            errs.push(format!("{path}.cidr"), e);
            return None;
        }
    };
    let mut holes = Vec::new();
    let before = errs.len();
    for (i, ex) in b.except.iter().flatten().enumerate() {
        match cidr::parse(ex) {
            Ok(h) if cidr.strictly_contains(&h) => holes.push(h.range),
            Ok(_) => errs.push(
                format!("{path}.except[{i}]"),
                format!("{ex:?} must be a strict subset of cidr {:?}", b.cidr),
            ),
            Err(e) => errs.push(format!("{path}.except[{i}]"), e),
        }
    }
    (errs.len() == before).then(|| Peer::Block {
        family: cidr.family,
        ranges: cidr::subtract(cidr.range, holes),
    })
}
