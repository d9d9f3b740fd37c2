//! The kill-switch: rules over the model (threshold rules with sustain timers, orphan
//! rules), safety checks (protect list, global rate limit, per-program backoff), and the
//! executor that writes the kill log before it kills through a pidfd.
//!
//! [`Policy`] is pure bookkeeping over the model and decides; [`Executor`] acts. The
//! daemon calls [`Policy::evaluate`] after every model update and hands each
//! [`Decision`] to [`Executor::execute`].

mod executor;
mod explain;
mod killer;
mod leak;
mod ledger;
mod orphan;
mod pressure;
mod protect;
mod ratelimit;
mod report;
mod rules;
mod unit_restart;
mod vetting;

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    classify::Classification,
    config::{self, Config, KillAction, Scope, Threshold},
    model::{Model, Process, ProcessKey},
};

pub use executor::Executor;
pub use explain::{Explanation, RuleVerdict};
pub use killer::{KILL_CONFIRM, KillResult};
pub use ledger::{Ledger, OutcomeCount};
pub use orphan::{Adopter, SUBREAPERS};
pub use pressure::PressureStatus;
pub use protect::{BUILTIN_COMMS, Protected};
pub use report::KillReport;
pub use vetting::{Confirmation, Executable, RUNTIME_HELPERS, Vetted};

use leak::{LeakRule, TrendSignal};
use pressure::{PressureRule, PressureState};
use ratelimit::{Backoff, RateLimiter};
use rules::{OrphanRule, ThresholdRule};
use vetting::Vetting;

/// Why the policy could not be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "rule {rule:?}: cannot look up user {user:?} in the user database: {source}; \
         check /etc/passwd and NSS, or write the numeric uid"
    )]
    UserLookup {
        rule: String,
        user: String,
        #[source]
        source: nix::Error,
    },
    #[error("pressure_rule {rule:?} sets no trigger")]
    NoTrigger { rule: String },
}

/// Which kind of rule made a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Threshold,
    Orphan,
    Pressure,
    Leak,
}

/// A process to kill now, and everything the executor, the kill log and the operator
/// need to know about why.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    pub rule: String,
    pub kind: RuleKind,
    /// The process as the model saw it at decision time; its `key` is what the executor
    /// re-checks before signalling.
    pub process: Process,
    pub threshold: Option<u64>,
    /// Why, in words ("rss 512 MiB above 300 MiB for 10s").
    pub reason: String,
    pub action: KillAction,
    pub grace: Duration,
    /// The rule's own dry run (the global one is the executor's).
    pub dry_run: bool,
    /// What the runtime calls the container, from the name table (the pipeline fills it
    /// in; the policy does not know names).
    pub container: Option<std::sync::Arc<crate::names::ContainerName>>,
    /// What a pressure or leak rule measured when it fired.
    pub trigger: Option<crate::audit::Trigger>,
    /// Whether the process, when it is a systemd service's main process, has its unit
    /// restarted through systemd instead of being signalled (leak rules unless they say
    /// `restart_unit = false`; never the other rules).
    pub restart_unit: bool,
}

/// A process a threshold rule has seen above its threshold and is waiting out `sustain`
/// for, with the threshold the rule resolved (never 0: a percentage waits for MemTotal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tracked {
    pub key: ProcessKey,
    pub rule: String,
    pub threshold_bytes: u64,
}

/// A threshold rule's threshold as this policy resolved it, for the metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleThreshold {
    pub rule: String,
    pub scope: Scope,
    pub threshold_bytes: u64,
}

/// Decisions held back by the safety brakes, counted once per process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    pub rate_limit: u64,
    pub backoff: u64,
}

/// The kill policy: rules, protect list, brakes and the state they keep between
/// evaluations.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<ThresholdRule>,
    orphans: Vec<OrphanRule>,
    protect: protect::ProtectList,
    /// Executables and container confirmations behind the protect list and the scopes.
    vetting: Vetting,
    /// When each (threshold rule, process) pair first went above the threshold.
    sustain: HashMap<(usize, ProcessKey), Instant>,
    /// Processes decided on, and when: not decided again while the executor may still be
    /// at work on them.
    decided: HashMap<ProcessKey, Instant>,
    /// The brakes of real kills.
    brakes: Brakes,
    /// The brakes of rules in dry run: their decisions are paced like real ones but never
    /// use up the budget of rules that kill.
    dry_brakes: Brakes,
    /// Processes already counted as suppressed (so a process waiting out a brake is
    /// counted and logged once, not on every scan).
    held_back: HashSet<ProcessKey>,
    suppressed: Suppressed,
    pressure: Vec<PressureRule>,
    /// One per pressure rule, in the same order.
    pressure_state: Vec<PressureState>,
    /// Where the v2 cgroups named by PSI triggers are read.
    v2_root: std::path::PathBuf,
    leaks: Vec<LeakRule>,
    /// The trend detector's last word on each process it tracks (see
    /// [`Policy::set_trends`]).
    trends: HashMap<ProcessKey, TrendSignal>,
}

impl Policy {
    /// Compiles the config's rules and safety settings; `self_pid` is the guardian's own
    /// pid, which is never killed.
    pub fn new(config: &Config, self_pid: i32) -> Result<Policy, PolicyError> {
        Policy::with_proc_root(config, self_pid, Path::new("/proc"))
    }

    /// [`Policy::new`] reading executables under `proc_root` instead of /proc.
    pub(crate) fn with_proc_root(
        config: &Config,
        self_pid: i32,
        proc_root: &Path,
    ) -> Result<Policy, PolicyError> {
        Ok(Policy {
            rules: config
                .rules()
                .map(ThresholdRule::compile)
                .collect::<Result<_, _>>()?,
            orphans: config
                .orphan_rules()
                .map(OrphanRule::compile)
                .collect::<Result<_, _>>()?,
            protect: protect::ProtectList::new(&config.safety, self_pid),
            vetting: Vetting::new(proc_root),
            sustain: HashMap::new(),
            decided: HashMap::new(),
            brakes: Brakes::new(&config.safety),
            dry_brakes: Brakes::new(&config.safety),
            held_back: HashSet::new(),
            suppressed: Suppressed::default(),
            pressure: config
                .pressure_rules()
                .map(PressureRule::compile)
                .collect::<Result<_, _>>()?,
            pressure_state: vec![PressureState::default(); config.pressure_rules.len()],
            v2_root: pressure::v2_root(Path::new("/sys/fs/cgroup")),
            leaks: config
                .leak_rules()
                .map(LeakRule::compile)
                .collect::<Result<_, _>>()?,
            trends: HashMap::new(),
        })
    }

    /// Takes a new config (SIGHUP) without forgetting what the brakes remember: kills in
    /// the current rate window, per-program backoff, processes already decided on, and
    /// the sustain timers of rules that keep their name. A fresh [`Policy::new`] instead
    /// would let a reload reset the rate limit.
    pub fn reload(&mut self, config: &Config) -> Result<(), PolicyError> {
        let mut next = Policy::new(config, self.protect.self_pid())?;
        next.brakes.inherit(&self.brakes);
        next.dry_brakes.inherit(&self.dry_brakes);
        for ((index, key), since) in &self.sustain {
            let name = &self.rules[*index].name;
            if let Some(new_index) = next.rules.iter().position(|rule| &rule.name == name) {
                next.sustain.insert((new_index, *key), *since);
            }
        }
        for (rule, state) in self.pressure.iter().zip(&self.pressure_state) {
            if let Some(new_index) = next.pressure.iter().position(|new| new.name == rule.name) {
                next.pressure_state[new_index] = state.clone();
            }
        }
        next.decided = std::mem::take(&mut self.decided);
        next.held_back = std::mem::take(&mut self.held_back);
        next.suppressed = self.suppressed;
        next.trends = std::mem::take(&mut self.trends);
        std::mem::swap(&mut next.vetting, &mut self.vetting);
        *self = next;
        Ok(())
    }

    /// True when the config has any rule at all (without rules the policy never decides).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
            || !self.orphans.is_empty()
            || !self.pressure.is_empty()
            || !self.leaks.is_empty()
    }

    /// Whether any rule reads the trend detector (leak rules, and pressure rules that
    /// pick the fastest-growing victim): only then does [`Policy::set_trends`] matter.
    pub fn wants_trends(&self) -> bool {
        !self.leaks.is_empty()
            || self
                .pressure
                .iter()
                .any(|rule| rule.victim == config::Victim::FastestGrowing)
    }

    /// Takes the trend detector's latest reports (after every tick): leak rules act on
    /// them, pressure rules rank victims by their slope. Processes without a report have
    /// no trend (not tracked, or too young).
    pub fn set_trends(&mut self, reports: &[crate::trends::TrendReport]) {
        self.trends = leak::signals(reports);
    }

    /// Sustain bookkeeping over the whole model; returns the decisions due now, biggest
    /// RSS first, after protect list, rate limit and backoff. Processes that left the
    /// model are forgotten.
    pub fn evaluate(&mut self, model: &Model, now: Instant) -> Vec<Decision> {
        let uptime = if self.orphans.is_empty() {
            None
        } else {
            Some(crate::sources::kernfs::system::seconds_since_boot())
        };
        let cgroup_psi = pressure::read_cgroup_psi(
            &self.v2_root,
            self.pressure
                .iter()
                .filter_map(|rule| rule.trigger.cgroup()),
        );
        self.evaluate_with(model, now, uptime, &cgroup_psi)
    }

    /// [`Policy::evaluate`] with the seconds since boot given (orphan ages count on it;
    /// without it orphan rules do not fire).
    #[cfg(test)]
    pub(crate) fn evaluate_at(
        &mut self,
        model: &Model,
        now: Instant,
        uptime: Option<f64>,
    ) -> Vec<Decision> {
        self.evaluate_with(model, now, uptime, &HashMap::new())
    }

    /// [`Policy::evaluate_at`] with the PSI of the v2 cgroups pressure rules name.
    pub(crate) fn evaluate_with(
        &mut self,
        model: &Model,
        now: Instant,
        uptime: Option<f64>,
        cgroup_psi: &HashMap<String, crate::model::Pressure>,
    ) -> Vec<Decision> {
        self.sustain
            .retain(|(_, key), _| model.process(key).is_some());
        self.decided.retain(|key, _| model.process(key).is_some());
        self.held_back.retain(|key| model.process(key).is_some());
        self.vetting.forget_gone(model);

        let mut due = Vec::new();
        for process in model.processes() {
            if self.protect.check(process, &self.vetting).is_none()
                && let Some(decision) = self.due(process, model, now, uptime)
            {
                due.push(decision);
            }
        }
        due.sort_by(|a, b| {
            b.process
                .memory
                .rss
                .cmp(&a.process.memory.rss)
                .then(a.process.key.pid.cmp(&b.process.key.pid))
        });
        let mut admitted: Vec<Decision> = due
            .into_iter()
            .filter(|decision| self.admit(decision, now))
            .collect();
        for index in 0..self.pressure.len() {
            if let Some(decision) = self.pressure_due(index, model, now, cgroup_psi) {
                admitted.push(decision);
            }
        }
        admitted
    }

    /// Measures pressure rule `index`, keeps its sustain timer, and when it has held for
    /// `sustain` outside its cooldown picks the victim: the largest RSS among matching,
    /// unprotected processes not already decided on that the brakes admit.
    fn pressure_due(
        &mut self,
        index: usize,
        model: &Model,
        now: Instant,
        cgroup_psi: &HashMap<String, crate::model::Pressure>,
    ) -> Option<Decision> {
        let rule = &self.pressure[index];
        let measured = rule.trigger.measure(&model.host, cgroup_psi);
        let state = &mut self.pressure_state[index];
        state.last = measured;
        let Some(measured) = measured.filter(|measured| measured.firing) else {
            state.since = None;
            return None;
        };
        let since = *state.since.get_or_insert(now);
        let held = now.saturating_duration_since(since);
        if held < rule.sustain || state.quiet_until.is_some_and(|until| now < until) {
            return None;
        }
        let mut candidates: Vec<(&Process, Classification)> = model
            .processes()
            .filter(|process| !self.decided.contains_key(&process.key))
            .filter(|process| self.protect.check(process, &self.vetting).is_none())
            .filter_map(|process| {
                let class = self.vetting.scope_class(process, model);
                rule.matchers
                    .matches(process, &class)
                    .then(|| (process, class.into_owned()))
            })
            .collect();
        candidates.sort_by(|(a, _), (b, _)| {
            b.memory
                .rss
                .cmp(&a.memory.rss)
                .then(a.key.pid.cmp(&b.key.pid))
        });
        let growth = |process: &Process| {
            self.trends
                .get(&process.key)
                .map_or(0.0, TrendSignal::growth)
        };
        let mut pick = "largest matching process";
        if rule.victim == config::Victim::FastestGrowing {
            if candidates.iter().any(|(process, _)| growth(process) > 0.0) {
                // Stable: among processes not growing, the largest first.
                candidates.sort_by(|(a, _), (b, _)| growth(b).total_cmp(&growth(a)));
                pick = "fastest-growing matching process";
            } else if !candidates.is_empty() {
                pick = "largest matching process (victim = \"fastest-growing\", but no \
                        matching process has a rising trend yet)";
                tracing::info!(
                    rule = %rule.name,
                    "no matching process has a rising trend yet: the largest is the victim"
                );
            }
        }
        let trigger = rule.trigger.record(measured);
        let words = rule.trigger.describe(measured);
        let decisions: Vec<Decision> = candidates
            .into_iter()
            .map(|(process, _)| Decision {
                rule: rule.name.clone(),
                kind: RuleKind::Pressure,
                process: process.clone(),
                threshold: None,
                reason: format!(
                    "{words} for {:.1}s (sustain {}); {pick}, rss {}{}",
                    held.as_secs_f64(),
                    humantime::format_duration(rule.sustain),
                    bytes(process.memory.rss),
                    match growth(process) {
                        rate if rate > 0.0 =>
                            format!(", growing {}/min", bytes((rate * 60.0) as u64)),
                        _ => String::new(),
                    },
                ),
                action: rule.action,
                grace: rule.grace,
                dry_run: rule.dry_run,
                trigger: Some(trigger.clone()),
                container: None,
                restart_unit: false,
            })
            .collect();
        let cooldown = rule.cooldown;
        for decision in decisions {
            if self.admit(&decision, now) {
                let state = &mut self.pressure_state[index];
                state.since = None;
                state.quiet_until = Some(now + cooldown);
                return Some(decision);
            }
            let brakes = if decision.dry_run {
                &mut self.dry_brakes
            } else {
                &mut self.brakes
            };
            if brakes.rate.check(now).is_err() {
                break;
            }
        }
        None
    }

    /// Every pressure rule's trigger as last measured, for metrics and the API.
    pub fn pressure_status(&self, now: Instant) -> Vec<PressureStatus> {
        self.pressure
            .iter()
            .zip(&self.pressure_state)
            .map(|(rule, state)| PressureStatus {
                rule: rule.name.clone(),
                trigger: rule.trigger.name(),
                value: state.last.map(|measured| measured.value),
                threshold: state.last.map(|measured| measured.threshold),
                firing: state.last.is_some_and(|measured| measured.firing),
                held_s: state.since.map_or(0.0, |since| {
                    now.saturating_duration_since(since).as_secs_f64()
                }),
            })
            .collect()
    }

    /// Updates the sustain timers of `process` and returns the first rule due on it:
    /// threshold rules in config order, then orphan rules.
    fn due(
        &mut self,
        process: &Process,
        model: &Model,
        now: Instant,
        uptime: Option<f64>,
    ) -> Option<Decision> {
        let key = process.key;
        let rss = process.memory.rss;
        let class = self.vetting.scope_class(process, model);
        let disguise = if *class == *process.class {
            ""
        } else {
            "; its cgroup says container (or an unknown layout an unprivileged user made), \
             but no runtime helper is among its ancestors and no runtime reported it: a \
             host process to the rules"
        };
        let mut first = None;
        for (index, rule) in self.rules.iter().enumerate() {
            let Some(threshold) = rule.exceeded_by(process, &class, model.host.total) else {
                self.sustain.remove(&(index, key));
                continue;
            };
            let since = *self.sustain.entry((index, key)).or_insert(now);
            let above = now.saturating_duration_since(since);
            if first.is_none() && above >= rule.sustain {
                first = Some(Decision {
                    rule: rule.name.clone(),
                    kind: RuleKind::Threshold,
                    process: process.clone(),
                    threshold: Some(threshold),
                    reason: format!(
                        "rss {} above {} for {:.1}s (sustain {}){disguise}",
                        bytes(rss),
                        threshold_text(rule.threshold, threshold),
                        above.as_secs_f64(),
                        humantime::format_duration(rule.sustain),
                    ),
                    action: rule.action,
                    grace: rule.grace,
                    dry_run: rule.dry_run,
                    container: None,
                    trigger: None,
                    restart_unit: false,
                });
            }
        }
        if first.is_some() {
            return first;
        }
        let orphan =
            uptime.and_then(|uptime| self.orphan_due(process, model, &class, uptime, disguise));
        orphan.or_else(|| self.leak_due(process, &class, disguise))
    }

    /// The first orphan rule due on `process`.
    fn orphan_due(
        &self,
        process: &Process,
        model: &Model,
        class: &Classification,
        uptime: f64,
        disguise: &str,
    ) -> Option<Decision> {
        self.orphans.iter().find_map(|rule| {
            let adopter = orphan::adopter(process, model)?;
            let age = orphan::age_secs(process, uptime);
            (age > rule.older_than.as_secs_f64() && rule.matchers.matches(process, class)).then(
                || Decision {
                    rule: rule.name.clone(),
                    kind: RuleKind::Orphan,
                    process: process.clone(),
                    threshold: None,
                    reason: format!(
                        "orphan ({adopter}), age {age:.0}s over {}{disguise}",
                        humantime::format_duration(rule.older_than)
                    ),
                    action: rule.action,
                    grace: rule.grace,
                    dry_run: rule.dry_run,
                    container: None,
                    trigger: None,
                    restart_unit: false,
                },
            )
        })
    }

    /// The first leak rule due on `process`: the trend detector's last word on it holds
    /// the rule's trigger, and it matches (a host process: leak rules have host scope).
    fn leak_due(
        &self,
        process: &Process,
        class: &Classification,
        disguise: &str,
    ) -> Option<Decision> {
        let signal = self.trends.get(&process.key)?;
        self.leaks.iter().find_map(|rule| {
            (rule.holds(signal) && rule.matchers.matches(process, class)).then(|| {
                let fired = rule.fired(signal);
                Decision {
                    rule: rule.name.clone(),
                    kind: RuleKind::Leak,
                    process: process.clone(),
                    threshold: None,
                    reason: format!(
                        "{}; rss {}{disguise}",
                        fired.words,
                        bytes(process.memory.rss)
                    ),
                    action: rule.action,
                    grace: rule.grace,
                    dry_run: rule.dry_run,
                    container: None,
                    trigger: Some(fired.record),
                    restart_unit: rule.restart_unit,
                }
            })
        })
    }

    /// Passes a due decision through the brakes; records it when it passes.
    fn admit(&mut self, decision: &Decision, now: Instant) -> bool {
        let key = decision.process.key;
        if let Some(at) = self.decided.get(&key)
            && now.saturating_duration_since(*at) < decision.grace + KILL_CONFIRM
        {
            return false;
        }
        let program = Backoff::key(&decision.process);
        let brakes = if decision.dry_run {
            &mut self.dry_brakes
        } else {
            &mut self.brakes
        };
        if let Err(wait) = brakes.backoff.check(&program, now) {
            if self.held_back.insert(key) {
                self.suppressed.backoff += 1;
                tracing::info!(
                    rule = %decision.rule,
                    pid = key.pid,
                    comm = %decision.process.comm,
                    wait_s = wait.as_secs_f64(),
                    "kill held back: the same program was killed recently (backoff)"
                );
            }
            return false;
        }
        if let Err(wait) = brakes.rate.check(now) {
            if self.held_back.insert(key) {
                self.suppressed.rate_limit += 1;
                tracing::warn!(
                    rule = %decision.rule,
                    pid = key.pid,
                    comm = %decision.process.comm,
                    wait_s = wait.as_secs_f64(),
                    "kill held back: safety.max_kills reached in this rate_window"
                );
            }
            return false;
        }
        brakes.rate.record(now);
        brakes.backoff.record(&program, now);
        self.decided.insert(key, now);
        self.held_back.remove(&key);
        true
    }

    /// The threshold in bytes of the first rule matching this process (for trends'
    /// time-to-limit).
    pub fn threshold_for(&self, process: &Process, mem_total: u64) -> Option<u64> {
        self.rules
            .iter()
            .find(|rule| rule.matchers.matches(process, &process.class))
            .and_then(|rule| rule.threshold_bytes(mem_total))
    }

    /// Whether a threshold rule matches `process` and its RSS is above that rule's
    /// threshold: only then can an RSS change make it due, so only then does a kernel
    /// event wake the whole policy.
    /// A container is also tried as a host process: whether it is confirmed is the
    /// evaluation's to say, and waking it costs little.
    pub fn might_be_due(&self, process: &Process, mem_total: u64) -> bool {
        let as_host = Classification::Host { unit: None };
        self.rules.iter().any(|rule| {
            rule.exceeded_by(process, &process.class, mem_total)
                .is_some()
                || (matches!(
                    *process.class,
                    Classification::Container { .. } | Classification::Group { .. }
                ) && rule.exceeded_by(process, &as_host, mem_total).is_some())
        })
    }

    /// Tells the policy where the memory hierarchy is mounted, so it can tell a cgroup
    /// an unprivileged user made (see `Vetted`).
    pub fn set_cgroup_root(&mut self, root: std::path::PathBuf) {
        self.vetting.set_cgroup_root(root);
    }

    /// Tells the policy the host pid of each container's first process, as the
    /// runtimes reported it: a process descending from it is confirmed in that
    /// container whatever its other ancestors.
    pub fn set_container_pids(&mut self, pids: HashMap<String, i32>) {
        self.vetting.set_container_pids(pids);
    }

    /// The lowest threshold of any threshold rule, in bytes: the kernel reports no RSS
    /// step of a process that stays below it.
    pub fn lowest_threshold(&self, mem_total: u64) -> Option<u64> {
        self.rules
            .iter()
            .filter_map(|rule| rule.threshold_bytes(mem_total))
            .min()
    }

    /// Decisions held back by the brakes since start.
    pub fn suppressed(&self) -> Suppressed {
        self.suppressed
    }

    /// Every threshold rule's threshold in bytes on a host with `mem_total`; a percentage
    /// is left out while MemTotal is unknown (never exported as 0).
    pub fn thresholds(&self, mem_total: u64) -> Vec<RuleThreshold> {
        self.rules
            .iter()
            .filter_map(|rule| {
                Some(RuleThreshold {
                    rule: rule.name.clone(),
                    scope: rule.matchers.scope,
                    threshold_bytes: rule.threshold_bytes(mem_total)?,
                })
            })
            .collect()
    }

    /// Processes above a threshold and waiting out its sustain, with the threshold this
    /// policy resolved for them (what metrics export).
    pub fn tracked(&self, mem_total: u64) -> Vec<Tracked> {
        let mut tracked: Vec<Tracked> = self
            .sustain
            .keys()
            .filter_map(|(index, key)| {
                let rule = &self.rules[*index];
                Some(Tracked {
                    key: *key,
                    rule: rule.name.clone(),
                    threshold_bytes: rule.threshold_bytes(mem_total)?,
                })
            })
            .collect();
        tracked.sort_unstable_by(|a, b| (a.key, &a.rule).cmp(&(b.key, &b.rule)));
        tracked
    }

    /// Processes above a threshold and waiting out its sustain: (process, rule, since).
    pub fn pending(&self) -> impl Iterator<Item = (ProcessKey, &str, Instant)> {
        self.sustain
            .iter()
            .map(|((index, key), since)| (*key, self.rules[*index].name.as_str(), *since))
    }
}

/// The global rate limit and the per-program backoff, together.
#[derive(Debug)]
struct Brakes {
    rate: RateLimiter,
    backoff: Backoff,
}

impl Brakes {
    fn new(safety: &crate::config::SafetyConfig) -> Self {
        Brakes {
            rate: RateLimiter::new(safety),
            backoff: Backoff::new(safety),
        }
    }

    /// Keeps the history of `old` under this config's limits.
    fn inherit(&mut self, old: &Brakes) {
        self.rate.inherit(&old.rate);
        self.backoff.inherit(&old.backoff);
    }
}

/// A resolved threshold for messages: "300.0 MiB", "2.4 GiB (10% of MemTotal)".
pub(crate) fn threshold_text(threshold: Threshold, resolved: u64) -> String {
    match threshold {
        Threshold::Bytes(_) => bytes(resolved),
        Threshold::PercentOfMemTotal(_) => format!("{} ({threshold})", bytes(resolved)),
    }
}

/// Bytes in IEC units, for messages.
pub(crate) fn bytes(value: u64) -> String {
    bytesize::ByteSize::b(value).display().iec().to_string()
}

#[cfg(test)]
mod tests;
