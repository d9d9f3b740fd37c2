//! The kill log: append-only JSON Lines, hash-chained, fsynced before any signal, with
//! secrets redacted from command lines. (Owned by the kill-log work.)

pub mod record;

pub use record::{Intent, Outcome, OutcomeKind};
