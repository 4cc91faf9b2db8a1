//! Reachability matrices: which source reaches which pod on which service,
//! and the truth tables printed for people.
//!
//! Must not: measure anything (probe does) or decide what is expected.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::plan::{Family, Topology};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One served port: every pod serves all eight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Svc {
    pub proto: Proto,
    pub port: u16,
    pub family: Family,
}

impl Svc {
    pub const PORTS: [u16; 2] = [80, 81];

    pub fn all() -> Vec<Svc> {
        let mut out = Vec::new();
        for proto in [Proto::Tcp, Proto::Udp] {
            for port in Svc::PORTS {
                for family in Family::ALL {
                    out.push(Svc {
                        proto,
                        port,
                        family,
                    });
                }
            }
        }
        out
    }

    pub fn label(self) -> String {
        format!(
            "{}/{} {}",
            self.proto.as_str(),
            self.port,
            self.family.as_str()
        )
    }
}

/// Where a probe starts: a pod endpoint (index into the topology) or a node
/// probing its own pods.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    Pod(usize),
    Node(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    pub svc: Svc,
    pub from: Source,
    /// Endpoint index.
    pub to: usize,
}

impl Cell {
    pub fn describe(&self, topo: &Topology) -> String {
        let from = match &self.from {
            Source::Pod(i) => topo.endpoints[*i].key.clone(),
            Source::Node(n) => format!("node {n}"),
        };
        format!(
            "{from} -> {} {}",
            topo.endpoints[self.to].key,
            self.svc.label()
        )
    }
}

/// Allowed (true) or blocked (false) per cell.
pub type Matrix = BTreeMap<Cell, bool>;

/// Every pod-to-pod cell and every node-to-its-own-pod cell of a topology,
/// for the families both ends have.
pub fn all_cells(topo: &Topology) -> Vec<Cell> {
    let mut out = Vec::new();
    for svc in Svc::all() {
        for (to, dst) in topo.endpoints.iter().enumerate() {
            if dst.ip(svc.family).is_none() {
                continue;
            }
            for (from, src) in topo.endpoints.iter().enumerate() {
                if src.ip(svc.family).is_some() {
                    out.push(Cell {
                        svc,
                        from: Source::Pod(from),
                        to,
                    });
                }
            }
            out.push(Cell {
                svc,
                from: Source::Node(dst.node.clone()),
                to,
            });
        }
    }
    out
}

/// Cells where `actual` differs from `expected` (a cell missing from
/// `actual` counts as a difference).
pub fn differences(expected: &Matrix, actual: &Matrix) -> Vec<Cell> {
    expected
        .iter()
        .filter(|(c, want)| actual.get(c) != Some(want))
        .map(|(c, _)| c.clone())
        .collect()
}

/// Pod-to-pod truth tables of `actual`, one per service, rows = source, columns
/// = destination: `+` allowed, `.` blocked; a wrong cell is shown as `A`
/// (allowed, should be blocked) or `B` (blocked, should be allowed). With
/// `only_wrong`, services without a wrong cell are left out.
pub fn truth_tables(
    topo: &Topology,
    expected: &Matrix,
    actual: &Matrix,
    only_wrong: bool,
) -> String {
    let width = topo
        .endpoints
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(3)
        .max(4);
    let mut out = String::new();
    for svc in Svc::all() {
        let wrong = expected
            .iter()
            .any(|(c, w)| c.svc == svc && actual.get(c).is_some_and(|a| a != w));
        let any = actual.keys().any(|c| c.svc == svc);
        if !any || (only_wrong && !wrong) {
            continue;
        }
        let _ = writeln!(
            out,
            "  {} (rows from, columns to; + allowed, . blocked, A/B wrongly allowed/blocked)",
            svc.label()
        );
        let _ = write!(out, "  {:>width$} ", "");
        for e in &topo.endpoints {
            let _ = write!(out, " {:>w$}", e.key, w = e.key.len().max(3));
        }
        out.push('\n');
        for (i, src) in topo.endpoints.iter().enumerate() {
            let _ = write!(out, "  {:>width$} ", src.key);
            for (j, dst) in topo.endpoints.iter().enumerate() {
                let cell = Cell {
                    svc,
                    from: Source::Pod(i),
                    to: j,
                };
                let mark = match (actual.get(&cell), expected.get(&cell)) {
                    (None, _) => "",
                    (Some(true), Some(false)) => "A",
                    (Some(false), Some(true)) => "B",
                    (Some(true), _) => "+",
                    (Some(false), _) => ".",
                };
                let _ = write!(out, " {:>w$}", mark, w = dst.key.len().max(3));
            }
            out.push('\n');
        }
    }
    for (cell, want) in expected {
        if matches!(cell.from, Source::Node(_)) && actual.get(cell).is_some_and(|a| a != want) {
            let _ = writeln!(
                out,
                "  WRONG {}: {}",
                cell.describe(topo),
                if *want { "blocked" } else { "allowed" }
            );
        }
    }
    out
}

/// One compact table for people (the demo): rows from, columns to (numbered,
/// with a legend); each cell has four marks for tcp/80, tcp/81, udp/80,
/// udp/81: `+` allowed over IPv4 and IPv6, `4` or `6` over that family only,
/// `.` blocked. Node-to-pod probes are summarised in one line.
pub fn compact_table(topo: &Topology, actual: &Matrix) -> String {
    let width = topo
        .endpoints
        .iter()
        .map(|e| e.key.len())
        .max()
        .unwrap_or(3);
    let mut out = String::from("  columns: ");
    for (j, e) in topo.endpoints.iter().enumerate() {
        let _ = write!(out, "{}{}={}", if j > 0 { ", " } else { "" }, j + 1, e.key);
    }
    out.push_str("\n  each cell: tcp/80 tcp/81 udp/80 udp/81; + both families, 4 or 6 that family only, . blocked\n");
    let _ = write!(out, "  {:>width$} ", "");
    for j in 0..topo.endpoints.len() {
        let _ = write!(out, " {:>4}", j + 1);
    }
    out.push('\n');
    let mark = |from: &Source, to: usize, proto: Proto, port: u16| {
        let get = |family| {
            actual.get(&Cell {
                svc: Svc {
                    proto,
                    port,
                    family,
                },
                from: from.clone(),
                to,
            }) == Some(&true)
        };
        match (get(Family::V4), get(Family::V6)) {
            (true, true) => '+',
            (true, false) => '4',
            (false, true) => '6',
            (false, false) => '.',
        }
    };
    let services = [
        (Proto::Tcp, 80),
        (Proto::Tcp, 81),
        (Proto::Udp, 80),
        (Proto::Udp, 81),
    ];
    for (i, src) in topo.endpoints.iter().enumerate() {
        let _ = write!(out, "  {:>width$} ", src.key);
        for j in 0..topo.endpoints.len() {
            let cell: String = services
                .iter()
                .map(|(p, port)| mark(&Source::Pod(i), j, *p, *port))
                .collect();
            let _ = write!(out, " {cell}");
        }
        out.push('\n');
    }
    let node_cells: Vec<&bool> = actual
        .iter()
        .filter(|(c, _)| matches!(c.from, Source::Node(_)))
        .map(|(_, v)| v)
        .collect();
    let _ = writeln!(
        out,
        "  nodes to their own pods: {} of {} probes answered",
        node_cells.iter().filter(|v| ***v).count(),
        node_cells.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Topology;

    fn topo() -> Topology {
        Topology::from_objects(&crate::model::base_objects()).unwrap()
    }

    #[test]
    fn the_base_matrix_has_every_pair_every_service_and_node_probes() {
        let cells = all_cells(&topo());
        // 9x9 pod pairs + 9 node-to-local-pod probes, for 8 services.
        assert_eq!(cells.len(), (81 + 9) * 8);
    }

    #[test]
    fn a_wrong_cell_is_marked_and_only_its_table_printed() {
        let t = topo();
        let cells = all_cells(&t);
        let expected: Matrix = cells.iter().map(|c| (c.clone(), true)).collect();
        let mut actual = expected.clone();
        let bad = Cell {
            svc: Svc {
                proto: Proto::Udp,
                port: 81,
                family: Family::V6,
            },
            from: Source::Pod(0),
            to: 4,
        };
        actual.insert(bad.clone(), false);
        assert_eq!(differences(&expected, &actual), vec![bad]);
        let text = truth_tables(&t, &expected, &actual, true);
        assert!(text.contains("udp/81 v6"), "{text}");
        assert!(!text.contains("tcp/80"), "{text}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("x/a") && l.contains('+'))
            .unwrap();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["x/a", "+", "+", "+", "+", "B", "+", "+", "+", "+"]
        );
    }

    #[test]
    fn the_compact_table_marks_a_family_only_cell() {
        let t = topo();
        let mut actual: Matrix = all_cells(&t).into_iter().map(|c| (c, false)).collect();
        for family in [Family::V4, Family::V6] {
            actual.insert(
                Cell {
                    svc: Svc {
                        proto: Proto::Tcp,
                        port: 80,
                        family,
                    },
                    from: Source::Pod(1),
                    to: 2,
                },
                true,
            );
        }
        actual.insert(
            Cell {
                svc: Svc {
                    proto: Proto::Udp,
                    port: 81,
                    family: Family::V6,
                },
                from: Source::Pod(1),
                to: 2,
            },
            true,
        );
        let text = compact_table(&t, &actual);
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("x/b"))
            .unwrap();
        assert_eq!(row.split_whitespace().nth(3), Some("+..6"), "{text}");
        assert!(text.contains("0 of 72 probes answered"), "{text}");
    }
}
