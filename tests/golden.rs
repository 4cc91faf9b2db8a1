//! Golden tests of the whole offline pipeline: for every cluster in
//! tests/fixtures/*.yaml (and examples/cluster.yaml) and every node,
//! `manifests::load -> translate -> render` must equal
//! tests/golden/<fixture>.<node>.nft byte for byte.
//!
//! After an intended change, regenerate with
//! `UPDATE_GOLDEN=1 cargo test --test golden`, then READ the diff: a golden
//! is only as good as the review it got.
//!
//! Also here: the rendered text does not depend on the order of the input
//! documents (nor on the order of the snapshot's lists).

use std::path::{Path, PathBuf};

use flock_netpol::manifests;
use flock_netpol::model::DEFAULT_TABLE;
use flock_netpol::render::render;
use flock_netpol::snapshot::Snapshot;
use flock_netpol::translate::translate;

const NODES: [&str; 2] = ["node-1", "node-2"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (golden name, manifest file) for every cluster under test, sorted.
fn clusters() -> Vec<(String, PathBuf)> {
    let dir = root().join("tests/fixtures");
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            let stem = p
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (stem, p)
        })
        .collect();
    out.push((
        "examples-cluster".to_string(),
        root().join("examples/cluster.yaml"),
    ));
    out.sort();
    assert!(out.len() > 1, "no fixtures found in {}", dir.display());
    out
}

fn load(path: &Path) -> Snapshot {
    manifests::load(&[path.to_path_buf()])
        .unwrap_or_else(|e| panic!("fixture {} does not load: {e}", path.display()))
}

fn script(snapshot: &Snapshot, node: &str) -> String {
    render(&translate(snapshot, node, DEFAULT_TABLE).ruleset)
}

#[test]
fn rendered_scripts_match_the_goldens() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let golden_dir = root().join("tests/golden");
    let mut stale = Vec::new();
    for (name, path) in clusters() {
        let snapshot = load(&path);
        for node in NODES {
            let got = script(&snapshot, node);
            let file = golden_dir.join(format!("{name}.{node}.nft"));
            if update {
                std::fs::create_dir_all(&golden_dir).expect("create tests/golden");
                std::fs::write(&file, &got).expect("write golden");
                continue;
            }
            match std::fs::read_to_string(&file) {
                Ok(want) if want == got => {}
                Ok(want) => stale.push(format!(
                    "{} differs from the rendering of {} for {node}; first differing line {}",
                    file.display(),
                    path.display(),
                    first_difference(&want, &got)
                )),
                Err(e) => stale.push(format!("{}: {e}", file.display())),
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nIf the change is intended, run `UPDATE_GOLDEN=1 cargo test --test golden` \
         and review every changed golden by eye before committing it.",
        stale.join("\n")
    );
}

/// `N: want | got` for the first line that differs.
fn first_difference(want: &str, got: &str) -> String {
    let (mut w, mut g) = (want.lines(), got.lines());
    for n in 1.. {
        match (w.next(), g.next()) {
            (None, None) => break,
            (a, b) if a == b => continue,
            (a, b) => {
                return format!(
                    "{n}:\n  golden:   {}\n  rendered: {}",
                    a.unwrap_or("<end>"),
                    b.unwrap_or("<end>")
                )
            }
        }
    }
    "(only line endings differ)".to_string()
}

/// Every golden file belongs to a cluster and a node still under test.
#[test]
fn no_golden_is_orphaned() {
    let expected: Vec<String> = clusters()
        .iter()
        .flat_map(|(name, _)| NODES.iter().map(move |n| format!("{name}.{n}.nft")))
        .collect();
    let Ok(entries) = std::fs::read_dir(root().join("tests/golden")) else {
        return; // no goldens yet: the test above says what to do
    };
    for entry in entries {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            expected.contains(&name),
            "tests/golden/{name} matches no fixture and node; delete it"
        );
    }
}

/// A small deterministic generator (xorshift64*), enough to shuffle.
struct Shuffler(u64);

impl Shuffler {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// The fixture's documents (and the items of its lists) in a shuffled order,
/// as a JSON stream.
fn shuffled_json(path: &Path, rng: &mut Shuffler) -> String {
    let text = std::fs::read_to_string(path).expect("read fixture");
    let mut docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    docs.retain(|d| !d.is_null());
    for doc in &mut docs {
        if let Some(items) = doc.get_mut("items").and_then(|i| i.as_array_mut()) {
            rng.shuffle(items);
        }
    }
    rng.shuffle(&mut docs);
    docs.iter()
        .map(|d| serde_json::to_string_pretty(d).expect("json"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shuffled_documents_render_the_same_script() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, path) in clusters() {
        let want: Vec<String> = NODES.iter().map(|n| script(&load(&path), n)).collect();
        for seed in 1..=4u64 {
            let mut rng = Shuffler(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let file = dir.path().join(format!("{name}-{seed}.json"));
            std::fs::write(&file, shuffled_json(&path, &mut rng)).expect("write shuffled");
            let snapshot = load(&file);
            for (node, want) in NODES.iter().zip(&want) {
                assert!(
                    &script(&snapshot, node) == want,
                    "{name} for {node}: shuffled documents (seed {seed}) render differently"
                );
            }
        }
    }
}

/// The loaders sort the snapshot; the translator must not need that.
#[test]
fn shuffled_snapshot_lists_render_the_same_script() {
    for (name, path) in clusters() {
        let sorted = load(&path);
        for seed in 1..=4u64 {
            let mut rng = Shuffler(seed.wrapping_mul(0xd1b5_4a32_d192_ed03));
            let mut snapshot = sorted.clone();
            rng.shuffle(&mut snapshot.pods);
            rng.shuffle(&mut snapshot.namespaces);
            rng.shuffle(&mut snapshot.policies);
            for node in NODES {
                assert!(
                    script(&snapshot, node) == script(&sorted, node),
                    "{name} for {node}: shuffled snapshot lists (seed {seed}) render differently"
                );
            }
        }
    }
}
