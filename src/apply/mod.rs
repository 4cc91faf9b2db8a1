//! Apply: commit a `RuleSet` to the kernel as ONE nftables transaction over
//! netlink, with no `nft` binary and no libnftables.
//!
//! - [`batch`]: pure `RuleSet -> bytes` (+ what each message creates).
//! - [`nfnl`]: the project's own encoder for what rustables cannot express.
//! - [`expr`]: each model match and verdict as rustables expressions.
//! - [`kernel`]: the socket; sends the batch, reads every reply.
//! - [`fake`]: an in-memory dataplane for the daemon's tests.
//!
//! A commit replaces our table atomically (add, delete, add table and
//! everything in it); the kernel takes all of it or none, so a rejected
//! commit leaves the previous ruleset in force. Incremental commits (set and
//! map element changes for pod churn) can be added as other `batch`
//! builders sharing `kernel::send`.
//!
//! Must not: touch any table but ours, read the table back, or log (the
//! caller logs the `CommitReport`).

pub mod batch;
pub mod expr;
pub mod kernel;
pub mod nfnl;

use std::fmt;
use std::time::{Duration, Instant};

use crate::model::RuleSet;

pub use batch::{EncodeError, Encoded, Object, FIRST_SEQ};

/// What a successful commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// The ruleset equals the last one committed: nothing was sent.
    pub skipped: bool,
    /// Netlink messages in the batch.
    pub messages: usize,
    /// Bytes of the batch.
    pub bytes: usize,
    /// Time to encode the batch.
    pub encode: Duration,
    /// Time from the start of encoding to the kernel's last reply.
    pub duration: Duration,
}

impl fmt::Display for CommitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.skipped {
            return write!(f, "unchanged ruleset, commit skipped");
        }
        write!(
            f,
            "committed {} messages, {} bytes in {:.1} ms (encode {:.1} ms)",
            self.messages,
            self.bytes,
            self.duration.as_secs_f64() * 1e3,
            self.encode.as_secs_f64() * 1e3
        )
    }
}

/// One error the kernel reported, naming the object of the failing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    /// `table inet X`, `chain Y`, `set Z`, `rule 3 in chain C (comment "...")`.
    pub object: String,
    /// Sequence number of the failing message.
    pub seq: u32,
    /// Positive errno.
    pub errno: i32,
    /// The kernel's extended ACK text, when it gave one.
    pub message: Option<String>,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = std::io::Error::from_raw_os_error(self.errno);
        write!(f, "{}: {os}", self.object)?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

/// A failed commit; the previous ruleset stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The ruleset cannot be encoded (nothing was sent).
    #[error("cannot encode the ruleset: {0}")]
    Encode(#[from] EncodeError),
    /// The netlink socket failed (nothing, or not all, was sent).
    #[error("netlink socket: {what}: {source}")]
    Socket {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused the transaction; nothing of it was applied.
    #[error("the kernel rejected the transaction: {}", list(errors))]
    Rejected { errors: Vec<KernelError> },
    /// The kernel sent no acknowledgement of the batch's last message.
    #[error("no acknowledgement from the kernel ({replies} other replies)")]
    NoAck { replies: usize },
}

fn list(errors: &[KernelError]) -> String {
    let mut s = errors
        .iter()
        .take(3)
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    if errors.len() > 3 {
        s.push_str(&format!("; and {} more", errors.len() - 3));
    }
    s
}

impl ApplyError {
    /// The kernel errors, when the kernel rejected the transaction.
    pub fn kernel_errors(&self) -> &[KernelError] {
        match self {
            ApplyError::Rejected { errors } => errors,
            _ => &[],
        }
    }
}

/// Where rulesets go. The kernel in production; a fake in tests of the daemon.
pub trait Dataplane: Send {
    /// Replace our table with `rs`, atomically.
    fn commit(&mut self, rs: &RuleSet) -> Result<CommitReport, ApplyError>;

    /// Forget what was committed, so that the next commit is sent even when
    /// unchanged (the daemon's periodic resync). Default: nothing remembered.
    fn forget(&mut self) {}
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

    /// Forget the last committed ruleset: the next commit is sent even if
    /// unchanged (a periodic resync repairing a table someone altered).
    fn forget(&mut self) {
        self.last = None;
    }
}

/// Commit `rs` in the current network namespace, as one transaction.
pub fn commit_once(rs: &RuleSet) -> Result<CommitReport, ApplyError> {
    let start = Instant::now();
    let enc = batch::encode(rs)?;
    let encode = start.elapsed();
    kernel::send(&enc)?;
    Ok(CommitReport {
        skipped: false,
        messages: enc.objects.len(),
        bytes: enc.bytes.len(),
        encode,
        duration: start.elapsed(),
    })
}

/// Delete table `inet <table>` and nothing else; `Ok(false)` when it was
/// absent.
pub fn cleanup(table: &str) -> Result<bool, ApplyError> {
    let enc = batch::encode_delete_table(table)?;
    match kernel::send(&enc) {
        Ok(()) => Ok(true),
        Err(ApplyError::Rejected { errors })
            if errors.iter().all(|e| {
                e.errno == libc::ENOENT && matches!(enc.object(e.seq), Some(Object::TableDelete(_)))
            }) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

pub mod fake;
