//! Memory sources: eBPF programs, and /proc plus cgroup scanning. Both implement
//! [`Source`] and feed the same model; nothing downstream knows which one did.

pub mod cgroup;
#[cfg(feature = "ebpf")]
pub mod ebpf;
pub mod events;
mod feed;
mod handle;
mod kernel_event;
pub mod kernfs;
pub mod kmsg;
pub mod oom_join;
pub mod procfs;
mod select;
mod sighting;
pub mod visibility;

pub use feed::{KernelSource, ProcfsSource, Source};
pub use handle::{EbpfHandle, SourceError, SourceKind, SourceStatus};
pub use kernel_event::KernelEvent;
pub use select::{Started, start};
pub use sighting::{Sighting, SnapshotError};
