//! Renderer: pure `RuleSet -> String`, a complete nft script.
//!
//! Must not: do I/O or log.

use crate::model::RuleSet;

/// The complete script that atomically replaces our table.
pub fn render(rs: &RuleSet) -> String {
    format!(
        "table inet {}\ndelete table inet {}\ntable inet {} {{\n}}\n",
        rs.table, rs.table, rs.table
    )
}
