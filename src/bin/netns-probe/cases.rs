//! Case files (tests/netns/cases/*.yaml) and the cluster state they evolve.
//!
//! A case starts from the base model (`model`), then each step applies whole
//! objects (created or replaced), merge-patches existing ones (relabel a pod
//! or a namespace, mark a pod Succeeded), deletes objects, and lists a few
//! cells whose outcome the author worked out by hand. The full expected
//! matrix comes from the library's reference evaluator; the hand cells guard
//! against a wrong evaluator.
//!
//! Must not: probe, run the agent or compute expectations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::matrix::Proto;
use crate::plan::Family;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// One line: what the case proves.
    pub about: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// Whole objects; an object with the same kind, namespace and name is
    /// replaced.
    #[serde(default)]
    pub apply: Vec<Value>,
    /// JSON merge patches (RFC 7386) of existing objects.
    #[serde(default)]
    pub patch: Vec<Patch>,
    #[serde(default)]
    pub delete: Vec<ObjectRef>,
    /// Flush the neighbour caches of every namespace before probing (IPv6
    /// neighbour discovery must work under any policy).
    #[serde(default)]
    pub flush_neighbours: bool,
    /// Cells worked out by hand.
    pub expect: Vec<HandCell>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    pub merge: Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandCell {
    /// `namespace/pod`.
    pub from: String,
    pub to: String,
    pub port: u16,
    #[serde(default = "tcp")]
    pub proto: String,
    /// `v4` or `v6`; absent = both.
    #[serde(default)]
    pub family: Option<String>,
    pub allowed: bool,
}

fn tcp() -> String {
    "tcp".into()
}

impl HandCell {
    pub fn proto(&self) -> Result<Proto> {
        match self.proto.as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => bail!("proto {other:?}: want tcp or udp"),
        }
    }

    pub fn families(&self) -> Result<Vec<Family>> {
        match self.family.as_deref() {
            None => Ok(Family::ALL.to_vec()),
            Some("v4") => Ok(vec![Family::V4]),
            Some("v6") => Ok(vec![Family::V6]),
            Some(other) => bail!("family {other:?}: want v4 or v6"),
        }
    }
}

/// A loaded case.
pub struct Case {
    pub name: String,
    pub file: CaseFile,
}

/// Every `*.yaml` of `dir` (sorted), or the one file given; `filter` keeps
/// the cases whose name contains it.
pub fn load_all(paths: &[PathBuf], filter: Option<&str>) -> Result<Vec<Case>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in std::fs::read_dir(p).with_context(|| format!("read {}", p.display()))? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    files.push(path);
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        out.push(load(&path, name)?);
    }
    Ok(out)
}

fn load(path: &Path, name: String) -> Result<Case> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    // YAML 1.2 booleans only: `ns: y` stays the string "y".
    let options = serde_saphyr::options! { strict_booleans: true };
    let file: CaseFile = serde_saphyr::from_str_with_options(&text, options)
        .with_context(|| format!("case {}", path.display()))?;
    if file.steps.is_empty() {
        bail!("case {}: no steps", path.display());
    }
    for (i, step) in file.steps.iter().enumerate() {
        if step.expect.is_empty() {
            bail!(
                "case {} step {} ({}): no hand-written `expect` cells",
                path.display(),
                i + 1,
                step.name
            );
        }
        for cell in &step.expect {
            cell.proto()
                .and(cell.families())
                .with_context(|| format!("case {} step {}", path.display(), i + 1))?;
        }
    }
    Ok(Case { name, file })
}

/// The cluster objects by (kind, namespace, name).
#[derive(Debug, Clone, Default)]
pub struct State {
    objects: BTreeMap<ObjectRef, Value>,
}

impl State {
    pub fn from_objects(objects: Vec<Value>) -> Result<State> {
        let mut s = State::default();
        for o in objects {
            s.put(o)?;
        }
        Ok(s)
    }

    fn put(&mut self, mut obj: Value) -> Result<()> {
        let kind = obj["kind"]
            .as_str()
            .context("an object without kind")?
            .to_string();
        let api = match kind.as_str() {
            "Namespace" | "Pod" => "v1",
            "NetworkPolicy" => "networking.k8s.io/v1",
            other => bail!("kind {other}: the suite only knows Namespace, Pod and NetworkPolicy"),
        };
        if obj.get("apiVersion").is_none() {
            obj["apiVersion"] = Value::from(api);
        }
        let key = object_ref(&obj)?;
        check_strings(&obj, "").with_context(|| format!("{key:?}"))?;
        self.objects.insert(key, obj);
        Ok(())
    }

    /// Apply one step's changes, in the order apply, patch, delete.
    pub fn step(&mut self, step: &Step) -> Result<()> {
        for obj in &step.apply {
            self.put(obj.clone())?;
        }
        for p in &step.patch {
            let key = ObjectRef {
                kind: p.kind.clone(),
                namespace: p.namespace.clone(),
                name: p.name.clone(),
            };
            let obj = self
                .objects
                .get_mut(&key)
                .with_context(|| format!("patch: no object {key:?}"))?;
            merge_patch(obj, &p.merge);
            check_strings(obj, "").with_context(|| format!("patch of {key:?}"))?;
        }
        for d in &step.delete {
            self.objects
                .remove(d)
                .with_context(|| format!("delete: no object {d:?}"))?;
        }
        Ok(())
    }

    /// Multi-document YAML (one JSON document each), namespaces first.
    pub fn manifest_text(&self) -> String {
        let mut out = String::new();
        for kind in ["Namespace", "Pod", "NetworkPolicy"] {
            for (k, v) in &self.objects {
                if k.kind == kind {
                    out.push_str("---\n");
                    out.push_str(&v.to_string());
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Replace `dir/cluster.yaml` atomically (write beside the directory,
    /// then rename into it), so a watching agent never reads half a file.
    pub fn write_manifests(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let tmp = dir.with_extension("tmp");
        std::fs::write(&tmp, self.manifest_text())
            .with_context(|| format!("write {}", tmp.display()))?;
        let dst = dir.join("cluster.yaml");
        std::fs::rename(&tmp, &dst).with_context(|| format!("rename to {}", dst.display()))
    }
}

fn object_ref(obj: &Value) -> Result<ObjectRef> {
    let kind = obj["kind"]
        .as_str()
        .context("an object without kind")?
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .with_context(|| format!("a {kind} without metadata.name"))?;
    let namespace = obj["metadata"]["namespace"].as_str().map(String::from);
    if kind != "Namespace" && namespace.is_none() {
        bail!("{kind} {name}: metadata.namespace is required in case files");
    }
    Ok(ObjectRef {
        kind,
        namespace,
        name: name.to_string(),
    })
}

/// Label values, selector values and names must be strings: YAML 1.1 reads
/// an unquoted `y`, `n`, `yes` or `on` as a boolean, so a case that writes
/// `ns: y` would silently mean something else. Quote such values.
fn check_strings(v: &Value, key: &str) -> Result<()> {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if matches!(key, "labels" | "matchLabels") && !child.is_string() {
                    bail!("{key}.{k} is {child}, not a string (quote it in the case file)");
                }
                check_strings(child, k)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                if key == "values" && !item.is_string() {
                    bail!("matchExpressions values: {item} is not a string (quote it)");
                }
                check_strings(item, key)?;
            }
        }
        Value::Bool(_) if matches!(key, "name" | "namespace" | "key" | "operator" | "port") => {
            bail!("{key} is {v}, not a string (quote it in the case file)");
        }
        _ => {}
    }
    Ok(())
}

/// RFC 7386: objects merge key by key, `null` deletes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_relabels_and_removes_keys() {
        let mut pod = json!({"metadata": {"labels": {"pod": "a", "old": "x"}}, "spec": {"n": 1}});
        merge_patch(
            &mut pod,
            &json!({"metadata": {"labels": {"pod": "b", "old": null, "new": "y"}}}),
        );
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"pod": "b", "new": "y"}}, "spec": {"n": 1}})
        );
    }

    #[test]
    fn a_step_applies_patches_and_deletes_in_order() {
        let mut s = State::from_objects(crate::model::base_objects()).unwrap();
        let step: Step = serde_saphyr::from_str(
            "name: s\napply:\n- {kind: NetworkPolicy, metadata: {namespace: x, name: p}, spec: {podSelector: {}}}\n\
             patch:\n- {kind: Namespace, name: y, merge: {metadata: {labels: {team: blue}}}}\n\
             delete:\n- {kind: Pod, namespace: z, name: c}\n\
             expect:\n- {from: x/a, to: x/b, port: 80, allowed: false}\n",
        )
        .unwrap();
        s.step(&step).unwrap();
        let text = s.manifest_text();
        assert!(
            text.contains(r#""apiVersion":"networking.k8s.io/v1""#),
            "{text}"
        );
        assert!(text.contains(r#""team":"blue""#), "{text}");
        assert!(!text.contains(r#""name":"c","namespace":"z""#), "{text}");
        assert_eq!(text.matches("---").count(), 3 + 8 + 1);
        let bad: Step = serde_saphyr::from_str(
            "name: s\ndelete: [{kind: Pod, namespace: q, name: r}]\nexpect: []\n",
        )
        .unwrap();
        assert!(s.step(&bad).is_err());
    }

    #[test]
    fn every_case_file_parses_and_replays() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/netns/cases");
        let cases = load_all(&[dir], None).unwrap();
        assert!(cases.len() >= 40, "only {} cases", cases.len());
        for case in cases {
            let mut s = State::from_objects(crate::model::base_objects()).unwrap();
            for step in &case.file.steps {
                s.step(step)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
            }
        }
    }
}
