//! One pass of the guardian: refresh the model (a full /proc scan, or kernel events in
//! between), read cgroups and host memory, turn OOM counters into events, feed trends,
//! hand due kill decisions to the executor, and publish the result as one snapshot.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    config::Config,
    hooks::{Hooks, Payload},
    model::Model,
    policy::{Executor, Policy, PolicyError, PressureStatus, RuleThreshold, Tracked},
    snapshot::{AppState, Snapshot, SourceStatus},
    sources::{KernelEvent, Source},
    trends::{TrendBook, TrendReport, Verdict},
};

/// Kernel events publish a snapshot at most this often (ticks always publish): each
/// publication makes the next change copy the model's indexes.
const EVENT_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// Why the pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("kill policy: {0}")]
    Policy(#[from] PolicyError),
}

/// The daemon's working set, owned by the main loop.
pub struct Pipeline {
    state: Arc<AppState>,
    /// Where the model's data comes from (eBPF or /proc and cgroups).
    source: Box<dyn Source>,
    config: Arc<Config>,
    status: Arc<SourceStatus>,
    /// The model this pipeline owns; published snapshots share it (copy on write).
    model: Arc<Model>,
    thresholds: Arc<[RuleThreshold]>,
    pressure: Arc<[PressureStatus]>,
    tracked: Arc<[Tracked]>,
    reports: Arc<[TrendReport]>,
    /// When the model last took fresh data; `None` until the first scan.
    updated: Option<Instant>,
    last_publish: Instant,
    policy: Policy,
    trends: TrendBook,
    executor: Arc<Executor>,
    kills: tokio::task::JoinSet<()>,
    last_full_scan: Instant,
    /// The name table's generation the policy last learned container pids from.
    names_generation: u64,
    /// Where events go for the `[[hook]]`s (queues only, never waits).
    hooks: Hooks,
    /// OOM kills already handed to the hooks.
    ooms_seen: u64,
    /// Whether the guardian's own memory cgroup was last seen nearly full.
    own_headroom: super::headroom::OwnHeadroom,
}

impl Pipeline {
    pub fn new(
        state: Arc<AppState>,
        source: Box<dyn Source>,
        executor: Arc<Executor>,
    ) -> Result<Pipeline, PipelineError> {
        let published = state.snapshot();
        let config = Arc::clone(&published.config);
        let mut policy = Policy::new(&config, std::process::id() as i32)?;
        policy.set_cgroup_root(source.cgroups().memory_root().to_path_buf());
        let hooks = Hooks::start(
            config.hooks().cloned().collect(),
            Arc::clone(&state.telemetry.hooks),
        );
        Ok(Pipeline {
            hooks,
            ooms_seen: 0,
            trends: TrendBook::new(&config.trends),
            policy,
            state,
            source,
            config,
            status: Arc::clone(&published.status),
            model: Arc::clone(&published.model),
            thresholds: Arc::clone(&published.thresholds),
            pressure: Arc::clone(&published.pressure),
            tracked: Arc::clone(&published.tracked),
            reports: Arc::clone(&published.trends),
            updated: None,
            last_publish: Instant::now(),
            executor,
            kills: tokio::task::JoinSet::new(),
            last_full_scan: Instant::now(),
            names_generation: 0,
            own_headroom: super::headroom::OwnHeadroom::default(),
        })
    }

    /// Copies the kernel-side drop count into telemetry.
    pub fn note_kernel_drops(&self) {
        self.state.telemetry.events_lost_kernel.store(
            self.source.kernel_dropped(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Detaches what the source attached to the kernel (first thing at shutdown).
    pub fn detach_source(&mut self) {
        self.source.detach();
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    pub fn scan_interval(&self) -> Duration {
        self.config.daemon.scan_interval.0
    }

    /// The first pass: everything is read.
    pub async fn full_tick(&mut self) {
        self.refresh(true);
        self.update_report_floor();
        self.act();
        self.publish();
    }

    /// Publishes what this pipeline knows now as the next snapshot.
    pub fn publish(&mut self) {
        self.last_publish = Instant::now();
        self.state.publish(Snapshot {
            tick: 0,
            config: Arc::clone(&self.config),
            model: Arc::clone(&self.model),
            status: Arc::clone(&self.status),
            thresholds: Arc::clone(&self.thresholds),
            pressure: Arc::clone(&self.pressure),
            tracked: Arc::clone(&self.tracked),
            trends: Arc::clone(&self.reports),
            ledger: self.executor.ledger(),
            started: self.state.started,
            updated: self.updated,
        });
    }

    /// True while kill decisions are being carried out.
    pub fn kills_running(&self) -> bool {
        !self.kills.is_empty()
    }

    /// Waits for the next kill decision to finish, then publishes its outcome.
    pub async fn kill_finished(&mut self) {
        if self.kills.join_next().await.is_some() {
            self.publish();
        }
    }

    /// Tells the kernel the lowest rule threshold: RSS steps below it need no record.
    fn update_report_floor(&mut self) {
        let floor = self.policy.lowest_threshold(self.model.host.total);
        match self.source.set_report_floor(floor) {
            Ok(()) => tracing::debug!(?floor, "kernel RSS report floor set"),
            Err(error) => tracing::warn!(%error, "cannot set the kernel RSS report floor"),
        }
    }

    /// The periodic pass. In eBPF mode every process is refreshed from the task iterator
    /// each tick; without it, /proc is rescanned only every `ebpf_rescan_interval` and
    /// events keep processes current in between.
    pub async fn tick(&mut self) {
        let full = self.source.full_refresh_due(
            self.last_full_scan.elapsed(),
            self.config.daemon.ebpf_rescan_interval.0,
        );
        self.refresh(full);
        self.own_headroom
            .check(&self.model, std::process::id() as i32);
        self.observe_trends();
        if self.policy.wants_trends() {
            self.policy.set_trends(&self.reports);
        }
        self.act();
        self.publish();
    }

    /// A batch of kernel events: applied, then the policy looks at once (kill latency).
    pub async fn on_kernel_events(&mut self, batch: &mut Vec<KernelEvent>) {
        self.state
            .telemetry
            .events_received_total
            .inc_by(batch.len() as u64);
        // The policy looks at once (kill latency) only when a process the batch touched
        // is above the threshold of a rule that matches it; everything else waits for
        // the tick.
        let mut over_threshold = false;
        let model = Arc::make_mut(&mut self.model);
        let total = model.host.total;
        for event in batch.drain(..) {
            let touched = self.source.apply(model, event);
            over_threshold |= touched
                .and_then(|pid| model.process_by_pid(pid))
                .is_some_and(|process| self.policy.might_be_due(process, total));
        }
        self.updated = Some(Instant::now());
        if over_threshold {
            self.act();
        }
        if over_threshold || self.last_publish.elapsed() >= EVENT_PUBLISH_INTERVAL {
            self.publish();
        }
    }

    /// Takes a new config (SIGHUP). Source, listen address, dry run and kill log path
    /// need a restart; the rest (kill log rotation and `on_write_failure` included)
    /// applies at once.
    pub fn apply_config(&mut self, config: Config) {
        let old = Arc::clone(&self.config);
        if config.daemon.listen != old.daemon.listen
            || config.daemon.source != old.daemon.source
            || config.kill_log.path != old.kill_log.path
            || config.daemon.dry_run != old.daemon.dry_run
            || config.daemon.ring_buffer_bytes != old.daemon.ring_buffer_bytes
        {
            tracing::warn!(
                "daemon.source, daemon.listen, daemon.dry_run, daemon.ring_buffer_bytes and kill_log.path changes apply at the next restart"
            );
        }
        let mut config = config;
        config.daemon.listen = old.daemon.listen;
        config.daemon.source = old.daemon.source;
        config.kill_log.path = old.kill_log.path.clone();
        config.daemon.dry_run = old.daemon.dry_run;
        config.daemon.ring_buffer_bytes = old.daemon.ring_buffer_bytes;
        // Rate-limit and backoff history carry over: a reload is no way around the brakes.
        match self.policy.reload(&config) {
            Ok(()) => {
                let trends = &config.trends;
                let before = &old.trends;
                if (trends.enabled, trends.min_rss, trends.max_series)
                    != (before.enabled, before.min_rss, before.max_series)
                {
                    self.trends = TrendBook::new(trends);
                }
                self.executor.apply_kill_log_settings(&config.kill_log);
                if config.hooks().ne(old.hooks()) {
                    // The old delivery task ends once its queue is empty.
                    self.hooks = Hooks::start(
                        config.hooks().cloned().collect(),
                        Arc::clone(&self.state.telemetry.hooks),
                    );
                    tracing::info!(hooks = config.hooks().count(), "hooks reloaded");
                }
                let log = &config.kill_log;
                tracing::info!(
                    on_write_failure = ?log.on_write_failure,
                    max_file_bytes = log.max_file_bytes.0,
                    keep_files = log.keep_files,
                    "kill log settings in force"
                );
                self.config = Arc::new(config);
                self.update_report_floor();
                self.publish();
                tracing::info!("config reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "config reload rejected; the old config stays in force")
            }
        }
    }

    /// Waits (bounded) for kills under way, so their outcomes reach the kill log.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while self.kills.join_next().await.is_some() {}
        })
        .await;
    }

    fn refresh(&mut self, full: bool) {
        let started = Instant::now();
        let scan = full.then(|| self.source.scan(&self.model));
        let host = self.source.proc().host_memory();
        if let Some(report) = scan {
            self.state
                .telemetry
                .vanished_total
                .inc_by(u64::from(report.vanished));
            if report.processes.is_empty() && report.errors > 0 {
                // /proc could not be listed: keep the last view rather than forget all.
                tracing::warn!(
                    errors = report.errors,
                    "process scan read nothing; keeping the previous view"
                );
            } else if let Some(model) = Arc::get_mut(&mut self.model) {
                model.replace_processes(report.processes);
            } else {
                // The published snapshot shares the model: the new one is built beside
                // it, never from a copy of the index the scan replaces.
                self.model = Arc::new(self.model.with_processes(report.processes));
            }
            self.last_full_scan = Instant::now();
        }
        let model = Arc::make_mut(&mut self.model);
        match host {
            Ok(host) => model.host = host,
            Err(error) => tracing::warn!(%error, "cannot read host memory"),
        }
        self.source.refresh_cgroups(model);
        self.state.telemetry.scans_total.inc();
        self.state
            .telemetry
            .scan_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        self.updated = Some(Instant::now());
    }

    /// Feeds the detector one sample of every process and cgroup, logs verdict changes and
    /// publishes the reports.
    fn observe_trends(&mut self) {
        let now = crate::sources::kernfs::system::seconds_since_boot();
        let total = self.model.host.total;
        let policy = &self.policy;
        self.trends.observe(&self.model, now, &|process| {
            policy.threshold_for(process, total)
        });
        for change in self.trends.take_changes() {
            // Growth and leaks are news; warm-up ending in "stable" is not.
            let notable = matches!(change.to, Verdict::Growing | Verdict::Leak)
                || change.from == Verdict::Leak;
            if change.to == Verdict::Leak {
                self.hooks.emit(Payload::leak(&change));
            }
            if notable {
                tracing::info!(
                    subject = %change.subject,
                    from = %change.from,
                    to = %change.to,
                    slope_bytes_per_second = change.slope_bytes_per_second,
                    confidence = change.confidence,
                    time_to_limit_s = change.time_to_limit_s,
                    "trend verdict changed"
                );
            } else {
                tracing::debug!(subject = %change.subject, from = %change.from, to = %change.to, "trend verdict changed");
            }
        }
        for change in self.trends.take_imminence_changes() {
            if change.imminent {
                self.hooks.emit(Payload::imminent(&change));
                tracing::warn!(
                    subject = %change.subject,
                    verdict = %change.verdict,
                    time_to_limit_s = change.time_to_limit_s,
                    limit_bytes = change.limit_bytes,
                    limit_kind = change.limit_kind.map(|kind| kind.as_str()),
                    level_bytes = change.level_bytes,
                    approach_bytes_per_second = change.approach_bytes_per_second,
                    "memory limit imminent"
                );
            } else {
                tracing::info!(
                    subject = %change.subject,
                    verdict = %change.verdict,
                    time_to_limit_s = change.time_to_limit_s,
                    "memory limit no longer imminent"
                );
            }
        }
        self.reports = self.trends.reports().into();
    }

    /// Asks the policy for due decisions and runs each in its own task.
    fn act(&mut self) {
        while self.kills.try_join_next().is_some() {}
        let names = self.state.names.current();
        if names.generation() != self.names_generation {
            // The runtimes' first pids confirm containers; a generation number tells
            // when the table changed, so nothing is copied per tick.
            self.names_generation = names.generation();
            self.policy.set_container_pids(names.init_pids());
        }
        let decisions = self.policy.evaluate(&self.model, Instant::now());
        let total = self.model.host.total;
        self.tracked = self.policy.tracked(total).into();
        self.thresholds = self.policy.thresholds(total).into();
        let pressure: Arc<[PressureStatus]> = self.policy.pressure_status(Instant::now()).into();
        self.emit_pressure_and_ooms(&pressure);
        self.pressure = pressure;
        for mut decision in decisions {
            // The name as the table has it now: no runtime is asked on the kill path.
            decision.container = names.of(&decision.process.class).cloned();
            let executor = self.executor.clone();
            let hooks = self.hooks.clone();
            self.kills.spawn(async move {
                let report = executor.execute(decision).await;
                // After the kill and its log records: the hooks only get a queued copy.
                hooks.emit(Payload::kill(&report));
            });
        }
    }

    /// Tells the hooks about pressure rules whose trigger started to hold since the
    /// last pass, and about OOM kills recorded since then.
    fn emit_pressure_and_ooms(&mut self, pressure: &[PressureStatus]) {
        if !self.hooks.enabled() {
            return;
        }
        for status in pressure.iter().filter(|status| status.firing) {
            let was_firing = self
                .pressure
                .iter()
                .any(|old| old.rule == status.rule && old.firing);
            if !was_firing {
                self.hooks.emit(Payload::pressure(status));
            }
        }
        let total: u64 = self.model.oom_totals().values().sum();
        let new = usize::try_from(total.saturating_sub(self.ooms_seen)).unwrap_or(usize::MAX);
        self.ooms_seen = total;
        if new > 0 {
            // The model keeps the newest events: the last `new` are the ones not yet sent.
            let kept = self.model.oom_events().count();
            for event in self.model.oom_events().skip(kept.saturating_sub(new)) {
                self.hooks.emit(Payload::oom(event));
            }
        }
    }
}
