//! Entering the suite's network namespaces: a thread (setns) or a child
//! process (setns in the child before exec, killed if we die).
//!
//! Must not: touch the root namespace's configuration or any namespace the
//! suite did not create (callers pass names built by `plan`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};

/// Path of a named namespace made by `ip netns add`.
fn path(name: &str) -> String {
    format!("/run/netns/{name}")
}

/// Move the calling thread into the named network namespace. Threads it
/// spawns afterwards start there too; other threads are unaffected.
pub fn enter(name: &str) -> Result<()> {
    let file = File::open(path(name)).with_context(|| format!("open {}", path(name)))?;
    setns(&file, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns into {name}"))
}

/// Make `cmd` start inside the named namespace, and receive SIGTERM when the
/// thread that spawns it exits (so an interrupted suite leaves no agent
/// behind: spawn from a long-lived thread).
pub fn command_in(name: &str, cmd: &mut Command) -> Result<()> {
    let file = File::open(path(name)).with_context(|| format!("open {}", path(name)))?;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // two system calls (prctl, setns); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    Ok(())
}
