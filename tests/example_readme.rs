//! examples/README.md stays true: the dump it shows for node-1 is what the
//! binary prints for examples/cluster.yaml.
//!
//! After an intended change of the translator or the renderer, rewrite it
//! with `UPDATE_GOLDEN=1 cargo test --test example_readme` and read the diff.

use std::path::PathBuf;

use flock_netpol::manifests;
use flock_netpol::model::DEFAULT_TABLE;
use flock_netpol::render::render;
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
