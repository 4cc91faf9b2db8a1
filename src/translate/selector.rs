//! Label selectors: `matchLabels` + `matchExpressions` (In, NotIn, Exists,
//! DoesNotExist), validated the way the API server validates them, compiled
//! once and evaluated against label sets.
//!
//! Must not: know about pods, namespaces or policies (it sees label maps only).

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::validate::{FieldErrors, Path};
use crate::snapshot::Labels;

/// One compiled requirement; all of a selector's requirements must hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    /// `matchLabels: {key: value}`.
    Equals(String, String),
    /// The key is present with one of the values.
    In(String, BTreeSet<String>),
    /// The key is absent, or present with none of the values.
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// What a selector needs present, usable to look candidates up in an index:
/// an object can only match if it has `key` with one of `values` (or with any
/// value when `values` is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor<'a> {
    Values(&'a str, &'a BTreeSet<String>),
    Value(&'a str, &'a str),
    Key(&'a str),
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: the
/// name part of a label key, and a non-empty label value.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

/// A DNS-1123 subdomain (the optional prefix of a label key).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A label key is a qualified name: `[prefix/]name`. `path` is only
/// formatted when there is an error to report.
fn check_key(k: &str, path: impl FnOnce() -> String, errs: &mut FieldErrors) {
    let ok = match k.split_once('/') {
        None => is_label_name(k),
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
    };
    if !ok {
        errs.push(path(), format!("{k:?} is not a valid label key"));
    }
}

/// A label value is empty or a name of at most 63 characters.
fn check_value(v: &str, path: impl FnOnce() -> String, errs: &mut FieldErrors) {
    if !v.is_empty() && !is_label_name(v) {
        errs.push(path(), format!("{v:?} is not a valid label value"));
    }
}

/// A compiled label selector. The empty selector matches everything.
/// Its requirements are sorted and unique, so selectors that mean the same
/// by the same requirements compare equal (the cluster index memoizes by
/// selector).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selector {
    reqs: Vec<Requirement>,
}

impl Selector {
    /// The selector `{}`.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Validate and compile `sel`; `path` is its field path (e.g.
    /// `spec.podSelector`). Returns `None` (and records why) when the API
    /// server would reject it.
    pub fn compile(
        sel: &LabelSelector,
        path: &dyn std::fmt::Display,
        errs: &mut FieldErrors,
    ) -> Option<Selector> {
        let before = errs.len();
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            check_key(k, || format!("{path}.matchLabels"), errs);
            check_value(v, || format!("{path}.matchLabels[{k}]"), errs);
            reqs.push(Requirement::Equals(k.clone(), v.clone()));
        }
        for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
            let p = Path::item(path, "matchExpressions", i);
            check_key(&e.key, || format!("{p}.key"), errs);
            for (j, v) in e.values.iter().flatten().enumerate() {
                check_value(v, || format!("{p}.values[{j}]"), errs);
            }
            let values: BTreeSet<String> = e.values.iter().flatten().cloned().collect();
            let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
            match e.operator.as_str() {
                "In" | "NotIn" if !has_values => errs.push(
                    format!("{p}.values"),
                    format!("operator {} needs at least one value", e.operator),
                ),
                "In" => reqs.push(Requirement::In(e.key.clone(), values)),
                "NotIn" => reqs.push(Requirement::NotIn(e.key.clone(), values)),
                "Exists" | "DoesNotExist" if has_values => errs.push(
                    format!("{p}.values"),
                    format!("operator {} takes no values", e.operator),
                ),
                "Exists" => reqs.push(Requirement::Exists(e.key.clone())),
                "DoesNotExist" => reqs.push(Requirement::DoesNotExist(e.key.clone())),
                other => errs.push(
                    format!("{p}.operator"),
                    format!("unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"),
                ),
            }
        }
        reqs.sort();
        reqs.dedup();
        (errs.len() == before).then_some(Selector { reqs })
    }

    pub fn is_everything(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.reqs.iter().all(|r| r.matches(labels))
    }

    /// The requirements usable as index look-ups (positive ones).
    pub fn anchors(&self) -> impl Iterator<Item = Anchor<'_>> {
        self.reqs.iter().filter_map(|r| match r {
            Requirement::Equals(k, v) => Some(Anchor::Value(k, v)),
            Requirement::In(k, vs) => Some(Anchor::Values(k, vs)),
            Requirement::Exists(k) => Some(Anchor::Key(k)),
            Requirement::NotIn(..) | Requirement::DoesNotExist(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: serde_json::Value) -> Result<Selector, FieldErrors> {
        let ls: LabelSelector = serde_json::from_value(v).unwrap();
        let mut errs = FieldErrors::default();
        Selector::compile(&ls, &"s", &mut errs).ok_or(errs)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = sel(json!({})).unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let s = sel(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        let base = [("app", "web"), ("tier", "b"), ("team", "x")];
        assert!(s.matches(&labels(&base)));
        // NotIn matches an absent key, and rejects a listed value.
        let mut l = labels(&base);
        l.insert("env".into(), "dev".into());
        assert!(s.matches(&l));
        l.insert("env".into(), "prod".into());
        assert!(!s.matches(&l));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("team", "x")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        let mut l = labels(&base);
        l.insert("legacy".into(), "".into());
        assert!(!s.matches(&l));
        assert!(!s.matches(&labels(&[("app", "db"), ("tier", "a"), ("team", "x")])));
    }

    #[test]
    fn label_keys_and_values_must_be_valid() {
        assert!(sel(json!({"matchLabels": {"example.com/app-1": "a.b_c", "k": ""}})).is_ok());
        let field = |v| sel(v).unwrap_err().0[0].0.clone();
        assert_eq!(field(json!({"matchLabels": {"": "x"}})), "s.matchLabels");
        assert_eq!(
            field(json!({"matchLabels": {"Bad_/x": "x"}})),
            "s.matchLabels"
        );
        assert_eq!(
            field(json!({"matchLabels": {"k": "-x"}})),
            "s.matchLabels[k]"
        );
        assert_eq!(
            field(json!({"matchExpressions": [{"key": "a b", "operator": "Exists"}]})),
            "s.matchExpressions[0].key"
        );
        assert_eq!(
            field(
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "x".repeat(64)]}]})
            ),
            "s.matchExpressions[0].values[1]"
        );
    }

    #[test]
    fn invalid_operators_and_values_are_rejected_with_their_field() {
        let e = sel(json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}))
            .unwrap_err();
        assert_eq!(e.0[0].0, "s.matchExpressions[0].operator");
        let e = sel(json!({"matchExpressions": [
            {"key": "a", "operator": "Exists"},
            {"key": "a", "operator": "In", "values": []}
        ]}))
        .unwrap_err();
        assert_eq!(e.0[0].0, "s.matchExpressions[1].values");
        let e = sel(json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}))
            .unwrap_err();
        assert_eq!(e.0[0].0, "s.matchExpressions[0].values");
    }
}
