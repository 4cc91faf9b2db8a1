//! Running flock-netpol in the node namespaces: one-shot (`--once`, or its
//! `--dump-script` piped to `nft -f` to check the renderer alone), as
//! daemons watching the manifest directory, and `--cleanup`.
//!
//! Must not: leave a process behind (daemons are stopped by pid, and get
//! SIGTERM if this process dies first).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns;
use crate::plan::node_netns;

/// How a one-shot commit reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Apply {
    /// `flock-netpol --once`: the agent's own netlink transaction.
    Netlink,
    /// `flock-netpol --dump-script | nft -f -`: the renderer's script.
    Nft,
}

pub struct Agents {
    pub bin: PathBuf,
    pub prefix: String,
    pub nodes: Vec<String>,
    pub manifests: PathBuf,
    pub logs: PathBuf,
}

fn output_text(out: &std::process::Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stdout));
    s
}

impl Agents {
    fn command(&self, node: &str) -> Result<Command> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--node")
            .arg(node)
            .arg("--manifests")
            .arg(&self.manifests);
        cmd.args(["--metrics-addr", "off"]);
        netns::command_in(&node_netns(&self.prefix, node), &mut cmd)?;
        Ok(cmd)
    }

    /// Commit the current manifests on every node, once.
    pub fn once(&self, apply: Apply) -> Result<()> {
        for node in &self.nodes {
            match apply {
                Apply::Netlink => {
                    let out = self
                        .command(node)?
                        .arg("--once")
                        .output()
                        .context("run the agent")?;
                    if !out.status.success() {
                        bail!(
                            "flock-netpol --once on {node} failed ({}):\n{}",
                            out.status,
                            output_text(&out)
                        );
                    }
                }
                Apply::Nft => self.dump_and_nft(node)?,
            }
        }
        Ok(())
    }

    fn dump_and_nft(&self, node: &str) -> Result<()> {
        let dump = self
            .command(node)?
            .arg("--dump-script")
            .output()
            .context("run the agent")?;
        if !dump.status.success() {
            bail!(
                "flock-netpol --dump-script for {node} failed:\n{}",
                output_text(&dump)
            );
        }
        let mut nft = Command::new("nft");
        nft.args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        netns::command_in(&node_netns(&self.prefix, node), &mut nft)?;
        let mut child = nft.spawn().context("run nft")?;
        child
            .stdin
            .take()
            .context("nft stdin")?
            .write_all(&dump.stdout)?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nft -f of the {node} script failed:\n{}", output_text(&out));
        }
        Ok(())
    }

    /// `--cleanup` on every node.
    pub fn cleanup(&self) -> Result<()> {
        for node in &self.nodes {
            let out = self
                .command(node)?
                .arg("--cleanup")
                .output()
                .context("run the agent")?;
            if !out.status.success() {
                bail!(
                    "flock-netpol --cleanup on {node} failed:\n{}",
                    output_text(&out)
                );
            }
        }
        Ok(())
    }

    /// Whether `table inet NAME` exists in a node's namespace (asks `nft`).
    pub fn has_table(&self, node: &str, table: &str) -> Result<bool> {
        let mut cmd = Command::new("nft");
        cmd.args(["list", "table", "inet", table])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        netns::command_in(&node_netns(&self.prefix, node), &mut cmd)?;
        Ok(cmd.status().context("run nft")?.success())
    }

    /// Start one daemon per node, logging to `logs/agent-NODE.log`.
    pub fn start_daemons(&self) -> Result<Vec<Daemon>> {
        let mut out = Vec::new();
        for node in &self.nodes {
            let log_path = self.logs.join(format!("agent-{node}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("create {}", log_path.display()))?;
            let child = self
                .command(node)?
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("start the agent daemon")?;
            out.push(Daemon {
                node: node.clone(),
                child,
                log: log_path,
            });
        }
        Ok(out)
    }
}

pub struct Daemon {
    pub node: String,
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// None while running, else how it ended.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(status.to_string()),
            Err(e) => Some(e.to_string()),
        }
    }

    /// SIGTERM, then SIGKILL after 5 s. True when it stopped on SIGTERM.
    pub fn stop(&mut self) -> bool {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        if self.exited().is_some() {
            return false;
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, 20)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
