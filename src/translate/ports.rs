//! Ports of a policy rule: protocol (TCP default, UDP, SCTP), a number, a
//! range (`endPort`) or a name, validated the way the API server validates
//! them; and named-port resolution against a pod's container ports.
//!
//! Must not: decide which pod a name resolves against (the caller knows the
//! direction), or build rules.

use k8s_openapi::api::networking::v1::NetworkPolicyPort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::validate::FieldErrors;
use crate::model::Proto;
use crate::snapshot::{ContainerPort, Pod};

/// Which destination ports of the protocol a port entry allows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortMatch {
    /// No `port`: every port of the protocol.
    All,
    /// `port` (and `endPort`), inclusive.
    Range(u16, u16),
    /// A container port name, resolved per receiving pod.
    Named(String),
}

/// One compiled entry of `ports`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortSpec {
    pub proto: Proto,
    pub port: PortMatch,
}

/// The API server's spelling of a protocol (`TCP`, `UDP`, `SCTP`).
pub fn proto_name(proto: Proto) -> &'static str {
    match proto {
        Proto::Tcp => "TCP",
        Proto::Udp => "UDP",
        Proto::Sctp => "SCTP",
        Proto::Icmpv6 => "ICMPv6",
    }
}

/// `IANA_SVC_NAME`: 1-15 of `[a-z0-9-]`, at least one letter, no hyphen at
/// either end and no two hyphens in a row.
pub fn is_valid_port_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn port_number(v: i32) -> Option<u16> {
    u16::try_from(v).ok().filter(|&p| p != 0)
}

/// Validate and compile one `ports[i]` entry at field path `path`.
pub fn compile(
    p: &NetworkPolicyPort,
    path: &dyn std::fmt::Display,
    errs: &mut FieldErrors,
) -> Option<PortSpec> {
    let before = errs.len();
    let proto = match p.protocol.as_deref() {
        None | Some("TCP") => Proto::Tcp,
        Some("UDP") => Proto::Udp,
        Some("SCTP") => Proto::Sctp,
        Some(other) => {
            errs.push(
                format!("{path}.protocol"),
                format!("unsupported protocol {other:?} (TCP, UDP or SCTP)"),
            );
            Proto::Tcp
        }
    };
    let port = match &p.port {
        None => PortMatch::All,
        Some(IntOrString::Int(n)) => match port_number(*n) {
            Some(lo) => PortMatch::Range(lo, lo),
            None => {
                errs.push(format!("{path}.port"), format!("{n} is not in 1-65535"));
                PortMatch::All
            }
        },
        Some(IntOrString::String(name)) => {
            if !is_valid_port_name(name) {
                errs.push(
                    format!("{path}.port"),
                    format!("{name:?} is not a valid port name (IANA_SVC_NAME)"),
                );
            }
            PortMatch::Named(name.clone())
        }
    };
    let port = match (p.end_port, port) {
        (None, port) => port,
        (Some(_), PortMatch::All) => {
            errs.push(
                format!("{path}.endPort"),
                "may not be specified when port is not specified".into(),
            );
            PortMatch::All
        }
        (Some(_), PortMatch::Named(n)) => {
            errs.push(
                format!("{path}.endPort"),
                "may not be specified when port is a name".into(),
            );
            PortMatch::Named(n)
        }
        (Some(end), PortMatch::Range(lo, _)) => match port_number(end) {
            Some(hi) if hi >= lo => PortMatch::Range(lo, hi),
            _ => {
                errs.push(
                    format!("{path}.endPort"),
                    format!("{end} must be in {lo}-65535 (at least port)"),
                );
                PortMatch::Range(lo, lo)
            }
        },
    };
    (errs.len() == before).then_some(PortSpec { proto, port })
}

/// Whether container port `cp` is `name` with protocol `proto` (an empty
/// protocol is TCP) and a usable number.
pub fn is_named(cp: &ContainerPort, name: &str, proto: Proto) -> bool {
    let p = cp.protocol.as_str();
    cp.port != 0
        && cp.name.as_deref() == Some(name)
        && (p == proto_name(proto) || (p.is_empty() && proto == Proto::Tcp))
}

/// The port numbers `name`/`proto` resolves to on `pod` (containers and init
/// containers), sorted and deduplicated; empty when it resolves nowhere.
pub fn resolve(pod: &Pod, name: &str, proto: Proto) -> Vec<u16> {
    let mut out: Vec<u16> = pod
        .ports
        .iter()
        .filter(|cp| is_named(cp, name, proto))
        .map(|cp| cp.port)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn port(v: serde_json::Value) -> Result<PortSpec, Vec<(String, String)>> {
        let p: NetworkPolicyPort = serde_json::from_value(v).unwrap();
        let mut errs = FieldErrors::default();
        compile(&p, &"p", &mut errs).ok_or(errs.0)
    }

    #[test]
    fn protocol_defaults_to_tcp_and_port_to_all() {
        assert_eq!(
            port(json!({})).unwrap(),
            PortSpec {
                proto: Proto::Tcp,
                port: PortMatch::All
            }
        );
        assert_eq!(
            port(json!({"protocol": "SCTP", "port": 7, "endPort": 9})).unwrap(),
            PortSpec {
                proto: Proto::Sctp,
                port: PortMatch::Range(7, 9)
            }
        );
    }

    #[test]
    fn invalid_ports_name_their_field() {
        let field = |v| port(v).unwrap_err()[0].0.clone();
        assert_eq!(field(json!({"protocol": "tcp"})), "p.protocol");
        assert_eq!(field(json!({"port": 0})), "p.port");
        assert_eq!(field(json!({"port": 65536})), "p.port");
        assert_eq!(field(json!({"port": "Web_1"})), "p.port");
        assert_eq!(field(json!({"endPort": 90})), "p.endPort");
        assert_eq!(field(json!({"port": "web", "endPort": 90})), "p.endPort");
        assert_eq!(field(json!({"port": 91, "endPort": 90})), "p.endPort");
        assert_eq!(field(json!({"port": 91, "endPort": 65536})), "p.endPort");
    }

    #[test]
    fn port_names_follow_iana_svc_name() {
        for ok in ["http", "h2c", "a-b", "x123456789abcde"] {
            assert!(is_valid_port_name(ok), "{ok}");
        }
        for bad in [
            "",
            "80",
            "-a",
            "a-",
            "a--b",
            "Http",
            "x123456789abcdef",
            "a_b",
        ] {
            assert!(!is_valid_port_name(bad), "{bad}");
        }
    }
}
