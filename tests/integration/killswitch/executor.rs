//! The executor as a library against memhog processes this test starts: the intent is
//! logged before any signal, a reused pid is never signalled, and no intent means no
//! kill.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use guardian::{
    audit::{KillLog, OutcomeKind},
    classify::Classification,
    config::{KillAction, KillLogConfig, OnLogFailure},
    model::{MemoryUsage, Process, ProcessKey},
    policy::{Decision, Executor, RuleKind},
};

use crate::common::{Needs, TestProcess, marker, require, spawn_hog};

fn start_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').expect("stat format");
    rest.split_whitespace()
        .nth(19)
        .and_then(|ticks| ticks.parse().ok())
        .expect("start time")
}

/// A decision about `hog` as the policy would make it, with `start_ticks` given.
fn decision(hog: &TestProcess, marker: &str, start_ticks: u64, action: KillAction) -> Decision {
    Decision {
        rule: "test".into(),
        kind: RuleKind::Threshold,
        process: Process {
            key: ProcessKey {
                pid: hog.pid(),
                start_ticks,
            },
            ppid: std::process::id() as i32,
            uid: 0,
            comm: "memhog".into(),
            cmdline: vec!["memhog".into(), "--marker".into(), marker.into()].into(),
            kernel_thread: false,
            oom_score_adj: 0,
            memory: MemoryUsage::from_parts(100 << 20, 0, 0, 0),
            cgroups: Vec::new().into(),
            memory_cgroup: None,
            class: Classification::Host { unit: None }.into(),
            started_secs: 0.0,
        },
        threshold: Some(50 << 20),
        reason: "test decision".into(),
        action,
        grace: Duration::from_secs(1),
        dry_run: false,
        container: None,
        trigger: None,
        restart_unit: false,
    }
}

fn executor(log_path: &Path, on_write_failure: OnLogFailure) -> Executor {
    let config = KillLogConfig {
        path: log_path.to_path_buf(),
        ..KillLogConfig::default()
    };
    let log = KillLog::open(&config).expect("open kill log");
    Executor::new(
        Arc::new(Mutex::new(log)),
        on_write_failure,
        false,
        PathBuf::from("/proc"),
    )
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test]
async fn intent_is_logged_before_the_kill_and_the_outcome_after() {
    let m = marker("executor");
    let mut hog = spawn_hog(&m, &["--rss", "20", "--ignore-term"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("kills.jsonl");
    let executor = executor(&log, OnLogFailure::SkipKill);
    let ticks = start_ticks(hog.pid());
    let report = executor
        .execute(decision(&hog, &m, ticks, KillAction::Term))
        .await;
    assert_eq!(report.outcome(), OutcomeKind::Exited, "{report:?}");
    assert_eq!(report.result.signals_sent, ["SIGTERM", "SIGKILL"]);
    eprintln!(
        "SIGTERM ignored, SIGKILL after 1 s grace: exit confirmed {:.3} s after SIGTERM",
        report.result.time_to_exit_s().unwrap_or_default()
    );
    let _ = hog.child.wait();
    assert_eq!(hog.exit_signal(), Some(libc::SIGKILL));
    let records = records(&log);
    let kinds: Vec<&str> = records.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, ["intent", "outcome"]);
    assert_eq!(records[0]["pid"], hog.pid());
    assert_eq!(records[0]["user"], "root", "uid 0 resolved to its name");
    assert_eq!(records[1]["intent_seq"], records[0]["seq"]);
    assert_eq!(records[1]["outcome"], "exited");
    let ledger = executor.ledger();
    assert_eq!(ledger.decisions_total, 1);
    assert_eq!(
        ledger.last_kill.as_ref().map(|k| k.intent.pid),
        Some(hog.pid())
    );
}

#[tokio::test]
async fn a_reused_pid_is_not_signalled() {
    let m = marker("reuse");
    let mut hog = spawn_hog(&m, &["--rss", "10"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("kills.jsonl");
    let executor = executor(&log, OnLogFailure::SkipKill);
    // The decision was about an earlier process that held the same pid.
    let stale = start_ticks(hog.pid()) - 1;
    let report = executor
        .execute(decision(&hog, &m, stale, KillAction::Kill))
        .await;
    assert_eq!(report.outcome(), OutcomeKind::Vanished, "{report:?}");
    assert!(report.result.signals_sent.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !hog.has_exited(),
        "the process now holding the pid was signalled"
    );
    let outcome = records(&log).pop().expect("outcome record");
    assert_eq!(outcome["outcome"], "vanished");
}

/// A tiny tmpfs, unmounted on drop.
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn new() -> SmallFs {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "guardian-test"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "mount tmpfs failed");
        SmallFs(dir)
    }

    /// Fills the filesystem to the last byte.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.0.path().join("filler")).expect("filler");
        let block = [0u8; 4096];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
        let _ = file.sync_all();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test]
async fn no_intent_no_kill() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("nointent");
    let mut hog = spawn_hog(&m, &["--rss", "10"]);
    let fs = SmallFs::new();
    let log = fs.0.path().join("kills.jsonl");
    let executor = executor(&log, OnLogFailure::SkipKill);
    fs.fill();
    let report = executor
        .execute(decision(&hog, &m, start_ticks(hog.pid()), KillAction::Kill))
        .await;
    assert_eq!(report.outcome(), OutcomeKind::NotLogged, "{report:?}");
    assert!(!report.intent_logged);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!hog.has_exited(), "killed without an intent record");
    let ledger = executor.ledger();
    assert_eq!(ledger.intent_write_failures_total, 1);
}
