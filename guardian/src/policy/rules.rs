//! Config rules compiled for matching: scope and matchers tested against a process, with
//! user names resolved once, and the words that say why a matcher holds or not.

use std::time::Duration;

use crate::{
    classify::Classification,
    config::{Glob, KillAction, Matchers, OrphanRuleConfig, Pattern, RuleConfig, Scope, Threshold},
    model::Process,
};

use super::PolicyError;

/// One condition of a rule, in the order they are tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    Scope,
    Comm,
    Cmdline,
    User,
    Cgroup,
    Unit,
}

impl Check {
    pub(crate) const ALL: [Check; 6] = [
        Check::Scope,
        Check::Comm,
        Check::Cmdline,
        Check::User,
        Check::Cgroup,
        Check::Unit,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Check::Scope => "scope",
            Check::Comm => "comm",
            Check::Cmdline => "cmdline",
            Check::User => "user",
            Check::Cgroup => "cgroup",
            Check::Unit => "unit",
        }
    }
}

/// A user matcher as written, with the uid it names on this host (none when the name is
/// unknown here: it then matches nobody, so a fleet-wide config stays safe on hosts that
/// lack the user).
#[derive(Clone, Debug)]
pub(crate) struct UserSpec {
    pub written: String,
    pub uid: Option<u32>,
}

/// Scope and matchers of a rule, ready to test.
#[derive(Clone, Debug)]
pub(crate) struct CompiledMatchers {
    pub scope: Scope,
    pub comm: Vec<String>,
    pub cmdline: Option<Pattern>,
    pub users: Vec<UserSpec>,
    pub cgroup: Option<Glob>,
    pub unit: Option<Glob>,
}

impl CompiledMatchers {
    pub(crate) fn compile(
        rule: &str,
        scope: Scope,
        matchers: &Matchers,
    ) -> Result<Self, PolicyError> {
        let users = matchers
            .user
            .iter()
            .map(|written| resolve_user(rule, written))
            .collect::<Result<_, _>>()?;
        Ok(CompiledMatchers {
            scope,
            comm: matchers.comm.clone(),
            cmdline: matchers.cmdline.clone(),
            users,
            cgroup: matchers.cgroup.clone(),
            unit: matchers.unit.clone(),
        })
    }

    /// Whether one condition holds; `None` when the rule does not set it. `class` is the
    /// classification the rules see (vetted: an unconfirmed container is a host process).
    pub(crate) fn test(
        &self,
        check: Check,
        process: &Process,
        class: &Classification,
    ) -> Option<bool> {
        match check {
            Check::Scope => Some(scope_matches(self.scope, class)),
            Check::Comm => (!self.comm.is_empty()).then(|| self.comm.contains(&process.comm)),
            Check::Cmdline => self
                .cmdline
                .as_ref()
                .map(|pattern| pattern.is_match(&process.cmdline.join(" "))),
            Check::User => (!self.users.is_empty())
                .then(|| self.users.iter().any(|user| user.uid == Some(process.uid))),
            Check::Cgroup => self.cgroup.as_ref().map(|glob| {
                process
                    .memory_cgroup
                    .as_deref()
                    .is_some_and(|path| glob.matches(path))
            }),
            Check::Unit => self
                .unit
                .as_ref()
                .map(|glob| host_unit(class).is_some_and(|unit| glob.matches(unit))),
        }
    }

    /// True when every condition the rule sets holds (stops at the first that does not).
    pub(crate) fn matches(&self, process: &Process, class: &Classification) -> bool {
        Check::ALL
            .iter()
            .all(|check| self.test(*check, process, class) != Some(false))
    }
}

/// Scope `host` takes host processes, `container` containers, `any` everything. A layout
/// the classifier does not know is neither host nor container: only `any` takes it.
pub(crate) fn scope_matches(scope: Scope, class: &Classification) -> bool {
    match scope {
        Scope::Any => true,
        Scope::Host => matches!(class, Classification::Host { .. }),
        Scope::Container => matches!(class, Classification::Container { .. }),
    }
}

/// The systemd unit of a host process, if it has one.
pub(crate) fn host_unit(class: &Classification) -> Option<&str> {
    match class {
        Classification::Host { unit } => unit.as_deref(),
        _ => None,
    }
}

fn resolve_user(rule: &str, written: &str) -> Result<UserSpec, PolicyError> {
    let uid = match written.parse::<u32>() {
        Ok(uid) => Some(uid),
        Err(_) => nix::unistd::User::from_name(written)
            .map_err(|source| PolicyError::UserLookup {
                rule: rule.to_string(),
                user: written.to_string(),
                source,
            })?
            .map(|user| user.uid.as_raw()),
    };
    if uid.is_none() {
        tracing::warn!(
            rule,
            user = written,
            "user is unknown on this host; this matcher matches nobody"
        );
    }
    Ok(UserSpec {
        written: written.to_string(),
        uid,
    })
}

/// A `[[rule]]`: kill above a memory threshold, sustained.
#[derive(Clone, Debug)]
pub(crate) struct ThresholdRule {
    pub name: String,
    pub threshold: Threshold,
    pub sustain: Duration,
    pub matchers: CompiledMatchers,
    pub action: KillAction,
    pub grace: Duration,
    pub dry_run: bool,
}

impl ThresholdRule {
    pub(crate) fn compile(rule: &RuleConfig) -> Result<Self, PolicyError> {
        Ok(ThresholdRule {
            name: rule.name.clone(),
            threshold: rule.threshold,
            sustain: rule.sustain.0,
            matchers: CompiledMatchers::compile(&rule.name, rule.scope, &rule.matchers)?,
            action: rule.action,
            grace: rule.grace.0,
            dry_run: rule.dry_run,
        })
    }

    /// The threshold in bytes, or none while MemTotal is unknown and the threshold is a
    /// percentage of it (a zero MemTotal must never turn "10%" into "0 bytes").
    pub(crate) fn threshold_bytes(&self, mem_total: u64) -> Option<u64> {
        self.threshold.resolve(mem_total)
    }

    /// Where an RSS stands against this rule's threshold (none while it cannot resolve):
    /// the one comparison decisions, tracking and `explain` all use.
    pub(crate) fn level(&self, rss: u64, mem_total: u64) -> Option<Level> {
        let threshold = self.threshold_bytes(mem_total)?;
        Some(Level {
            threshold,
            above: rss > threshold,
        })
    }

    /// The threshold `process` is above, when this rule matches it (seen as `class`)
    /// and it is.
    pub(crate) fn exceeded_by(
        &self,
        process: &Process,
        class: &Classification,
        mem_total: u64,
    ) -> Option<u64> {
        self.level(process.memory.rss, mem_total)
            .filter(|level| level.above && self.matchers.matches(process, class))
            .map(|level| level.threshold)
    }
}

/// An RSS against a rule's resolved threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    pub threshold: u64,
    pub above: bool,
}

/// An `[[orphan_rule]]`: kill orphans past an age.
#[derive(Clone, Debug)]
pub(crate) struct OrphanRule {
    pub name: String,
    pub older_than: Duration,
    pub matchers: CompiledMatchers,
    pub action: KillAction,
    pub grace: Duration,
    pub dry_run: bool,
}

impl OrphanRule {
    pub(crate) fn compile(rule: &OrphanRuleConfig) -> Result<Self, PolicyError> {
        Ok(OrphanRule {
            name: rule.name.clone(),
            older_than: rule.older_than.0,
            matchers: CompiledMatchers::compile(&rule.name, rule.scope, &rule.matchers)?,
            action: rule.action,
            grace: rule.grace.0,
            dry_run: rule.dry_run,
        })
    }
}
