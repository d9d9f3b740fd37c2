//! What became of one decision, for the API, the metrics, the ledger and the caller:
//! the intent as the kill log has it (command line redacted) and the kill's result,
//! each kept once rather than copied field by field.

use serde::Serialize;

use crate::audit::{Intent, OutcomeKind};

use super::{RuleKind, killer::KillResult};

/// One executed decision. Serialized flat: the intent's fields, the result's, then the
/// kill log bookkeeping.
#[derive(Clone, Debug, Serialize)]
pub struct KillReport {
    /// RFC 3339 UTC time the decision was executed.
    pub time: String,
    pub unix_time: f64,
    pub kind: RuleKind,
    /// What was decided, as written to the kill log (`cmdline` redacted and joined by
    /// spaces here).
    #[serde(flatten)]
    pub intent: Intent,
    /// How it ended.
    #[serde(flatten)]
    pub result: KillResult,
    /// Sequence number of the intent record, when it was written.
    pub intent_seq: Option<u64>,
    pub intent_logged: bool,
    pub outcome_seq: Option<u64>,
    pub outcome_write_failed: bool,
}

impl KillReport {
    /// The rule that decided.
    pub fn rule(&self) -> &str {
        &self.intent.rule
    }

    /// How the decision ended.
    pub fn outcome(&self) -> OutcomeKind {
        self.result.outcome
    }

    /// The outcome as the kill log and the metrics spell it ("exited", "dry-run").
    pub fn outcome_name(&self) -> &'static str {
        self.result.outcome.as_str()
    }
}
