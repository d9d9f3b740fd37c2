//! The one TOML config, typed and validated in one place. Every key is documented in
//! the shipped `config/guardian.toml`; unknown keys are rejected; defaults are safe on a
//! busy production host (they kill nothing until a rule says so).

mod error;
mod hooks;
mod leak;
mod pressure;
pub mod units;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

pub use error::ConfigError;
pub use hooks::{HookConfig, HookEvent, MAX_HOOK_RETRIES};
pub use leak::{LeakOn, LeakRuleConfig};
pub use pressure::{PressureRuleConfig, PsiKind, PsiWindow, Victim};
pub use units::{Bytes, Glob, Interval, Pattern, Threshold};

/// Where the daemon reads its config when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/guardian/guardian.toml";

/// The leak detector's longest window (64 minutes): a `[trends] slow_window` beyond it
/// would never be reached, so validation rejects one.
pub const LONGEST_TREND_WINDOW_S: u64 = 3840;

/// The whole config file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub kill_log: KillLogConfig,
    pub metrics: MetricsConfig,
    pub trends: TrendsConfig,
    pub safety: SafetyConfig,
    pub containers: ContainersConfig,
    #[serde(rename = "rule")]
    pub rules: Vec<Spanned<RuleConfig>>,
    #[serde(rename = "orphan_rule")]
    pub orphan_rules: Vec<Spanned<OrphanRuleConfig>>,
    #[serde(rename = "pressure_rule")]
    pub pressure_rules: Vec<Spanned<PressureRuleConfig>>,
    #[serde(rename = "leak_rule")]
    pub leak_rules: Vec<Spanned<LeakRuleConfig>>,
    #[serde(rename = "hook")]
    pub hooks: Vec<Spanned<HookConfig>>,
}

/// Which memory source feeds the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceChoice {
    /// eBPF when it loads, else /proc and cgroups (the reason is logged and exported).
    #[default]
    Auto,
    /// eBPF or fail.
    Ebpf,
    /// /proc and cgroup scanning only.
    Procfs,
}

/// `[daemon]`: how the service runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    pub source: SourceChoice,
    /// Refresh period (a /proc scan, or in eBPF mode a task-iterator snapshot), and the
    /// cadence trends sample at.
    pub scan_interval: Interval,
    /// /proc rescan period in eBPF mode when the kernel has no task iterator (events
    /// carry RSS changes in between).
    pub ebpf_rescan_interval: Interval,
    pub listen: SocketAddr,
    /// Decide and log, never signal.
    pub dry_run: bool,
    /// mlockall() so the guardian keeps working under the memory pressure it fights.
    pub lock_memory: bool,
    /// The eBPF ring buffer's size (a power of two, at least a page): events a burst
    /// adds beyond it are dropped in the kernel, counted, and caught up by the next
    /// refresh.
    pub ring_buffer_bytes: Bytes,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            source: SourceChoice::Auto,
            scan_interval: Interval(std::time::Duration::from_secs(1)),
            ebpf_rescan_interval: Interval(std::time::Duration::from_secs(10)),
            listen: SocketAddr::from(([127, 0, 0, 1], 9471)),
            dry_run: false,
            lock_memory: true,
            ring_buffer_bytes: Bytes(u64::from(guardian_ebpf::EVENTS_BYTES)),
        }
    }
}

/// What to do when a kill's intent record cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnLogFailure {
    /// No record, no kill (the failure is logged and counted).
    #[default]
    SkipKill,
    /// Kill anyway; the failure is logged and counted.
    KillAnyway,
}

/// `[kill_log]`: the hash-chained audit log of every kill decision.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KillLogConfig {
    pub path: PathBuf,
    pub on_write_failure: OnLogFailure,
    /// Rotate when the current file reaches this size.
    pub max_file_bytes: Bytes,
    /// Rotated files kept besides the current one.
    pub keep_files: u32,
}

impl Default for KillLogConfig {
    fn default() -> Self {
        KillLogConfig {
            path: PathBuf::from("/var/lib/guardian/kills.jsonl"),
            on_write_failure: OnLogFailure::SkipKill,
            max_file_bytes: Bytes(64 * 1024 * 1024),
            keep_files: 8,
        }
    }
}

/// `[metrics]`: exported series and their cardinality bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Processes exported by RSS rank (plus those a rule tracks or a leak verdict names).
    pub top_processes: usize,
    /// Most cgroups exported (largest usage first).
    pub max_cgroups: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            top_processes: 50,
            max_cgroups: 500,
        }
    }
}

/// `[containers]`: where container names and images come from. Lookups run in their
/// own task when a new container appears, never on the scrape or kill path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    /// Docker Engine API sockets (Docker, and Podman's Docker-compatible service).
    pub engine_sockets: Vec<PathBuf>,
    /// Kubernetes CRI sockets (containerd's CRI plugin, CRI-O): pod namespace, pod name
    /// and container name.
    pub cri_sockets: Vec<PathBuf>,
    /// containerd and CRI-O state directories holding each container's OCI bundle
    /// (`<dir>/<namespace>/<id>/config.json`, `<dir>/<id>/userdata/config.json`).
    pub bundle_dirs: Vec<PathBuf>,
    /// Longest wait for one answer from a socket.
    pub lookup_timeout: Interval,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        ContainersConfig {
            engine_sockets: vec![
                PathBuf::from("/var/run/docker.sock"),
                PathBuf::from("/run/podman/podman.sock"),
            ],
            cri_sockets: vec![
                PathBuf::from("/run/containerd/containerd.sock"),
                PathBuf::from("/run/crio/crio.sock"),
            ],
            bundle_dirs: vec![
                PathBuf::from("/run/containerd/io.containerd.runtime.v2.task"),
                PathBuf::from("/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task"),
                PathBuf::from("/run/containers/storage/overlay-containers"),
            ],
            lookup_timeout: Interval(std::time::Duration::from_secs(2)),
        }
    }
}

/// `[trends]`: the online leak detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrendsConfig {
    pub enabled: bool,
    /// Processes smaller than this are not tracked (cgroups always are).
    pub min_rss: Bytes,
    /// Most series tracked at once; the smallest are dropped beyond it.
    pub max_series: usize,
    /// Samples ignored after a process starts (runtime start-up).
    pub warmup: Interval,
    /// Smallest rise over a window (at 90 % confidence) called a leak.
    pub min_growth: Bytes,
    /// Growth at least this fast per minute in a young process is warm-up, not a leak.
    pub warmup_growth_per_minute: Bytes,
    /// How long a process counts as young.
    pub warmup_max_age: Interval,
    /// A rise that may be slower than this per minute is a leak only over `slow_window`.
    pub slow_growth_per_minute: Bytes,
    pub slow_window: Interval,
    /// A series that reaches its limit (cgroup, kill rule, host) within this long at its
    /// current rise is imminent, whatever its verdict.
    pub imminence_horizon: Interval,
}

impl Default for TrendsConfig {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        TrendsConfig {
            enabled: true,
            min_rss: Bytes(32 * MIB),
            max_series: 2000,
            warmup: Interval(std::time::Duration::from_secs(60)),
            min_growth: Bytes(8 * MIB),
            warmup_growth_per_minute: Bytes(25 * MIB),
            warmup_max_age: Interval(std::time::Duration::from_secs(600)),
            slow_growth_per_minute: Bytes(3 * MIB / 2),
            slow_window: Interval(std::time::Duration::from_secs(1500)),
            imminence_horizon: Interval(std::time::Duration::from_secs(2700)),
        }
    }
}

/// `[safety]`: what is never killed, and how fast kills may happen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    /// Command names never killed, added to the built-in list.
    pub protect_comm: Vec<String>,
    /// Command lines never killed (regular expressions).
    pub protect_cmdline: Vec<Pattern>,
    /// systemd units never killed (globs).
    pub protect_units: Vec<Glob>,
    /// Most kills in any window of `rate_window`, across all rules.
    pub max_kills: u32,
    pub rate_window: Interval,
    /// First wait before the same program (comm and command line) is killed again;
    /// doubles for every further kill, up to `max_backoff`.
    pub backoff: Interval,
    pub max_backoff: Interval,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            protect_comm: Vec::new(),
            protect_cmdline: Vec::new(),
            protect_units: Vec::new(),
            max_kills: 5,
            rate_window: Interval(std::time::Duration::from_secs(60)),
            backoff: Interval(std::time::Duration::from_secs(30)),
            max_backoff: Interval(std::time::Duration::from_secs(3600)),
        }
    }
}

/// Which processes a rule considers, by where they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Processes outside any container.
    #[default]
    Host,
    /// Processes inside containers.
    Container,
    Any,
}

/// How a rule kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KillAction {
    /// SIGTERM, then SIGKILL if still alive after `grace`.
    #[default]
    Term,
    /// SIGKILL at once.
    Kill,
}

/// Matchers a process must all satisfy (an absent matcher matches everything).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Matchers {
    /// Exact command names (`/proc/PID/comm`).
    #[serde(default)]
    pub comm: Vec<String>,
    /// Regular expression over the command line, arguments joined by spaces.
    pub cmdline: Option<Pattern>,
    /// User names or numeric uids.
    #[serde(default)]
    pub user: Vec<String>,
    /// Glob over the process's memory cgroup path.
    pub cgroup: Option<Glob>,
    /// Glob over the process's systemd unit ("nginx.service", "session-*.scope").
    pub unit: Option<Glob>,
}

/// `[[rule]]`: kill processes above a memory threshold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// RSS above which the rule applies ("300MiB" or "10%" of MemTotal).
    pub threshold: Threshold,
    /// How long RSS must stay above the threshold before acting.
    #[serde(default)]
    pub sustain: Interval,
    #[serde(default)]
    pub scope: Scope,
    /// `match = { comm = [...], cmdline = "...", ... }`: all given matchers must match.
    #[serde(default, rename = "match")]
    pub matchers: Matchers,
    #[serde(default)]
    pub action: KillAction,
    #[serde(default = "default_grace")]
    pub grace: Interval,
    /// Decide and log, never signal (for this rule).
    #[serde(default)]
    pub dry_run: bool,
}

/// `[[orphan_rule]]`: kill processes reparented to PID 1 or a subreaper, past an age.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrphanRuleConfig {
    pub name: String,
    pub older_than: Interval,
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

pub(crate) fn default_grace() -> Interval {
    Interval(std::time::Duration::from_secs(10))
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates config text; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            ConfigError::at(
                path.to_path_buf(),
                text,
                offset,
                error.message().to_string(),
            )
        })?;
        config.validate(path, text)?;
        Ok(config)
    }

    /// Checks that span several keys, reported at the offending table.
    fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let invalid = |offset: usize, message: String| {
            Err(ConfigError::at(path.to_path_buf(), text, offset, message))
        };
        if self.daemon.scan_interval.0.is_zero() {
            return invalid(
                find_key(text, "scan_interval"),
                "daemon.scan_interval must be above zero".into(),
            );
        }
        if self.daemon.ebpf_rescan_interval.0.is_zero() {
            return invalid(
                find_key(text, "ebpf_rescan_interval"),
                "daemon.ebpf_rescan_interval must be above zero".into(),
            );
        }
        let ring = self.daemon.ring_buffer_bytes.0;
        if !ring.is_power_of_two() || !(4096..=1 << 30).contains(&ring) {
            return invalid(
                find_key(text, "ring_buffer_bytes"),
                format!(
                    "daemon.ring_buffer_bytes must be a power of two from 4KiB to 1GiB \
                     (the kernel's ring buffer rule), not {ring} bytes"
                ),
            );
        }
        if self.trends.slow_window.0.as_secs_f64() > LONGEST_TREND_WINDOW_S as f64 {
            return invalid(
                find_key(text, "slow_window"),
                format!(
                    "trends.slow_window must be at most {}m (the detector's longest window); \
                     a longer one would never call a slow leak",
                    LONGEST_TREND_WINDOW_S / 60
                ),
            );
        }
        if self.safety.max_kills == 0 {
            return invalid(
                find_key(text, "max_kills"),
                "safety.max_kills must be at least 1".into(),
            );
        }
        let mut hook_names = std::collections::HashSet::new();
        for hook in &self.hooks {
            let offset = hook.span().start;
            let hook = hook.get_ref();
            if let Some(message) = hook.problem() {
                return invalid(offset, message);
            }
            if !hook_names.insert(hook.name.as_str()) {
                return invalid(
                    offset,
                    format!("hook.name {:?} is used by more than one hook", hook.name),
                );
            }
        }
        let mut names = std::collections::HashSet::new();
        let rules = self
            .rules
            .iter()
            .map(|rule| (rule.span().start, rule.get_ref().name.as_str()));
        let orphans = self
            .orphan_rules
            .iter()
            .map(|rule| (rule.span().start, rule.get_ref().name.as_str()));
        let pressure = self
            .pressure_rules
            .iter()
            .map(|rule| (rule.span().start, rule.get_ref().name.as_str()));
        let leak = self
            .leak_rules
            .iter()
            .map(|rule| (rule.span().start, rule.get_ref().name.as_str()));
        for (offset, name) in rules.chain(orphans).chain(pressure).chain(leak) {
            if name.trim().is_empty() {
                return invalid(offset, "rule.name must not be empty".into());
            }
            if !names.insert(name) {
                return invalid(
                    offset,
                    format!("rule.name {name:?} is used by more than one rule"),
                );
            }
        }
        for rule in &self.pressure_rules {
            let offset = rule.span().start;
            let rule = rule.get_ref();
            if rule.trigger_count() != 1 {
                return invalid(
                    offset,
                    format!(
                        "pressure_rule {:?} needs exactly one trigger: mem_available_below, \
                         swap_free_below, psi_some_above or psi_full_above (it sets {})",
                        rule.name,
                        rule.trigger_count()
                    ),
                );
            }
            if let Some(message) = rule.psi_problem() {
                return invalid(offset, message);
            }
        }
        for rule in &self.leak_rules {
            if let Some(message) = rule.get_ref().problem() {
                return invalid(rule.span().start, message);
            }
            if !self.trends.enabled {
                return invalid(
                    rule.span().start,
                    format!(
                        "leak_rule {:?} needs the trend detector: set trends.enabled = true",
                        rule.get_ref().name
                    ),
                );
            }
        }
        Ok(())
    }

    /// The `[[leak_rule]]` tables without their spans.
    pub fn leak_rules(&self) -> impl Iterator<Item = &LeakRuleConfig> {
        self.leak_rules.iter().map(Spanned::get_ref)
    }

    /// The `[[pressure_rule]]` tables without their spans.
    pub fn pressure_rules(&self) -> impl Iterator<Item = &PressureRuleConfig> {
        self.pressure_rules.iter().map(Spanned::get_ref)
    }

    /// The `[[hook]]` tables without their spans.
    pub fn hooks(&self) -> impl Iterator<Item = &HookConfig> {
        self.hooks.iter().map(Spanned::get_ref)
    }

    /// The `[[rule]]` tables without their spans.
    pub fn rules(&self) -> impl Iterator<Item = &RuleConfig> {
        self.rules.iter().map(Spanned::get_ref)
    }

    /// The `[[orphan_rule]]` tables without their spans.
    pub fn orphan_rules(&self) -> impl Iterator<Item = &OrphanRuleConfig> {
        self.orphan_rules.iter().map(Spanned::get_ref)
    }
}

/// Offset of the first `key =` in the text, to point at a key whose value is wrong.
fn find_key(text: &str, key: &str) -> usize {
    text.lines()
        .scan(0usize, |offset, line| {
            let start = *offset;
            *offset += line.len() + 1;
            Some((start, line))
        })
        .find(|(_, line)| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |(start, line)| {
            start + (line.len() - line.trim_start().len())
        })
}

#[cfg(test)]
mod tests;
