//! What each step should measure: the library's reference evaluator over the
//! snapshot the library's manifest loader builds from the very files the
//! agent reads, plus the always-allowed node-to-own-pod cells; and the check
//! that a case's hand-written cells agree with that evaluator.
//!
//! Must not: look at the agent's output or the kernel.

use anyhow::{bail, Context, Result};

use crate::cases::Step;
use crate::matrix::{all_cells, Cell, Matrix, Source, Svc};
use crate::plan::Topology;

/// Until the reference evaluator (`flock_netpol::reference`) is on main, the
/// expected matrix holds only the node-to-own-pod cells and the case's hand
/// cells; `run` says so in its output.
pub const FULL_MATRIX: bool = false;

/// Expected cells: every node-to-own-pod cell (the node itself reaches its
/// pods whatever the policies) and the step's hand-written cells.
pub fn expected(step: &Step, topo: &Topology) -> Result<Matrix> {
    let mut out: Matrix = all_cells(topo)
        .into_iter()
        .filter(|c| matches!(c.from, Source::Node(_)))
        .map(|c| (c, true))
        .collect();
    for (cell, allowed) in hand_cells(step, topo)? {
        out.insert(cell, allowed);
    }
    Ok(out)
}

/// The hand-written cells of a step, resolved against the topology; `from:
/// node` is the destination pod's own node.
fn hand_cells(step: &Step, topo: &Topology) -> Result<Vec<(Cell, bool)>> {
    let mut out = Vec::new();
    for hand in &step.expect {
        let to = topo
            .endpoint(&hand.to)
            .with_context(|| format!("hand cell to {}: unknown pod", hand.to))?;
        let from = match hand.from.as_str() {
            "node" => Source::Node(topo.endpoints[to].node.clone()),
            key => Source::Pod(
                topo.endpoint(key)
                    .with_context(|| format!("hand cell from {key}: unknown pod"))?,
            ),
        };
        for family in hand.families()? {
            let svc = Svc {
                proto: hand.proto()?,
                port: hand.port,
                family,
            };
            out.push((
                Cell {
                    svc,
                    from: from.clone(),
                    to,
                },
                hand.allowed,
            ));
        }
    }
    Ok(out)
}

/// Err listing every hand-written cell the evaluator disagrees with (or that
/// names an unknown pod).
pub fn check_hand_cells(step: &Step, topo: &Topology, expected: &Matrix) -> Result<()> {
    let mut problems = Vec::new();
    for (cell, allowed) in hand_cells(step, topo)? {
        match expected.get(&cell) {
            Some(v) if *v == allowed => {}
            Some(v) => problems.push(format!(
                "{}: written by hand as {}, the reference evaluator says {}",
                cell.describe(topo),
                verdict(allowed),
                verdict(*v)
            )),
            None => problems.push(format!("{}: not a cell of the matrix", cell.describe(topo))),
        }
    }
    if !problems.is_empty() {
        bail!(
            "the case and the reference evaluator disagree (one of them is wrong):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

fn verdict(allowed: bool) -> &'static str {
    if allowed {
        "allowed"
    } else {
        "blocked"
    }
}
