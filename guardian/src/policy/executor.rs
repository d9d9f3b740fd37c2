//! Acting on a decision: the intent goes to the kill log (fsynced) before any signal,
//! then the pidfd kill, then the outcome record, one structured log line and the
//! in-memory ledger.

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::SystemTime,
};

use crate::{
    audit::{self, Intent, KillLog, Outcome, OutcomeKind},
    config::{KillAction, KillLogConfig, OnLogFailure},
};

use super::{Decision, killer, ledger::Ledger, report::KillReport};

/// Executes decisions: log, kill, log, report.
pub struct Executor {
    kill_log: Arc<Mutex<KillLog>>,
    /// `on_write_failure = "kill-anyway"`; changed by a reload.
    kill_anyway: AtomicBool,
    global_dry_run: bool,
    proc_root: PathBuf,
    /// Replaced (copy on write) by each finished decision, so a published view of it
    /// never changes under its reader.
    ledger: Mutex<Arc<Ledger>>,
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
            kill_anyway: AtomicBool::new(on_write_failure == OnLogFailure::KillAnyway),
            global_dry_run,
            proc_root,
            ledger: Mutex::default(),
        }
    }

    /// Takes the reloaded `[kill_log]` settings (the path needs a restart and is ignored):
    /// `on_write_failure` applies to the next decision, rotation to the next record.
    pub fn apply_kill_log_settings(&self, config: &KillLogConfig) {
        self.kill_anyway.store(
            config.on_write_failure == OnLogFailure::KillAnyway,
            Ordering::Relaxed,
        );
        if let Ok(mut log) = self.kill_log.lock() {
            log.set_rotation(config.max_file_bytes.0, config.keep_files);
        }
    }

    /// What to do when an intent record cannot be written (the setting in force).
    pub fn on_write_failure(&self) -> OnLogFailure {
        if self.kill_anyway.load(Ordering::Relaxed) {
            OnLogFailure::KillAnyway
        } else {
            OnLogFailure::SkipKill
        }
    }

    /// The history and counters of executed decisions as they are now (for the
    /// published snapshot: the API and metrics).
    pub fn ledger(&self) -> Arc<Ledger> {
        Arc::clone(&self.ledger.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Writes the intent (fsynced) BEFORE any signal; if that fails, no kill unless
    /// `on_write_failure = "kill-anyway"` (logged and counted either way). A dry run
    /// (global or the rule's) writes the intent and a dry-run outcome and signals nothing.
    /// Then kills through a pidfd, writes the outcome, emits one structured line (target
    /// `guardian::kill`) and returns the report.
    pub async fn execute(&self, decision: Decision) -> KillReport {
        let dry_run = self.global_dry_run || decision.dry_run;
        let on_write_failure = self.on_write_failure();
        let process = &decision.process;
        let key = process.key;
        let uid = process.uid;
        // A leak rule restarts a service rather than signal its main process, unless it
        // says `restart_unit = false`.
        let unit = if decision.restart_unit {
            super::unit_restart::main_unit(process).await
        } else {
            None
        };
        let signals = match (dry_run, &unit, decision.action) {
            (true, _, _) => Vec::new(),
            (false, Some(_), _) => vec![killer::RESTART_UNIT.to_string()],
            (false, None, KillAction::Term) => vec!["SIGTERM".to_string(), "SIGKILL".to_string()],
            (false, None, KillAction::Kill) => vec!["SIGKILL".to_string()],
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
            cgroup: process.memory_cgroup.as_deref().map(str::to_owned),
            classification: classification_record(&process.class, decision.container.as_deref()),
            rss_bytes: process.memory.rss,
            threshold_bytes: decision.threshold,
            reason: match &unit {
                Some(unit) => format!(
                    "{}; main process of {unit}: the unit is restarted through systemd",
                    decision.reason
                ),
                None => decision.reason.clone(),
            },
            signals,
            trigger: decision.trigger.clone(),
        };
        let (intent, written) = self.write_intent(intent).await;
        let intent_seq = written
            .inspect_err(|error| {
                tracing::error!(
                    target: "guardian::kill",
                    rule = %decision.rule,
                    pid = key.pid,
                    %error,
                    ?on_write_failure,
                    "cannot write the kill intent to the kill log"
                );
            })
            .ok();
        let result = if intent_seq.is_none() && on_write_failure == OnLogFailure::SkipKill {
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
        } else if let Some(unit) = &unit {
            killer::restart_unit(&self.proc_root, key, unit, decision.action, decision.grace).await
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
            intent,
            result,
            intent_seq,
            outcome_seq,
            outcome_write_failed,
        );
        log_report(&report);
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::make_mut(&mut ledger).record(&report);
        drop(ledger);
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
            time_to_exit_s: result.time_to_exit_s(),
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

    /// Looks up the user name and writes the intent (fsynced), off the async workers;
    /// hands the intent back with the write's result.
    async fn write_intent(&self, mut intent: Intent) -> (Intent, Result<u64, String>) {
        let log = Arc::clone(&self.kill_log);
        let unwritten = intent.clone();
        tokio::task::spawn_blocking(move || {
            intent.user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(intent.uid))
                .ok()
                .flatten()
                .map(|user| user.name);
            let written = match log.lock() {
                Ok(mut log) => log.write_intent(&intent).map_err(|error| error.to_string()),
                Err(_) => Err("the kill log lock is poisoned".to_string()),
            };
            (intent, written)
        })
        .await
        .unwrap_or_else(|error| {
            (
                unwritten,
                Err(format!("kill log writer task failed: {error}")),
            )
        })
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

/// The report of a decision: its intent (command line redacted as the API shows it)
/// and how it ended.
fn report(
    decision: &Decision,
    mut intent: Intent,
    result: killer::KillResult,
    intent_seq: Option<u64>,
    outcome_seq: Option<u64>,
    outcome_write_failed: bool,
) -> KillReport {
    let now = time::OffsetDateTime::now_utc();
    intent.cmdline = crate::redact::redact_process_cmdline(
        &decision.process.cmdline.to_vec(),
        &decision.process.comm,
    );
    // Free text that may quote a command line: redacted like one.
    intent.reason = crate::redact::redact_text(&intent.reason);
    KillReport {
        time: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        unix_time: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        kind: decision.kind,
        intent,
        result,
        intent_seq,
        intent_logged: intent_seq.is_some(),
        outcome_seq,
        outcome_write_failed,
    }
}

/// The one structured line per decision, for journald and log shippers.
fn log_report(report: &KillReport) {
    let (intent, result) = (&report.intent, &report.result);
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "guardian::kill",
                rule = %intent.rule,
                pid = intent.pid,
                start_ticks = intent.start_ticks,
                comm = %intent.comm,
                cmdline = %intent.cmdline,
                rss_bytes = intent.rss_bytes,
                threshold_bytes = intent.threshold_bytes,
                outcome = report.outcome_name(),
                signals = ?result.signals_sent,
                time_to_exit_s = result.time_to_exit_s(),
                dry_run = intent.dry_run,
                intent_seq = report.intent_seq,
                detail = result.detail.as_deref(),
                "kill decision: {}",
                intent.reason
            )
        };
    }
    match report.outcome() {
        OutcomeKind::Exited | OutcomeKind::DryRun | OutcomeKind::Vanished => line!(info),
        _ => line!(warn),
    }
}

/// The classification as the kill log records it: the classifier's fields plus, for a
/// container the runtime named, `name`, `image` and the pod's name and namespace (and its
/// uid when the cgroup path did not give it).
fn classification_record(
    class: &crate::classify::Classification,
    container: Option<&crate::names::ContainerName>,
) -> serde_json::Value {
    let mut value = serde_json::to_value(class).unwrap_or(serde_json::Value::Null);
    if let (Some(fields), Some(container)) = (value.as_object_mut(), container) {
        let uid_known = fields.get("pod_uid").is_some_and(|uid| !uid.is_null());
        let mut put = |key: &str, text: Option<&str>| {
            if let Some(text) = text {
                fields.insert(key.to_string(), serde_json::Value::from(text));
            }
        };
        put("name", Some(&container.name));
        put("image", container.image.as_deref());
        put("pod_name", container.pod_name.as_deref());
        put("pod_namespace", container.pod_namespace.as_deref());
        if !uid_known {
            put("pod_uid", container.pod_uid.as_deref());
        }
    }
    value
}
