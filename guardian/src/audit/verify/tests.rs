use std::fs;

use super::*;
use crate::{
    audit::{Intent, KillLog, Outcome},
    config::{Bytes, KillLogConfig},
};

/// A log of `decisions` intent+outcome pairs; returns its path.
fn sample_log(dir: &Path, decisions: i32) -> PathBuf {
    let path = dir.join("kills.jsonl");
    let mut log = KillLog::open(&KillLogConfig {
        path: path.clone(),
        ..KillLogConfig::default()
    })
    .expect("open");
    for pid in 0..decisions {
        let seq = log.write_intent(&Intent::sample(pid)).expect("intent");
        log.write_outcome(&Outcome::sample(seq, pid))
            .expect("outcome");
    }
    path
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").expect("write");
}

fn first_bad(path: &Path) -> BadRecord {
    let report = verify(&[path.to_path_buf()]).expect("verify");
    match &report.first_bad {
        Some(bad) => bad.clone(),
        None => panic!("tampering missed:\n{report}"),
    }
}

#[test]
fn an_intact_log_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 3);
    let report = verify(&[path]).expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 6);
    assert_eq!(report.chain_start, Some(ChainStart::Genesis));
    assert!(
        report
            .to_string()
            .starts_with("ok: 6 record(s) in 1 file(s)")
    );
    let last_line = lines(&report.files[0].path).pop().expect("a line");
    let last: Value = serde_json::from_str(&last_line).expect("json");
    let (seq, hash) = report.last.clone().expect("last record");
    assert_eq!(
        (Some(seq), Some(hash.as_str())),
        (last["seq"].as_u64(), last["hash"].as_str())
    );
    assert!(
        report
            .to_string()
            .contains(&format!("last record: seq 6, hash {hash}"))
    );
}

#[test]
fn an_edited_field_is_caught_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 3);
    let mut lines = lines(&path);
    lines[2] = lines[2].replace("\"pid\":1,", "\"pid\":99,");
    write_lines(&path, &lines);
    let bad = first_bad(&path);
    assert_eq!((bad.line, bad.seq), (3, Some(3)));
    assert!(bad.reason.contains("edited"), "{}", bad.reason);
}

#[test]
fn a_deleted_record_is_caught_where_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 3);
    let mut lines = lines(&path);
    lines.remove(3);
    write_lines(&path, &lines);
    let bad = first_bad(&path);
    assert_eq!((bad.line, bad.seq), (4, Some(5)));
    assert!(bad.reason.contains("missing"), "{}", bad.reason);
}

#[test]
fn reordered_records_are_caught_at_the_first_moved_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 3);
    let mut lines = lines(&path);
    lines.swap(1, 2);
    write_lines(&path, &lines);
    let bad = first_bad(&path);
    assert_eq!((bad.line, bad.seq), (2, Some(3)));
}

#[test]
fn a_duplicated_record_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 2);
    let mut lines = lines(&path);
    lines.insert(2, lines[1].clone());
    write_lines(&path, &lines);
    let bad = first_bad(&path);
    assert_eq!(bad.line, 3);
    assert!(
        bad.reason.contains("out of order or duplicated"),
        "{}",
        bad.reason
    );
}

#[test]
fn a_replaced_record_with_a_valid_hash_breaks_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 2);
    let mut lines = lines(&path);
    // Rewrite record 2 with a recomputed hash: the next record no longer links to it.
    let mut record: Map<String, Value> = serde_json::from_str(&lines[1]).expect("json");
    record.insert("outcome".into(), "survived".into());
    record.remove("hash");
    let (line, _) = chain::seal(&record);
    lines[1] = String::from_utf8(line)
        .expect("utf8")
        .trim_end()
        .to_string();
    write_lines(&path, &lines);
    let bad = first_bad(&path);
    assert_eq!((bad.line, bad.seq), (3, Some(3)));
    assert!(bad.reason.contains("prev_hash"), "{}", bad.reason);
}

#[test]
fn a_torn_last_line_is_a_note_not_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 2);
    let text = fs::read_to_string(&path).expect("read");
    fs::write(&path, &text[..text.len() - 30]).expect("truncate");
    let report = verify(std::slice::from_ref(&path)).expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, 3);
    let torn = report.torn_tail.as_ref().expect("torn tail");
    assert_eq!(torn.line, 4);
    assert!(report.to_string().contains("torn record"), "{report}");
}

#[test]
fn a_torn_line_in_an_older_file_is_tampering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 1);
    let text = fs::read_to_string(&path).expect("read");
    fs::write(&path, &text[..text.len() - 5]).expect("truncate");
    let newer = dir.path().join("newer.jsonl");
    fs::write(&newer, "").expect("write");
    let report = verify(&[path, newer]).expect("verify");
    assert_eq!(report.first_bad.map(|bad| bad.line), Some(2));
}

#[test]
fn files_given_out_of_order_are_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kills.jsonl");
    let config = KillLogConfig {
        path: path.clone(),
        max_file_bytes: Bytes(1500),
        keep_files: 10,
        ..KillLogConfig::default()
    };
    let mut log = KillLog::open(&config).expect("open");
    for pid in 0..4 {
        log.write_intent(&Intent::sample(pid)).expect("intent");
    }
    let files = crate::audit::files::log_files(&path).expect("files");
    assert!(files.len() >= 2);
    assert!(verify(&files).expect("verify").is_ok());
    let reversed: Vec<PathBuf> = files.iter().rev().cloned().collect();
    let report = verify(&reversed).expect("verify");
    assert!(!report.is_ok(), "{report}");
}

#[test]
fn a_chain_starting_after_retention_is_accepted_and_said_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 2);
    let mut lines = lines(&path);
    lines.remove(0);
    write_lines(&path, &lines);
    let report = verify(&[path]).expect("verify");
    assert!(report.is_ok(), "{report}");
    assert!(matches!(
        report.chain_start,
        Some(ChainStart::Unknown { seq: 2, .. })
    ));
    assert!(report.to_string().contains("retention"), "{report}");
}

#[test]
fn a_restarted_genesis_in_the_middle_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = sample_log(dir.path(), 1);
    let other = tempfile::tempdir().expect("tempdir");
    let second = sample_log(other.path(), 1);
    let report = verify(&[first, second]).expect("verify");
    let bad = report.first_bad.expect("bad");
    assert_eq!(bad.line, 1);
}

#[test]
fn garbage_lines_are_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = sample_log(dir.path(), 1);
    let mut lines = lines(&path);
    lines.insert(1, "not json".into());
    write_lines(&path, &lines);
    let bad = first_bad(&path);
    assert_eq!((bad.line, bad.seq), (2, None));
    assert!(bad.reason.contains("not a JSON object"), "{}", bad.reason);
}
