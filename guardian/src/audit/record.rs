//! What the policy hands the kill log for each decision.

use serde::{Deserialize, Serialize};

/// A kill decision, written and fsynced before any signal is sent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Intent {
    pub rule: String,
    pub dry_run: bool,
    pub pid: i32,
    /// Start time in clock ticks after boot: with `pid`, the process's identity.
    pub start_ticks: u64,
    pub comm: String,
    /// Command line before redaction (the log redacts it).
    pub cmdline: String,
    pub uid: u32,
    pub user: Option<String>,
    pub cgroup: Option<String>,
    /// "host", "container" or "unknown", with details.
    pub classification: serde_json::Value,
    pub rss_bytes: u64,
    pub threshold_bytes: Option<u64>,
    /// Why the rule matched, in words.
    pub reason: String,
    /// Signals the plan sends, in order ("SIGTERM", "SIGKILL").
    pub signals: Vec<String>,
}

/// How a decision ended.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    /// The process exited after the signal(s).
    Exited,
    /// Still alive after SIGKILL's wait.
    Survived,
    /// Gone (or replaced by another process with its pid) before it could be signalled.
    Vanished,
    PermissionDenied,
    /// Dry run: nothing was signalled.
    DryRun,
    /// Not killed because the intent could not be written.
    NotLogged,
    Failed,
}

/// The result of a decision, appended after the intent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    /// Sequence number of the intent record this closes.
    pub intent_seq: u64,
    pub rule: String,
    pub pid: i32,
    pub start_ticks: u64,
    pub outcome: OutcomeKind,
    /// Signals actually sent, in order.
    pub signals_sent: Vec<String>,
    /// Seconds from the first signal to the process's exit.
    pub time_to_exit_s: Option<f64>,
    pub detail: Option<String>,
}
