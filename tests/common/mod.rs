//! Helpers shared by the integration tests.
//!
//! Kernel tests run as root inside a throwaway network namespace made by
//! `unshare(CLONE_NEWNET)` on a thread of their own: the namespace lives as
//! long as that thread (and any child process started from it), so nothing
//! is left behind, whatever the test does. Without root they skip, saying so.

#![allow(dead_code)] // each test crate uses a different part of this module

pub mod nftjson;

use std::process::Command;

pub mod fixture;
pub mod gen;

/// True when this process may create network namespaces.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Print why a kernel test is skipped and return true when it must be.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!(
        "SKIP {test}: needs root to create a network namespace (run ./netns-test.sh as root)"
    );
    true
}

/// Run `f` on a new thread inside a new, empty network namespace (only `lo`,
/// down). Processes spawned from `f` inherit it. Panics inside `f` propagate.
pub fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET) needs root");
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Run `f` on a new thread inside the named namespace `ns` (made by
/// `ip netns add`, so `/run/netns/<ns>` exists); join it for the result.
pub fn in_named_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("namespace file");
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// Print why a test that needs root and the `nft` binary is skipped and
/// return true when it must be.
pub fn skip_unless_root_and_nft(test: &str) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    if !have_nft() {
        eprintln!("SKIP {test}: the nft binary is not installed (apt-get install nftables)");
        return true;
    }
    false
}

/// Whether the `nft` binary is installed (a test-only dependency).
pub fn have_nft() -> bool {
    Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run `nft` with `args` and `stdin`; Ok(stdout) or Err(stderr).
pub fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    {
        let mut pipe = child.stdin.take().expect("stdin piped");
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
