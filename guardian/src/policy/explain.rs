//! `guardian explain`: everything the policy sees of one process and, for every rule
//! and the protect list, whether it applies and why not.

use std::{fmt, time::Instant};

use serde::Serialize;

use crate::{
    classify::{CgroupLine, Classification},
    config::Scope,
    model::{MemoryUsage, Model, Process},
};

use super::{
    Policy, RuleKind, bytes, orphan,
    orphan::Adopter,
    protect::{Protected, builtin_name},
    ratelimit::Backoff,
    rules::{Check, CompiledMatchers, host_unit},
    threshold_text,
    vetting::Vetted,
};

/// One condition of a rule and whether it holds.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// Whether one rule applies to the process.
#[derive(Clone, Debug, Serialize)]
pub struct RuleVerdict {
    pub rule: String,
    pub kind: RuleKind,
    /// Every condition holds (the decision may still wait for sustain or a brake).
    pub applies: bool,
    pub threshold_bytes: Option<u64>,
    pub checks: Vec<CheckResult>,
}

/// What the guardian sees of one process.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub pid: i32,
    pub start_ticks: u64,
    pub ppid: i32,
    pub uid: u32,
    pub user: Option<String>,
    pub comm: String,
    /// Redacted.
    pub cmdline: String,
    pub memory: MemoryUsage,
    pub age_secs: Option<f64>,
    pub oom_score_adj: i32,
    pub cgroups: Vec<CgroupLine>,
    pub memory_cgroup: Option<String>,
    pub classification: Classification,
    pub mem_total_bytes: u64,
    /// `/proc/PID/exe`, when readable.
    pub executable: Option<crate::policy::Executable>,
    /// Whether the container classification is confirmed (see the vetting module).
    pub vetted: Vetted,
    /// What the runtime calls the container (filled in by whoever can ask: `guardian
    /// explain` asks the runtimes itself).
    pub container: Option<crate::names::ContainerName>,
    /// A built-in protected name the process carries although its executable is not
    /// that program (or not a root-owned system binary).
    pub impostor: Option<String>,
    /// Why it is never killed, when it is protected.
    pub protected: Option<Protected>,
    pub orphan: Option<Adopter>,
    /// Seconds until the same program may be killed again (per-program backoff).
    pub backoff_wait_s: Option<f64>,
    /// Decisions made in the current `safety.rate_window`, of `safety.max_kills`.
    pub rate_limit_used: usize,
    pub rules: Vec<RuleVerdict>,
}

impl Policy {
    /// Identity, RSS, cgroup paths, classification, and for every rule (and the protect
    /// list) whether it applies and why not.
    pub fn explain(&self, process: &Process, model: &Model) -> Explanation {
        let now = Instant::now();
        let uptime = crate::sources::kernfs::system::seconds_since_boot();
        let mem_total = model.host.total;
        let adopter = orphan::adopter(process, model);
        let vetted = self.vetting.vet(process, model);
        let class = self.vetting.scope_class(process, model);
        let age = orphan::age_secs(process, uptime);
        let mut rules = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let mut checks = matcher_checks(&rule.matchers, process, &class);
            let rss = process.memory.rss;
            let level = rule.level(rss, mem_total);
            let threshold = level.map(|level| level.threshold);
            checks.push(match level {
                Some(level) => CheckResult {
                    check: "threshold",
                    ok: level.above,
                    detail: format!(
                        "rss {} {} {}",
                        bytes(rss),
                        if level.above {
                            "is above"
                        } else {
                            "is not above"
                        },
                        threshold_text(rule.threshold, level.threshold)
                    ),
                },
                None => CheckResult {
                    check: "threshold",
                    ok: false,
                    detail: format!("{} cannot resolve: MemTotal is unknown", rule.threshold),
                },
            });
            let sustain = humantime::format_duration(rule.sustain);
            let detail = match self.sustain.get(&(index, process.key)) {
                Some(since) => format!(
                    "above the threshold for {:.1}s of the {sustain} required",
                    now.saturating_duration_since(*since).as_secs_f64()
                ),
                None => format!("must stay above the threshold for {sustain}"),
            };
            checks.push(CheckResult {
                check: "sustain",
                ok: true,
                detail,
            });
            rules.push(verdict(&rule.name, RuleKind::Threshold, threshold, checks));
        }
        for rule in &self.orphans {
            let mut checks = matcher_checks(&rule.matchers, process, &class);
            checks.push(CheckResult {
                check: "orphan",
                ok: adopter.is_some(),
                detail: match &adopter {
                    Some(adopter) => format!("orphan: {adopter}"),
                    None => format!(
                        "parent {} is neither PID 1 nor a known subreaper",
                        process.ppid
                    ),
                },
            });
            let older_than = humantime::format_duration(rule.older_than);
            checks.push(CheckResult {
                check: "age",
                ok: age > rule.older_than.as_secs_f64(),
                detail: format!("age {age:.0}s, must be over {older_than}"),
            });
            rules.push(verdict(&rule.name, RuleKind::Orphan, None, checks));
        }
        let cgroup_psi = super::pressure::read_cgroup_psi(
            &self.v2_root,
            self.pressure
                .iter()
                .filter_map(|rule| rule.trigger.cgroup()),
        );
        for (rule, state) in self.pressure.iter().zip(&self.pressure_state) {
            let mut checks = matcher_checks(&rule.matchers, process, &class);
            let measured = rule.trigger.measure(&model.host, &cgroup_psi);
            checks.push(CheckResult {
                check: "trigger",
                ok: measured.is_some_and(|measured| measured.firing),
                detail: match measured {
                    Some(measured) => rule.trigger.describe(measured),
                    None => format!(
                        "{} cannot be measured now (no MemTotal, no swap, or no PSI file)",
                        rule.trigger.name()
                    ),
                },
            });
            let sustain = humantime::format_duration(rule.sustain);
            checks.push(CheckResult {
                check: "sustain",
                ok: true,
                detail: match state.since {
                    Some(since) => format!(
                        "the trigger has held for {:.1}s of the {sustain} required",
                        now.saturating_duration_since(since).as_secs_f64()
                    ),
                    None => format!("the trigger must hold for {sustain}"),
                },
            });
            let growth = self
                .trends
                .get(&process.key)
                .map_or(0.0, super::TrendSignal::growth);
            checks.push(CheckResult {
                check: "victim",
                ok: true,
                detail: match rule.victim {
                    crate::config::Victim::Largest => format!(
                        "when it fires, the rule kills the matching process with the largest \
                         RSS (this one: {}), then waits {} before the next",
                        bytes(process.memory.rss),
                        humantime::format_duration(rule.cooldown)
                    ),
                    crate::config::Victim::FastestGrowing => format!(
                        "when it fires, the rule kills the matching process growing fastest by \
                         the trend detector (this one: {}/min, rss {}; the largest when none \
                         has a rising trend), then waits {} before the next",
                        bytes((growth * 60.0) as u64),
                        bytes(process.memory.rss),
                        humantime::format_duration(rule.cooldown)
                    ),
                },
            });
            rules.push(verdict(&rule.name, RuleKind::Pressure, None, checks));
        }
        for rule in &self.leaks {
            let mut checks = matcher_checks(&rule.matchers, process, &class);
            checks.push(match self.trends.get(&process.key) {
                Some(signal) => CheckResult {
                    check: "trend",
                    ok: rule.holds(signal),
                    detail: rule.fired(signal).words,
                },
                None => CheckResult {
                    check: "trend",
                    ok: false,
                    detail: format!(
                        "no trend for this process here (explain reads /proc once; the \
                         daemon's detector tracks processes from trends.min_rss up, and its \
                         verdicts are in GET /api/v1/trends); the rule acts on {}",
                        match (rule.on, rule.within) {
                            (crate::config::LeakOn::Leak, None) => "a leak verdict".to_string(),
                            (crate::config::LeakOn::Leak, Some(within)) => format!(
                                "a leak verdict with the limit within {}",
                                humantime::format_duration(within)
                            ),
                            (crate::config::LeakOn::Imminent, within) => format!(
                                "the limit within {}",
                                within
                                    .map(|w| humantime::format_duration(w).to_string())
                                    .unwrap_or_default()
                            ),
                        }
                    ),
                },
            });
            rules.push(verdict(&rule.name, RuleKind::Leak, None, checks));
        }
        Explanation {
            pid: process.key.pid,
            start_ticks: process.key.start_ticks,
            ppid: process.ppid,
            uid: process.uid,
            user: nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(process.uid))
                .ok()
                .flatten()
                .map(|user| user.name),
            comm: process.comm.clone(),
            cmdline: crate::redact::redact_process_cmdline(
                &process.cmdline.to_vec(),
                &process.comm,
            ),
            memory: process.memory,
            age_secs: Some(age),
            oom_score_adj: process.oom_score_adj,
            cgroups: process.cgroups.to_vec(),
            memory_cgroup: process.memory_cgroup.as_deref().map(str::to_owned),
            classification: Classification::clone(&process.class),
            mem_total_bytes: mem_total,
            executable: self.vetting.executable(process),
            vetted,
            container: None,
            protected: self.protect.check(process, &self.vetting),
            impostor: builtin_name(process)
                .filter(|name| !self.vetting.is_program(process, name))
                .map(str::to_string),
            orphan: adopter,
            backoff_wait_s: self
                .brakes
                .backoff
                .check(&Backoff::key(process), now)
                .err()
                .map(|wait| wait.as_secs_f64()),
            rate_limit_used: self.brakes.rate.used(now),
            rules,
        }
    }
}

fn verdict(
    rule: &str,
    kind: RuleKind,
    threshold_bytes: Option<u64>,
    checks: Vec<CheckResult>,
) -> RuleVerdict {
    RuleVerdict {
        rule: rule.to_string(),
        kind,
        applies: checks.iter().all(|check| check.ok),
        threshold_bytes,
        checks,
    }
}

/// The scope and every matcher the rule sets, with what the process has.
/// `class` is the classification the rules see (vetted).
fn matcher_checks(
    matchers: &CompiledMatchers,
    process: &Process,
    class: &Classification,
) -> Vec<CheckResult> {
    Check::ALL
        .iter()
        .filter_map(|check| {
            let ok = matchers.test(*check, process, class)?;
            Some(CheckResult {
                check: check.name(),
                ok,
                detail: describe(*check, ok, matchers, process, class),
            })
        })
        .collect()
}

fn describe(
    check: Check,
    ok: bool,
    matchers: &CompiledMatchers,
    process: &Process,
    class: &Classification,
) -> String {
    let verb = if ok { "matches" } else { "does not match" };
    match check {
        Check::Scope => format!(
            "scope {}: the process is {}{}",
            scope_name(matchers.scope),
            describe_class(class),
            if *class != *process.class {
                " (its cgroup looks like a container's, but that is not confirmed)"
            } else if matches!(
                class,
                Classification::Unknown | Classification::Group { .. }
            ) {
                " (neither host nor container: only scope any takes it)"
            } else {
                ""
            }
        ),
        Check::Comm => format!("comm {:?} {verb} {:?}", process.comm, matchers.comm),
        Check::Cmdline => format!(
            "cmdline {verb} /{}/",
            matchers.cmdline.as_ref().map_or("", |p| p.0.as_str())
        ),
        Check::User => {
            let written: Vec<String> = matchers
                .users
                .iter()
                .map(|user| match user.uid {
                    Some(uid) => format!("{} (uid {uid})", user.written),
                    None => format!("{} (unknown here)", user.written),
                })
                .collect();
            format!("uid {} {verb} [{}]", process.uid, written.join(", "))
        }
        Check::Cgroup => match &process.memory_cgroup {
            Some(path) => format!(
                "memory cgroup {path:?} {verb} {:?}",
                matchers.cgroup.as_ref().map_or("", |g| g.0.as_str())
            ),
            None => "no memory cgroup known".to_string(),
        },
        Check::Unit => match host_unit(class) {
            Some(unit) => format!(
                "unit {unit:?} {verb} {:?}",
                matchers.unit.as_ref().map_or("", |g| g.0.as_str())
            ),
            None => "no systemd unit (not a host process in a unit)".to_string(),
        },
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Host => "host",
        Scope::Container => "container",
        Scope::Any => "any",
    }
}

/// "host process (unit nginx.service)", "container (runtime docker, id 1f2e...)".
pub(crate) fn describe_class(class: &Classification) -> String {
    match class {
        Classification::Host { unit: Some(unit) } => format!("a host process (unit {unit})"),
        Classification::Host { unit: None } => "a host process (no unit)".to_string(),
        Classification::Unknown => "in an unknown cgroup layout".to_string(),
        Classification::Container { .. } => format!("in a container ({})", class_details(class)),
        Classification::Group { .. } => format!(
            "in a runtime-managed cgroup that is not a container ({})",
            class_details(class)
        ),
    }
}

/// The fields of a classification as "name value" pairs ("runtime docker, id 1f2e...").
fn class_details(class: &Classification) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(class) else {
        return String::new();
    };
    // The runtime first, then the rest (id, pod, QoS) in name order.
    let runtime = fields.get("runtime").map(|value| ("runtime", value));
    let rest = fields
        .iter()
        .map(|(name, value)| (name.as_str(), value))
        .filter(|(name, _)| !matches!(*name, "kind" | "runtime"));
    runtime
        .into_iter()
        .chain(rest)
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => format!("{name} {text}"),
            value => format!("{name} {value}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pid {} (start {} ticks), parent {}",
            self.pid, self.start_ticks, self.ppid
        )?;
        writeln!(f, "  comm     {}", self.comm)?;
        writeln!(f, "  cmdline  {}", self.cmdline)?;
        let user = self.user.as_deref().unwrap_or("?");
        writeln!(f, "  user     {user} (uid {})", self.uid)?;
        let m = &self.memory;
        writeln!(
            f,
            "  memory   rss {} (anon {}, file {}, shmem {}), swap {}; MemTotal {}",
            bytes(m.rss),
            bytes(m.anon),
            bytes(m.file),
            bytes(m.shmem),
            bytes(m.swap),
            bytes(self.mem_total_bytes)
        )?;
        if let Some(age) = self.age_secs {
            writeln!(f, "  age      {age:.0}s")?;
        }
        writeln!(f, "  oom_score_adj {}", self.oom_score_adj)?;
        writeln!(f, "  class    {}", describe_class(&self.classification))?;
        writeln!(
            f,
            "  memory cgroup {}",
            self.memory_cgroup.as_deref().unwrap_or("-")
        )?;
        for line in &self.cgroups {
            writeln!(
                f,
                "    {}:{}:{}",
                line.hierarchy,
                line.controllers.join(","),
                line.path
            )?;
        }
        if let Some(adopter) = &self.orphan {
            writeln!(f, "  orphan   {adopter}")?;
        }
        match &self.executable {
            Some(exe) => writeln!(
                f,
                "  exe      {}{}",
                exe.path,
                if exe.system {
                    " (root-owned system binary)"
                } else {
                    " (not a root-owned system binary)"
                }
            )?,
            None => writeln!(f, "  exe      unreadable")?,
        }
        if let Some(container) = &self.container {
            let mut text = format!("  container name {:?}", container.name);
            if let Some(image) = &container.image {
                text.push_str(&format!(", image {image:?}"));
            }
            if let (Some(pod), Some(namespace)) = (&container.pod_name, &container.pod_namespace) {
                text.push_str(&format!(", pod {namespace}/{pod}"));
            }
            if let Some(namespace) = &container.namespace {
                text.push_str(&format!(", containerd namespace {namespace}"));
            }
            writeln!(f, "{text} (from {})", container.source)?;
        }
        match &self.vetted {
            Vetted::NotNeeded => {}
            Vetted::Confirmed(found) => writeln!(
                f,
                "  confirmed a container: descends from {} runtime helper {} (pid {})",
                found.runtime, found.helper_comm, found.helper_pid
            )?,
            Vetted::KnownToRuntime => writeln!(
                f,
                "  confirmed a container: descends from the first process its runtime reported"
            )?,
            Vetted::Unconfirmed => writeln!(
                f,
                "  NOT confirmed a container: no runtime helper among its ancestors and no \
                 runtime knows the id; rules see a host process"
            )?,
            Vetted::Incomplete => writeln!(
                f,
                "  container not yet confirmed: an ancestor is not known yet, or a runtime \
                 helper's executable cannot be read (grant CAP_SYS_PTRACE); spared for now"
            )?,
        }
        if let Some(name) = &self.impostor {
            writeln!(
                f,
                "  calls itself {name:?}, a protected name, but its executable is not that \
                 program: not protected"
            )?;
        }
        match &self.protected {
            Some(reason) => writeln!(f, "protected: {reason}; no rule will kill it")?,
            None => writeln!(f, "protect list: not protected")?,
        }
        if let Some(wait) = self.backoff_wait_s {
            writeln!(
                f,
                "backoff: the same program was killed recently; {wait:.0}s to wait"
            )?;
        }
        writeln!(
            f,
            "kills in the current rate window: {}",
            self.rate_limit_used
        )?;
        if self.rules.is_empty() {
            writeln!(f, "no rules configured: nothing will be killed")?;
        }
        for rule in &self.rules {
            let verdict = match (rule.applies, &self.protected) {
                (true, None) => "APPLIES",
                (true, Some(_)) => "would apply, but the process is protected",
                (false, _) => "does not apply",
            };
            let kind = match rule.kind {
                RuleKind::Threshold => "rule",
                RuleKind::Orphan => "orphan rule",
                RuleKind::Pressure => "pressure rule",
                RuleKind::Leak => "leak rule",
            };
            writeln!(f, "{kind} {:?}: {verdict}", rule.rule)?;
            for check in &rule.checks {
                let mark = if check.ok { "ok " } else { "NO " };
                writeln!(f, "  {mark} {:<9} {}", check.check, check.detail)?;
            }
        }
        Ok(())
    }
}
