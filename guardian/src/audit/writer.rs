//! [`KillLog`]: appends hash-chained records, each fsynced before the call returns,
//! rotates by size with retention, and continues the chain across files and restarts.

use std::{
    fs::{DirBuilder, File, OpenOptions},
    io::{self, Write as _},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    AuditError, Intent, Outcome, RecordKind,
    chain::{self, FORMAT_VERSION, GENESIS_HASH},
    files,
    tail::{Tail, read_tail},
};
use crate::{
    config::KillLogConfig,
    redact::{redact_cmdline, redact_text},
};

/// Longest command line kept in a record (after redaction); the rest is cut and counted.
pub const MAX_CMDLINE_BYTES: usize = 8192;

/// The kill log, open for appending. One per log file: a second writer (another
/// guardian on the same path) is refused by a lock.
#[derive(Debug)]
pub struct KillLog {
    path: PathBuf,
    dir: PathBuf,
    max_file_bytes: u64,
    keep_files: u32,
    /// The current file, opened on first need after a rotation.
    file: Option<File>,
    /// Length of the current file's complete records.
    len: u64,
    /// A failed write may have left bytes past `len`; they are cut before the next one.
    dirty: bool,
    next_seq: u64,
    last_hash: String,
    host: String,
    records_written: u64,
    failures: u64,
    _lock: Flock<File>,
}

impl KillLog {
    /// Opens (or creates, with its directories) the log at `config.path` and finds where
    /// the chain stands from the last record of the current file (or, if it has none, of
    /// the newest rotated one). A torn last line left by a crash is reported with
    /// `tracing::warn` and cut off; the chain continues after the last complete record.
    pub fn open(config: &KillLogConfig) -> Result<KillLog, AuditError> {
        let path = config.path.clone();
        let dir = files::parent_dir(&path);
        DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(&dir)
            .map_err(|error| AuditError::io("create directory", &dir, error))?;
        let lock = lock(&path, &dir)?;
        let (mut file, created) = open_log_file(&path)?;
        if created {
            files::sync_dir(&dir)?;
        }
        let tail = read_tail(&mut file).map_err(|error| AuditError::io("read", &path, error))?;
        if !tail.torn.is_empty() {
            cut_torn_tail(&mut file, &path, &tail)?;
        }
        let head = match &tail.last_line {
            Some((offset, line)) => Some(parse_head(&path, *offset, line)?),
            None => rotated_head(&path)?,
        };
        let (last_seq, last_hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
        tracing::debug!(path = %path.display(), last_seq, "kill log open");
        Ok(KillLog {
            dir,
            max_file_bytes: config.max_file_bytes.0,
            keep_files: config.keep_files,
            file: Some(file),
            len: tail.good_len,
            dirty: false,
            next_seq: last_seq + 1,
            last_hash,
            host: hostname(),
            records_written: 0,
            failures: 0,
            _lock: lock,
            path,
        })
    }

    /// Appends an intent record (command line and reason redacted) and fsyncs it before
    /// returning its sequence number. On error nothing was added to the log.
    pub fn write_intent(&mut self, intent: &Intent) -> Result<u64, AuditError> {
        let fields = intent_fields(intent);
        self.append(RecordKind::Intent, fields)
    }

    /// Appends an outcome record (detail redacted), fsynced before returning its
    /// sequence number. On error nothing was added to the log.
    pub fn write_outcome(&mut self, outcome: &Outcome) -> Result<u64, AuditError> {
        let fields = outcome_fields(outcome);
        self.append(RecordKind::Outcome, fields)
    }

    /// Rotation settings from a reloaded config; they apply from the next record.
    pub fn set_rotation(&mut self, max_file_bytes: u64, keep_files: u32) {
        self.max_file_bytes = max_file_bytes;
        self.keep_files = keep_files;
    }

    /// The current file's path (the configured one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records written since open (for metrics).
    pub fn records_written(&self) -> u64 {
        self.records_written
    }

    /// Records that could not be written since open (for metrics).
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Sequence number of the last record in the log (0 when it is empty).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Hash of the last record: logging it elsewhere (journald) anchors the chain.
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }

    fn append(
        &mut self,
        kind: RecordKind,
        fields: Result<Map<String, Value>, AuditError>,
    ) -> Result<u64, AuditError> {
        let result = fields.and_then(|fields| self.try_append(kind, fields));
        match &result {
            Ok(_) => self.records_written += 1,
            Err(error) => {
                self.failures += 1;
                tracing::warn!(path = %self.path.display(), %error, kind = kind.as_str(), "kill log record not written");
            }
        }
        result
    }

    fn try_append(
        &mut self,
        kind: RecordKind,
        fields: Map<String, Value>,
    ) -> Result<u64, AuditError> {
        if self.dirty {
            self.cut_failed_write()?;
        }
        let seq = self.next_seq;
        let (line, hash) = seal_record(kind, fields, seq, &self.host, &self.last_hash)?;
        if self.len > 0 && self.len + line.len() as u64 > self.max_file_bytes {
            self.rotate();
        }
        let file = self.current()?;
        let written = file
            .write_all(&line)
            .map_err(|error| ("append a record to", error))
            .and_then(|()| file.sync_data().map_err(|error| ("fsync", error)));
        if let Err((op, error)) = written {
            self.dirty = true;
            if let Err(cut) = self.cut_failed_write() {
                tracing::warn!(%cut, "cannot cut a failed write from the kill log yet; retrying before the next record");
            }
            return Err(AuditError::io(op, &self.path, error));
        }
        self.len += line.len() as u64;
        self.next_seq += 1;
        self.last_hash = hash;
        Ok(seq)
    }

    /// Truncates the current file back to its complete records.
    fn cut_failed_write(&mut self) -> Result<(), AuditError> {
        if let Some(file) = &self.file {
            file.set_len(self.len)
                .and_then(|()| file.sync_all())
                .map_err(|error| AuditError::io("cut a failed write from", &self.path, error))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Moves the current file aside; on failure the log goes on in the current file
    /// (a record matters more than the size limit).
    fn rotate(&mut self) {
        match files::rotate(&self.path, self.keep_files) {
            Ok(()) => {
                self.file = None;
                self.len = 0;
                self.dirty = false;
                if let Err(error) = files::sync_dir(&self.dir) {
                    tracing::warn!(%error, "kill log rotated, but its directory could not be fsynced");
                }
                tracing::info!(path = %self.path.display(), last_seq = self.last_seq(), "kill log rotated");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot rotate the kill log; writing on past max_file_bytes");
            }
        }
    }

    /// The current file, created (and its directory entry fsynced) after a rotation.
    fn current(&mut self) -> Result<&mut File, AuditError> {
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                let (file, created) = open_log_file(&self.path)?;
                if created {
                    files::sync_dir(&self.dir)?;
                }
                self.len = file
                    .metadata()
                    .map_err(|error| AuditError::io("stat", &self.path, error))?
                    .len();
                file
            }
        };
        Ok(self.file.insert(file))
    }
}

/// The fields of an intent record: command line and reason redacted, the command line
/// capped at [`MAX_CMDLINE_BYTES`].
pub fn intent_fields(intent: &Intent) -> Result<Map<String, Value>, AuditError> {
    let mut intent = intent.clone();
    intent.cmdline = cap(redact_cmdline(&intent.cmdline));
    intent.reason = redact_text(&intent.reason);
    object(serde_json::to_value(&intent)?)
}

/// The fields of an outcome record: detail redacted.
pub fn outcome_fields(outcome: &Outcome) -> Result<Map<String, Value>, AuditError> {
    let mut outcome = outcome.clone();
    outcome.detail = outcome.detail.as_deref().map(redact_text);
    object(serde_json::to_value(&outcome)?)
}

fn object(value: Value) -> Result<Map<String, Value>, AuditError> {
    match value {
        Value::Object(fields) => Ok(fields),
        other => Err(AuditError::Encode(serde::ser::Error::custom(format!(
            "a record serialized to {other}, not to an object"
        )))),
    }
}

/// Adds the envelope (`v`, `seq`, `time` now, `host`, `kind`, `prev_hash`) to a record's
/// fields and seals it: the line to append and its hash.
pub fn seal_record(
    kind: RecordKind,
    mut record: Map<String, Value>,
    seq: u64,
    host: &str,
    prev_hash: &str,
) -> Result<(Vec<u8>, String), AuditError> {
    record.insert("v".into(), FORMAT_VERSION.into());
    record.insert("seq".into(), seq.into());
    record.insert(
        "time".into(),
        OffsetDateTime::now_utc().format(&Rfc3339)?.into(),
    );
    record.insert("host".into(), host.into());
    record.insert("kind".into(), kind.as_str().into());
    record.insert("prev_hash".into(), prev_hash.into());
    record.remove("hash");
    Ok(chain::seal(&record))
}

/// Takes the exclusive lock `.<name>.lock` beside the log.
fn lock(path: &Path, dir: &Path) -> Result<Flock<File>, AuditError> {
    let name = path
        .file_name()
        .map_or_else(|| "kills.jsonl".into(), |name| name.to_string_lossy());
    let lock_path = dir.join(format!(".{name}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o640)
        .open(&lock_path)
        .map_err(|error| AuditError::io("open lock file", &lock_path, error))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            AuditError::Locked {
                path: path.to_path_buf(),
                lock: lock_path.clone(),
            }
        } else {
            AuditError::io("lock", &lock_path, io::Error::from(errno))
        }
    })
}

/// Opens the log for reading and appending; says whether it was created.
fn open_log_file(path: &Path) -> Result<(File, bool), AuditError> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).mode(0o640);
    match options.clone().create_new(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => options
            .open(path)
            .map(|file| (file, false))
            .map_err(|error| AuditError::io("open", path, error)),
        Err(error) => Err(AuditError::io("create", path, error)),
    }
}

/// Cuts a record a crash left half-written, after saying so.
fn cut_torn_tail(file: &mut File, path: &Path, tail: &Tail) -> Result<(), AuditError> {
    let preview: String = String::from_utf8_lossy(&tail.torn)
        .chars()
        .take(200)
        .collect();
    tracing::warn!(
        path = %path.display(),
        offset = tail.good_len,
        bytes = tail.torn.len(),
        fragment = %preview,
        "kill log ends with a torn record (a crash during a write, never acknowledged); \
         cutting it off and continuing the chain after the last complete record"
    );
    file.set_len(tail.good_len)
        .and_then(|()| file.sync_all())
        .map_err(|error| AuditError::io("cut the torn last line of", path, error))
}

/// (seq, hash) of a complete record, checked against its own hash.
fn parse_head(path: &Path, offset: u64, line: &[u8]) -> Result<(u64, String), AuditError> {
    let corrupt = |reason: String| AuditError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let record: Map<String, Value> = serde_json::from_slice(line)
        .map_err(|error| corrupt(format!("not a JSON object ({error})")))?;
    let seq = record
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| corrupt("no integer `seq`".into()))?;
    let hash = record
        .get("hash")
        .and_then(Value::as_str)
        .filter(|hash| chain::is_hash(hash))
        .ok_or_else(|| corrupt("no 64-hex-digit `hash`".into()))?;
    if chain::record_hash(&record) != hash {
        return Err(corrupt("its content does not match its hash".into()));
    }
    Ok((seq, hash.to_string()))
}

/// Where the chain stands in the newest rotated file that has a complete record.
fn rotated_head(path: &Path) -> Result<Option<(u64, String)>, AuditError> {
    for (_, rotated) in files::rotated_files(path)? {
        let mut file =
            File::open(&rotated).map_err(|error| AuditError::io("open", &rotated, error))?;
        let tail = read_tail(&mut file).map_err(|error| AuditError::io("read", &rotated, error))?;
        if let Some((offset, line)) = tail.last_line {
            return parse_head(&rotated, offset, &line).map(Some);
        }
    }
    Ok(None)
}

/// Cuts an over-long command line at a character boundary, saying how much was cut.
fn cap(mut cmdline: String) -> String {
    if cmdline.len() <= MAX_CMDLINE_BYTES {
        return cmdline;
    }
    let mut end = MAX_CMDLINE_BYTES;
    while !cmdline.is_char_boundary(end) {
        end -= 1;
    }
    let cut = cmdline.len() - end;
    cmdline.truncate(end);
    cmdline.push_str(&format!(" [truncated {cut} bytes]"));
    cmdline
}

/// This host's name, as the kernel has it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests;
