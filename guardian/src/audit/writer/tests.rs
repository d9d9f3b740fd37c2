use std::{fs, io::Write as _};

use super::*;
use crate::{
    audit::{files::log_files, verify, verify::ChainStart},
    config::Bytes,
};

fn config(dir: &Path) -> KillLogConfig {
    KillLogConfig {
        path: dir.join("sub/dir/kills.jsonl"),
        ..KillLogConfig::default()
    }
}

/// Writes `decisions` intent+outcome pairs.
fn write_decisions(log: &mut KillLog, decisions: i32) {
    for pid in 0..decisions {
        let seq = log
            .write_intent(&Intent::sample(1000 + pid))
            .expect("intent");
        log.write_outcome(&Outcome::sample(seq, 1000 + pid))
            .expect("outcome");
    }
}

fn verify_log(path: &Path) -> verify::VerifyReport {
    verify(&log_files(path).expect("log files")).expect("verify")
}

#[test]
fn records_are_chained_redacted_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let mut log = KillLog::open(&config).expect("open");
    assert_eq!(log.write_intent(&Intent::sample(42)).expect("intent"), 1);
    assert_eq!(
        log.write_outcome(&Outcome::sample(1, 42)).expect("outcome"),
        2
    );
    assert_eq!(
        (log.records_written(), log.failures(), log.last_seq()),
        (2, 0, 2)
    );
    let text = fs::read_to_string(&config.path).expect("read");
    assert!(!text.contains("s3cr3t"), "secret leaked: {text}");
    assert!(text.contains("--jwt-secret=[REDACTED]"));
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "intent");
    assert_eq!(lines[0]["prev_hash"], GENESIS_HASH);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    assert_eq!(lines[1]["outcome"], "exited");
    assert_eq!(lines[1]["hash"].as_str(), Some(log.last_hash()));
    let report = verify_log(&config.path);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 2);
    assert_eq!(report.chain_start, Some(ChainStart::Genesis));
}

#[test]
fn chain_continues_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    write_decisions(&mut KillLog::open(&config).expect("open"), 2);
    let mut log = KillLog::open(&config).expect("reopen");
    assert_eq!(log.last_seq(), 4);
    assert_eq!(log.write_intent(&Intent::sample(7)).expect("intent"), 5);
    let report = verify_log(&config.path);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 5);
}

#[test]
fn torn_tail_is_cut_and_the_chain_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    write_decisions(&mut KillLog::open(&config).expect("open"), 1);
    let mut file = OpenOptions::new()
        .append(true)
        .open(&config.path)
        .expect("open");
    file.write_all(b"{\"v\":1,\"seq\":3,\"time\":\"20")
        .expect("tear");
    drop(file);
    assert!(verify_log(&config.path).torn_tail.is_some());
    let mut log = KillLog::open(&config).expect("reopen");
    assert_eq!(log.write_intent(&Intent::sample(9)).expect("intent"), 3);
    let report = verify_log(&config.path);
    assert!(report.is_ok() && report.torn_tail.is_none(), "{report}");
    assert_eq!(report.records, 3);
}

#[test]
fn a_file_holding_only_a_torn_line_continues_the_rotated_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    write_decisions(&mut KillLog::open(&config).expect("open"), 1);
    // A crash right after a rotation's rename, then a torn first write.
    fs::rename(&config.path, files::rotated_path(&config.path, 1)).expect("rename");
    fs::write(&config.path, b"{\"v\":1,").expect("tear");
    let mut log = KillLog::open(&config).expect("reopen");
    assert_eq!(log.write_intent(&Intent::sample(9)).expect("intent"), 3);
    let report = verify_log(&config.path);
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.records, report.files.len()), (3, 2));
}

#[test]
fn an_edited_last_record_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    write_decisions(&mut KillLog::open(&config).expect("open"), 1);
    let text = fs::read_to_string(&config.path).expect("read");
    fs::write(&config.path, text.replace("\"exited\"", "\"survived\"")).expect("edit");
    match KillLog::open(&config) {
        Err(AuditError::Corrupt { reason, .. }) => assert!(reason.contains("hash"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn rotation_keeps_the_chain_and_drops_beyond_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = KillLogConfig {
        max_file_bytes: Bytes(3000),
        keep_files: 2,
        ..config(dir.path())
    };
    let mut log = KillLog::open(&config).expect("open");
    write_decisions(&mut log, 20);
    let rotated = files::rotated_files(&config.path).expect("rotated");
    assert_eq!(
        rotated.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        vec![1, 2]
    );
    for file in log_files(&config.path).expect("files") {
        let len = fs::metadata(&file).expect("stat").len();
        assert!(len <= 3000, "{} is {len} bytes", file.display());
    }
    let report = verify_log(&config.path);
    assert!(report.is_ok(), "{report}");
    assert!(
        matches!(report.chain_start, Some(ChainStart::Unknown { .. })),
        "{report}"
    );
    assert_eq!(report.files.len(), 3);
    // The newest file's records end at the last seq written.
    drop(log);
    assert_eq!(KillLog::open(&config).expect("reopen").last_seq(), 40);
}

#[test]
fn rotation_with_room_for_every_file_keeps_the_whole_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = KillLogConfig {
        max_file_bytes: Bytes(2000),
        keep_files: 100,
        ..config(dir.path())
    };
    write_decisions(&mut KillLog::open(&config).expect("open"), 10);
    let report = verify_log(&config.path);
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 20);
    assert_eq!(report.chain_start, Some(ChainStart::Genesis));
    assert!(report.files.len() > 3);
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let _first = KillLog::open(&config).expect("open");
    assert!(matches!(
        KillLog::open(&config),
        Err(AuditError::Locked { .. })
    ));
}

#[test]
fn long_command_lines_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let mut log = KillLog::open(&config).expect("open");
    let mut intent = Intent::sample(1);
    intent.cmdline = format!("node {}", "é".repeat(10_000));
    log.write_intent(&intent).expect("intent");
    let text = fs::read_to_string(&config.path).expect("read");
    let record: Value = serde_json::from_str(text.trim_end()).expect("json");
    let cmdline = record["cmdline"].as_str().expect("cmdline");
    assert!(cmdline.len() < MAX_CMDLINE_BYTES + 40);
    assert!(
        cmdline.ends_with("bytes]"),
        "{}",
        &cmdline[cmdline.len() - 40..]
    );
}
