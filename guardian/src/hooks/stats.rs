//! Counters of hook deliveries since start, for `/metrics` (`guardian_hook_*`). Hooks
//! deliver rarely, so one mutex over small maps is plenty; the maps are filled with
//! zeros for every configured hook at start, so `increase()` sees the first event.

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::config::{HookConfig, HookEvent};

/// Where a delivery went: the hook's command or its webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Command,
    Webhook,
}

impl Target {
    /// The `target` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Command => "command",
            Target::Webhook => "webhook",
        }
    }
}

/// How one event's delivery to one target ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// An attempt succeeded (exit 0, or a 2xx answer).
    Ok,
    /// Every attempt failed.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 2] = [Outcome::Ok, Outcome::Failed];

    /// The `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }
}

/// Why one attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// Cut off by the hook's `timeout`.
    Timeout,
    /// Could not run or connect, non-zero exit, or a non-2xx answer.
    Error,
}

impl FailureKind {
    pub const ALL: [FailureKind; 2] = [FailureKind::Timeout, FailureKind::Error];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Error => "error",
        }
    }
}

/// Why an event was not delivered at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropKind {
    /// The queue from the pipeline to the delivery task was full.
    QueueFull,
    /// The hook had `max_concurrent` deliveries running.
    Busy,
}

impl DropKind {
    pub const ALL: [DropKind; 2] = [DropKind::QueueFull, DropKind::Busy];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropKind::QueueFull => "queue_full",
            DropKind::Busy => "busy",
        }
    }
}

/// Deliveries by (hook, target, event, result).
pub type DeliveryKey = (String, Target, HookEvent, Outcome);
/// Failed attempts by (hook, target, reason).
pub type FailureKey = (String, Target, FailureKind);
/// Dropped events by (hook, event, reason).
pub type DropKey = (String, HookEvent, DropKind);
/// Attempt durations by (hook, target).
pub type DurationKey = (String, Target);

#[derive(Debug, Default)]
struct Counts {
    deliveries: BTreeMap<DeliveryKey, u64>,
    failures: BTreeMap<FailureKey, u64>,
    drops: BTreeMap<DropKey, u64>,
    durations: BTreeMap<DurationKey, Histogram>,
}

/// Hook deliveries, failed attempts, drops and attempt durations since start.
#[derive(Debug, Default)]
pub struct HookStats {
    counts: Mutex<Counts>,
}

/// Attempt duration buckets: 1 ms to about 65 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}

impl HookStats {
    /// Adds zero series for `hook` so every counter it can move is exported from start.
    pub fn register(&self, hook: &HookConfig) {
        let mut counts = self.lock();
        let targets = hook
            .command
            .as_ref()
            .map(|_| Target::Command)
            .into_iter()
            .chain(hook.url.as_ref().map(|_| Target::Webhook));
        for target in targets {
            let name = hook.name.clone();
            for &event in &hook.events {
                for outcome in Outcome::ALL {
                    counts
                        .deliveries
                        .entry((name.clone(), target, event, outcome))
                        .or_default();
                }
            }
            for kind in FailureKind::ALL {
                counts
                    .failures
                    .entry((name.clone(), target, kind))
                    .or_default();
            }
            counts
                .durations
                .entry((name, target))
                .or_insert_with(duration_histogram);
        }
        for &event in &hook.events {
            for kind in DropKind::ALL {
                counts
                    .drops
                    .entry((hook.name.clone(), event, kind))
                    .or_default();
            }
        }
    }

    /// One event's delivery to one target ended.
    pub fn delivered(&self, hook: &str, target: Target, event: HookEvent, outcome: Outcome) {
        *self
            .lock()
            .deliveries
            .entry((hook.to_string(), target, event, outcome))
            .or_default() += 1;
    }

    /// One attempt failed.
    pub fn attempt_failed(&self, hook: &str, target: Target, kind: FailureKind) {
        *self
            .lock()
            .failures
            .entry((hook.to_string(), target, kind))
            .or_default() += 1;
    }

    /// One event was not delivered to `hook`.
    pub fn dropped(&self, hook: &str, event: HookEvent, kind: DropKind) {
        *self
            .lock()
            .drops
            .entry((hook.to_string(), event, kind))
            .or_default() += 1;
    }

    /// One attempt took `took`.
    pub fn observe(&self, hook: &str, target: Target, took: Duration) {
        self.lock()
            .durations
            .entry((hook.to_string(), target))
            .or_insert_with(duration_histogram)
            .observe(took.as_secs_f64());
    }

    /// Deliveries so far, for `/metrics`.
    pub fn deliveries(&self) -> Vec<(DeliveryKey, u64)> {
        let counts = self.lock();
        counts
            .deliveries
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Failed attempts so far, for `/metrics`.
    pub fn failures(&self) -> Vec<(FailureKey, u64)> {
        let counts = self.lock();
        counts
            .failures
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Dropped events so far, for `/metrics`.
    pub fn drops(&self) -> Vec<(DropKey, u64)> {
        let counts = self.lock();
        counts.drops.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Attempt duration histograms (shared: the copies read the same buckets).
    pub fn durations(&self) -> Vec<(DurationKey, Histogram)> {
        let counts = self.lock();
        counts
            .durations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
