//! Unit tests of the translator, one per item of the NetworkPolicy checklist
//! (../shared/DESIGN.md), asserting on the produced `RuleSet`.
//!
//! `fixture` builds snapshots; `walk` follows a packet through the produced
//! chains (only to read which rule decides; the ruleset shape itself is
//! asserted directly where it matters).

mod fixture;
mod invalid;
mod semantics;
mod shape;
mod walk;
