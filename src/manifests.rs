//! Manifests: YAML/JSON files -> `Snapshot` (offline mode, tests, audits).
//!
//! # What is read
//!
//! - Each path is a file or a directory. A directory contributes its
//!   `*.yaml`, `*.yml` and `*.json` files (not its subdirectories: like
//!   `kubectl apply -f DIR` without `-R`), in name order.
//! - A `.json` file is a stream of JSON documents (one object, or several one
//!   after the other); any other file is YAML, with documents separated by
//!   `---` lines. Empty documents are skipped.
//! - A document is one object, or a list as `kubectl get ... -o yaml|json`
//!   prints it: `kind: List` (every item names its kind) or `kind: <Kind>List`
//!   (items may omit kind and apiVersion, as in API server responses).
//! - Kinds read: `v1` Namespace and Pod, `networking.k8s.io/v1` NetworkPolicy.
//!   Other kinds (Services, Deployments, Calico's NetworkPolicy, ...) are
//!   skipped with a debug log. A Pod, Namespace or NetworkPolicy of an API
//!   version we cannot read (or with none) is an error, not skipped: ignoring
//!   a policy would silently open the pods it selects.
//!
//! # Errors
//!
//! Every error names the file, the document (numbered from 1 in file order;
//! a leading section holding only comments is not a document), for YAML the
//! line it starts on, the list item (`items[3]`) when there is one, the object
//! when it has a kind and a name, and the field path
//! (`spec.containers[0].ports[0].containerPort`).
//!
//! Must not: talk to an API server, or decide anything about policy
//! semantics (the translator validates policies).

use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::networking::v1 as net;
use serde_json::{Map, Value};

use crate::convert::{self, ConvertError};
use crate::snapshot::Snapshot;

/// Where in the input a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    /// Document number in the file, from 1.
    pub document: usize,
    /// Line (from 1) the document starts on, when known.
    pub line: Option<usize>,
    /// Index in the list's `items`, when the document is a list.
    pub item: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file.display(), self.document)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        Ok(())
    }
}

/// A manifest that cannot be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A path that cannot be read (missing, unreadable, not UTF-8).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A document that is not valid YAML or JSON.
    #[error("{place}: {message}")]
    Syntax { place: Box<Place>, message: String },
    /// A document of the wrong shape: a missing kind, a field of the wrong
    /// type. `object` is `Pod ns/name` when known, else what is known.
    #[error("{place}: {object}: {field}: {message}")]
    Field {
        place: Box<Place>,
        object: String,
        field: String,
        message: String,
    },
    /// A well-formed object with a value we cannot use (a bad pod IP, a
    /// container port out of range).
    #[error("{place}: {source}")]
    Convert {
        place: Box<Place>,
        source: ConvertError,
    },
}

/// Load every file (or every .yaml/.yml/.json file of every directory) into
/// one normalized snapshot.
pub fn load(paths: &[PathBuf]) -> Result<Snapshot, ManifestError> {
    let mut snapshot = Snapshot::default();
    for path in paths {
        for file in files(path)? {
            load_file(&file, &mut snapshot)?;
        }
    }
    snapshot.normalize();
    Ok(snapshot)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file itself, or a directory's manifest files in name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_error(path))? {
        let file = entry.map_err(io_error(path))?.path();
        let is_manifest = matches!(
            file.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        if is_manifest && !file.is_dir() {
            out.push(file);
        } else {
            tracing::debug!(path = %file.display(), "not a manifest file, skipped");
        }
    }
    out.sort();
    Ok(out)
}

/// One document of a file, not yet interpreted.
struct Document {
    number: usize,
    line: Option<usize>,
    value: Value,
}

fn load_file(file: &Path, snapshot: &mut Snapshot) -> Result<(), ManifestError> {
    let text = std::fs::read_to_string(file).map_err(io_error(file))?;
    // Editors on some systems start files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let is_json = file.extension().and_then(|e| e.to_str()) == Some("json");
    let documents = if is_json {
        json_documents(file, text)?
    } else {
        yaml_documents(file, text)?
    };
    for doc in documents {
        let place = Place {
            file: file.to_path_buf(),
            document: doc.number,
            line: doc.line,
            item: None,
        };
        document(place, doc.value, snapshot)?;
    }
    Ok(())
}

/// A stream of JSON values.
fn json_documents(file: &Path, text: &str) -> Result<Vec<Document>, ManifestError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let number = out.len() + 1;
        match stream.next() {
            None => return Ok(out),
            Some(Ok(value)) => {
                let begin = start + leading_whitespace(&text[start..]);
                out.push(Document {
                    number,
                    line: Some(line_of(text, begin)),
                    value,
                });
            }
            Some(Err(e)) => {
                return Err(ManifestError::Syntax {
                    place: Box::new(Place {
                        file: file.to_path_buf(),
                        document: number,
                        line: None,
                        item: None,
                    }),
                    message: format!("invalid JSON: {e}"),
                })
            }
        }
    }
}

fn leading_whitespace(s: &str) -> usize {
    s.len() - s.trim_start().len()
}

/// 1-based line number of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].bytes().filter(|b| *b == b'\n').count() + 1
}

/// A YAML section between `---` markers: its text and first line.
struct Section<'a> {
    text: &'a str,
    /// Line (from 1) of its `---` marker or, for the first section, of its
    /// first line.
    line: usize,
}

/// Split a YAML stream at its `---` document markers. A line starting with
/// `---` followed by a blank or the end of the line is always a marker (YAML
/// forbids it inside any scalar), so this split is exact; each section
/// keeps its marker line, which may carry the start of the document.
fn sections(text: &str) -> Vec<Section<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let rest = line.strip_prefix("---");
        let is_marker =
            rest.is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r', '\n']));
        if is_marker && offset > 0 {
            out.push(Section {
                text: &text[start..offset],
                line: start_line,
            });
            start = offset;
            start_line = i + 1;
        }
        offset += line.len();
    }
    out.push(Section {
        text: &text[start..],
        line: start_line,
    });
    out
}

/// Whether a section holds nothing but blank lines, comments and a marker.
fn is_blank(section: &str) -> bool {
    section.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// The documents of a YAML stream, numbered by section.
fn yaml_documents(file: &Path, text: &str) -> Result<Vec<Document>, ManifestError> {
    let mut out = Vec::new();
    let mut number = 0;
    for (i, section) in sections(text).into_iter().enumerate() {
        if i == 0 && is_blank(section.text) {
            // Comments before the first `---` are not a document.
            continue;
        }
        number += 1;
        let values: Vec<Value> = serde_saphyr::from_multiple(section.text).map_err(|e| {
            let options = serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
                line_offset: (section.line - 1) as u64,
            };
            ManifestError::Syntax {
                place: Box::new(Place {
                    file: file.to_path_buf(),
                    document: number,
                    line: Some(section.line),
                    item: None,
                }),
                message: format!("invalid YAML: {}", e.render_with_options(options)),
            }
        })?;
        // More than one only after a `...` end marker: same section number.
        out.extend(values.into_iter().map(|value| Document {
            number,
            line: Some(section.line),
            value,
        }));
    }
    Ok(out)
}

/// The kinds we read, by (apiVersion, kind).
const POD: (&str, &str) = ("v1", "Pod");
const NAMESPACE: (&str, &str) = ("v1", "Namespace");
const POLICY: (&str, &str) = ("networking.k8s.io/v1", "NetworkPolicy");

/// Interpret one document: an object, a list, or nothing.
fn document(place: Place, value: Value, snapshot: &mut Snapshot) -> Result<(), ManifestError> {
    let mut map = match value {
        Value::Null => return Ok(()),
        Value::Object(map) => map,
        other => return Err(not_an_object(place, "", &other)),
    };
    let kind = string_field(&place, &map, "kind")?;
    let is_list = kind == "List" || (kind.ends_with("List") && map.contains_key("items"));
    if !is_list {
        return object(place, map, snapshot);
    }
    let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    let items = match map.remove("items") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(not_an_object(place, "items", &other)),
    };
    for (i, item) in items.into_iter().enumerate() {
        let place = Place {
            item: Some(i),
            ..place.clone()
        };
        let mut item = match item {
            Value::Object(item) => item,
            other => return Err(not_an_object(place, "", &other)),
        };
        // Items of a typed list (PodList) may omit their kind and apiVersion.
        if let Some(k) = item_kind {
            item.entry("kind").or_insert_with(|| k.into());
            if let Some(v) = &api_version {
                item.entry("apiVersion")
                    .or_insert_with(|| v.as_str().into());
            }
        }
        if string_field(&place, &item, "kind")?.ends_with("List") && item.contains_key("items") {
            return Err(field_error(
                place,
                "List",
                "kind",
                "a list inside a list is not supported",
            ));
        }
        object(place, item, snapshot)?;
    }
    Ok(())
}

/// Read one object of a kind we know; skip the others.
fn object(
    place: Place,
    map: Map<String, Value>,
    snapshot: &mut Snapshot,
) -> Result<(), ManifestError> {
    let kind = string_field(&place, &map, "kind")?;
    let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = describe(&kind, &map);
    let known = [POD, NAMESPACE, POLICY];
    if !known.iter().any(|(_, k)| *k == kind) {
        tracing::debug!(%place, %kind, api_version, "kind not used, skipped");
        return Ok(());
    }
    let ours = known.contains(&(api_version, kind.as_str()));
    if !ours && !foreign_group(api_version, &kind) {
        let message = match api_version {
            "" => "missing".to_string(),
            v => format!(
                "{v:?} is not supported for {kind} (want {:?})",
                want_version(&kind)
            ),
        };
        return Err(field_error(place, &name, "apiVersion", &message));
    }
    if !ours {
        tracing::debug!(%place, %kind, api_version, "kind of another API group, skipped");
        return Ok(());
    }
    let value = Value::Object(map);
    let convert_error = |place: Place| {
        move |source| ManifestError::Convert {
            place: Box::new(place),
            source,
        }
    };
    match kind.as_str() {
        "Pod" => {
            let pod: core::Pod = typed(&place, &name, value)?;
            let pod = convert::pod(&pod).map_err(convert_error(place))?;
            snapshot.pods.push(pod);
        }
        "Namespace" => {
            let ns: core::Namespace = typed(&place, &name, value)?;
            let ns = convert::namespace(&ns).map_err(convert_error(place))?;
            snapshot.namespaces.push(ns);
        }
        _ => {
            let policy: net::NetworkPolicy = typed(&place, &name, value)?;
            let policy = convert::policy(&policy).map_err(convert_error(place))?;
            snapshot.policies.push(policy);
        }
    }
    Ok(())
}

fn want_version(kind: &str) -> &'static str {
    if kind == POLICY.1 {
        POLICY.0
    } else {
        POD.0
    }
}

/// Whether `api_version` belongs to an API group other than the one our kind
/// of that name lives in (e.g. Calico's `projectcalico.org/v3`
/// NetworkPolicy): such objects are someone else's and are skipped.
fn foreign_group(api_version: &str, kind: &str) -> bool {
    match api_version.split_once('/') {
        // No group: the core group (or no apiVersion at all), ours.
        None => false,
        Some((group, _)) => {
            !(kind == POLICY.1 && matches!(group, "networking.k8s.io" | "extensions"))
        }
    }
}

/// Deserialize a k8s-openapi type, reporting the failing field's path.
fn typed<T: serde::de::DeserializeOwned>(
    place: &Place,
    object: &str,
    value: Value,
) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        field_error(place.clone(), object, &field, &e.into_inner().to_string())
    })
}

/// `Pod ns/name`, `Namespace name`, or the kind alone, for messages.
fn describe(kind: &str, map: &Map<String, Value>) -> String {
    let meta = map.get("metadata");
    let get = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    match (get("name"), kind) {
        (None, _) => kind.to_string(),
        (Some(name), "Namespace") => format!("{kind} {name}"),
        (Some(name), _) => format!("{kind} {}/{name}", get("namespace").unwrap_or("default")),
    }
}

/// A required string field of a document (`kind`).
fn string_field(
    place: &Place,
    map: &Map<String, Value>,
    field: &str,
) -> Result<String, ManifestError> {
    let object = match map.get("metadata").and_then(|m| m.get("name")) {
        Some(Value::String(name)) => format!("object {name:?}"),
        _ => "object".to_string(),
    };
    match map.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => Err(field_error(place.clone(), &object, field, "missing")),
        Some(other) => Err(field_error(
            place.clone(),
            &object,
            field,
            &format!("expected a string, found {}", json_type(other)),
        )),
    }
}

fn not_an_object(place: Place, field: &str, value: &Value) -> ManifestError {
    let want = if field == "items" {
        "a list"
    } else {
        "an object with apiVersion and kind"
    };
    field_error(
        place,
        "document",
        field,
        &format!("expected {want}, found {}", json_type(value)),
    )
}

fn field_error(place: Place, object: &str, field: &str, message: &str) -> ManifestError {
    ManifestError::Field {
        place: Box::new(place),
        object: object.to_string(),
        field: if field.is_empty() {
            "(top level)".into()
        } else {
            field.into()
        },
        message: message.to_string(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
