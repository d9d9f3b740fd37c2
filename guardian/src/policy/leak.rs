//! Leak rules: the trend detector's leak verdict, or a limit within reach, on a matching
//! host process ends in SIGTERM (then SIGKILL after the grace) before the OOM killer
//! takes it mid-request. The policy keeps the detector's last word on every process
//! (see [`TrendSignal`]); pressure rules that pick the fastest-growing victim read it too.

use std::{collections::HashMap, time::Duration};

use crate::{
    audit::{TrendTrigger, Trigger as TriggerRecord},
    config::{KillAction, LeakOn, LeakRuleConfig},
    model::ProcessKey,
    trends::{LimitKind, Subject, TrendReport, Verdict},
};

use super::{PolicyError, bytes, rules::CompiledMatchers};

/// What the trend detector last said of one process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TrendSignal {
    pub verdict: Verdict,
    /// The leak's or the rise's slope, bytes/s.
    pub slope: f64,
    /// The current rise of the memory floor, bytes/s (0 when not rising).
    pub rise: f64,
    pub confidence: f64,
    pub time_to_limit_s: Option<f64>,
    pub limit_bytes: Option<u64>,
    pub limit_kind: Option<LimitKind>,
}

impl TrendSignal {
    /// How fast the process grows now (bytes/s; 0 when it does not): the slope of a
    /// leak or a growing series, or the current rise.
    pub(crate) fn growth(&self) -> f64 {
        match self.verdict {
            Verdict::Leak | Verdict::Growing => self.slope.max(self.rise),
            Verdict::Stable | Verdict::WarmingUp => self.rise,
        }
        .max(0.0)
    }

    fn record(&self) -> TrendTrigger {
        TrendTrigger {
            verdict: self.verdict.as_str().to_string(),
            slope_bytes_per_second: self.slope,
            confidence: self.confidence,
            time_to_limit_s: self.time_to_limit_s,
            limit_bytes: self.limit_bytes,
            limit_kind: self.limit_kind.map(|kind| kind.as_str().to_string()),
        }
    }

    /// "reaches its cgroup limit 512 MiB in 4m 10s", or why it does not.
    fn limit_words(&self) -> String {
        match (self.time_to_limit_s, self.limit_bytes, self.limit_kind) {
            (Some(seconds), Some(limit), Some(kind)) => format!(
                "reaches its {} limit {} in {}",
                kind.as_str(),
                bytes(limit),
                seconds_text(seconds)
            ),
            _ => "not approaching a limit".to_string(),
        }
    }
}

/// The processes' signals from the detector's reports (cgroup series left out).
pub(crate) fn signals(reports: &[TrendReport]) -> HashMap<ProcessKey, TrendSignal> {
    reports
        .iter()
        .filter_map(|report| {
            let Subject::Process {
                pid, start_ticks, ..
            } = report.subject
            else {
                return None;
            };
            Some((
                ProcessKey { pid, start_ticks },
                TrendSignal {
                    verdict: report.verdict,
                    slope: report.slope_bytes_per_second,
                    rise: report.rise_bytes_per_second,
                    confidence: report.confidence,
                    time_to_limit_s: report.time_to_limit_s,
                    limit_bytes: report.limit_bytes,
                    limit_kind: report.limit_kind,
                },
            ))
        })
        .collect()
}

/// A `[[leak_rule]]` compiled.
#[derive(Clone, Debug)]
pub(crate) struct LeakRule {
    pub name: String,
    pub on: LeakOn,
    pub within: Option<Duration>,
    pub matchers: CompiledMatchers,
    pub action: KillAction,
    pub grace: Duration,
    pub dry_run: bool,
    pub restart_unit: bool,
}

/// A leak rule's trigger holding on one process: the kill log's record and the words.
pub(crate) struct Fired {
    pub record: TriggerRecord,
    pub words: String,
}

impl LeakRule {
    pub(crate) fn compile(rule: &LeakRuleConfig) -> Result<Self, PolicyError> {
        Ok(LeakRule {
            name: rule.name.clone(),
            on: rule.on,
            within: rule.within.map(|within| within.0),
            matchers: CompiledMatchers::compile(&rule.name, rule.scope, &rule.matchers)?,
            action: rule.action,
            grace: rule.grace.0,
            dry_run: rule.dry_run,
            restart_unit: rule.restart_unit,
        })
    }

    /// Whether the limit is within `within` (true when the rule sets no `within`).
    fn close_enough(&self, signal: &TrendSignal) -> bool {
        match self.within {
            None => true,
            Some(within) => signal
                .time_to_limit_s
                .is_some_and(|seconds| seconds <= within.as_secs_f64()),
        }
    }

    /// Whether the trigger holds for a process the detector said `signal` of.
    pub(crate) fn holds(&self, signal: &TrendSignal) -> bool {
        let on = match self.on {
            LeakOn::Leak => signal.verdict == Verdict::Leak && signal.slope > 0.0,
            LeakOn::Imminent => signal.time_to_limit_s.is_some(),
        };
        on && self.close_enough(signal)
    }

    /// The trigger as the kill log records it, and in words, whether it holds or not.
    pub(crate) fn fired(&self, signal: &TrendSignal) -> Fired {
        let (value, threshold) = match (self.within, self.on) {
            // -1: no time to the limit (only in explain: the rule never fires then).
            (Some(within), _) => (signal.time_to_limit_s.unwrap_or(-1.0), within.as_secs_f64()),
            (None, _) => (signal.slope, 0.0),
        };
        let record = TriggerRecord {
            trigger: self.on.as_str().to_string(),
            source: "trend".to_string(),
            window: None,
            value,
            threshold,
            trend: Some(signal.record()),
        };
        let within = self
            .within
            .map(|within| format!(" (within {})", humantime::format_duration(within)))
            .unwrap_or_default();
        let words = match self.on {
            LeakOn::Leak => format!(
                "trend verdict {}, rising {}/min (confidence {:.2}); {}{within}",
                signal.verdict,
                bytes((signal.slope.max(0.0) * 60.0) as u64),
                signal.confidence,
                signal.limit_words(),
            ),
            LeakOn::Imminent => format!(
                "{}{within} at {}/min (trend verdict {})",
                signal.limit_words(),
                bytes((signal.growth() * 60.0) as u64),
                signal.verdict,
            ),
        };
        Fired { record, words }
    }
}

/// Seconds as a duration in words, to the second ("4m 10s").
fn seconds_text(seconds: f64) -> String {
    humantime::format_duration(Duration::from_secs(seconds.max(0.0).round() as u64)).to_string()
}
