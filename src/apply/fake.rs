//! A fake `Dataplane` that records every committed `RuleSet` in memory, for
//! tests of the daemon (reconcile loop, informers) without a kernel.
//!
//! A commit encodes the batch (pure, as the kernel dataplane would) so the
//! report carries real message and byte counts and an unencodable ruleset
//! fails as it would for real.
//!
//! Must not: touch the kernel, or skip a commit on its own (skipping
//! unchanged rulesets is the reconcile loop's job; the fake records what it
//! is asked to commit). Clones share one record, so a test keeps a clone and
//! hands the other to the daemon.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{batch, ApplyError, CommitReport, Dataplane, KernelError, FIRST_SEQ};
use crate::model::RuleSet;

/// Records commits; can be told to fail the next ones.
#[derive(Debug, Clone, Default)]
pub struct Fake {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every successful commit, oldest first.
    commits: Vec<RuleSet>,
    /// Commits attempted, successful or not.
    attempts: usize,
    /// How many of the next commits fail.
    fail_next: usize,
}

impl Fake {
    pub fn new() -> Fake {
        Fake::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock already failed; the
        // record itself is still consistent, so keep reading it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every successful commit, oldest first.
    pub fn commits(&self) -> Vec<RuleSet> {
        self.lock().commits.clone()
    }

    /// Number of successful commits.
    pub fn commit_count(&self) -> usize {
        self.lock().commits.len()
    }

    /// Number of commits attempted (including failed ones).
    pub fn attempts(&self) -> usize {
        self.lock().attempts
    }

    /// The ruleset in force: the last successful commit.
    pub fn last(&self) -> Option<RuleSet> {
        self.lock().commits.last().cloned()
    }

    /// Make the next `n` commits fail (the ruleset in force stays).
    pub fn fail_next(&self, n: usize) {
        self.lock().fail_next = n;
    }

    /// Wait (polling, bounded by `timeout`) until at least `n` commits
    /// succeeded; returns whether they did.
    pub async fn wait_for_commits(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.commit_count() >= n {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Dataplane for Fake {
    fn commit(&mut self, rs: &RuleSet) -> Result<CommitReport, ApplyError> {
        let mut inner = self.lock();
        inner.attempts += 1;
        let encoded = batch::encode(rs)?;
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            return Err(ApplyError::Rejected {
                errors: vec![KernelError {
                    object: format!("table inet {}", rs.table),
                    seq: FIRST_SEQ,
                    errno: libc::EPERM,
                    message: Some("fake dataplane told to fail".into()),
                }],
            });
        }
        inner.commits.push(rs.clone());
        Ok(CommitReport {
            messages: encoded.objects.len(),
            bytes: encoded.bytes.len(),
            ..CommitReport::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_record_and_failures_leave_it_unchanged() {
        let fake = Fake::new();
        let mut handed_out = fake.clone();
        handed_out.commit(&RuleSet::new("a")).unwrap();
        fake.fail_next(1);
        assert!(handed_out.commit(&RuleSet::new("b")).is_err());
        handed_out.commit(&RuleSet::new("c")).unwrap();
        assert_eq!(fake.attempts(), 3);
        let tables: Vec<String> = fake.commits().into_iter().map(|r| r.table).collect();
        assert_eq!(tables, ["a", "c"]);
        assert_eq!(fake.last().unwrap().table, "c");
    }
}
