//! Kill log throughput: intent+outcome records per second with an fsync per record (what
//! the daemon does), beside a baseline measured in the same run on the same disk: the
//! same records, encoded the same way, appended without fsync. Informational.
//!
//! `cargo bench -p guardian --bench killlog` (KILLLOG_BENCH_DECISIONS sets the count).

use std::{
    fs::OpenOptions,
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use guardian::{
    audit::{
        Intent, KillLog, Outcome, OutcomeKind, RecordKind, chain::GENESIS_HASH, intent_fields,
        outcome_fields, seal_record,
    },
    config::KillLogConfig,
};

fn intent(pid: i32) -> Intent {
    Intent {
        rule: "node-leak".into(),
        dry_run: false,
        pid,
        start_ticks: 4_242_424,
        comm: "node".into(),
        cmdline: "node dist/main.js --port 3000 --jwt-secret=abcdef0123456789 \
                  --db postgres://app:hunter2@db:5432/app"
            .into(),
        uid: 1000,
        user: Some("app".into()),
        cgroup: Some("/system.slice/api.service".into()),
        classification: serde_json::json!({"class": "host", "unit": "api.service"}),
        rss_bytes: 420 << 20,
        threshold_bytes: Some(300 << 20),
        reason: "RSS 420 MiB above the threshold 300 MiB for 10s".into(),
        signals: vec!["SIGTERM".into(), "SIGKILL".into()],
        trigger: None,
    }
}

fn outcome(intent_seq: u64, pid: i32) -> Outcome {
    Outcome {
        intent_seq,
        rule: "node-leak".into(),
        pid,
        start_ticks: 4_242_424,
        outcome: OutcomeKind::Exited,
        signals_sent: vec!["SIGTERM".into()],
        time_to_exit_s: Some(0.031),
        detail: None,
    }
}

/// `decisions` intent+outcome pairs through [`KillLog`] (fsync per record).
fn with_fsync(dir: &Path, decisions: i32) -> Duration {
    let config = KillLogConfig {
        path: dir.join("fsync/kills.jsonl"),
        ..KillLogConfig::default()
    };
    let mut log = KillLog::open(&config).expect("open kill log");
    let start = Instant::now();
    for pid in 0..decisions {
        let seq = log.write_intent(&intent(pid)).expect("intent");
        log.write_outcome(&outcome(seq, pid)).expect("outcome");
    }
    start.elapsed()
}

/// The same records, encoded and chained the same way, appended without fsync.
fn without_fsync(dir: &Path, decisions: i32) -> Duration {
    let path = dir.join("kills-nosync.jsonl");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open baseline file");
    let mut prev = GENESIS_HASH.to_string();
    let mut seq = 0;
    let start = Instant::now();
    for pid in 0..decisions {
        for kind in [RecordKind::Intent, RecordKind::Outcome] {
            seq += 1;
            let fields = match kind {
                RecordKind::Intent => intent_fields(&intent(pid)),
                RecordKind::Outcome => outcome_fields(&outcome(seq - 1, pid)),
            }
            .expect("fields");
            let (line, hash) = seal_record(kind, fields, seq, "bench", &prev).expect("seal");
            file.write_all(&line).expect("write");
            prev = hash;
        }
    }
    start.elapsed()
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let decisions: i32 = std::env::var("KILLLOG_BENCH_DECISIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    // On the disk the target directory lives on, not a tmpfs /tmp.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let synced = with_fsync(dir.path(), decisions);
    let unsynced = without_fsync(dir.path(), decisions);
    let records = f64::from(decisions) * 2.0;
    let rate = |elapsed: Duration| records / elapsed.as_secs_f64();
    println!("killlog: {decisions} decisions = {records} records (intent + outcome)");
    println!(
        "  with fsync per record (KillLog):   {:>10.0} records/s  ({:.3} ms/record)",
        rate(synced),
        synced.as_secs_f64() * 1e3 / records
    );
    println!(
        "  same records without fsync:        {:>10.0} records/s  ({:.3} ms/record)",
        rate(unsynced),
        unsynced.as_secs_f64() * 1e3 / records
    );
    println!(
        "  ratio without/with fsync:          {:>10.1}x",
        rate(unsynced) / rate(synced)
    );
}
