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
    /// Command line before redaction (the log redacts it). Arguments joined by NULs, as
    /// in `/proc/PID/cmdline`, are redacted argument by argument (a secret holding
    /// spaces is caught whole); joined by spaces works too. Logged joined by spaces.
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
    /// Signals the plan sends, in order ("SIGTERM", "SIGKILL"), or "restart-unit" when a
    /// leak rule restarts a systemd service through D-Bus instead.
    pub signals: Vec<String>,
    /// What a pressure or leak rule measured when it fired (absent for threshold and
    /// orphan rules, and in records written before those rules existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

/// A pressure or leak rule's trigger and the value it measured, as the kill log
/// records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Trigger {
    /// "mem_available", "swap_free", "psi_some" or "psi_full" (pressure rules); "leak" or
    /// "imminent" (leak rules).
    pub trigger: String,
    /// "host", or the v2 cgroup whose `memory.pressure` was read; "trend" for leak rules.
    pub source: String,
    /// The PSI average compared ("avg10", "avg60"); none for byte triggers.
    pub window: Option<String>,
    /// Measured: bytes for mem_available and swap_free, percent stalled for PSI; for
    /// leak rules the slope (leak, bytes/s) or the time to the limit (imminent, seconds).
    pub value: f64,
    /// The rule's limit in the same unit (a percentage of MemTotal resolved to bytes);
    /// for leak rules 0 (leak without `within`) or `within` in seconds.
    pub threshold: f64,
    /// What the trend detector said of the process (leak rules only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<TrendTrigger>,
}

/// The trend detector's view of the process a leak rule acted on.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrendTrigger {
    /// "leak", "growing", "stable" or "warming-up".
    pub verdict: String,
    /// The leak's (or rise's) slope, bytes per second.
    pub slope_bytes_per_second: f64,
    /// Confidence (0..1) that memory rises.
    pub confidence: f64,
    /// Seconds until the nearest limit at the current rise; none while not approaching.
    pub time_to_limit_s: Option<f64>,
    pub limit_bytes: Option<u64>,
    /// "cgroup", "rule" or "host".
    pub limit_kind: Option<String>,
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

/// Which of the two record kinds a line of the kill log holds (its `kind` field).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// Written and fsynced before any signal.
    Intent,
    /// Written once the decision has played out.
    Outcome,
}

impl RecordKind {
    /// The `kind` value in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Intent => "intent",
            RecordKind::Outcome => "outcome",
        }
    }
}

impl OutcomeKind {
    /// The `outcome` value in the log ("exited", "permission-denied", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Exited => "exited",
            OutcomeKind::Survived => "survived",
            OutcomeKind::Vanished => "vanished",
            OutcomeKind::PermissionDenied => "permission-denied",
            OutcomeKind::DryRun => "dry-run",
            OutcomeKind::NotLogged => "not-logged",
            OutcomeKind::Failed => "failed",
        }
    }
}

#[cfg(test)]
impl Intent {
    /// A realistic intent for tests, with a secret on its command line.
    pub(crate) fn sample(pid: i32) -> Intent {
        Intent {
            rule: "node-leak".into(),
            dry_run: false,
            pid,
            start_ticks: 123_456,
            comm: "node".into(),
            cmdline: "node dist/main --jwt-secret=s3cr3t-value --port 3000".into(),
            uid: 1000,
            user: Some("app".into()),
            cgroup: Some("/user.slice/app.service".into()),
            classification: serde_json::json!({"class": "host"}),
            rss_bytes: 420 * 1024 * 1024,
            threshold_bytes: Some(300 * 1024 * 1024),
            reason: "RSS 420 MiB above 300 MiB for 10s".into(),
            signals: vec!["SIGTERM".into(), "SIGKILL".into()],
            trigger: None,
        }
    }
}

#[cfg(test)]
impl Outcome {
    /// The outcome closing [`Intent::sample`].
    pub(crate) fn sample(intent_seq: u64, pid: i32) -> Outcome {
        Outcome {
            intent_seq,
            rule: "node-leak".into(),
            pid,
            start_ticks: 123_456,
            outcome: OutcomeKind::Exited,
            signals_sent: vec!["SIGTERM".into()],
            time_to_exit_s: Some(0.25),
            detail: None,
        }
    }
}
