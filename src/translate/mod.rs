//! Translator: pure `(Snapshot, node name) -> RuleSet` plus warnings.
//!
//! Must not: do I/O, log, read a clock, or depend on hash order.

use crate::model::{RuleSet, Warning};
use crate::snapshot::Snapshot;

/// What the translator produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub ruleset: RuleSet,
    /// Problems in the input; every object named stays fail-closed.
    pub warnings: Vec<Warning>,
}

/// Build the ruleset that enforces `snapshot`'s policies on `node`'s pods, in
/// table `table`.
pub fn translate(snapshot: &Snapshot, node: &str, table: &str) -> Translation {
    let _ = (snapshot, node);
    Translation {
        ruleset: RuleSet::new(table),
        warnings: Vec::new(),
    }
}
