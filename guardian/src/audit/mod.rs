//! The kill log: append-only JSON Lines, hash-chained, fsynced before any signal, with
//! secrets redacted from command lines (by [`crate::redact`]).
//!
//! Each kill decision is an `intent` record, written and fsynced before any signal, then
//! an `outcome` record. Every record carries `seq`, `time`, `host`, `kind`, the fields of
//! the [`Intent`] or [`Outcome`], `prev_hash` (the previous record's `hash`) and `hash`
//! (SHA-256 over its canonical form, specified in [`chain`]), so the files are one chain.
//! Files rotate by size (`kills.jsonl` → `kills.jsonl.1` → ...) and the chain continues
//! into the new file; [`verify`] checks it; [`list`] reads it back.

pub mod chain;
mod error;
pub mod files;
pub mod list;
pub mod record;
mod tail;
pub mod verify;
mod writer;

pub use error::AuditError;
pub use record::{Intent, Outcome, OutcomeKind, RecordKind, TrendTrigger, Trigger};
pub use verify::{VerifyReport, verify};
pub use writer::{KillLog, MAX_CMDLINE_BYTES, intent_fields, outcome_fields, seal_record};
