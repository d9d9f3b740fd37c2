//! The one interface both memory sources give the pipeline: a full refresh of every
//! process, fresh cgroups (with the OOM kills the source learns from them), kernel
//! events applied to the model. The pipeline holds a `Box<dyn Source>` and never asks
//! which one it has.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use tokio::sync::mpsc;

use super::{
    KernelEvent,
    cgroup::{CgroupReader, OomWatch},
    events,
    handle::{EbpfHandle, SourceError, SourceKind, detach},
    kmsg::KmsgReader,
    oom_join::OomJoin,
    procfs::{ProcReader, ScanReport},
};
use crate::model::Model;

/// A memory source as the pipeline uses it.
pub trait Source {
    /// Which source this is.
    fn kind(&self) -> SourceKind;

    /// The /proc reader (host memory, page size, clock ticks) both sources keep.
    fn proc(&self) -> &ProcReader;

    /// The cgroup reader (where the memory hierarchy is mounted) both sources keep.
    fn cgroups(&self) -> &CgroupReader;

    /// Whether this tick refreshes every process (`since_full` after the last full
    /// refresh), rather than trusting kernel events to have kept them current.
    fn full_refresh_due(&self, since_full: Duration, rescan: Duration) -> bool;

    /// Every process now, given what the model already knows of them.
    fn scan(&mut self, model: &Model) -> ScanReport;

    /// Reads every cgroup into `model`, with the OOM kills this source learns from
    /// their counters; keeps the previous view when the read fails.
    fn refresh_cgroups(&mut self, model: &mut Model);

    /// Applies one kernel event; returns the pid whose memory changed, if any.
    fn apply(&mut self, model: &mut Model, event: KernelEvent) -> Option<i32>;

    /// Starts delivering kernel events to `events` (`dropped` counts what could not be
    /// queued); a source without kernel events has nothing to start.
    fn spawn_reader(
        &mut self,
        _events: mpsc::Sender<KernelEvent>,
        _dropped: Arc<AtomicU64>,
    ) -> Result<(), SourceError> {
        Ok(())
    }

    /// Tells the kernel the lowest rule threshold (RSS steps below it need no record).
    fn set_report_floor(&mut self, _floor: Option<u64>) -> Result<(), SourceError> {
        Ok(())
    }

    /// Records the kernel could not deliver (ring buffer full).
    fn kernel_dropped(&self) -> u64 {
        0
    }

    /// Detaches whatever the source attached to the kernel (at shutdown, first).
    fn detach(&mut self) {}
}

/// Reads the current cgroups and swaps them into the model; the counter changes since
/// the last read, for the OOM kills they count.
fn read_cgroups(
    cgroups: &CgroupReader,
    oom_watch: &mut OomWatch,
    model: &mut Model,
) -> Option<Vec<super::cgroup::OomCounterChange>> {
    match cgroups.read_all() {
        Ok(read) => {
            let changes = oom_watch.update(&read);
            model.replace_cgroups(read);
            Some(changes)
        }
        Err(error) => {
            tracing::warn!(%error, "cgroup read failed; keeping the previous cgroup view");
            None
        }
    }
}

/// /proc and cgroup scanning: every process from /proc each tick, OOM kills from the
/// cgroup counters joined with the victims the kernel logged.
pub struct ProcfsSource {
    proc: ProcReader,
    cgroups: CgroupReader,
    oom_watch: OomWatch,
    /// The kernel log, for the victims of the OOM kills counters count.
    kmsg: Option<KmsgReader>,
    oom_join: OomJoin,
}

impl ProcfsSource {
    pub fn new(proc: ProcReader, cgroups: CgroupReader) -> Self {
        let kmsg = KmsgReader::open(std::path::Path::new("/dev/kmsg"))
            .inspect_err(|error| tracing::warn!(%error, "OOM victims unknown in procfs mode"))
            .ok();
        ProcfsSource {
            oom_watch: OomWatch::new(cgroups.hierarchy()),
            proc,
            cgroups,
            kmsg,
            oom_join: OomJoin::default(),
        }
    }
}

impl Source for ProcfsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Procfs
    }

    fn proc(&self) -> &ProcReader {
        &self.proc
    }

    fn cgroups(&self) -> &CgroupReader {
        &self.cgroups
    }

    fn full_refresh_due(&self, _since_full: Duration, _rescan: Duration) -> bool {
        true
    }

    fn scan(&mut self, model: &Model) -> ScanReport {
        self.proc.scan(model)
    }

    fn refresh_cgroups(&mut self, model: &mut Model) {
        let Some(changes) = read_cgroups(&self.cgroups, &mut self.oom_watch, model) else {
            return;
        };
        // Read after the counters: the kernel counts a kill before it logs it.
        let victims = self
            .kmsg
            .as_mut()
            .map(KmsgReader::drain)
            .unwrap_or_default();
        for event in self.oom_join.join(changes, victims, self.kmsg.is_some()) {
            tracing::warn!(
                cgroup = event.cgroup.as_deref().unwrap_or(""),
                scope = event.scope.as_str(),
                pid = event.pid,
                comm = event.comm.as_deref(),
                origin = ?event.origin,
                "OOM kill"
            );
            model.record_oom(event);
        }
    }

    fn apply(&mut self, model: &mut Model, event: KernelEvent) -> Option<i32> {
        events::apply(model, &self.proc, &self.cgroups, event)
    }
}

/// The eBPF programs: kernel events between refreshes, every process from the task
/// iterator each tick (or /proc every `ebpf_rescan_interval` on kernels without it),
/// OOM kills from the `mark_victim` tracepoint.
pub struct KernelSource {
    /// `None` once detached.
    handle: Option<EbpfHandle>,
    proc: ProcReader,
    cgroups: CgroupReader,
    oom_watch: OomWatch,
}

impl KernelSource {
    pub fn new(handle: EbpfHandle, proc: ProcReader, cgroups: CgroupReader) -> Self {
        KernelSource {
            handle: Some(handle),
            oom_watch: OomWatch::new(cgroups.hierarchy()),
            proc,
            cgroups,
        }
    }

    fn has_snapshots(&self) -> bool {
        self.handle.as_ref().is_some_and(EbpfHandle::has_snapshots)
    }
}

impl Source for KernelSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Ebpf
    }

    fn proc(&self) -> &ProcReader {
        &self.proc
    }

    fn cgroups(&self) -> &CgroupReader {
        &self.cgroups
    }

    fn full_refresh_due(&self, since_full: Duration, rescan: Duration) -> bool {
        self.has_snapshots() || since_full >= rescan
    }

    fn scan(&mut self, model: &Model) -> ScanReport {
        if let Some(handle) = self.handle.as_mut().filter(|handle| handle.has_snapshots()) {
            // Each sighting is merged as the iterator hands it over: a list of every
            // process would be a tick's largest allocation (about 1 MiB at 10,000
            // processes), and under `lock_memory` a page of heap once used stays resident.
            let mut merge = self.proc.merge(model);
            match handle.snapshot_tasks(
                self.proc.clock_ticks(),
                self.proc.page_size(),
                &mut |sighting| merge.add(&sighting),
            ) {
                Ok(()) => return merge.finish(),
                Err(error) => {
                    tracing::warn!(%error, "task snapshot failed; reading /proc this time")
                }
            }
        }
        self.proc.scan(model)
    }

    fn refresh_cgroups(&mut self, model: &mut Model) {
        // The tracepoint reports OOM kills here; the counters only keep their baseline.
        read_cgroups(&self.cgroups, &mut self.oom_watch, model);
    }

    fn apply(&mut self, model: &mut Model, event: KernelEvent) -> Option<i32> {
        events::apply(model, &self.proc, &self.cgroups, event)
    }

    fn spawn_reader(
        &mut self,
        events: mpsc::Sender<KernelEvent>,
        dropped: Arc<AtomicU64>,
    ) -> Result<(), SourceError> {
        if let Some(handle) = self.handle.as_mut() {
            handle.spawn_reader(events, dropped)?;
        }
        Ok(())
    }

    fn set_report_floor(&mut self, floor: Option<u64>) -> Result<(), SourceError> {
        if let Some(handle) = self.handle.as_mut() {
            handle.set_report_floor(floor, self.proc.page_size())?;
        }
        Ok(())
    }

    fn kernel_dropped(&self) -> u64 {
        self.handle.as_ref().map_or(0, EbpfHandle::kernel_dropped)
    }

    fn detach(&mut self) {
        if let Some(handle) = self.handle.take() {
            detach(handle);
        }
    }
}
