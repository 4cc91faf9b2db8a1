//! What each step should measure: the library's reference evaluator over the
//! snapshot the library's manifest loader builds from the very files the
//! agent reads, plus the always-allowed node-to-own-pod cells; and the check
//! that a case's hand-written cells agree with that evaluator.
//!
//! Must not: look at the agent's output or the kernel.

use std::path::Path;

use anyhow::{bail, Context, Result};
use flock_netpol::reference::{allowed, Conn, L4};
use flock_netpol::snapshot::Snapshot;

use crate::cases::Step;
use crate::matrix::{all_cells, Cell, Matrix, Proto, Source, Svc};
use crate::plan::Topology;

/// The snapshot the library's manifest loader builds from the step's files
/// (the same files the agent reads).
pub fn load_snapshot(dir: &Path) -> Result<Snapshot> {
    flock_netpol::manifests::load(&[dir.to_path_buf()])
        .context("the manifest loader refused the step's manifests")
}

/// Expected matrix over every cell: the node itself reaches its pods
/// whatever the policies; pod to pod is what the reference evaluator says.
pub fn expected(snapshot: &Snapshot, topo: &Topology) -> Matrix {
    all_cells(topo)
        .into_iter()
        .map(|cell| {
            let ok = match cell.from {
                Source::Node(_) => true,
                Source::Pod(i) => {
                    let family = cell.svc.family;
                    match (
                        topo.endpoints[i].ip(family),
                        topo.endpoints[cell.to].ip(family),
                    ) {
                        (Some(src), Some(dst)) => {
                            let proto = match cell.svc.proto {
                                Proto::Tcp => L4::Tcp,
                                Proto::Udp => L4::Udp,
                            };
                            allowed(
                                snapshot,
                                &Conn {
                                    src,
                                    dst,
                                    proto,
                                    port: cell.svc.port,
                                },
                            )
                        }
                        _ => false,
                    }
                }
            };
            (cell, ok)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::{load_all, State};
    use crate::plan::Topology;

    /// Without root or a kernel: every case's hand-written cells agree with
    /// the reference evaluator over the snapshot the loader builds from the
    /// manifests the suite writes.
    #[test]
    fn every_hand_written_cell_agrees_with_the_reference_evaluator() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/netns/cases");
        let topo = Topology::from_objects(&crate::model::base_objects()).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let mut checked = 0;
        for case in load_all(&[dir], None).unwrap() {
            let mut state = State::from_objects(crate::model::base_objects()).unwrap();
            for (i, step) in case.file.steps.iter().enumerate() {
                state.step(step).unwrap();
                let manifests = scratch.path().join(format!("{}-{i}", case.name));
                state.write_manifests(&manifests).unwrap();
                let snapshot =
                    load_snapshot(&manifests).unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
                let expected = expected(&snapshot, &topo);
                check_hand_cells(step, &topo, &expected)
                    .unwrap_or_else(|e| panic!("{} step {}: {e:#}", case.name, i + 1));
                checked += step.expect.len();
            }
        }
        assert!(checked > 150, "only {checked} hand cells");
    }

    #[test]
    fn a_wrong_hand_cell_is_reported() {
        let topo = Topology::from_objects(&crate::model::base_objects()).unwrap();
        let step: Step = serde_saphyr::from_str(
            "name: s\nexpect:\n- {from: x/a, to: y/b, port: 80, proto: udp, family: v6, allowed: false}\n",
        )
        .unwrap();
        let open: Matrix = all_cells(&topo).into_iter().map(|c| (c, true)).collect();
        let e = check_hand_cells(&step, &topo, &open)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x/a -> y/b udp/80 v6"), "{e}");
    }
}
