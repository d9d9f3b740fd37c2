//! Checking a kill log: every record's own hash, the sequence, and the chain of
//! `prev_hash` across the files given, oldest first.
//!
//! What this catches: an edited field (the record no longer matches its hash), a deleted,
//! inserted, duplicated or moved record (the sequence or `prev_hash` breaks at that
//! line). What no unkeyed chain can catch on its own: records cut from the very end
//! (indistinguishable from a log that simply ends there, or from a torn line after a
//! crash), records cut from the very start (indistinguishable from retention), or a
//! whole chain rewritten after an edit; the `seq` and `hash` each kill logs to journald
//! anchor the chain against those.

use std::{
    fmt,
    fs::File,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::{Map, Value};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    AuditError,
    chain::{self, FORMAT_VERSION, GENESIS_HASH},
};

/// What `verify` found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    /// Each file checked, in order, with its good records.
    pub files: Vec<FileSummary>,
    /// Good records in all files (before the first bad one).
    pub records: u64,
    /// How the chain begins (`None` when there are no records).
    pub chain_start: Option<ChainStart>,
    /// The first record that breaks the chain: tampering.
    pub first_bad: Option<BadRecord>,
    /// A final line cut short by a crash: not tampering.
    pub torn_tail: Option<TornTail>,
    /// (seq, hash) of the last good record: compare with an anchor kept elsewhere (the
    /// journald line of the latest kill) to detect records cut from the end.
    pub last: Option<(u64, String)>,
}

/// One file's share of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileSummary {
    pub path: PathBuf,
    pub records: u64,
}

/// How the chain begins.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", tag = "start")]
pub enum ChainStart {
    /// With the first record ever (seq 1, all-zero `prev_hash`).
    Genesis,
    /// With a record whose predecessor is not in the files given (dropped by retention,
    /// or not given): accepted, since it cannot be checked.
    Unknown { seq: u64, prev_hash: String },
}

/// The first record that fails, by file and line (1-based).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BadRecord {
    pub path: PathBuf,
    pub line: u64,
    pub seq: Option<u64>,
    pub reason: String,
}

/// A last line without its newline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TornTail {
    pub path: PathBuf,
    pub line: u64,
    pub bytes: usize,
}

impl VerifyReport {
    /// True when no record was tampered with (a torn tail is fine).
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Verifies the files in the order given (oldest first), as one chain.
pub fn verify(paths: &[PathBuf]) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        files: Vec::new(),
        records: 0,
        chain_start: None,
        first_bad: None,
        torn_tail: None,
        last: None,
    };
    let mut last: Option<(u64, String)> = None;
    for (index, path) in paths.iter().enumerate() {
        let newest = index + 1 == paths.len();
        report.files.push(FileSummary {
            path: path.clone(),
            records: 0,
        });
        if let Some(bad) = verify_file(path, newest, &mut last, &mut report)? {
            report.first_bad = Some(bad);
            break;
        }
    }
    report.last = last;
    Ok(report)
}

/// Checks one file; returns the first bad record, if any.
fn verify_file(
    path: &Path,
    newest: bool,
    last: &mut Option<(u64, String)>,
    report: &mut VerifyReport,
) -> Result<Option<BadRecord>, AuditError> {
    let file = File::open(path).map_err(|error| AuditError::io("open", path, error))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|error| AuditError::io("read", path, error))?;
        if read == 0 {
            return Ok(None);
        }
        number += 1;
        let bad = |seq, reason: String| BadRecord {
            path: path.to_path_buf(),
            line: number,
            seq,
            reason,
        };
        if line.pop() != Some(b'\n') {
            if newest {
                report.torn_tail = Some(TornTail {
                    path: path.to_path_buf(),
                    line: number,
                    bytes: read,
                });
                return Ok(None);
            }
            return Ok(Some(bad(
                None,
                "last line has no newline in a file that is not the newest: cut short".into(),
            )));
        }
        let record = match check_record(&line) {
            Ok(record) => record,
            Err((seq, reason)) => return Ok(Some(bad(seq, reason))),
        };
        if let Err(reason) = check_link(&record, last.as_ref()) {
            return Ok(Some(bad(Some(record.seq), reason)));
        }
        if last.is_none() {
            report.chain_start = Some(if record.prev_hash == GENESIS_HASH {
                ChainStart::Genesis
            } else {
                ChainStart::Unknown {
                    seq: record.seq,
                    prev_hash: record.prev_hash.clone(),
                }
            });
        }
        *last = Some((record.seq, record.hash));
        report.records += 1;
        if let Some(summary) = report.files.last_mut() {
            summary.records += 1;
        }
    }
}

/// The chain fields of a record that checked out against its own hash.
struct Checked {
    seq: u64,
    prev_hash: String,
    hash: String,
}

/// Checks a record on its own: shape, format version, time, and its hash.
fn check_record(line: &[u8]) -> Result<Checked, (Option<u64>, String)> {
    let record: Map<String, Value> = serde_json::from_slice(line)
        .map_err(|error| (None, format!("not a JSON object ({error})")))?;
    let seq = record.get("seq").and_then(Value::as_u64);
    let fail = |reason: &str| (seq, reason.to_string());
    let seq = seq.ok_or_else(|| fail("no integer `seq`"))?;
    let text = |key: &str| record.get(key).and_then(Value::as_str);
    if record.get("v").and_then(Value::as_u64) != Some(FORMAT_VERSION) {
        return Err(fail("`v` is not format version 1"));
    }
    let hash = text("hash")
        .filter(|hash| chain::is_hash(hash))
        .ok_or_else(|| fail("no 64-hex-digit `hash`"))?;
    let prev_hash = text("prev_hash")
        .filter(|hash| chain::is_hash(hash))
        .ok_or_else(|| fail("no 64-hex-digit `prev_hash`"))?;
    if !matches!(text("kind"), Some("intent" | "outcome")) {
        return Err(fail("`kind` is neither \"intent\" nor \"outcome\""));
    }
    if text("time").is_none_or(|time| OffsetDateTime::parse(time, &Rfc3339).is_err()) {
        return Err(fail("`time` is not an RFC 3339 time"));
    }
    if chain::record_hash(&record) != hash {
        return Err(fail(
            "content does not match its hash: the record was edited",
        ));
    }
    Ok(Checked {
        seq,
        prev_hash: prev_hash.to_string(),
        hash: hash.to_string(),
    })
}

/// Checks that a record follows the one before it.
fn check_link(record: &Checked, last: Option<&(u64, String)>) -> Result<(), String> {
    match last {
        None if record.prev_hash == GENESIS_HASH && record.seq != 1 => Err(format!(
            "starts a chain (all-zero prev_hash) but has seq {}, not 1",
            record.seq
        )),
        None => Ok(()),
        Some((last_seq, last_hash)) => {
            let expected = last_seq + 1;
            if record.seq > expected {
                Err(format!(
                    "expected seq {expected}, found {}: {} record(s) missing here (deleted or moved)",
                    record.seq,
                    record.seq - expected
                ))
            } else if record.seq < expected {
                Err(format!(
                    "expected seq {expected}, found {}: records out of order or duplicated",
                    record.seq
                ))
            } else if &record.prev_hash != last_hash {
                Err(format!(
                    "prev_hash does not match the hash of seq {last_seq} before it: \
                     a record was replaced or inserted"
                ))
            } else {
                Ok(())
            }
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_file: Vec<String> = self
            .files
            .iter()
            .map(|file| format!("{}: {}", file.path.display(), file.records))
            .collect();
        match &self.first_bad {
            Some(bad) => {
                let seq = bad
                    .seq
                    .map(|seq| format!(" (seq {seq})"))
                    .unwrap_or_default();
                writeln!(
                    f,
                    "TAMPERED: {} line {}{seq}: {}",
                    bad.path.display(),
                    bad.line,
                    bad.reason
                )?;
                writeln!(
                    f,
                    "{} good record(s) before it ({})",
                    self.records,
                    per_file.join(", ")
                )?;
            }
            None => writeln!(
                f,
                "ok: {} record(s) in {} file(s) verified ({})",
                self.records,
                self.files.len(),
                per_file.join(", ")
            )?,
        }
        match &self.chain_start {
            Some(ChainStart::Genesis) => {
                writeln!(f, "chain starts at the first record ever (seq 1)")?
            }
            Some(ChainStart::Unknown { seq, prev_hash }) => writeln!(
                f,
                "note: chain starts at seq {seq}, whose predecessor (hash {prev_hash}) is not in \
                 these files: older files were dropped by retention or not given; accepted unchecked"
            )?,
            None => writeln!(f, "the log holds no records")?,
        }
        if let (None, Some((seq, hash))) = (&self.first_bad, &self.last) {
            writeln!(f, "last record: seq {seq}, hash {hash}")?;
        }
        if let Some(torn) = &self.torn_tail {
            writeln!(
                f,
                "note: {} line {} is a torn record ({} bytes, no newline): a crash during a \
                 write, not tampering; it was never acknowledged, is not counted, and the \
                 guardian cuts it off and continues the chain on its next start",
                torn.path.display(),
                torn.line,
                torn.bytes
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
