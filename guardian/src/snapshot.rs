//! What the pipeline publishes and the HTTP server reads.

use std::{
    sync::{Arc, Mutex, RwLock, atomic::AtomicU64},
    time::{Duration, Instant},
};

use prometheus_client::metrics::{
    counter::Counter,
    family::Family,
    histogram::{Histogram, exponential_buckets},
};
use serde::Serialize;

use crate::{
    config::Config,
    model::{Model, ProcessKey},
    policy::Ledger,
    trends::TrendReport,
};

/// Which source feeds the model, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Ebpf,
    Procfs,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Ebpf => "ebpf",
            SourceKind::Procfs => "procfs",
        }
    }
}

/// The source in use and its health.
#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    pub source: SourceKind,
    /// What the config or flag asked for ("auto", "ebpf", "procfs").
    pub requested: String,
    /// Why eBPF is not in use when auto fell back to procfs.
    pub fallback_reason: Option<String>,
    /// The cgroup layout detected at start ("v1", "v2", "hybrid").
    pub cgroup_layout: String,
    pub memory_hierarchy: String,
    /// How every process is refreshed each tick: "task-iterator" (eBPF) or "procfs".
    pub refresh: String,
}

/// Counters and histograms the pipeline updates and `/metrics` exports.
#[derive(Debug)]
pub struct Telemetry {
    pub scan_duration_seconds: Histogram,
    pub scans_total: Counter,
    pub events_received_total: Counter,
    /// Records the kernel could not write (ring buffer full), read from the eBPF map.
    pub events_lost_kernel: AtomicU64,
    /// Records userspace could not queue or decode.
    pub events_lost_user: Arc<AtomicU64>,
    /// Config reloads by result ("ok", "error").
    pub reloads_total: Family<Vec<(String, String)>, Counter>,
    /// Processes that vanished mid-scan (normal churn, counted for visibility).
    pub vanished_total: Counter,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            scan_duration_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            scans_total: Counter::default(),
            events_received_total: Counter::default(),
            events_lost_kernel: AtomicU64::new(0),
            events_lost_user: Arc::new(AtomicU64::new(0)),
            reloads_total: Family::default(),
            vanished_total: Counter::default(),
        }
    }
}

/// A process a threshold rule has seen above its threshold and is waiting out `sustain`
/// for (from `Policy::pending`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tracked {
    pub key: ProcessKey,
    pub rule: String,
}

/// Shared by the pipeline (writer) and the HTTP server (reader).
#[derive(Debug)]
pub struct AppState {
    pub config: RwLock<Arc<Config>>,
    pub model: RwLock<Model>,
    pub status: RwLock<SourceStatus>,
    pub telemetry: Telemetry,
    pub started: Instant,
    /// When the model last took fresh data (a scan or a batch of kernel events); `None`
    /// until the first scan is done.
    pub last_update: RwLock<Option<Instant>>,
    /// Processes kill rules are tracking; the pipeline replaces it after each policy
    /// evaluation and /metrics always exports them (with the rule's threshold).
    pub tracked: RwLock<Vec<Tracked>>,
    /// Recent kill decisions and their counters (the executor records into it).
    pub kills: Arc<Mutex<Ledger>>,
    /// The leak detector's latest reports, one per tracked series.
    pub trends: RwLock<Vec<TrendReport>>,
}

impl AppState {
    pub fn new(config: Arc<Config>, status: SourceStatus, kills: Arc<Mutex<Ledger>>) -> Self {
        let now = Instant::now();
        AppState {
            config: RwLock::new(config),
            model: RwLock::new(Model::default()),
            status: RwLock::new(status),
            telemetry: Telemetry::default(),
            started: now,
            last_update: RwLock::new(None),
            tracked: RwLock::new(Vec::new()),
            kills,
            trends: RwLock::new(Vec::new()),
        }
    }

    /// The config in force (replaced on reload).
    pub fn config(&self) -> Arc<Config> {
        self.config.read().map_or_else(
            |poisoned| poisoned.into_inner().clone(),
            |config| config.clone(),
        )
    }

    /// Marks the model fresh.
    pub fn touch(&self) {
        if let Ok(mut last) = self.last_update.write() {
            *last = Some(Instant::now());
        }
    }

    /// True once the first scan is done.
    pub fn has_data(&self) -> bool {
        self.last_update.read().is_ok_and(|last| last.is_some())
    }

    /// Time since the model last took fresh data (since start, before the first scan).
    pub fn staleness(&self) -> Duration {
        match self.last_update.read() {
            Ok(last) => last.unwrap_or(self.started).elapsed(),
            Err(_) => Duration::MAX,
        }
    }

    /// Fresh when data arrived within twice the scan interval (the watchdog's and
    /// /healthz's rule).
    pub fn is_fresh(&self) -> bool {
        self.has_data()
            && self.staleness()
                <= self.config().daemon.scan_interval.0 * 2 + Duration::from_millis(500)
    }
}
