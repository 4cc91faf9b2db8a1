//! The manifest loader on real files: good clusters in every accepted shape,
//! and bad input whose message must name the file, the document and the field.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flock_netpol::manifests::{load, ManifestError};
use flock_netpol::snapshot::{Phase, Snapshot};

/// Write `files` (name, content) into a fresh directory.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn load_one(name: &str, text: &str) -> (tempfile::TempDir, Result<Snapshot, ManifestError>) {
    let dir = dir_with(&[(name, text)]);
    let result = load(&[dir.path().join(name)]);
    (dir, result)
}

/// The error message of loading `text` as file `name`, checked to name the
/// file and to contain every one of `parts`.
fn error_of(name: &str, text: &str, parts: &[&str]) -> String {
    let (dir, result) = load_one(name, text);
    let message = result.expect_err("loading must fail").to_string();
    let file = dir.path().join(name);
    assert!(
        message.starts_with(&format!("{}: ", file.display())),
        "message must start with the file: {message}"
    );
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    message
}

fn names(s: &Snapshot) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        s.namespaces.iter().map(|n| n.name.clone()).collect(),
        s.pods.iter().map(|p| p.key()).collect(),
        s.policies.iter().map(|p| p.key()).collect(),
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const MULTI_DOC: &str = r#"# a comment before the first document
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: web}
---
---
# an empty document above, and a Service below: both skipped
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: shop
  labels: {app: web}
spec:
  nodeName: node-1
  containers:
  - name: web
    image: nginx
    ports:
    - {name: http, containerPort: 80}
    - {name: dns, containerPort: 53, protocol: UDP}
status:
  phase: Running
  podIP: 198.18.1.10
  podIPs: [{ip: 198.18.1.10}, {ip: "fd00:198:18:1::10"}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"#;

#[test]
fn a_multi_document_yaml_file_loads_namespaces_pods_and_policies() {
    let (_dir, result) = load_one("cluster.yaml", MULTI_DOC);
    let s = result.unwrap();
    assert_eq!(
        names(&s),
        (
            vec!["shop".into()],
            vec!["shop/web-1".into()],
            vec!["shop/deny-all".into()]
        )
    );
    let pod = &s.pods[0];
    assert_eq!(pod.ips, vec![ip("198.18.1.10"), ip("fd00:198:18:1::10")]);
    assert_eq!(pod.phase, Phase::Running);
    assert_eq!(pod.node.as_deref(), Some("node-1"));
    assert_eq!(pod.ports.len(), 2);
    assert_eq!(s.namespaces[0].labels["team"], "web");
    assert_eq!(
        s.namespaces[0].labels["kubernetes.io/metadata.name"],
        "shop"
    );
    assert_eq!(
        s.policies[0].spec.policy_types.as_deref(),
        Some(&["Ingress".to_string(), "Egress".to_string()][..])
    );
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_accepted() {
    let text = "\u{feff}apiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: a}\r\n---\r\napiVersion: v1\r\nkind: Namespace\r\nmetadata: {name: b}\r\n";
    let (_dir, result) = load_one("windows.yaml", text);
    assert_eq!(names(&result.unwrap()).0, vec!["a", "b"]);
    let json = "\u{feff}{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"c\"}}";
    let (_dir, result) = load_one("bom.json", json);
    assert_eq!(names(&result.unwrap()).0, vec!["c"]);
}

#[test]
fn json_files_hold_one_object_or_several() {
    let one = r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}"#;
    let several = r#"
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "b"},
         "status": {"podIP": "198.18.2.3"}}
    "#;
    let dir = dir_with(&[("one.json", one), ("several.json", several)]);
    let s = load(&[dir.path().join("one.json"), dir.path().join("several.json")]).unwrap();
    assert_eq!(
        names(&s),
        (vec!["a".into(), "b".into()], vec!["b/p".into()], vec![])
    );
    assert_eq!(s.pods[0].ips, vec![ip("198.18.2.3")]);
}

/// As `kubectl get pods,namespaces,networkpolicies -A -o yaml` prints it.
const KUBECTL_LIST: &str = r#"apiVersion: v1
items:
- apiVersion: v1
  kind: Pod
  metadata:
    labels: {app: db}
    name: db-0
    namespace: data
  spec:
    containers:
    - image: postgres
      name: db
      ports:
      - containerPort: 5432
        name: pg
        protocol: TCP
    nodeName: node-2
  status:
    phase: Running
    podIP: 198.18.2.5
    podIPs:
    - ip: 198.18.2.5
- apiVersion: v1
  kind: Namespace
  metadata:
    labels:
      kubernetes.io/metadata.name: data
    name: data
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: db-ingress
    namespace: data
  spec:
    podSelector:
      matchLabels: {app: db}
kind: List
metadata:
  resourceVersion: ""
"#;

#[test]
fn a_kubectl_list_loads_every_item() {
    let (_dir, result) = load_one("list.yaml", KUBECTL_LIST);
    let s = result.unwrap();
    assert_eq!(
        names(&s),
        (
            vec!["data".into()],
            vec!["data/db-0".into()],
            vec!["data/db-ingress".into()]
        )
    );
    assert_eq!(s.pods[0].ports[0].name.as_deref(), Some("pg"));
    assert_eq!(s.pods[0].ports[0].port, 5432);
}

#[test]
fn a_typed_list_supplies_kind_and_api_version_to_its_items() {
    let text = r#"{"apiVersion": "v1", "kind": "PodList", "items": [
        {"metadata": {"name": "a", "namespace": "x"}, "status": {"podIP": "198.18.1.2"}},
        {"metadata": {"name": "b", "namespace": "x"}}
    ]}"#;
    let (_dir, result) = load_one("pods.json", text);
    let s = result.unwrap();
    assert_eq!(names(&s).1, vec!["x/a".to_string(), "x/b".to_string()]);
}

#[test]
fn the_snapshot_is_sorted_whatever_the_input_order() {
    let a = "apiVersion: v1\nkind: Namespace\nmetadata: {name: zeta}\n";
    let b = "apiVersion: v1\nkind: Namespace\nmetadata: {name: alpha}\n";
    let dir = dir_with(&[("1.yaml", a), ("2.yaml", b)]);
    let forward = load(&[dir.path().join("1.yaml"), dir.path().join("2.yaml")]).unwrap();
    let backward = load(&[dir.path().join("2.yaml"), dir.path().join("1.yaml")]).unwrap();
    assert_eq!(forward, backward);
    assert_eq!(names(&forward).0, vec!["alpha".to_string(), "zeta".into()]);
}

#[test]
fn a_directory_contributes_its_manifest_files_but_not_subdirectories() {
    let ns = |n: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n");
    let dir = dir_with(&[
        ("a.yaml", &ns("from-yaml")),
        ("b.yml", &ns("from-yml")),
        (
            "c.json",
            r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "from-json"}}"#,
        ),
        ("notes.txt", "this is not: [valid yaml"),
        ("sub/deeper.yaml", &ns("from-subdir")),
    ]);
    let s = load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(
        names(&s).0,
        vec![
            "from-json".to_string(),
            "from-yaml".into(),
            "from-yml".into()
        ]
    );
}

#[test]
fn empty_files_and_documents_give_an_empty_snapshot() {
    let dir = dir_with(&[
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing\n---\n# still nothing\n---\n"),
        ("empty.json", "  \n"),
        ("empty-list.yaml", "apiVersion: v1\nkind: List\nitems: []\n"),
    ]);
    assert_eq!(
        load(&[dir.path().to_path_buf()]).unwrap(),
        Snapshot::default()
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let path = PathBuf::from("/nonexistent/flock-netpol/cluster.yaml");
    let err = load(std::slice::from_ref(&path)).unwrap_err();
    assert!(matches!(err, ManifestError::Io { .. }));
    assert!(err
        .to_string()
        .starts_with(&format!("{}: ", path.display())));
}

#[test]
fn invalid_yaml_names_the_document_and_the_absolute_line() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n   namespace: x\n";
    let message = error_of("bad.yaml", text, &["document 2", "(line 4)", "line 9"]);
    assert!(message.contains("invalid YAML"), "{message}");
}

#[test]
fn invalid_json_names_the_document() {
    let text = "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"x\"}}\n{\"kind\": ";
    error_of("bad.json", text, &["document 2", "invalid JSON", "line 2"]);
}

#[test]
fn a_field_of_the_wrong_type_names_the_object_and_the_field_path() {
    let text = MULTI_DOC.replace(
        "{name: http, containerPort: 80}",
        "{name: http, containerPort: \"abc\"}",
    );
    error_of(
        "bad.yaml",
        &text,
        &[
            "document 4 (line 15)",
            "Pod shop/web-1",
            "spec.containers[0].ports[0].containerPort",
            "\"abc\"",
        ],
    );
}

#[test]
fn a_bad_item_of_a_list_names_the_item_and_the_field() {
    let text = KUBECTL_LIST.replace("    - ip: 198.18.2.5", "    - ip: 198.18.2");
    error_of(
        "list.yaml",
        &text,
        &[
            "document 1 (line 1), items[0]",
            "Pod data/db-0",
            "status.podIPs[0].ip",
            "\"198.18.2\" is not an IP address",
        ],
    );
}

#[test]
fn a_bad_pod_ip_names_the_document_and_the_field() {
    let text = MULTI_DOC.replace("{ip: \"fd00:198:18:1::10\"}", "{ip: \"fd00::198::1\"}");
    error_of(
        "bad.yaml",
        &text,
        &[
            "document 4",
            "Pod shop/web-1",
            "status.podIPs[1].ip",
            "not an IP address",
        ],
    );
}

#[test]
fn a_container_port_out_of_range_names_the_field() {
    let text = MULTI_DOC.replace("containerPort: 53", "containerPort: 70000");
    error_of(
        "bad.yaml",
        &text,
        &[
            "document 4",
            "spec.containers[0].ports[1].containerPort",
            "70000",
        ],
    );
}

#[test]
fn a_document_without_kind_is_an_error() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nmetadata: {name: yy}\n";
    error_of(
        "bad.yaml",
        text,
        &["document 2 (line 4)", "object \"yy\": kind: missing"],
    );
    let text = r#"{"apiVersion": "v1", "kind": "List", "items": [{"metadata": {"name": "y"}}]}"#;
    error_of(
        "bad.json",
        text,
        &["document 1", "items[0]", "kind: missing"],
    );
}

/// YAML 1.1 reads an unquoted `on` as a boolean, as kubectl does; a label
/// value must be a string, so this is an error naming the label.
#[test]
fn an_unquoted_yaml_boolean_where_a_string_belongs_names_the_field() {
    let text =
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels: {monitoring: on}\n";
    error_of(
        "bad.yaml",
        text,
        &[
            "document 1",
            "Namespace x",
            "metadata.labels.monitoring",
            "boolean",
        ],
    );
}

#[test]
fn a_document_that_is_not_an_object_is_an_error() {
    error_of(
        "bad.yaml",
        "- just\n- a list\n",
        &["document 1", "expected an object"],
    );
}

#[test]
fn unknown_kinds_and_other_api_groups_are_skipped() {
    let text = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: "not even checked"}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: calico, namespace: shop}
spec: {selector: "all()"}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"#;
    let (_dir, result) = load_one("mixed.yaml", text);
    let s = result.unwrap();
    assert_eq!(names(&s), (vec!["shop".into()], vec![], vec![]));
}

#[test]
fn a_known_kind_with_an_unreadable_api_version_is_an_error() {
    let text = "apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: old, namespace: x}\nspec: {}\n";
    error_of(
        "old.yaml",
        text,
        &[
            "document 1",
            "NetworkPolicy x/old",
            "apiVersion",
            "networking.k8s.io/v1",
        ],
    );
    let text = "kind: Pod\nmetadata: {name: a}\n";
    error_of(
        "noversion.yaml",
        text,
        &["document 1", "Pod default/a", "apiVersion: missing"],
    );
}

#[test]
fn a_malformed_policy_field_names_the_policy_and_the_field() {
    let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from: {podSelector: {}}\n";
    error_of(
        "bad.yaml",
        text,
        &["document 1", "NetworkPolicy x/p", "spec.ingress[0].from"],
    );
}

/// Keep the path helper honest: a file given directly loads whatever its
/// extension.
#[test]
fn a_file_given_directly_is_read_whatever_its_extension() {
    let dir = dir_with(&[(
        "cluster.txt",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n",
    )]);
    let path: &Path = &dir.path().join("cluster.txt");
    let s = load(&[path.to_path_buf()]).unwrap();
    assert_eq!(names(&s).0, vec!["t".to_string()]);
}

/// Every example and fixture cluster: its files load, and every address in
/// them (pod IPs, ipBlocks) lies in the ranges the netns tests may use.
fn shipped_clusters() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("examples/cluster.yaml")];
    for entry in std::fs::read_dir(root.join("tests/fixtures")).unwrap() {
        files.push(entry.unwrap().path());
    }
    files.sort();
    files
}

fn in_test_ranges(net: ipnetwork::IpNetwork) -> bool {
    let v4: ipnetwork::IpNetwork = "198.18.0.0/15".parse().unwrap();
    let v6: ipnetwork::IpNetwork = "fd00:198:18::/48".parse().unwrap();
    [v4, v6]
        .iter()
        .any(|r| r.prefix() <= net.prefix() && r.contains(net.network()))
}

#[test]
fn the_example_and_fixture_clusters_load_and_stay_in_the_test_ranges() {
    let files = shipped_clusters();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let s = load(std::slice::from_ref(&file)).unwrap_or_else(|e| panic!("{e}"));
        for pod in &s.pods {
            for ip in &pod.ips {
                assert!(
                    in_test_ranges((*ip).into()),
                    "{}: {} has {ip}",
                    file.display(),
                    pod.key()
                );
            }
            if let Some(node) = &pod.node {
                assert!(node == "node-1" || node == "node-2", "{}", pod.key());
            }
        }
        let rules = s.policies.iter().flat_map(|p| {
            let ingress = p
                .spec
                .ingress
                .iter()
                .flatten()
                .flat_map(|r| r.from.iter().flatten());
            let egress = p
                .spec
                .egress
                .iter()
                .flatten()
                .flat_map(|r| r.to.iter().flatten());
            ingress.chain(egress).map(move |peer| (p.key(), peer))
        });
        for (policy, peer) in rules {
            let Some(block) = &peer.ip_block else {
                continue;
            };
            let cidrs = std::iter::once(&block.cidr).chain(block.except.iter().flatten());
            // Unparsable CIDRs belong to the invalid-policy fixture, on purpose.
            for net in cidrs.filter_map(|c| c.parse::<ipnetwork::IpNetwork>().ok()) {
                assert!(in_test_ranges(net), "{}: {policy}: {net}", file.display());
            }
        }
    }
}

#[test]
fn the_example_cluster_has_3_namespaces_13_pods_on_two_nodes_and_8_policies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = load(&[root.join("examples/cluster.yaml")]).unwrap();
    assert_eq!(names(&s).0, vec!["infra", "payments", "shop"]);
    assert_eq!(s.pods.len(), 13);
    assert_eq!(s.policies.len(), 8);
    for node in ["node-1", "node-2"] {
        let on_node = s.pods.iter().filter(|p| p.node.as_deref() == Some(node));
        assert!(on_node.count() >= 6, "{node}");
    }
    // Dual-stack pods, and the demo's servers on 80 and 81 are declared.
    let web = s.pods.iter().find(|p| p.key() == "shop/web-1").unwrap();
    assert_eq!(web.ips, vec![ip("198.18.1.10"), ip("fd00:198:18:1::10")]);
    for (port, proto) in [(80, "TCP"), (80, "UDP"), (81, "TCP"), (81, "UDP")] {
        assert!(
            web.ports
                .iter()
                .any(|p| p.port == port && p.protocol == proto),
            "{port}/{proto}"
        );
    }
    let finished = s.pods.iter().filter(|p| p.phase == Phase::Succeeded);
    assert_eq!(finished.count(), 1);
}
