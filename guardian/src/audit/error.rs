//! What can go wrong with the kill log, each variant naming the file involved.

use std::path::PathBuf;

/// Errors of the kill log: writing, reading, locking.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A filesystem operation failed; `op` says which ("append to", "fsync", "rename").
    #[error("kill log: cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process (a second guardian) holds the log's lock.
    #[error(
        "kill log {path} is in use by another process (lock {lock} is held); \
         stop the other guardian or point --kill-log elsewhere"
    )]
    Locked { path: PathBuf, lock: PathBuf },
    /// The last complete record cannot continue the chain (edited or damaged).
    #[error(
        "kill log {path}: the last complete record (byte offset {offset}) is not valid: {reason}; \
         run `guardian audit verify {path}`, keep the file as evidence and move it aside \
         to start a new chain"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Neither the log nor any rotated predecessor exists.
    #[error("no kill log at {path} (nor rotated files {path}.N)")]
    Missing { path: PathBuf },
    /// A record could not be encoded (a bug: every record type serializes).
    #[error("kill log: cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
    /// The clock could not be formatted as RFC 3339.
    #[error("kill log: cannot format the current time: {0}")]
    Time(#[from] time::error::Format),
}

impl AuditError {
    /// Shorthand for [`AuditError::Io`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
