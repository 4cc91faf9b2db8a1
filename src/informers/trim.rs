//! Trimming of cached objects: keep only what `convert` reads, so that a
//! cluster-wide pod cache stays small.
//!
//! Must not: drop a field `convert` reads (the tests below convert an object
//! before and after trimming and compare).

use k8s_openapi::api::core::v1::{Container, Namespace, Pod, PodSpec, PodStatus};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Name, namespace, labels, resourceVersion, uid and deletionTimestamp.
fn meta(m: &mut ObjectMeta) {
    *m = ObjectMeta {
        name: m.name.take(),
        namespace: m.namespace.take(),
        labels: m.labels.take(),
        resource_version: m.resource_version.take(),
        uid: m.uid.take(),
        deletion_timestamp: m.deletion_timestamp.take(),
        ..ObjectMeta::default()
    };
}

/// Only the container's name and ports.
fn container(c: &mut Container) {
    *c = Container {
        name: std::mem::take(&mut c.name),
        ports: c.ports.take(),
        ..Container::default()
    };
}

/// Pod: node name, host network, container ports, phase and IPs.
pub fn pod(p: &mut Pod) {
    meta(&mut p.metadata);
    if let Some(spec) = p.spec.as_mut() {
        spec.containers.iter_mut().for_each(container);
        spec.init_containers
            .iter_mut()
            .flatten()
            .for_each(container);
        *spec = PodSpec {
            containers: std::mem::take(&mut spec.containers),
            init_containers: spec.init_containers.take(),
            node_name: spec.node_name.take(),
            host_network: spec.host_network.take(),
            ..PodSpec::default()
        };
    }
    if let Some(status) = p.status.as_mut() {
        *status = PodStatus {
            phase: status.phase.take(),
            pod_ip: status.pod_ip.take(),
            pod_ips: status.pod_ips.take(),
            ..PodStatus::default()
        };
    }
}

/// Namespace: name and labels.
pub fn namespace(n: &mut Namespace) {
    meta(&mut n.metadata);
    n.spec = None;
    n.status = None;
}

/// NetworkPolicy: metadata trimmed, spec kept whole (the translator
/// validates every field).
pub fn policy(p: &mut NetworkPolicy) {
    meta(&mut p.metadata);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "a", "namespace": "x", "labels": {"app": "a"},
                "annotations": {"big": "x".repeat(1000)},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
                "resourceVersion": "7", "uid": "u1",
                "deletionTimestamp": "2026-01-01T00:00:00Z"
            },
            "spec": {
                "nodeName": "n1", "hostNetwork": false,
                "containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}],
                                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}],
                "initContainers": [{"name": "i", "image": "busybox",
                                    "ports": [{"containerPort": 53, "protocol": "UDP"}]}],
                "volumes": [{"name": "v", "emptyDir": {}}]
            },
            "status": {
                "phase": "Running", "podIP": "198.18.0.10",
                "podIPs": [{"ip": "198.18.0.10"}, {"ip": "fd00:198:18::10"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "hostIP": "198.18.0.1"
            }
        }))
        .expect("valid pod")
    }

    #[test]
    fn trimming_a_pod_drops_bulk_but_keeps_what_convert_reads() {
        let original = full_pod();
        let mut trimmed = original.clone();
        pod(&mut trimmed);
        assert!(trimmed.metadata.annotations.is_none());
        assert!(trimmed.metadata.managed_fields.is_none());
        let spec = trimmed.spec.as_ref().unwrap();
        assert!(spec.volumes.is_none());
        assert!(spec.containers[0].image.is_none());
        assert!(spec.containers[0].env.is_none());
        assert!(trimmed.status.as_ref().unwrap().conditions.is_none());
        assert_eq!(
            crate::convert::pod(&trimmed),
            crate::convert::pod(&original),
            "conversion must not see the difference"
        );
    }

    #[test]
    fn trimming_a_namespace_keeps_name_and_labels() {
        let original: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "labels": {"team": "t"}, "annotations": {"a": "b"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
        }))
        .unwrap();
        let mut trimmed = original.clone();
        namespace(&mut trimmed);
        assert!(trimmed.metadata.annotations.is_none() && trimmed.spec.is_none());
        assert_eq!(
            crate::convert::namespace(&trimmed),
            crate::convert::namespace(&original)
        );
    }
}
