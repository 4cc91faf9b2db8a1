//! flock-netpol: Kubernetes NetworkPolicy enforcement for one flock node,
//! programmed into nftables over netlink.
//!
//! # Layout
//!
//! The pipeline has four stages with hard boundaries:
//!
//! ```text
//! informers / manifests ──Snapshot──▶ translate ──RuleSet──▶ render (nft text)
//!                                                    └──────▶ apply (one netlink batch)
//! ```
//!
//! - [`snapshot`]: the owned cluster picture the translator reads.
//! - [`manifests`]: YAML/JSON files -> `Snapshot` (offline mode, tests, audits).
//! - [`informers`]: kube-rs watchers and stores -> `Snapshot` (daemon mode).
//! - [`translate`]: pure `(Snapshot, node) -> RuleSet` + warnings.
//! - [`model`]: the `RuleSet` IR; no kube or rustables types.
//! - [`render`]: pure `RuleSet -> String`, a complete `nft -f` script.
//! - [`apply`]: `RuleSet` -> one nftables netlink transaction.
//! - [`reconcile`], [`agent`], [`metrics`]: the daemon around them.
//! - [`config`]: the command line.
//! - [`reference`]: an independent per-connection NetworkPolicy evaluator (the
//!   test oracle); [`eval`]: runs one packet through a `RuleSet`.
//! - [`names`]: stable object names and hashes.
//! - [`alloc`]: the allocator (mimalloc) and its settings.

pub mod agent;
pub mod alloc;
pub mod apply;
pub mod config;
pub mod convert;
pub mod eval;
pub mod informers;
pub mod manifests;
pub mod metrics;
pub mod model;
pub mod names;
pub mod reconcile;
pub mod reference;
pub mod render;
pub mod snapshot;
pub mod translate;
