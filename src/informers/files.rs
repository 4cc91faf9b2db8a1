//! Watched manifests (`--manifests` in daemon mode): the files and
//! directories are polled and a change of any file's content, or a file
//! appearing or disappearing, notifies the reconcile loop.
//!
//! Polling content (not mtimes) is robust against editors that replace files,
//! coarse mtime granularity and bind-mounted ConfigMaps; manifests are small.
//!
//! Must not: parse manifests (the loader does, in the reconcile loop), or
//! follow directories deeper than `MAX_DEPTH`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::manifests;
use crate::model::Warning;
use crate::names::fnv1a64;
use crate::reconcile::Source;
use crate::snapshot::Snapshot;

/// How often the files are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Directory levels searched below a given directory.
const MAX_DEPTH: usize = 8;

/// Snapshots from the manifest files, loaded afresh on every sync.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    pub paths: Vec<PathBuf>,
}

impl Source for ManifestSource {
    fn snapshot(&mut self) -> Result<(Snapshot, Vec<Warning>), String> {
        manifests::load(&self.paths)
            .map(|s| (s, Vec::new()))
            .map_err(|e| e.to_string())
    }
}

/// A fingerprint of every file under `paths`: names and contents. Unreadable
/// entries count too (by their error), so they change the fingerprint when
/// they become readable.
pub fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut bytes = Vec::new();
    for p in paths {
        add(p, 0, &mut bytes);
    }
    fnv1a64(&bytes)
}

fn add(path: &Path, depth: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(path.as_os_str().as_encoded_bytes());
    out.push(0);
    if path.is_dir() {
        if depth >= MAX_DEPTH {
            return;
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                out.extend_from_slice(e.to_string().as_bytes());
                return;
            }
        };
        entries.sort();
        for e in entries {
            add(&e, depth + 1, out);
        }
    } else {
        match std::fs::read(path) {
            Ok(content) => {
                out.extend_from_slice(&(content.len() as u64).to_le_bytes());
                out.extend_from_slice(&content);
            }
            Err(e) => out.extend_from_slice(e.to_string().as_bytes()),
        }
    }
    out.push(0);
}

/// Poll `paths` forever; notify `trigger` whenever the fingerprint differs
/// from the previous one, starting from `baseline` (taken by the caller
/// before the first sync reads the files, so no change falls in between).
pub async fn watch(paths: Vec<PathBuf>, baseline: u64, trigger: Arc<Notify>, interval: Duration) {
    let paths = Arc::new(paths);
    let mut last = baseline;
    loop {
        tokio::time::sleep(interval).await;
        let p = paths.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&p)).await else {
            return;
        };
        if now != last {
            tracing::info!("manifests changed");
            last = now;
            trigger.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_content_names_and_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths = vec![dir.path().to_path_buf()];
        let empty = fingerprint(&paths);
        std::fs::write(dir.path().join("a.yaml"), "kind: Namespace\n").unwrap();
        let one = fingerprint(&paths);
        assert_ne!(empty, one);
        assert_eq!(one, fingerprint(&paths), "stable when nothing changed");
        std::fs::write(dir.path().join("a.yaml"), "kind: Pod\n").unwrap();
        let edited = fingerprint(&paths);
        assert_ne!(one, edited);
        std::fs::rename(dir.path().join("a.yaml"), dir.path().join("b.yaml")).unwrap();
        assert_ne!(edited, fingerprint(&paths));
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let with_dir = fingerprint(&paths);
        std::fs::write(dir.path().join("sub/c.json"), "{}").unwrap();
        assert_ne!(with_dir, fingerprint(&paths));
    }
}
