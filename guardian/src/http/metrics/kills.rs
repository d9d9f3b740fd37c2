//! Kill-switch families: rule thresholds, and decisions by rule and outcome (dry-run
//! decisions are outcome "dry-run"), exported from start with zeros for every configured
//! rule and every outcome so `increase()` sees the first kill.

use std::{collections::BTreeMap, fmt};

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{BYTES, counters, gauges},
    labels::Lv,
};
use crate::{
    audit::OutcomeKind,
    config::{Config, Scope},
    policy::{Ledger, OutcomeCount, RuleThreshold},
};

/// Every outcome a decision can have.
pub fn outcomes() -> [OutcomeKind; 7] {
    // The match makes a new outcome a compile error here until it is listed.
    let listed = |outcome: OutcomeKind| match outcome {
        OutcomeKind::Exited
        | OutcomeKind::Survived
        | OutcomeKind::Vanished
        | OutcomeKind::PermissionDenied
        | OutcomeKind::DryRun
        | OutcomeKind::NotLogged
        | OutcomeKind::Failed => outcome,
    };
    [
        OutcomeKind::Exited,
        OutcomeKind::Survived,
        OutcomeKind::Vanished,
        OutcomeKind::PermissionDenied,
        OutcomeKind::DryRun,
        OutcomeKind::NotLogged,
        OutcomeKind::Failed,
    ]
    .map(listed)
}

/// Writes the kill-switch families: thresholds as the policy resolved them, decisions
/// from the `ledger` (zero for every rule in `config` and outcome not yet seen).
pub fn encode(
    config: &Config,
    thresholds: &[RuleThreshold],
    ledger: &Ledger,
    encoder: &mut DescriptorEncoder,
) -> fmt::Result {
    let counts: Vec<OutcomeCount> = ledger.counts().collect();
    let intent_failures = ledger.intent_write_failures_total;
    let outcome_failures = ledger.outcome_write_failures_total;
    gauges(
        encoder,
        "guardian_rule_threshold",
        "RSS above which a threshold rule acts (percentages resolved against MemTotal), by rule and scope",
        Some(&BYTES),
        thresholds.iter().map(|rule| {
            let scope = match rule.scope {
                Scope::Host => "host",
                Scope::Container => "container",
                Scope::Any => "any",
            };
            (
                [("rule", Lv::Text(&rule.rule)), ("scope", Lv::Text(scope))],
                rule.threshold_bytes,
            )
        }),
    )?;
    let mut all: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let names = config
        .rules()
        .map(|rule| rule.name.as_str())
        .chain(config.orphan_rules().map(|rule| rule.name.as_str()))
        .chain(config.pressure_rules().map(|rule| rule.name.as_str()));
    for name in names {
        for outcome in outcomes() {
            all.insert((name, outcome.as_str()), 0);
        }
    }
    for count in &counts {
        all.insert((count.rule.as_str(), count.outcome.as_str()), count.count);
    }
    counters(
        encoder,
        "guardian_kill_decisions",
        "Kill decisions by rule and outcome (exited, survived, vanished, permission-denied, dry-run, not-logged, failed)",
        None,
        all.into_iter().map(|((rule, outcome), count)| {
            (
                [("rule", Lv::Text(rule)), ("outcome", Lv::Text(outcome))],
                count,
            )
        }),
    )?;
    counters(
        encoder,
        "guardian_kill_log_write_failures",
        "Kill log records that could not be written, by record (intent: the decision was not acted on unless on_write_failure = kill-anyway; outcome)",
        None,
        [
            ([("record", Lv::Text("intent"))], intent_failures),
            ([("record", Lv::Text("outcome"))], outcome_failures),
        ],
    )
}
