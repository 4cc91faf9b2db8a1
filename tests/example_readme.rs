//! examples/README.md stays true: the dump it shows for node-1 is what the
//! binary prints for examples/cluster.yaml, and its probe table says what
//! the reference evaluator says.
//!
//! After an intended change of the translator or the renderer, rewrite it
//! with `UPDATE_GOLDEN=1 cargo test --test example_readme` and read the diff.

use std::net::IpAddr;
use std::path::PathBuf;

use flock_netpol::manifests;
use flock_netpol::model::DEFAULT_TABLE;
use flock_netpol::reference::{self, Conn, L4};
use flock_netpol::render::render;
use flock_netpol::snapshot::Snapshot;
use flock_netpol::translate::translate;

const BEGIN: &str = "<!-- dump node-1 begin -->\n```text\n";
const END: &str = "```\n<!-- dump node-1 end -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readme_shows_the_current_dump_for_node_1() {
    let snapshot =
        manifests::load(&[root().join("examples/cluster.yaml")]).unwrap_or_else(|e| panic!("{e}"));
    let script = render(&translate(&snapshot, "node-1", DEFAULT_TABLE).ruleset);
    let readme_path = root().join("examples/README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let start = readme.find(BEGIN).expect("dump begin marker") + BEGIN.len();
    let end = start + readme[start..].find(END).expect("dump end marker");
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        let updated = format!("{}{script}{}", &readme[..start], &readme[end..]);
        std::fs::write(&readme_path, updated).unwrap();
        return;
    }
    assert!(
        readme[start..end] == script,
        "{} shows an outdated dump for node-1; if the change is intended, run \
         `UPDATE_GOLDEN=1 cargo test --test example_readme` and read the diff",
        readme_path.display()
    );
}

/// Each row of the README's probe table, checked against the reference
/// evaluator (written from the API reference, independent of the
/// translator): the table must say what NetworkPolicy says.
#[test]
fn the_readme_probe_table_agrees_with_the_reference_evaluator() {
    let snapshot =
        manifests::load(&[root().join("examples/cluster.yaml")]).unwrap_or_else(|e| panic!("{e}"));
    let readme = std::fs::read_to_string(root().join("examples/README.md")).unwrap();
    let section = readme
        .split("## What to expect on ports 80 and 81")
        .nth(1)
        .expect("probe section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| from"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert!(
        rows.len() >= 15,
        "probe table not found: {} rows",
        rows.len()
    );
    let mut checked = 0;
    for row in rows {
        let [from, to, ports, result, _why] = row[..] else {
            panic!("row with {} cells: {row:?}", row.len())
        };
        let want = match result {
            "allowed" => true,
            "dropped" => false,
            other => panic!("result {other:?} in {row:?}"),
        };
        for port in ports.split(", ") {
            let (number, proto) = port.split_once('/').expect("port/PROTO");
            let proto = match proto {
                "TCP" => L4::Tcp,
                "UDP" => L4::Udp,
                other => panic!("protocol {other:?}"),
            };
            let port: u16 = number.parse().unwrap();
            for (src, dst) in address_pairs(&snapshot, from, to) {
                let conn = Conn {
                    src,
                    dst,
                    proto,
                    port,
                };
                let decision = reference::decide(&snapshot, &conn);
                assert_eq!(
                    decision.allowed(),
                    want,
                    "README says {from} -> {to} {port} is {result}; the reference: {decision:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} connections checked");
}

/// The addresses of a table cell: a pod's (all families) or a literal IP.
fn addresses(snapshot: &Snapshot, cell: &str) -> Vec<IpAddr> {
    if let Ok(ip) = cell.parse::<IpAddr>() {
        return vec![ip];
    }
    let pod = snapshot
        .pods
        .iter()
        .find(|p| p.key() == cell)
        .unwrap_or_else(|| panic!("no pod {cell}"));
    assert!(pod.ips.len() == 2, "{cell} is dual-stack");
    pod.ips.clone()
}

/// Source and destination addresses of the same family.
fn address_pairs(snapshot: &Snapshot, from: &str, to: &str) -> Vec<(IpAddr, IpAddr)> {
    let (srcs, dsts) = (addresses(snapshot, from), addresses(snapshot, to));
    let pairs: Vec<_> = srcs
        .iter()
        .flat_map(|s| dsts.iter().map(move |d| (*s, *d)))
        .filter(|(s, d)| s.is_ipv4() == d.is_ipv4())
        .collect();
    assert!(!pairs.is_empty(), "{from} -> {to}: no common family");
    pairs
}

/// The top-level README's excerpt of the node-1 dump: every line it shows
/// (besides `...`) is a line of the current dump.
#[test]
fn the_top_level_readme_excerpt_is_from_the_current_dump() {
    let snapshot =
        manifests::load(&[root().join("examples/cluster.yaml")]).unwrap_or_else(|e| panic!("{e}"));
    let script = render(&translate(&snapshot, "node-1", DEFAULT_TABLE).ruleset);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("## Example: the script for one node")
        .nth(1)
        .expect("README section \"Example: the script for one node\"");
    let excerpt = section.split("```").nth(1).expect("excerpt code block");
    let dump: std::collections::BTreeSet<&str> = script.lines().collect();
    let mut shown = 0;
    for line in excerpt
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != "...")
    {
        assert!(
            dump.contains(line),
            "README.md's excerpt line is not in the current node-1 dump: {line:?}"
        );
        shown += 1;
    }
    assert!(shown > 10, "the excerpt shows only {shown} lines");
}
