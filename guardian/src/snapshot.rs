//! What the pipeline publishes and the HTTP server reads: one immutable [`Snapshot`] per
//! tick (model, tracked processes with their resolved thresholds, trend reports, kill
//! ledger, source status, config, tick number). A reader takes the current one and
//! answers from it alone, so one `/metrics` or API answer never mixes two ticks, and no
//! lock is held while it encodes. Parts that did not change are shared with the previous
//! snapshot (`Arc`), never copied.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use prometheus_client::metrics::{
    counter::Counter,
    family::Family,
    histogram::{Histogram, exponential_buckets},
};
use tokio::sync::watch;

use crate::{
    config::Config,
    model::Model,
    names::Names,
    policy::{Ledger, PressureStatus, RuleThreshold, Tracked},
    trends::TrendReport,
};

pub use crate::sources::{SourceKind, SourceStatus};

/// Counters and histograms the pipeline updates and `/metrics` exports. They count
/// since start rather than describe one tick, so they live beside the snapshot (atomic,
/// no lock).
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
    /// Hook deliveries, failed attempts, drops and attempt durations.
    pub hooks: Arc<crate::hooks::HookStats>,
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
            hooks: Arc::default(),
        }
    }
}

/// One tick's view of everything, immutable once published.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// How many snapshots were published before this one (0: the empty one at start).
    pub tick: u64,
    pub config: Arc<Config>,
    pub model: Arc<Model>,
    pub status: Arc<SourceStatus>,
    /// Each threshold rule's threshold as the policy resolved it (a percentage is absent
    /// while MemTotal is unknown).
    pub thresholds: Arc<[RuleThreshold]>,
    /// Each pressure rule's trigger as this tick's evaluation measured it.
    pub pressure: Arc<[PressureStatus]>,
    /// Processes kill rules are tracking after this tick's policy evaluation.
    pub tracked: Arc<[Tracked]>,
    /// The leak detector's reports, one per tracked series.
    pub trends: Arc<[TrendReport]>,
    /// Recent kill decisions and their counters.
    pub ledger: Arc<Ledger>,
    /// When the guardian started.
    pub started: Instant,
    /// When the model last took fresh data (a scan or a batch of kernel events); `None`
    /// until the first scan is done.
    pub updated: Option<Instant>,
}

impl Snapshot {
    /// True once the first scan is done.
    pub fn has_data(&self) -> bool {
        self.updated.is_some()
    }

    /// Time since the model last took fresh data (since start, before the first scan).
    pub fn staleness(&self) -> Duration {
        self.updated.unwrap_or(self.started).elapsed()
    }

    /// Fresh when data arrived within twice the scan interval (the watchdog's and
    /// /healthz's rule).
    pub fn is_fresh(&self) -> bool {
        self.has_data()
            && self.staleness()
                <= self.config.daemon.scan_interval.0 * 2 + Duration::from_millis(500)
    }
}

/// Shared by the pipeline (publisher) and the HTTP server (reader).
#[derive(Debug)]
pub struct AppState {
    published: watch::Sender<Arc<Snapshot>>,
    pub telemetry: Telemetry,
    pub started: Instant,
    /// Container names from the runtimes: filled by their own lookup task, whatever
    /// the tick (readers take the current table, lock-free while they use it).
    pub names: Arc<Names>,
}

impl AppState {
    /// Publishes an empty snapshot (tick 0) until the pipeline has data.
    pub fn new(config: Arc<Config>, status: SourceStatus) -> Self {
        let started = Instant::now();
        let first = Snapshot {
            tick: 0,
            config,
            model: Arc::default(),
            status: Arc::new(status),
            thresholds: Arc::from([]),
            pressure: Arc::from([]),
            tracked: Arc::from([]),
            trends: Arc::from([]),
            ledger: Arc::default(),
            started,
            updated: None,
        };
        AppState {
            published: watch::Sender::new(Arc::new(first)),
            telemetry: Telemetry::default(),
            started,
            names: Arc::default(),
        }
    }

    /// The latest snapshot (the lock inside is held only to clone the `Arc`).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.published.borrow())
    }

    /// The config in force (replaced on reload).
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.snapshot().config)
    }

    /// Publishes `next` as the following tick.
    pub fn publish(&self, mut next: Snapshot) {
        self.published.send_modify(|current| {
            next.tick = current.tick + 1;
            *current = Arc::new(next);
        });
    }
}

#[cfg(test)]
impl AppState {
    /// Publishes the current snapshot changed by `change` (shared parts stay shared).
    pub(crate) fn modify(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut next = Snapshot::clone(&self.snapshot());
        change(&mut next);
        self.publish(next);
    }

    /// Publishes the current snapshot with its model changed by `change`.
    pub(crate) fn change_model(&self, change: impl FnOnce(&mut Model)) {
        self.modify(|snapshot| change(Arc::make_mut(&mut snapshot.model)));
    }
}
