//! Pressure rules: a host-wide (or v2 cgroup) memory signal — MemAvailable, free swap,
//! PSI `some`/`full` — held for `sustain` picks one victim among the matching processes,
//! before the kernel's OOM killer picks one itself.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    audit::Trigger as TriggerRecord,
    config::{KillAction, PressureRuleConfig, PsiKind, PsiWindow, Threshold, Victim},
    model::{HostMemory, Pressure},
};

use super::{PolicyError, bytes, rules::CompiledMatchers};

/// What a pressure rule watches.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Trigger {
    MemAvailableBelow(Threshold),
    SwapFreeBelow(Threshold),
    Psi {
        kind: PsiKind,
        window: PsiWindow,
        above: f64,
        /// A v2 cgroup path; none for the host's /proc/pressure/memory.
        cgroup: Option<String>,
    },
}

impl Trigger {
    fn from_config(rule: &PressureRuleConfig) -> Option<Trigger> {
        let psi = |kind, above| Trigger::Psi {
            kind,
            window: rule.psi_window,
            above,
            cgroup: rule.psi_cgroup.clone(),
        };
        rule.mem_available_below
            .map(Trigger::MemAvailableBelow)
            .or(rule.swap_free_below.map(Trigger::SwapFreeBelow))
            .or(rule.psi_some_above.map(|above| psi(PsiKind::Some, above)))
            .or(rule.psi_full_above.map(|above| psi(PsiKind::Full, above)))
    }

    /// The trigger's name in the kill log and metrics.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Trigger::MemAvailableBelow(_) => "mem_available",
            Trigger::SwapFreeBelow(_) => "swap_free",
            Trigger::Psi {
                kind: PsiKind::Some,
                ..
            } => "psi_some",
            Trigger::Psi {
                kind: PsiKind::Full,
                ..
            } => "psi_full",
        }
    }

    /// The v2 cgroup whose `memory.pressure` this trigger reads.
    pub(crate) fn cgroup(&self) -> Option<&str> {
        match self {
            Trigger::Psi { cgroup, .. } => cgroup.as_deref(),
            _ => None,
        }
    }

    /// Measures the trigger on `host` (and `cgroup_psi`, read for the rules that name a
    /// cgroup); none while the figure is unknown (no MemTotal yet, no PSI, no swap).
    pub(crate) fn measure(
        &self,
        host: &HostMemory,
        cgroup_psi: &HashMap<String, Pressure>,
    ) -> Option<Measured> {
        let below = |value: u64, limit: u64| Measured {
            value: value as f64,
            threshold: limit as f64,
            firing: value < limit,
        };
        match self {
            Trigger::MemAvailableBelow(threshold) => {
                let limit = threshold.resolve(host.total)?;
                (host.total > 0).then(|| below(host.available, limit))
            }
            Trigger::SwapFreeBelow(threshold) => {
                if host.swap_total == 0 {
                    return None;
                }
                Some(below(host.swap_free, threshold.resolve(host.swap_total)?))
            }
            Trigger::Psi {
                kind,
                window,
                above,
                cgroup,
            } => {
                let pressure = match cgroup {
                    Some(path) => cgroup_psi.get(path)?,
                    None => host.pressure.as_ref()?,
                };
                let value = match (kind, window) {
                    (PsiKind::Some, PsiWindow::Avg10) => pressure.some_avg10,
                    (PsiKind::Some, PsiWindow::Avg60) => pressure.some_avg60,
                    (PsiKind::Full, PsiWindow::Avg10) => pressure.full_avg10,
                    (PsiKind::Full, PsiWindow::Avg60) => pressure.full_avg60,
                };
                Some(Measured {
                    value,
                    threshold: *above,
                    firing: value > *above,
                })
            }
        }
    }

    /// The measurement as the kill log records it.
    pub(crate) fn record(&self, measured: Measured) -> TriggerRecord {
        let (source, window) = match self {
            Trigger::Psi { window, cgroup, .. } => (
                cgroup.clone().unwrap_or_else(|| "host".into()),
                Some(window.as_str().to_string()),
            ),
            _ => ("host".to_string(), None),
        };
        TriggerRecord {
            trigger: self.name().to_string(),
            source,
            window,
            value: measured.value,
            threshold: measured.threshold,
            trend: None,
        }
    }

    /// The measurement in words ("MemAvailable 1.2 GiB below 2 GiB").
    pub(crate) fn describe(&self, measured: Measured) -> String {
        let relation = |firing: bool, word: &str| {
            if firing {
                word.to_string()
            } else {
                format!("not {word}")
            }
        };
        match self {
            Trigger::MemAvailableBelow(threshold) => format!(
                "MemAvailable {} {} {}{}",
                bytes(measured.value as u64),
                relation(measured.firing, "below"),
                bytes(measured.threshold as u64),
                percent_note(*threshold, "MemTotal"),
            ),
            Trigger::SwapFreeBelow(threshold) => format!(
                "free swap {} {} {}{}",
                bytes(measured.value as u64),
                relation(measured.firing, "below"),
                bytes(measured.threshold as u64),
                percent_note(*threshold, "SwapTotal"),
            ),
            Trigger::Psi {
                kind,
                window,
                cgroup,
                ..
            } => format!(
                "PSI memory {} {} {}{:.2}% {} {:.2}%",
                match kind {
                    PsiKind::Some => "some",
                    PsiKind::Full => "full",
                },
                window.as_str(),
                cgroup
                    .as_deref()
                    .map(|path| format!("of {path} "))
                    .unwrap_or_default(),
                measured.value,
                relation(measured.firing, "above"),
                measured.threshold,
            ),
        }
    }
}

fn percent_note(threshold: Threshold, of: &str) -> String {
    match threshold {
        Threshold::PercentOfMemTotal(percent) => format!(" ({percent}% of {of})"),
        Threshold::Bytes(_) => String::new(),
    }
}

/// One reading of a trigger against its limit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Measured {
    pub value: f64,
    pub threshold: f64,
    pub firing: bool,
}

/// A `[[pressure_rule]]` compiled.
#[derive(Clone, Debug)]
pub(crate) struct PressureRule {
    pub name: String,
    pub trigger: Trigger,
    pub sustain: Duration,
    pub cooldown: Duration,
    pub victim: Victim,
    pub matchers: CompiledMatchers,
    pub action: KillAction,
    pub grace: Duration,
    pub dry_run: bool,
}

impl PressureRule {
    pub(crate) fn compile(rule: &PressureRuleConfig) -> Result<Self, PolicyError> {
        let trigger = Trigger::from_config(rule).ok_or_else(|| PolicyError::NoTrigger {
            rule: rule.name.clone(),
        })?;
        Ok(PressureRule {
            name: rule.name.clone(),
            trigger,
            sustain: rule.sustain.0,
            cooldown: rule.cooldown.0,
            victim: rule.victim,
            matchers: CompiledMatchers::compile(&rule.name, rule.scope, &rule.matchers)?,
            action: rule.action,
            grace: rule.grace.0,
            dry_run: rule.dry_run,
        })
    }
}

/// What a pressure rule remembers between evaluations.
#[derive(Clone, Debug, Default)]
pub(crate) struct PressureState {
    /// Since when the trigger has held (none while it does not).
    pub since: Option<Instant>,
    /// No new decision before this (the rule's cooldown after its last one).
    pub quiet_until: Option<Instant>,
    /// The last measurement (none while the figure is unknown).
    pub last: Option<Measured>,
}

/// A pressure rule's trigger state, for metrics and the API.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PressureStatus {
    pub rule: String,
    /// "mem_available", "swap_free", "psi_some" or "psi_full".
    pub trigger: &'static str,
    /// Bytes, or percent stalled for PSI; none while unknown.
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub firing: bool,
    /// How long the trigger has held.
    pub held_s: f64,
}

/// The v2 hierarchy's root: `/sys/fs/cgroup` on a unified host, its `unified/` on a
/// hybrid one (PSI files are cgroup-core files: they exist in v2 cgroups even when the
/// memory controller is on v1).
pub(crate) fn v2_root(cgroup_root: &Path) -> PathBuf {
    if cgroup_root.join("cgroup.controllers").exists() {
        cgroup_root.to_path_buf()
    } else {
        cgroup_root.join("unified")
    }
}

/// Reads `memory.pressure` of each v2 cgroup the rules name; cgroups that cannot be
/// read (gone, no PSI in this kernel) are left out, so their rules do not fire.
pub(crate) fn read_cgroup_psi<'a>(
    v2_root: &Path,
    cgroups: impl Iterator<Item = &'a str>,
) -> HashMap<String, Pressure> {
    cgroups
        .filter_map(|path| {
            let file = v2_root
                .join(path.trim_start_matches('/'))
                .join("memory.pressure");
            let text = std::fs::read_to_string(&file)
                .inspect_err(|error| {
                    tracing::debug!(file = %file.display(), %error, "cannot read memory.pressure");
                })
                .ok()?;
            Some((
                path.to_string(),
                crate::sources::kernfs::proc::pressure(&text)?,
            ))
        })
        .collect()
}
