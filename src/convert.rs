//! Kubernetes objects (k8s-openapi types) -> the trimmed `Snapshot` types.
//! Shared by the manifest loader and the informers.
//!
//! Must not: do I/O or log.

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;

use crate::snapshot::{Namespace, Pod, Policy};

/// An object field that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {message}")]
pub struct ConvertError {
    /// `Pod ns/name`, `Namespace name`, `NetworkPolicy ns/name`.
    pub object: String,
    /// e.g. `status.podIPs[1].ip`.
    pub field: String,
    pub message: String,
}

/// Trim a Pod.
pub fn pod(p: &core::Pod) -> Result<Pod, ConvertError> {
    let _ = p;
    Err(ConvertError {
        object: "Pod".into(),
        field: "-".into(),
        message: "conversion not built yet".into(),
    })
}

/// Trim a Namespace (adds `kubernetes.io/metadata.name` when missing).
pub fn namespace(n: &core::Namespace) -> Result<Namespace, ConvertError> {
    let _ = n;
    Err(ConvertError {
        object: "Namespace".into(),
        field: "-".into(),
        message: "conversion not built yet".into(),
    })
}

/// Keep a NetworkPolicy's name, namespace and spec.
pub fn policy(p: &net::NetworkPolicy) -> Result<Policy, ConvertError> {
    let _ = p;
    Err(ConvertError {
        object: "NetworkPolicy".into(),
        field: "-".into(),
        message: "conversion not built yet".into(),
    })
}
