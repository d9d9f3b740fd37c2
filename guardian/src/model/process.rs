//! A process as the model knows it, whichever source filled it in.

use std::sync::Arc;

use serde::Serialize;

use crate::classify::{CgroupLine, Classification};

/// A process's identity: its pid and its start time (clock ticks after boot, field 22 of
/// `/proc/PID/stat`). A reused pid has another start time, so it is another key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProcessKey {
    pub pid: i32,
    pub start_ticks: u64,
}

/// Resident memory in bytes, split as the kernel counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryUsage {
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
    pub swap: u64,
}

impl MemoryUsage {
    /// Builds a usage from its parts, with `rss` their sum (as VmRSS is).
    pub fn from_parts(anon: u64, file: u64, shmem: u64, swap: u64) -> Self {
        MemoryUsage {
            rss: anon + file + shmem,
            anon,
            file,
            shmem,
            swap,
        }
    }
}

/// Everything known of one process.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    pub key: ProcessKey,
    pub ppid: i32,
    pub uid: u32,
    pub comm: String,
    /// Shared: a steady-state scan copies a process without copying its arguments.
    /// Serialized redacted, as one string: whatever shows a process shows no secret.
    #[serde(serialize_with = "serialize_redacted")]
    pub cmdline: Arc<[String]>,
    /// Kernel threads have no mm and are never candidates for anything.
    pub kernel_thread: bool,
    pub oom_score_adj: i32,
    pub memory: MemoryUsage,
    /// The raw `/proc/PID/cgroup` lines, shared by every process with the same ones
    /// (most of a host's processes sit in a handful of cgroups).
    pub cgroups: Arc<[CgroupLine]>,
    /// Path of the process's cgroup in the hierarchy that holds the memory controller,
    /// shared like `cgroups` (a copy of the process copies no path).
    pub memory_cgroup: Option<Arc<str>>,
    pub class: Classification,
    /// Seconds since boot at which the process started.
    pub started_secs: f64,
}

impl Process {
    /// The command line as one string (arguments joined by spaces), or `[comm]` for
    /// processes without one, as `ps` shows them.
    pub fn cmdline_text(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }
}

/// The arguments redacted and joined by spaces (see [`crate::redact::redact_argv`]).
fn serialize_redacted<S: serde::Serializer>(
    cmdline: &Arc<[String]>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::redact::redact_argv(cmdline))
}
