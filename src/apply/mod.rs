//! Apply: commit a `RuleSet` to the kernel as ONE nftables transaction over
//! netlink.

use std::fmt;

use crate::model::RuleSet;

/// What a successful commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// The ruleset equals the last one committed: nothing was sent.
    pub skipped: bool,
    /// Netlink messages in the batch.
    pub messages: usize,
    /// Bytes of the batch.
    pub bytes: usize,
}

impl fmt::Display for CommitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "committed {} messages, {} bytes",
            self.messages, self.bytes
        )
    }
}

/// A failed commit; the previous ruleset stays in force.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApplyError(pub String);

/// Where rulesets go. The kernel in production; a fake in tests of the daemon.
pub trait Dataplane: Send {
    /// Replace our table with `rs`, atomically.
    fn commit(&mut self, rs: &RuleSet) -> Result<CommitReport, ApplyError>;
}

/// The kernel of the current network namespace. Remembers the last ruleset
/// it committed and skips a commit of an identical one.
#[derive(Debug, Default)]
pub struct Kernel {
    last: Option<RuleSet>,
}

impl Kernel {
    pub fn new() -> Kernel {
        Kernel::default()
    }
}

impl Dataplane for Kernel {
    fn commit(&mut self, rs: &RuleSet) -> Result<CommitReport, ApplyError> {
        if self.last.as_ref() == Some(rs) {
            return Ok(CommitReport {
                skipped: true,
                ..CommitReport::default()
            });
        }
        let report = commit_once(rs)?;
        self.last = Some(rs.clone());
        Ok(report)
    }
}

/// Commit `rs` in the current network namespace.
pub fn commit_once(rs: &RuleSet) -> Result<CommitReport, ApplyError> {
    let _ = rs;
    Err(ApplyError(
        "the netlink apply stage is not built yet".into(),
    ))
}

/// Delete table `inet <table>`; `Ok(false)` when it was absent.
pub fn cleanup(table: &str) -> Result<bool, ApplyError> {
    let _ = table;
    Err(ApplyError(
        "the netlink apply stage is not built yet".into(),
    ))
}

pub mod fake;
