//! Source selection: eBPF when asked for or when auto finds it loads, else /proc and
//! cgroups, with the reason recorded for logs, `/api/v1/status` and metrics.

use crate::{
    config::{Config, SourceChoice},
    sources::{
        Source,
        cgroup::CgroupReader,
        feed::{KernelSource, ProcfsSource},
        handle::{EbpfHandle, SourceError, SourceKind, SourceStatus},
        procfs::ProcReader,
    },
};

/// What [`start`] chose.
pub struct Started {
    pub status: SourceStatus,
    pub source: Box<dyn Source>,
}

/// Picks and starts the source the config asks for.
pub fn start(config: &Config) -> Result<Started, SourceError> {
    let cgroups = CgroupReader::detect(std::path::Path::new("/sys/fs/cgroup"))?;
    let proc = ProcReader::new("/proc")?;
    if let Some(hidden) = super::visibility::hidden_processes(std::path::Path::new("/proc")) {
        tracing::warn!(mount = %hidden.mount_point.display(), option = %hidden.option, "{hidden}");
    }
    if super::visibility::lacks_ptrace() == Some(true) {
        tracing::warn!("{}", super::visibility::EXECUTABLES_CLOSED);
    }
    let choice = config.daemon.source;
    let (ebpf, fallback_reason) = match choice {
        SourceChoice::Procfs => (None, None),
        SourceChoice::Ebpf | SourceChoice::Auto => match load_ebpf(config) {
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
    let source: Box<dyn Source> = match ebpf {
        Some(handle) => Box::new(KernelSource::new(handle, proc, cgroups)),
        None => Box::new(ProcfsSource::new(proc, cgroups)),
    };
    Ok(Started { status, source })
}

#[cfg(feature = "ebpf")]
fn load_ebpf(config: &Config) -> Result<EbpfHandle, String> {
    // Validated: a power of two from 4 KiB to 1 GiB.
    let ring_bytes = u32::try_from(config.daemon.ring_buffer_bytes.0).unwrap_or(u32::MAX);
    crate::sources::ebpf::EbpfSource::load(std::process::id(), ring_bytes).map_err(|error| {
        let lockdown = std::fs::read_to_string(LOCKDOWN).unwrap_or_default();
        match lockdown_note(&lockdown) {
            Some(note) => format!("{note}: {error}"),
            None => error.to_string(),
        }
    })
}

/// The kernel's lockdown level (securityfs).
#[cfg(feature = "ebpf")]
const LOCKDOWN: &str = "/sys/kernel/security/lockdown";

/// Why a load failed, when the kernel is locked down (`none [integrity]
/// confidentiality`): the verifier's own words ("reg type unsupported") do not say.
#[cfg(feature = "ebpf")]
fn lockdown_note(lockdown: &str) -> Option<&'static str> {
    lockdown.contains("[confidentiality]").then_some(
        "the kernel is locked down (lockdown=confidentiality), which forbids BPF programs \
         to read kernel memory",
    )
}

#[cfg(not(feature = "ebpf"))]
fn load_ebpf(_config: &Config) -> Result<EbpfHandle, String> {
    Err("this guardian was built without the ebpf feature".to_string())
}

#[cfg(all(test, feature = "ebpf"))]
mod tests {
    use super::lockdown_note;

    #[test]
    fn only_confidentiality_lockdown_is_named() {
        assert!(lockdown_note("none integrity [confidentiality]\n").is_some());
        assert_eq!(lockdown_note("none [integrity] confidentiality\n"), None);
        assert_eq!(lockdown_note("[none] integrity confidentiality\n"), None);
        assert_eq!(lockdown_note(""), None);
    }
}
