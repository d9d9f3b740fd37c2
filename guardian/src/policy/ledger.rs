//! The recent kill history in memory, with counters by rule and outcome, for
//! `/api/v1/kills` and the kill metrics (the kill log on disk is the durable record).

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::report::KillReport;

/// How many reports the ledger keeps.
pub const LEDGER_HISTORY: usize = 256;

/// One counter: decisions of `rule` that ended in `outcome`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutcomeCount {
    pub rule: String,
    pub outcome: String,
    pub count: u64,
}

/// Recent decisions and counters since start.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ledger {
    /// Every decision since start, including dry runs and refused ones.
    pub decisions_total: u64,
    /// Intent records that could not be written (each one a decision not acted on, unless
    /// `on_write_failure = "kill-anyway"`).
    pub intent_write_failures_total: u64,
    /// Outcome records that could not be written.
    pub outcome_write_failures_total: u64,
    /// The last decision that ended with the process gone.
    pub last_kill: Option<KillReport>,
    #[serde(serialize_with = "serialize_counts")]
    counts: BTreeMap<(String, String), u64>,
    /// Newest last.
    pub recent: VecDeque<KillReport>,
}

fn serialize_counts<S: serde::Serializer>(
    counts: &BTreeMap<(String, String), u64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(counts.iter().map(|((rule, outcome), count)| OutcomeCount {
        rule: rule.clone(),
        outcome: outcome.clone(),
        count: *count,
    }))
}

impl Ledger {
    /// Adds a finished decision.
    pub fn record(&mut self, report: &KillReport) {
        self.decisions_total += 1;
        if !report.intent_logged {
            self.intent_write_failures_total += 1;
        }
        if report.outcome_write_failed {
            self.outcome_write_failures_total += 1;
        }
        *self
            .counts
            .entry((report.rule().to_string(), report.outcome_name().to_string()))
            .or_default() += 1;
        if report.outcome() == crate::audit::OutcomeKind::Exited {
            self.last_kill = Some(report.clone());
        }
        if self.recent.len() == LEDGER_HISTORY {
            self.recent.pop_front();
        }
        self.recent.push_back(report.clone());
    }

    /// Decisions by rule and outcome, for metrics (cardinality: rules × outcomes).
    pub fn counts(&self) -> impl Iterator<Item = OutcomeCount> + '_ {
        self.counts
            .iter()
            .map(|((rule, outcome), count)| OutcomeCount {
                rule: rule.clone(),
                outcome: outcome.clone(),
                count: *count,
            })
    }

    /// Recent decisions, newest last.
    pub fn recent(&self) -> impl Iterator<Item = &KillReport> {
        self.recent.iter()
    }
}
