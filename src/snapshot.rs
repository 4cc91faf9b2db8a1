//! The `Snapshot`: an owned, immutable picture of the cluster objects the
//! translator reads, trimmed to the fields it needs.
//!
//! Built by the informers (from the API server) or by `manifests` (from files).
//! Must not: hold a kube `Store`, a `Client`, a socket or anything live.
//!
//! Pods and namespaces are trimmed into our own small types. NetworkPolicies
//! keep the upstream `NetworkPolicySpec` (k8s-openapi) because the translator
//! must see every field to validate it the way the API server would.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::NetworkPolicySpec;

/// Label set of an object. Ordered so that everything built from it is
/// deterministic.
pub type Labels = BTreeMap<String, String>;

/// Pod lifecycle phase, as far as enforcement cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl Phase {
    /// Parse `status.phase`; absent or unrecognised is `Unknown`.
    pub fn parse(s: Option<&str>) -> Phase {
        match s {
            Some("Pending") => Phase::Pending,
            Some("Running") => Phase::Running,
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            _ => Phase::Unknown,
        }
    }

    /// Succeeded and Failed pods have released their IPs (which may already
    /// belong to a new pod): they are never peers and get no rules.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }
}

/// A container port (of a container or an init container).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerPort {
    /// `name`, when set (IANA_SVC_NAME, at most 15 characters).
    pub name: Option<String>,
    pub port: u16,
    /// `protocol` as written; absent means "TCP". Kept as a string so the
    /// translator can tell an unknown protocol from a known one.
    pub protocol: String,
}

/// A pod, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    /// `spec.nodeName`; `None` while unscheduled.
    pub node: Option<String>,
    pub host_network: bool,
    pub phase: Phase,
    /// `metadata.deletionTimestamp` is set: the pod is terminating (it still
    /// runs and holds its IPs until its phase or its deletion says otherwise).
    pub terminating: bool,
    /// `status.podIPs` (or `status.podIP` when podIPs is absent), parsed,
    /// deduplicated, at most one per family in practice.
    pub ips: Vec<IpAddr>,
    pub ports: Vec<ContainerPort>,
}

impl Pod {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether this pod can be a peer of a policy: it has an IP of its own
    /// (not the node's), and it is not finished.
    pub fn is_peer(&self) -> bool {
        !self.host_network && !self.phase.is_terminal() && !self.ips.is_empty()
    }
}

/// A namespace, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace {
    pub name: String,
    /// Includes `kubernetes.io/metadata.name` (the API server sets it on every
    /// namespace; the loaders add it when missing).
    pub labels: Labels,
}

/// A NetworkPolicy: name, namespace and its full spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    pub spec: NetworkPolicySpec,
}

impl Policy {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Everything the translator reads. The loaders keep each list sorted by
/// (namespace, name) so that a snapshot compares and hashes the same whatever
/// order the objects arrived in; the translator must not rely on that order
/// for correctness.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub pods: Vec<Pod>,
    pub namespaces: Vec<Namespace>,
    pub policies: Vec<Policy>,
}

impl Snapshot {
    /// A snapshot of these objects, normalized (see [`Snapshot::normalize`]).
    pub fn normalized(pods: Vec<Pod>, namespaces: Vec<Namespace>, policies: Vec<Policy>) -> Self {
        let mut snap = Snapshot {
            pods,
            namespaces,
            policies,
        };
        snap.normalize();
        snap
    }

    /// Sort every list by (namespace, name) and drop exact duplicates of a key
    /// (the last one added wins).
    pub fn normalize(&mut self) {
        fn dedup_last<T, K: PartialEq>(v: &mut Vec<T>, key: impl Fn(&T) -> K) {
            // Stable sort keeps arrival order among equal keys; keep the last.
            let mut out: Vec<T> = Vec::with_capacity(v.len());
            for item in v.drain(..) {
                if let Some(last) = out.last_mut() {
                    if key(last) == key(&item) {
                        *last = item;
                        continue;
                    }
                }
                out.push(item);
            }
            *v = out;
        }
        self.pods
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        dedup_last(&mut self.pods, |p| (p.namespace.clone(), p.name.clone()));
        self.namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        dedup_last(&mut self.namespaces, |n| n.name.clone());
        self.policies
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        dedup_last(&mut self.policies, |p| {
            (p.namespace.clone(), p.name.clone())
        });
    }
}
