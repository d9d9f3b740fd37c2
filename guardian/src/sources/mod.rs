//! Memory sources: eBPF programs, and /proc plus cgroup scanning. Both feed the same
//! model; nothing downstream knows which one did.

pub mod cgroup;
#[cfg(feature = "ebpf")]
pub mod ebpf;
mod kernel_event;
pub mod kernfs;
pub mod kmsg;
pub mod oom_join;
pub mod procfs;
mod sighting;

pub use kernel_event::KernelEvent;
pub use sighting::{Sighting, SnapshotError};
