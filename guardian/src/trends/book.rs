//! Every series the daemon tracks: one detector per process identity (pid + start time,
//! so a restarted process is a new series) above `min_rss`, and one per memory cgroup;
//! at most `max_series` of them, the smallest dropped first for a twice bigger newcomer.

use std::collections::HashMap;

use serde::Serialize;

use super::detector::{Detector, Params, Verdict};
use super::imminence::Watch;
use super::stats::Scratch;
use crate::config::TrendsConfig;
use crate::model::{CgroupStats, Model, Process, ProcessKey};

/// Verdict changes kept for [`TrendBook::take_changes`] if nobody takes them.
const MAX_PENDING_CHANGES: usize = 4096;

/// What a series is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Subject {
    Process {
        pid: i32,
        start_ticks: u64,
        comm: String,
    },
    Cgroup {
        path: String,
    },
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Process {
                pid,
                start_ticks,
                comm,
            } => write!(f, "process {pid} ({comm}, start {start_ticks})"),
            Subject::Cgroup { path } => write!(f, "cgroup {path}"),
        }
    }
}

/// Which limit a time-to-limit is measured against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitKind {
    /// The memory cgroup's limit.
    Cgroup,
    /// The threshold of the kill rule that matches the process.
    Rule,
    /// The host's available memory.
    Host,
}

impl LimitKind {
    /// The name in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Cgroup => "cgroup",
            LimitKind::Rule => "rule",
            LimitKind::Host => "host",
        }
    }
}

/// The nearest limit of a series: its kind, the limit in bytes and the room left to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Limit {
    kind: LimitKind,
    bytes: u64,
    headroom: u64,
}

/// One series as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TrendReport {
    pub subject: Subject,
    pub verdict: Verdict,
    pub slope_bytes_per_second: f64,
    /// One-sided Mann-Kendall confidence (0..1) that memory rises.
    pub confidence: f64,
    pub level_bytes: u64,
    /// Highest sample of the last 5 minutes.
    pub peak_bytes: u64,
    /// The current rise of the memory floor over the last 4 minutes (bytes/s, 0 when not
    /// rising), whatever the verdict.
    pub rise_bytes_per_second: f64,
    /// Seconds until the peaks reach `limit_bytes` at the leak's slope or the current
    /// rise, whichever is faster; null while memory does not approach the limit.
    pub time_to_limit_s: Option<f64>,
    pub limit_bytes: Option<u64>,
    pub limit_kind: Option<LimitKind>,
    /// Whether the limit is within the imminence horizon, whatever the verdict (cause
    /// and imminence are separate: a warm-up can be imminent, a slow leak not yet).
    pub imminent: bool,
    /// Since when the series is imminent (seconds since boot).
    pub imminent_since_s: Option<f64>,
    /// When the current leak verdict was first reached (seconds since boot).
    pub first_detected_s: Option<f64>,
    /// When the series started: the process start, or the restart (seconds since boot).
    pub series_start_s: f64,
}

/// A series became imminent or stopped being so, for the daemon to log.
#[derive(Clone, Debug, Serialize)]
pub struct ImminenceChange {
    pub subject: Subject,
    pub imminent: bool,
    /// Seconds since boot.
    pub at_s: f64,
    pub verdict: Verdict,
    pub time_to_limit_s: Option<f64>,
    pub limit_bytes: Option<u64>,
    pub limit_kind: Option<LimitKind>,
    pub level_bytes: u64,
    pub approach_bytes_per_second: f64,
}

/// A verdict change, for the daemon to log.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictChange {
    pub subject: Subject,
    pub from: Verdict,
    pub to: Verdict,
    /// Seconds since boot.
    pub at_s: f64,
    pub slope_bytes_per_second: f64,
    pub confidence: f64,
    pub time_to_limit_s: Option<f64>,
}

struct Series {
    subject: Subject,
    detector: Detector,
    limit: Option<Limit>,
    watch: Watch,
    seen: u64,
}

impl Series {
    fn time_to_limit(&self) -> Option<f64> {
        self.limit
            .and_then(|limit| self.detector.time_to_limit(limit.headroom))
    }

    fn report(&self) -> TrendReport {
        let detector = &self.detector;
        TrendReport {
            subject: self.subject.clone(),
            verdict: detector.verdict(),
            slope_bytes_per_second: detector.slope(),
            confidence: detector.confidence(),
            level_bytes: detector.level(),
            peak_bytes: detector.peak(),
            rise_bytes_per_second: detector.rise(),
            time_to_limit_s: self.time_to_limit(),
            limit_bytes: self.limit.map(|limit| limit.bytes),
            limit_kind: self.limit.map(|limit| limit.kind),
            imminent: self.watch.is_imminent(),
            imminent_since_s: self.watch.since(),
            first_detected_s: detector.detected_at(),
            series_start_s: detector.start(),
        }
    }
}

/// Every tracked series, bounded by `max_series`.
pub struct TrendBook {
    enabled: bool,
    min_rss: u64,
    max_series: usize,
    params: Params,
    /// Boxed: a map's spare capacity then costs a pointer per slot, not a detector.
    processes: HashMap<ProcessKey, Box<Series>>,
    cgroups: HashMap<String, Box<Series>>,
    scratch: Scratch,
    pending: Pending,
    generation: u64,
}

/// Changes not yet taken by the daemon.
#[derive(Default)]
struct Pending {
    verdicts: Vec<VerdictChange>,
    imminence: Vec<ImminenceChange>,
}

impl TrendBook {
    pub fn new(config: &TrendsConfig) -> Self {
        TrendBook {
            enabled: config.enabled,
            min_rss: config.min_rss.0,
            max_series: config.max_series,
            params: Params::from(config),
            processes: HashMap::new(),
            cgroups: HashMap::new(),
            scratch: Scratch::default(),
            pending: Pending::default(),
            generation: 0,
        }
    }

    /// One sample tick at `now_secs` (seconds since boot, the clock of
    /// `Process::started_secs`): every process at or above `min_rss` (or already tracked)
    /// and every cgroup. `rule_threshold` gives the matching kill rule's threshold for a
    /// process; time-to-limit uses the nearest of that, its memory cgroup's limit and the
    /// host's available memory. Series whose subject is gone are dropped.
    pub fn observe(
        &mut self,
        model: &Model,
        now_secs: f64,
        rule_threshold: &dyn Fn(&Process) -> Option<u64>,
    ) {
        if !self.enabled {
            return;
        }
        self.generation += 1;
        for process in model.processes() {
            if process.kernel_thread {
                continue;
            }
            let rss = process.memory.rss;
            if !self.processes.contains_key(&process.key) {
                if rss < self.min_rss || !self.make_room(rss) {
                    continue;
                }
                let subject = Subject::Process {
                    pid: process.key.pid,
                    start_ticks: process.key.start_ticks,
                    comm: process.comm.clone(),
                };
                let series = self.new_series(subject, process.started_secs);
                self.processes.insert(process.key, series);
            }
            let limit = process_limit(model, process, rule_threshold(process));
            if let Some(series) = self.processes.get_mut(&process.key) {
                series.limit = limit;
                Self::feed(
                    series,
                    now_secs,
                    rss,
                    self.generation,
                    &self.params,
                    &mut self.scratch,
                    &mut self.pending,
                );
            }
        }
        for cgroup in model.cgroups() {
            let value = cgroup_value(&cgroup.stats);
            if !self.cgroups.contains_key(&cgroup.path) {
                if !self.make_room(value) {
                    continue;
                }
                let subject = Subject::Cgroup {
                    path: cgroup.path.clone(),
                };
                let series = self.new_series(subject, now_secs);
                self.cgroups.insert(cgroup.path.clone(), series);
            }
            let limit = nearest(&[
                cgroup.stats.limit.bytes().map(|bytes| Limit {
                    kind: LimitKind::Cgroup,
                    bytes,
                    headroom: bytes.saturating_sub(value),
                }),
                host_limit(model, value),
            ]);
            if let Some(series) = self.cgroups.get_mut(&cgroup.path) {
                series.limit = limit;
                Self::feed(
                    series,
                    now_secs,
                    value,
                    self.generation,
                    &self.params,
                    &mut self.scratch,
                    &mut self.pending,
                );
            }
        }
        let generation = self.generation;
        self.processes.retain(|_, series| series.seen == generation);
        self.cgroups.retain(|_, series| series.seen == generation);
    }

    fn new_series(&self, subject: Subject, start: f64) -> Box<Series> {
        Box::new(Series {
            subject,
            detector: Detector::new(start),
            limit: None,
            watch: Watch::default(),
            seen: self.generation,
        })
    }

    fn feed(
        series: &mut Series,
        now: f64,
        bytes: u64,
        generation: u64,
        params: &Params,
        scratch: &mut Scratch,
        pending: &mut Pending,
    ) {
        series.seen = generation;
        let changed = series.detector.push(now, bytes, params, scratch);
        let time_to_limit = series.time_to_limit();
        if let Some(imminent) = series
            .watch
            .update(now, time_to_limit, params.imminence_horizon_s)
            && pending.imminence.len() < MAX_PENDING_CHANGES
        {
            pending.imminence.push(ImminenceChange {
                subject: series.subject.clone(),
                imminent,
                at_s: now,
                verdict: series.detector.verdict(),
                time_to_limit_s: time_to_limit,
                limit_bytes: series.limit.map(|limit| limit.bytes),
                limit_kind: series.limit.map(|limit| limit.kind),
                level_bytes: series.detector.level(),
                approach_bytes_per_second: series.detector.approach(),
            });
        }
        if let Some((from, to)) = changed
            && pending.verdicts.len() < MAX_PENDING_CHANGES
        {
            let report = series.report();
            pending.verdicts.push(VerdictChange {
                subject: report.subject,
                from,
                to,
                at_s: now,
                slope_bytes_per_second: report.slope_bytes_per_second,
                confidence: report.confidence,
                time_to_limit_s: report.time_to_limit_s,
            });
        }
    }

    /// Makes room for a new series at `level` bytes: true when below `max_series`, or
    /// when the smallest tracked series is less than half as big (it is dropped; the
    /// margin keeps two series of about the same size from evicting each other by turns,
    /// each restarting from scratch).
    fn make_room(&mut self, level: u64) -> bool {
        if self.processes.len() + self.cgroups.len() < self.max_series {
            return true;
        }
        let smallest_process = self
            .processes
            .iter()
            .map(|(key, series)| (series.detector.level(), Some(*key), None))
            .min_by_key(|(level, _, _)| *level);
        let smallest_cgroup = self
            .cgroups
            .iter()
            .map(|(path, series)| (series.detector.level(), None, Some(path)))
            .min_by_key(|(level, _, _)| *level);
        let smallest = match (smallest_process, smallest_cgroup) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        match smallest {
            Some((smallest, process, cgroup)) if smallest.saturating_mul(2) < level => {
                let cgroup = cgroup.cloned();
                if let Some(key) = process {
                    self.processes.remove(&key);
                }
                if let Some(path) = cgroup {
                    self.cgroups.remove(&path);
                }
                true
            }
            _ => false,
        }
    }

    /// Imminence changes since the last call, for the daemon to log (at most 4096 kept).
    pub fn take_imminence_changes(&mut self) -> Vec<ImminenceChange> {
        std::mem::take(&mut self.pending.imminence)
    }

    /// Every series: imminent ones first, then leaks, then growing ones, each by
    /// time-to-limit.
    pub fn reports(&self) -> Vec<TrendReport> {
        let mut reports: Vec<TrendReport> = self
            .processes
            .values()
            .chain(self.cgroups.values())
            .map(|series| series.report())
            .collect();
        let rank = |verdict: Verdict| match verdict {
            Verdict::Leak => 0,
            Verdict::Growing => 1,
            Verdict::Stable => 2,
            Verdict::WarmingUp => 3,
        };
        reports.sort_by(|a, b| {
            b.imminent
                .cmp(&a.imminent)
                .then(rank(a.verdict).cmp(&rank(b.verdict)))
                .then(
                    a.time_to_limit_s
                        .unwrap_or(f64::INFINITY)
                        .total_cmp(&b.time_to_limit_s.unwrap_or(f64::INFINITY)),
                )
        });
        reports
    }

    /// Verdict changes since the last call, for the daemon to log (at most 4096 kept).
    pub fn take_changes(&mut self) -> Vec<VerdictChange> {
        std::mem::take(&mut self.pending.verdicts)
    }

    /// How many series are tracked.
    pub fn len(&self) -> usize {
        self.processes.len() + self.cgroups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a cgroup's trend follows: anonymous memory (page cache is reclaimed before an
/// OOM kill, so a growing cache is no leak), or the usage when anon is not reported.
fn cgroup_value(stats: &CgroupStats) -> u64 {
    if stats.anon > 0 {
        stats.anon
    } else {
        stats.usage
    }
}

/// The nearest of a process's limits: its memory cgroup's, its kill rule's, the host's.
fn process_limit(model: &Model, process: &Process, rule: Option<u64>) -> Option<Limit> {
    let rss = process.memory.rss;
    let cgroup = process
        .memory_cgroup
        .as_deref()
        .and_then(|path| model.cgroup(path))
        .and_then(|cgroup| {
            let bytes = cgroup.stats.limit.bytes()?;
            Some(Limit {
                kind: LimitKind::Cgroup,
                bytes,
                headroom: bytes.saturating_sub(cgroup_value(&cgroup.stats)),
            })
        });
    let rule = rule.map(|bytes| Limit {
        kind: LimitKind::Rule,
        bytes,
        headroom: bytes.saturating_sub(rss),
    });
    nearest(&[cgroup, rule, host_limit(model, rss)])
}

/// The host as a limit: the series can grow by the available memory.
fn host_limit(model: &Model, level: u64) -> Option<Limit> {
    (model.host.total > 0).then(|| Limit {
        kind: LimitKind::Host,
        bytes: level.saturating_add(model.host.available),
        headroom: model.host.available,
    })
}

fn nearest(limits: &[Option<Limit>]) -> Option<Limit> {
    limits
        .iter()
        .flatten()
        .copied()
        .min_by_key(|limit| limit.headroom)
}
