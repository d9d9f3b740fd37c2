//! Acting on a decision: the intent goes to the kill log (fsynced) before any signal,
//! then the pidfd kill, then the outcome record, one structured log line and the
//! in-memory ledger.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use serde::Serialize;

use crate::{
    audit::{self, Intent, KillLog, Outcome, OutcomeKind},
    classify::Classification,
    config::{KillAction, OnLogFailure},
};

use super::{Decision, RuleKind, killer, ledger::Ledger};

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

/// Executes decisions: log, kill, log, report.
pub struct Executor {
    kill_log: Arc<Mutex<KillLog>>,
    on_write_failure: OnLogFailure,
    global_dry_run: bool,
    proc_root: PathBuf,
    ledger: Arc<Mutex<Ledger>>,
}

impl Executor {
    /// `proc_root` is where start times are re-read ("/proc" outside tests).
    pub fn new(
        kill_log: Arc<Mutex<KillLog>>,
        on_write_failure: OnLogFailure,
        global_dry_run: bool,
        proc_root: PathBuf,
    ) -> Executor {
        Executor {
            kill_log,
            on_write_failure,
            global_dry_run,
            proc_root,
            ledger: Arc::new(Mutex::new(Ledger::default())),
        }
    }

    /// The history and counters of executed decisions, shared with the API and metrics.
    pub fn ledger(&self) -> Arc<Mutex<Ledger>> {
        Arc::clone(&self.ledger)
    }

    /// Writes the intent (fsynced) BEFORE any signal; if that fails, no kill unless
    /// `on_write_failure = "kill-anyway"` (logged and counted either way). A dry run
    /// (global or the rule's) writes the intent and a dry-run outcome and signals nothing.
    /// Then kills through a pidfd, writes the outcome, emits one structured line (target
    /// `guardian::kill`) and returns the report.
    pub async fn execute(&self, decision: Decision) -> KillReport {
        let dry_run = self.global_dry_run || decision.dry_run;
        let process = &decision.process;
        let key = process.key;
        let uid = process.uid;
        let signals = match (dry_run, decision.action) {
            (true, _) => Vec::new(),
            (false, KillAction::Term) => vec!["SIGTERM".to_string(), "SIGKILL".to_string()],
            (false, KillAction::Kill) => vec!["SIGKILL".to_string()],
        };
        let intent = Intent {
            rule: decision.rule.clone(),
            dry_run,
            pid: key.pid,
            start_ticks: key.start_ticks,
            comm: process.comm.clone(),
            // NUL-joined as in /proc: the kill log redacts each argument whole.
            cmdline: process.cmdline.join("\0"),
            uid,
            // Filled in off the async workers, with the write.
            user: None,
            cgroup: process.memory_cgroup.clone(),
            classification: serde_json::to_value(&process.class).unwrap_or(serde_json::Value::Null),
            rss_bytes: process.memory.rss,
            threshold_bytes: decision.threshold,
            reason: decision.reason.clone(),
            signals,
        };
        let intent_seq = self
            .write(move |log| {
                let mut intent = intent;
                intent.user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|user| user.name);
                log.write_intent(&intent)
            })
            .await
            .inspect_err(|error| {
                tracing::error!(
                    target: "guardian::kill",
                    rule = %decision.rule,
                    pid = key.pid,
                    %error,
                    on_write_failure = ?self.on_write_failure,
                    "cannot write the kill intent to the kill log"
                );
            })
            .ok();
        let result = if intent_seq.is_none() && self.on_write_failure == OnLogFailure::SkipKill {
            killer::KillResult {
                outcome: OutcomeKind::NotLogged,
                signals_sent: Vec::new(),
                time_to_exit: None,
                detail: Some("the intent could not be written; not killed".to_string()),
            }
        } else if dry_run {
            killer::KillResult {
                outcome: OutcomeKind::DryRun,
                signals_sent: Vec::new(),
                time_to_exit: None,
                detail: None,
            }
        } else {
            killer::kill(&self.proc_root, key, decision.action, decision.grace).await
        };
        let (outcome_seq, outcome_write_failed) = match intent_seq {
            // No intent record to close; the log line and the ledger carry the outcome.
            None => (None, false),
            Some(intent_seq) => self.write_outcome(&decision, intent_seq, &result).await,
        };
        let report = report(
            &decision,
            dry_run,
            result,
            intent_seq,
            outcome_seq,
            outcome_write_failed,
        );
        log_report(&report);
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.record(&report);
        }
        report
    }

    async fn write_outcome(
        &self,
        decision: &Decision,
        intent_seq: u64,
        result: &killer::KillResult,
    ) -> (Option<u64>, bool) {
        let outcome = Outcome {
            intent_seq,
            rule: decision.rule.clone(),
            pid: decision.process.key.pid,
            start_ticks: decision.process.key.start_ticks,
            outcome: result.outcome,
            signals_sent: result.signals_sent.clone(),
            time_to_exit_s: result.time_to_exit.map(|d| d.as_secs_f64()),
            detail: result.detail.clone(),
        };
        match self.write(move |log| log.write_outcome(&outcome)).await {
            Ok(seq) => (Some(seq), false),
            Err(error) => {
                tracing::error!(
                    target: "guardian::kill",
                    rule = %decision.rule,
                    pid = decision.process.key.pid,
                    %error,
                    "cannot write the kill outcome to the kill log"
                );
                (None, true)
            }
        }
    }

    /// Runs one kill-log write (which fsyncs) off the async workers.
    async fn write(
        &self,
        op: impl FnOnce(&mut KillLog) -> Result<u64, audit::AuditError> + Send + 'static,
    ) -> Result<u64, String> {
        let log = Arc::clone(&self.kill_log);
        tokio::task::spawn_blocking(move || {
            let mut log = log
                .lock()
                .map_err(|_| "the kill log lock is poisoned".to_string())?;
            op(&mut log).map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| format!("kill log writer task failed: {error}"))?
    }
}

fn report(
    decision: &Decision,
    dry_run: bool,
    result: killer::KillResult,
    intent_seq: Option<u64>,
    outcome_seq: Option<u64>,
    outcome_write_failed: bool,
) -> KillReport {
    let process = &decision.process;
    let now = time::OffsetDateTime::now_utc();
    KillReport {
        time: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        unix_time: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        rule: decision.rule.clone(),
        kind: decision.kind,
        dry_run,
        pid: process.key.pid,
        start_ticks: process.key.start_ticks,
        comm: process.comm.clone(),
        cmdline: audit::redact_process_cmdline(&process.cmdline, &process.comm),
        uid: process.uid,
        cgroup: process.memory_cgroup.clone(),
        classification: process.class.clone(),
        rss_bytes: process.memory.rss,
        threshold_bytes: decision.threshold,
        // Free text that may quote a command line: redacted like one.
        reason: audit::redact_text(&decision.reason),
        outcome: result.outcome,
        signals_sent: result.signals_sent,
        time_to_exit_s: result.time_to_exit.map(|d| d.as_secs_f64()),
        intent_seq,
        intent_logged: intent_seq.is_some(),
        outcome_seq,
        outcome_write_failed,
        detail: result.detail,
    }
}

/// The one structured line per decision, for journald and log shippers.
fn log_report(report: &KillReport) {
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "guardian::kill",
                rule = %report.rule,
                pid = report.pid,
                start_ticks = report.start_ticks,
                comm = %report.comm,
                cmdline = %report.cmdline,
                rss_bytes = report.rss_bytes,
                threshold_bytes = report.threshold_bytes,
                outcome = report.outcome_name(),
                signals = ?report.signals_sent,
                time_to_exit_s = report.time_to_exit_s,
                dry_run = report.dry_run,
                intent_seq = report.intent_seq,
                detail = report.detail.as_deref(),
                "kill decision: {}",
                report.reason
            )
        };
    }
    match report.outcome {
        OutcomeKind::Exited | OutcomeKind::DryRun | OutcomeKind::Vanished => line!(info),
        _ => line!(warn),
    }
}
