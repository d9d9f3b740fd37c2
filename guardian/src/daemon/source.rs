//! Source selection: eBPF when asked for or when auto finds it loads, else /proc and
//! cgroups, with the reason recorded for logs, `/api/v1/status` and metrics.

use std::sync::{Arc, atomic::AtomicU64};

use tokio::sync::mpsc;

use crate::{
    config::{Config, SourceChoice},
    snapshot::{SourceKind, SourceStatus},
    sources::{KernelEvent, cgroup::CgroupReader},
};

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
    Cgroup(#[from] crate::sources::cgroup::CgroupError),
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
        _events: mpsc::Sender<KernelEvent>,
        _dropped: Arc<AtomicU64>,
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
        _out: &mut Vec<crate::sources::Sighting>,
    ) -> Result<(), crate::sources::SnapshotError> {
        match *self {}
    }
}

/// What [`start`] chose.
pub struct Started {
    pub kind: SourceKind,
    pub status: SourceStatus,
    pub ebpf: Option<EbpfHandle>,
}

/// Picks and starts the source the config asks for.
pub fn start(config: &Config) -> Result<Started, SourceError> {
    let cgroups = CgroupReader::detect(std::path::Path::new("/sys/fs/cgroup"))?;
    let choice = config.daemon.source;
    let (ebpf, fallback_reason) = match choice {
        SourceChoice::Procfs => (None, None),
        SourceChoice::Ebpf | SourceChoice::Auto => match load_ebpf() {
            Ok(handle) => (Some(handle), None),
            Err(reason) if choice == SourceChoice::Ebpf => {
                return Err(SourceError::EbpfRequired { reason });
            }
            Err(reason) => {
                tracing::warn!(%reason, "eBPF unavailable; falling back to /proc and cgroup scanning");
                (None, Some(reason))
            }
        },
    };
    let kind = if ebpf.is_some() {
        SourceKind::Ebpf
    } else {
        SourceKind::Procfs
    };
    let status = SourceStatus {
        source: kind,
        requested: format!("{choice:?}").to_lowercase(),
        fallback_reason,
        cgroup_layout: format!("{:?}", cgroups.layout()).to_lowercase(),
        memory_hierarchy: cgroups.memory_root().display().to_string(),
        refresh: if ebpf.as_ref().is_some_and(EbpfHandle::has_snapshots) {
            "task-iterator"
        } else {
            "procfs"
        }
        .to_string(),
    };
    tracing::info!(source = kind.as_str(), layout = %status.cgroup_layout, "memory source selected");
    Ok(Started { kind, status, ebpf })
}

#[cfg(feature = "ebpf")]
fn load_ebpf() -> Result<EbpfHandle, String> {
    crate::sources::ebpf::EbpfSource::load(std::process::id()).map_err(|error| error.to_string())
}

#[cfg(not(feature = "ebpf"))]
fn load_ebpf() -> Result<EbpfHandle, String> {
    Err("this guardian was built without the ebpf feature".to_string())
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

/// Starts the ring buffer reader when there is an eBPF source.
pub fn spawn_reader(
    ebpf: Option<&mut EbpfHandle>,
    events: mpsc::Sender<KernelEvent>,
    dropped: Arc<AtomicU64>,
) -> Result<(), SourceError> {
    if let Some(handle) = ebpf {
        handle.spawn_reader(events, dropped)?;
    }
    Ok(())
}
