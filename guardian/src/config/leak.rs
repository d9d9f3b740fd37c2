//! `[[leak_rule]]`: act on the trend detector's word about a host process (a leak
//! verdict, or its limit within reach) before the process reaches that limit, so it stops
//! on SIGTERM at a time of the guardian's choosing rather than by the OOM killer
//! mid-request.

use serde::Deserialize;

use super::{Interval, KillAction, Matchers, Scope, default_grace};

/// What the trend detector must say about a process for a leak rule to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakOn {
    /// The detector's leak verdict (memory rising over a window, not coming back).
    Leak,
    /// The process reaches its nearest limit (its memory cgroup's limit, the matching
    /// `[[rule]]` threshold, or the host's available memory) within `within` at its
    /// current rise, whatever the verdict.
    Imminent,
}

impl LeakOn {
    /// The trigger's name in the kill log.
    pub fn as_str(self) -> &'static str {
        match self {
            LeakOn::Leak => "leak",
            LeakOn::Imminent => "imminent",
        }
    }
}

/// `[[leak_rule]]`: SIGTERM (then SIGKILL after `grace`) a matching host process the
/// trend detector calls leaking, or whose limit is within reach. Containers are never
/// acted on (scope must be "host").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakRuleConfig {
    pub name: String,
    /// "leak" (the leak verdict) or "imminent" (the limit within `within`).
    pub on: LeakOn,
    /// For `on = "imminent"` (required there): act when the process reaches its limit
    /// within this long. With `on = "leak"` (optional): act on a leak only this close.
    pub within: Option<Interval>,
    /// Only "host": a leaking container is the runtime's and its orchestrator's to
    /// restart.
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
    /// Whether a process that is a systemd service's main process has its unit restarted
    /// through systemd (its `Restart=` policy and dependencies kept) instead of being
    /// signalled. `false`: signalled like any other process, for services whose
    /// operators want the leak rule's SIGTERM and `grace` rather than a restart.
    #[serde(default = "default_restart_unit")]
    pub restart_unit: bool,
}

fn default_restart_unit() -> bool {
    true
}

impl LeakRuleConfig {
    /// Why the rule is wrong, if it is.
    pub fn problem(&self) -> Option<String> {
        if self.scope != Scope::Host {
            return Some(format!(
                "leak_rule {:?}: scope must be \"host\": a container is never signalled for a \
                 leak (its runtime or orchestrator restarts it)",
                self.name
            ));
        }
        match (self.on, self.within) {
            (LeakOn::Imminent, None) => Some(format!(
                "leak_rule {:?}: on = \"imminent\" needs within = \"...\" (how close the \
                 limit must be)",
                self.name
            )),
            (_, Some(within)) if within.0.is_zero() => Some(format!(
                "leak_rule {:?}: within must be above zero",
                self.name
            )),
            _ => None,
        }
    }
}
