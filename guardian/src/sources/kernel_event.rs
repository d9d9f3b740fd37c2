//! Events the eBPF programs report, in userspace terms. Defined outside the `ebpf`
//! feature so the daemon's event path compiles (and stays idle) without it.

/// What the kernel reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// One RSS counter of `pid` (an `mm_struct` member) is now `pages`.
    Rss {
        pid: i32,
        member: u32,
        pages: i64,
    },
    /// The OOM killer chose a victim.
    Oom(guardian_ebpf::OomEvent),
    /// A new process: at this moment a copy of its parent but for its identity.
    Fork {
        pid: i32,
        parent: i32,
        /// `start_boottime` in ns (the identity's start time, before conversion to ticks).
        start_ns: u64,
    },
    /// `pid` runs a new program.
    Exec {
        pid: i32,
    },
    Exit {
        pid: i32,
    },
}
