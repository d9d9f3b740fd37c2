//! What became of one decision: for the API, the metrics, the ledger and the caller.

use serde::Serialize;

use crate::{audit::OutcomeKind, classify::Classification};

use super::RuleKind;

/// What became of one decision: for the API, the metrics and the caller.
#[derive(Clone, Debug, Serialize)]
pub struct KillReport {
    /// RFC 3339 UTC time the decision was executed.
    pub time: String,
    pub unix_time: f64,
    pub rule: String,
    pub kind: RuleKind,
    /// True when nothing was signalled because of a dry run (global or the rule's).
    pub dry_run: bool,
    pub pid: i32,
    pub start_ticks: u64,
    pub comm: String,
    /// Redacted.
    pub cmdline: String,
    pub uid: u32,
    pub cgroup: Option<String>,
    pub classification: Classification,
    pub rss_bytes: u64,
    pub threshold_bytes: Option<u64>,
    pub reason: String,
    pub outcome: OutcomeKind,
    pub signals_sent: Vec<String>,
    pub time_to_exit_s: Option<f64>,
    /// Sequence number of the intent record, when it was written.
    pub intent_seq: Option<u64>,
    pub intent_logged: bool,
    pub outcome_seq: Option<u64>,
    pub outcome_write_failed: bool,
    pub detail: Option<String>,
}

impl KillReport {
    /// The outcome as the kill log and the metrics spell it ("exited", "dry-run").
    pub fn outcome_name(&self) -> &'static str {
        self.outcome.as_str()
    }
}
