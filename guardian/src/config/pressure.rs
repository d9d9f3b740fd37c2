//! `[[pressure_rule]]`: act on host-wide memory pressure (MemAvailable, free swap, PSI)
//! before the kernel's OOM killer does, by killing one matching process.

use serde::Deserialize;

use super::{Interval, KillAction, Matchers, Scope, Threshold, default_grace};

/// Which PSI line a trigger reads: `some` (at least one task stalled on memory) or
/// `full` (every non-idle task stalled at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PsiKind {
    Some,
    Full,
}

/// Which PSI running average a trigger compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
pub enum PsiWindow {
    #[default]
    #[serde(rename = "10s")]
    Avg10,
    #[serde(rename = "60s")]
    Avg60,
}

impl PsiWindow {
    /// The window as the kernel names it ("avg10").
    pub fn as_str(self) -> &'static str {
        match self {
            PsiWindow::Avg10 => "avg10",
            PsiWindow::Avg60 => "avg60",
        }
    }
}

/// How a pressure rule picks its victim among the matching processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Victim {
    /// The largest RSS (what the kernel's OOM killer would mostly pick, minus its
    /// protect list and containers).
    #[default]
    Largest,
    /// The steepest rise by the trend detector's slope; the largest when no matching
    /// process has a rising trend yet (the reason says so).
    FastestGrowing,
}

/// `[[pressure_rule]]`: exactly one trigger (`mem_available_below`, `swap_free_below`,
/// `psi_some_above` or `psi_full_above`) held for `sustain` kills one matching process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureRuleConfig {
    pub name: String,
    /// MemAvailable below this ("2GiB" or "5%" of MemTotal).
    pub mem_available_below: Option<Threshold>,
    /// Free swap below this ("512MiB" or "10%" of SwapTotal); never true without swap.
    pub swap_free_below: Option<Threshold>,
    /// PSI memory `some` average above this percentage (0-100).
    pub psi_some_above: Option<f64>,
    /// PSI memory `full` average above this percentage (0-100).
    pub psi_full_above: Option<f64>,
    /// The PSI average compared: "10s" (default) or "60s".
    #[serde(default)]
    pub psi_window: PsiWindow,
    /// Read PSI from this v2 cgroup's `memory.pressure` (path under the v2 root, e.g.
    /// "/system.slice/app.service") instead of `/proc/pressure/memory`.
    pub psi_cgroup: Option<String>,
    /// How long the trigger must hold before acting.
    #[serde(default)]
    pub sustain: Interval,
    /// After a decision the rule waits this long before it may decide again (PSI
    /// averages and MemAvailable take a moment to show the relief).
    #[serde(default = "default_cooldown")]
    pub cooldown: Interval,
    #[serde(default)]
    pub victim: Victim,
    #[serde(default)]
    pub scope: Scope,
    /// `match = { comm = [...], cmdline = "...", ... }`: all given matchers must match.
    #[serde(default, rename = "match")]
    pub matchers: Matchers,
    #[serde(default)]
    pub action: KillAction,
    #[serde(default = "default_grace")]
    pub grace: Interval,
    #[serde(default)]
    pub dry_run: bool,
}

fn default_cooldown() -> Interval {
    Interval(std::time::Duration::from_secs(30))
}

impl PressureRuleConfig {
    /// How many triggers the rule sets (validation wants exactly one).
    pub fn trigger_count(&self) -> usize {
        [
            self.mem_available_below.is_some(),
            self.swap_free_below.is_some(),
            self.psi_some_above.is_some(),
            self.psi_full_above.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
    }

    /// Why the rule's PSI settings are wrong, if they are.
    pub fn psi_problem(&self) -> Option<String> {
        let psi = self.psi_some_above.or(self.psi_full_above);
        if let Some(percent) = psi
            && !(0.0..=100.0).contains(&percent)
        {
            return Some(format!(
                "pressure_rule {:?}: a PSI threshold is a percentage of time stalled, 0 to 100; got {percent}",
                self.name
            ));
        }
        if let Some(cgroup) = &self.psi_cgroup {
            if psi.is_none() {
                return Some(format!(
                    "pressure_rule {:?}: psi_cgroup needs psi_some_above or psi_full_above",
                    self.name
                ));
            }
            if !cgroup.starts_with('/') || cgroup.split('/').any(|part| part == "..") {
                return Some(format!(
                    "pressure_rule {:?}: psi_cgroup {cgroup:?} must be an absolute path under the v2 root, without \"..\"",
                    self.name
                ));
            }
        }
        None
    }
}
