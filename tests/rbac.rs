//! The deployment manifests grant and run with no more than documented:
//! the ClusterRole allows exactly get/list/watch on pods, namespaces and
//! networkpolicies; the agent's container keeps NET_ADMIN and nothing else.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Parser;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every object of every deploy/*.yaml, with the file it came from.
fn objects() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read manifest");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        out.extend(
            docs.into_iter()
                .filter(|d| !d.is_null())
                .map(|d| (name.clone(), d)),
        );
    }
    out
}

fn of_kind(kind: &str) -> Vec<(String, Value)> {
    objects()
        .into_iter()
        .filter(|(_, o)| o["kind"] == kind)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_cluster_role_grants_exactly_read_access_to_pods_namespaces_and_policies() {
    let roles = of_kind("ClusterRole");
    assert_eq!(roles.len(), 1, "exactly one ClusterRole in deploy/");
    assert!(
        of_kind("Role").is_empty() && of_kind("RoleBinding").is_empty(),
        "no namespaced roles expected"
    );
    let (_, role) = &roles[0];
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let fields: BTreeSet<&str> = rule
            .as_object()
            .expect("rule object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            BTreeSet::from(["apiGroups", "resources", "verbs"]),
            "no resourceNames or nonResourceURLs: {rule}"
        );
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    let mut wanted = BTreeSet::new();
    for (group, resource) in [
        ("", "pods"),
        ("", "namespaces"),
        ("networking.k8s.io", "networkpolicies"),
    ] {
        for verb in ["get", "list", "watch"] {
            wanted.insert((group.to_string(), resource.to_string(), verb.to_string()));
        }
    }
    assert_eq!(granted, wanted);
}

#[test]
fn the_binding_gives_the_role_to_the_agents_service_account_only() {
    let bindings = of_kind("ClusterRoleBinding");
    assert_eq!(bindings.len(), 1);
    let (_, b) = &bindings[0];
    assert_eq!(b["roleRef"]["kind"], "ClusterRole");
    assert_eq!(
        b["roleRef"]["name"],
        of_kind("ClusterRole")[0].1["metadata"]["name"]
    );
    let subjects = b["subjects"].as_array().expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["name"], "flock-netpol");
    assert_eq!(subjects[0]["namespace"], "kube-system");
    let agent = agent_daemonset();
    assert_eq!(
        agent["spec"]["template"]["spec"]["serviceAccountName"],
        "flock-netpol"
    );
}

fn agent_daemonset() -> Value {
    of_kind("DaemonSet")
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d["metadata"]["name"] == "flock-netpol")
        .expect("DaemonSet flock-netpol")
}

/// A container may only ADD NET_ADMIN, must drop ALL, and must not be able
/// to gain anything back.
fn assert_locked_down(file: &str, pod: &Value, container: &Value, may_add: &[&str]) {
    let name = format!("{file}: container {}", container["name"]);
    let sc = &container["securityContext"];
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{name}");
    assert_eq!(strings(&sc["capabilities"]["add"]), may_add, "{name}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
    assert_ne!(sc["privileged"], true, "{name}");
    let seccomp = if sc["seccompProfile"].is_null() {
        &pod["securityContext"]["seccompProfile"]
    } else {
        &sc["seccompProfile"]
    };
    assert_eq!(seccomp["type"], "RuntimeDefault", "{name}");
    assert!(
        !container["resources"]["limits"]["memory"].is_null(),
        "{name}: memory limit"
    );
}

#[test]
fn every_container_drops_all_capabilities_but_net_admin() {
    let daemonsets = of_kind("DaemonSet");
    assert!(daemonsets.len() >= 2, "agent and cleanup DaemonSets");
    for (file, ds) in daemonsets {
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(pod["hostNetwork"], true, "{file}");
        assert_ne!(pod["hostPID"], true, "{file}");
        assert!(pod["volumes"].is_null(), "{file}: no host volumes");
        for list in ["initContainers", "containers"] {
            for c in pod[list].as_array().into_iter().flatten() {
                let image = c["image"].as_str().unwrap_or("");
                let adds: &[&str] = if image.starts_with("flock-netpol") {
                    &["NET_ADMIN"]
                } else {
                    &[]
                };
                assert_locked_down(&file, pod, c, adds);
            }
        }
    }
}

#[test]
fn the_agent_runs_everywhere_with_probes_on_the_named_metrics_port() {
    let ds = agent_daemonset();
    assert_eq!(ds["metadata"]["namespace"], "kube-system");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"], "system-node-critical");
    let tolerations = pod["tolerations"].as_array().expect("tolerations");
    assert!(
        tolerations
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null() && t["effect"].is_null()),
        "a toleration of every taint"
    );
    let update = &ds["spec"]["updateStrategy"];
    assert_eq!(update["type"], "RollingUpdate");
    assert_eq!(update["rollingUpdate"]["maxUnavailable"], 1);
    assert_eq!(update["rollingUpdate"]["maxSurge"], 0);

    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let env = c["env"].as_array().expect("env");
    assert!(env
        .iter()
        .any(|e| e["name"] == "NODE_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"));

    // The port the container declares is the one the agent listens on by
    // default, and the one its --metrics-addr argument names.
    let cli = flock_netpol::config::Cli::try_parse_from(["flock-netpol", "--node", "n"])
        .expect("defaults parse");
    let default_port: u64 = cli
        .metrics_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("default metrics port");
    let ports = c["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"], "metrics");
    assert_eq!(ports[0]["containerPort"], default_port);
    let args = strings(&c["args"]);
    assert!(
        args.contains(&format!("--metrics-addr=0.0.0.0:{default_port}")),
        "{args:?}"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics");
}

#[test]
fn the_kustomization_installs_everything_but_the_cleanup() {
    let text =
        std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).expect("kustomization");
    let k: Value = serde_saphyr::from_str(&text).expect("kustomization parses");
    let listed: BTreeSet<String> = strings(&k["resources"]).into_iter().collect();
    let mut expected: BTreeSet<String> = objects()
        .into_iter()
        .map(|(file, _)| file)
        .filter(|f| f != "kustomization.yaml" && f != "cleanup-job.yaml")
        .collect();
    expected.remove("kustomization.yaml");
    assert_eq!(listed, expected);
}

#[test]
fn the_cleanup_runs_the_cleanup_mode_without_api_access() {
    let cleanup = of_kind("DaemonSet")
        .into_iter()
        .find(|(f, _)| f == "cleanup-job.yaml")
        .expect("cleanup DaemonSet")
        .1;
    let pod = &cleanup["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    let init = &pod["initContainers"][0];
    assert_eq!(strings(&init["args"]), ["--cleanup"]);
}
