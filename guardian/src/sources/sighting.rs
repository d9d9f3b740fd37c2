//! A process as a whole-host snapshot saw it (the eBPF task iterator), in the model's
//! terms: what a periodic refresh updates in a process the model already knows, and
//! what tells it apart from a new process (identity, comm).

use crate::model::{MemoryUsage, ProcessKey};

/// One process from a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub key: ProcessKey,
    pub ppid: i32,
    pub uid: u32,
    /// The kernel's `comm` bytes as the snapshot holds them (NUL-padded): inline, so a
    /// snapshot of every process allocates nothing per process.
    pub comm: [u8; 16],
    pub kernel_thread: bool,
    pub memory: MemoryUsage,
}

impl Sighting {
    /// `comm` as the model keeps it (lossy UTF-8); borrowed when it is valid UTF-8.
    pub fn comm(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(guardian_ebpf::trim_comm(&self.comm))
    }
}

/// Why a snapshot could not be taken (the caller rescans /proc instead).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the task iterator is not loaded")]
    NotLoaded,
    #[error("task iterator {step}: {message}")]
    Iterator { step: &'static str, message: String },
    #[error("task iterator output of {len} bytes is not a whole number of records")]
    Torn { len: usize },
}
