//! Kubernetes objects (k8s-openapi types) -> the trimmed `Snapshot` types.
//! Shared by the manifest loader and the informers.
//!
//! What is kept, and how:
//! - Pod: name, namespace (absent = `default`), labels, whether a
//!   deletionTimestamp is set; `spec.nodeName`, `spec.hostNetwork`, the ports
//!   of containers and of init containers (sidecars), sorted and deduplicated;
//!   `status.phase`; `status.podIPs` parsed and deduplicated in their order,
//!   or `status.podIP` when podIPs is absent or empty.
//! - Namespace: name and labels, with `kubernetes.io/metadata.name` set to the
//!   name (the API server guarantees that label, with that value).
//! - NetworkPolicy: name, namespace (absent = `default`) and the whole spec
//!   (absent = the default spec); the translator validates the spec.
//!
//! A field that cannot be understood (an IP that does not parse, a container
//! port outside 1..=65535, a missing name) is an error naming the object and
//! the field: a pod whose address is unknown must not be silently dropped.
//!
//! Must not: do I/O or log.

use std::net::IpAddr;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::snapshot::{ContainerPort, Labels, Namespace, Phase, Pod, Policy};

/// The namespace of a namespaced object whose manifest does not say.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The label the API server puts on every namespace, valued with its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The protocol of a container port that does not say.
const DEFAULT_PROTOCOL: &str = "TCP";

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

/// Names an object in errors and builds them.
struct Object {
    what: String,
}

impl Object {
    fn namespaced(kind: &str, namespace: &str, name: &str) -> Object {
        Object {
            what: format!("{kind} {namespace}/{name}"),
        }
    }

    fn error(&self, field: impl Into<String>, message: impl Into<String>) -> ConvertError {
        ConvertError {
            object: self.what.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `metadata.name`, required.
fn name(meta: &ObjectMeta, kind: &str) -> Result<String, ConvertError> {
    match meta.name.as_deref() {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(ConvertError {
            object: match meta.namespace.as_deref() {
                Some(ns) => format!("{kind} in namespace {ns}"),
                None => kind.to_string(),
            },
            field: "metadata.name".into(),
            message: "missing (every object needs a name)".into(),
        }),
    }
}

/// `metadata.namespace`, `default` when absent or empty.
fn namespace_of(meta: &ObjectMeta) -> String {
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ns.to_string(),
        _ => DEFAULT_NAMESPACE.to_string(),
    }
}

/// Trim a Pod.
pub fn pod(p: &core::Pod) -> Result<Pod, ConvertError> {
    let meta = &p.metadata;
    let name = name(meta, "Pod")?;
    let namespace = namespace_of(meta);
    let obj = Object::namespaced("Pod", &namespace, &name);
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    Ok(Pod {
        labels: meta.labels.clone().unwrap_or_default(),
        terminating: meta.deletion_timestamp.is_some(),
        node: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        phase: Phase::parse(status.and_then(|s| s.phase.as_deref())),
        ips: match status {
            Some(s) => pod_ips(&obj, s)?,
            None => Vec::new(),
        },
        ports: match spec {
            Some(s) => pod_ports(&obj, s)?,
            None => Vec::new(),
        },
        namespace,
        name,
    })
}

/// `status.podIPs` (in order, deduplicated), else `status.podIP`.
fn pod_ips(obj: &Object, status: &core::PodStatus) -> Result<Vec<IpAddr>, ConvertError> {
    let parse = |field: String, text: &str| {
        text.parse::<IpAddr>()
            .map_err(|_| obj.error(field, format!("{text:?} is not an IP address")))
    };
    let mut ips = Vec::new();
    match status.pod_ips.as_deref() {
        Some(list) if !list.is_empty() => {
            for (i, entry) in list.iter().enumerate() {
                let ip = parse(format!("status.podIPs[{i}].ip"), &entry.ip)?;
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        _ => {
            if let Some(text) = status.pod_ip.as_deref().filter(|t| !t.is_empty()) {
                ips.push(parse("status.podIP".into(), text)?);
            }
        }
    }
    Ok(ips)
}

/// Ports of containers and init containers, sorted and deduplicated.
fn pod_ports(obj: &Object, spec: &core::PodSpec) -> Result<Vec<ContainerPort>, ConvertError> {
    let groups = [
        ("containers", spec.containers.as_slice()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or(&[]),
        ),
    ];
    let mut ports = Vec::new();
    for (group, containers) in groups {
        for (ci, container) in containers.iter().enumerate() {
            for (pi, cp) in container.ports.iter().flatten().enumerate() {
                let field = format!("spec.{group}[{ci}].ports[{pi}].containerPort");
                let port = u16::try_from(cp.container_port)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        obj.error(
                            field,
                            format!("{} is not a port number in 1..=65535", cp.container_port),
                        )
                    })?;
                let protocol = match cp.protocol.as_deref() {
                    None | Some("") => DEFAULT_PROTOCOL.to_string(),
                    Some(p) => p.to_string(),
                };
                ports.push(ContainerPort {
                    name: cp.name.clone().filter(|n| !n.is_empty()),
                    port,
                    protocol,
                });
            }
        }
    }
    ports.sort();
    ports.dedup();
    Ok(ports)
}

/// Trim a Namespace (sets `kubernetes.io/metadata.name` to its name).
pub fn namespace(n: &core::Namespace) -> Result<Namespace, ConvertError> {
    let name = name(&n.metadata, "Namespace")?;
    let mut labels: Labels = n.metadata.labels.clone().unwrap_or_default();
    // The API server sets this label on every namespace and keeps it equal
    // to the name; a manifest written by hand may lack it.
    labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.clone());
    Ok(Namespace { name, labels })
}

/// Keep a NetworkPolicy's name, namespace and spec.
pub fn policy(p: &net::NetworkPolicy) -> Result<Policy, ConvertError> {
    let name = name(&p.metadata, "NetworkPolicy")?;
    Ok(Policy {
        namespace: namespace_of(&p.metadata),
        name,
        spec: p.spec.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k8s<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("test object deserializes")
    }

    fn full_pod() -> serde_json::Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "shop",
                "labels": {"app": "web", "role": "frontend"},
                "deletionTimestamp": "2026-01-01T00:00:00Z"
            },
            "spec": {
                "nodeName": "node-1",
                "containers": [
                    {"name": "web", "image": "x", "ports": [
                        {"name": "http", "containerPort": 80},
                        {"name": "dns", "containerPort": 53, "protocol": "UDP"}
                    ]},
                    {"name": "side", "image": "x", "ports": [
                        {"containerPort": 9090, "protocol": "SCTP"}
                    ]}
                ],
                "initContainers": [
                    {"name": "proxy", "image": "x", "restartPolicy": "Always", "ports": [
                        {"name": "metrics", "containerPort": 15090, "protocol": "TCP"}
                    ]}
                ]
            },
            "status": {
                "phase": "Running",
                "podIP": "198.18.1.10",
                "podIPs": [{"ip": "198.18.1.10"}, {"ip": "fd00:198:18:1::10"}]
            }
        })
    }

    fn port(name: Option<&str>, port: u16, protocol: &str) -> ContainerPort {
        ContainerPort {
            name: name.map(str::to_string),
            port,
            protocol: protocol.to_string(),
        }
    }

    #[test]
    fn a_pod_keeps_metadata_spec_and_status_fields() {
        let p = pod(&k8s(full_pod())).unwrap();
        assert_eq!(p.name, "web-1");
        assert_eq!(p.namespace, "shop");
        assert_eq!(p.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(p.labels.len(), 2);
        assert!(p.terminating);
        assert_eq!(p.node.as_deref(), Some("node-1"));
        assert!(!p.host_network);
        assert_eq!(p.phase, Phase::Running);
        assert_eq!(
            p.ips,
            vec![
                "198.18.1.10".parse::<IpAddr>().unwrap(),
                "fd00:198:18:1::10".parse::<IpAddr>().unwrap()
            ]
        );
    }

    #[test]
    fn ports_of_containers_and_init_containers_are_kept_with_tcp_as_default() {
        let p = pod(&k8s(full_pod())).unwrap();
        let mut want = vec![
            port(Some("http"), 80, "TCP"),
            port(Some("dns"), 53, "UDP"),
            port(None, 9090, "SCTP"),
            port(Some("metrics"), 15090, "TCP"),
        ];
        want.sort();
        assert_eq!(p.ports, want);
    }

    #[test]
    fn an_unknown_protocol_is_kept_as_written_for_the_translator_to_judge() {
        let mut v = full_pod();
        v["spec"]["containers"][0]["ports"][0]["protocol"] = json!("tcp");
        let p = pod(&k8s(v)).unwrap();
        assert!(p.ports.contains(&port(Some("http"), 80, "tcp")));
    }

    #[test]
    fn a_pod_without_namespace_is_in_default_and_a_bare_pod_has_nothing() {
        let p = pod(&k8s(json!({"metadata": {"name": "bare"}}))).unwrap();
        assert_eq!(p.namespace, "default");
        assert_eq!(p.phase, Phase::Unknown);
        assert!(p.ips.is_empty() && p.ports.is_empty() && p.labels.is_empty());
        assert_eq!(p.node, None);
        assert!(!p.terminating && !p.host_network);
    }

    #[test]
    fn host_network_and_phase_are_read() {
        let p = pod(&k8s(json!({
            "metadata": {"name": "h"},
            "spec": {"hostNetwork": true, "containers": []},
            "status": {"phase": "Succeeded"}
        })))
        .unwrap();
        assert!(p.host_network);
        assert_eq!(p.phase, Phase::Succeeded);
    }

    #[test]
    fn pod_ip_is_the_fallback_when_pod_ips_is_absent_or_empty() {
        for status in [
            json!({"podIP": "198.18.2.7"}),
            json!({"podIP": "198.18.2.7", "podIPs": []}),
        ] {
            let p = pod(&k8s(json!({"metadata": {"name": "a"}, "status": status}))).unwrap();
            assert_eq!(p.ips, vec!["198.18.2.7".parse::<IpAddr>().unwrap()]);
        }
    }

    #[test]
    fn pod_ips_wins_over_pod_ip_and_duplicates_are_dropped() {
        let p = pod(&k8s(json!({"metadata": {"name": "a"}, "status": {
            "podIP": "198.18.2.99",
            "podIPs": [{"ip": "fd00:198:18:2::7"}, {"ip": "198.18.2.7"}, {"ip": "fd00:198:18:2:0::7"}]
        }})))
        .unwrap();
        assert_eq!(
            p.ips,
            vec![
                "fd00:198:18:2::7".parse::<IpAddr>().unwrap(),
                "198.18.2.7".parse::<IpAddr>().unwrap()
            ]
        );
    }

    #[test]
    fn a_bad_pod_ip_is_an_error_naming_the_pod_and_the_field() {
        let err = pod(&k8s(
            json!({"metadata": {"name": "a", "namespace": "x"}, "status": {
                "podIPs": [{"ip": "198.18.2.7"}, {"ip": "1.2.3"}]
            }}),
        ))
        .unwrap_err();
        assert_eq!(err.object, "Pod x/a");
        assert_eq!(err.field, "status.podIPs[1].ip");
        assert_eq!(
            err.to_string(),
            r#"Pod x/a: status.podIPs[1].ip: "1.2.3" is not an IP address"#
        );
        let err = pod(&k8s(
            json!({"metadata": {"name": "a"}, "status": {"podIP": "nope"}}),
        ))
        .unwrap_err();
        assert_eq!(
            (err.object.as_str(), err.field.as_str()),
            ("Pod default/a", "status.podIP")
        );
    }

    #[test]
    fn a_container_port_outside_1_to_65535_is_an_error_naming_the_field() {
        for bad in [0, -1, 65536] {
            let mut v = full_pod();
            v["spec"]["initContainers"][0]["ports"][0]["containerPort"] = json!(bad);
            let err = pod(&k8s(v)).unwrap_err();
            assert_eq!(err.object, "Pod shop/web-1");
            assert_eq!(err.field, "spec.initContainers[0].ports[0].containerPort");
            assert!(err.message.contains(&bad.to_string()), "{err}");
        }
        let mut v = full_pod();
        v["spec"]["containers"][1]["ports"][0]["containerPort"] = json!(70000);
        let err = pod(&k8s(v)).unwrap_err();
        assert_eq!(err.field, "spec.containers[1].ports[0].containerPort");
        let mut v = full_pod();
        v["spec"]["containers"][0]["ports"][1]["containerPort"] = json!(65535);
        assert!(pod(&k8s(v)).is_ok());
    }

    #[test]
    fn an_object_without_a_name_is_an_error() {
        let err = pod(&k8s(json!({"metadata": {"namespace": "x"}}))).unwrap_err();
        assert_eq!(err.field, "metadata.name");
        assert!(err.object.contains("Pod") && err.object.contains('x'));
        let err = namespace(&k8s(json!({"metadata": {}}))).unwrap_err();
        assert_eq!(
            (err.object.as_str(), err.field.as_str()),
            ("Namespace", "metadata.name")
        );
        let err = policy(&k8s(json!({"metadata": {}}))).unwrap_err();
        assert_eq!(err.field, "metadata.name");
    }

    #[test]
    fn a_namespace_gets_its_metadata_name_label() {
        let n = namespace(&k8s(
            json!({"metadata": {"name": "shop", "labels": {"team": "a"}}}),
        ))
        .unwrap();
        assert_eq!(n.name, "shop");
        let want: Labels = [("team", "a"), ("kubernetes.io/metadata.name", "shop")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(n.labels, want);
        let n = namespace(&k8s(json!({"metadata": {"name": "bare"}}))).unwrap();
        assert_eq!(n.labels.len(), 1);
        assert_eq!(n.labels["kubernetes.io/metadata.name"], "bare");
    }

    #[test]
    fn a_policy_keeps_its_spec_and_defaults_namespace_and_spec() {
        let p = policy(&k8s(json!({
            "metadata": {"name": "deny", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
        })))
        .unwrap();
        assert_eq!((p.namespace.as_str(), p.name.as_str()), ("shop", "deny"));
        assert_eq!(p.spec.policy_types, Some(vec!["Ingress".to_string()]));
        let labels = p.spec.pod_selector.and_then(|s| s.match_labels).unwrap();
        assert_eq!(labels["app"], "web");

        let p = policy(&k8s(json!({"metadata": {"name": "empty"}}))).unwrap();
        assert_eq!(p.namespace, "default");
        assert_eq!(p.spec, net::NetworkPolicySpec::default());
    }
}
