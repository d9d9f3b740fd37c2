//! What both sources share with their selection: which source runs and its status,
//! why none could start, and the loaded eBPF programs or, built without eBPF, an
//! uninhabited stand-in with the same methods (so no caller needs a `cfg`).

use serde::Serialize;

use crate::sources::{cgroup::CgroupError, procfs::ProcError};

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

/// Why no source could start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "--source ebpf: the eBPF programs could not be loaded: {reason} \
         (run as root on a kernel with BTF, or use --source procfs)"
    )]
    EbpfRequired { reason: String },
    #[error("eBPF source: {0}")]
    #[cfg(feature = "ebpf")]
    Ebpf(#[from] crate::sources::ebpf::EbpfError),
    #[error("cgroups: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("/proc: {0}")]
    Proc(#[from] ProcError),
}

/// The loaded eBPF programs, or an uninhabited stand-in when built without eBPF.
#[cfg(feature = "ebpf")]
pub type EbpfHandle = crate::sources::ebpf::EbpfSource;

/// Built without the `ebpf` feature: there is never an eBPF source.
#[cfg(not(feature = "ebpf"))]
pub enum EbpfHandle {}

#[cfg(not(feature = "ebpf"))]
impl EbpfHandle {
    pub fn spawn_reader(
        &mut self,
        _events: tokio::sync::mpsc::Sender<crate::sources::KernelEvent>,
        _dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<tokio::task::JoinHandle<()>, SourceError> {
        match *self {}
    }

    pub fn kernel_dropped(&self) -> u64 {
        match *self {}
    }

    pub fn has_snapshots(&self) -> bool {
        match *self {}
    }

    pub fn set_report_floor(
        &mut self,
        _bytes: Option<u64>,
        _page_size: u64,
    ) -> Result<(), SourceError> {
        match *self {}
    }

    pub fn snapshot_tasks(
        &mut self,
        _clock_ticks: u64,
        _page_size: u64,
        _each: &mut dyn FnMut(crate::sources::Sighting),
    ) -> Result<(), crate::sources::SnapshotError> {
        match *self {}
    }
}

/// Detaches and unloads the programs (dropping the handle does it).
#[cfg(feature = "ebpf")]
pub fn detach(handle: EbpfHandle) {
    drop(handle);
    tracing::info!("eBPF programs detached");
}

#[cfg(not(feature = "ebpf"))]
pub fn detach(handle: EbpfHandle) {
    match handle {}
}
