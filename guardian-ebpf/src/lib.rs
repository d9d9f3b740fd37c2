//! Types shared by guardian's eBPF programs and its userspace, in one place.
//!
//! Everything here is `#[repr(C)]`, `Copy`, made of fixed-size integers with explicit
//! padding, so the bytes the kernel writes to the ring buffer are the bytes userspace
//! reads. The `user` feature implements `aya::Pod` for them.
#![no_std]

/// Kinds of record the programs write to the [`EVENTS_MAP`] ring buffer.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A process's RSS counter moved by at least one reporting step: [`RssEvent`].
    Rss = 1,
    /// The OOM killer chose a victim: [`OomEvent`].
    Oom = 2,
    /// A process was forked: [`ProcEvent`] (new threads are not reported).
    Fork = 3,
    /// A process called exec: [`ProcEvent`].
    Exec = 4,
    /// A thread-group leader exited: [`ProcEvent`].
    Exit = 5,
}

impl EventKind {
    /// Reads the kind back from the header's raw value; unknown kinds are `None`.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(Self::Rss),
            2 => Some(Self::Oom),
            3 => Some(Self::Fork),
            4 => Some(Self::Exec),
            5 => Some(Self::Exit),
            _ => None,
        }
    }
}

/// First bytes of every ring buffer record, so userspace can dispatch on `kind`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    pub kind: u32,
    /// The process the record is about (a thread-group id, "pid" in userspace terms).
    pub tgid: u32,
    /// `bpf_ktime_get_boot_ns` when the kernel produced the record.
    pub ktime_ns: u64,
}

/// One RSS counter of one process moved by a reporting step (see [`RSS_STEP_SHIFT`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RssEvent {
    pub header: EventHeader,
    /// Which `mm_struct` counter: [`MM_FILEPAGES`], [`MM_ANONPAGES`] or [`MM_SHMEMPAGES`].
    pub member: u32,
    pub _pad: u32,
    /// The counter's value in pages, as `get_mm_counter` reads it.
    pub pages: i64,
}

/// The OOM killer's victim, from `oom:mark_victim`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomEvent {
    /// `header.tgid` is the victim's pid.
    pub header: EventHeader,
    pub uid: u32,
    /// The task that ran into the OOM condition (its cgroup tells cgroup-limit OOMs).
    pub trigger_tgid: u32,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub oom_score_adj: i32,
    /// 1 when the program read the victim's task (comm, uid, counters, oom_score_adj);
    /// 0 on kernels whose tracepoint passes only the pid (before 6.8): then only
    /// `header` and `trigger_tgid` are set.
    pub detailed: u32,
    /// The victim's command name, NUL-padded.
    pub comm: [u8; 16],
}

/// A process came (fork, exec) or went (exit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcEvent {
    /// `header.tgid` is the child (fork), the exec'ing process or the exiting one.
    pub header: EventHeader,
    /// The parent's pid for a fork, 0 otherwise.
    pub parent_tgid: u32,
    pub _pad: u32,
    /// The process's `start_boottime`: with the pid, its identity (a forked child's is
    /// known without reading /proc).
    pub start_boottime_ns: u64,
}

/// One process as the task iterator (`task_snapshot`) writes it: the fields a periodic
/// rescan refreshes, read in the kernel in one pass instead of one /proc file per process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskRecord {
    pub tgid: u32,
    /// The real parent's tgid, as `/proc/PID/stat` shows it.
    pub ppid: u32,
    /// The real uid (first field of `Uid:` in `/proc/PID/status`).
    pub uid: u32,
    /// `task_struct.flags` (`PF_KTHREAD` marks kernel threads).
    pub flags: u32,
    /// `task_struct.start_boottime`: with the pid, the process's identity.
    pub start_boottime_ns: u64,
    /// The `mm_struct` counters in pages, indexed by `MM_*`; zero without an mm.
    pub pages: [i64; 4],
    /// The command name, NUL-padded.
    pub comm: [u8; 16],
}

/// A NUL-padded kernel command name without its padding.
pub fn trim_comm(comm: &[u8; 16]) -> &[u8] {
    let len = comm
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(comm.len());
    &comm[..len]
}

/// `PF_KTHREAD` from the kernel's `sched.h`.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// `enum mm_counter` values from the kernel's `mm_types_task.h`.
pub const MM_FILEPAGES: u32 = 0;
pub const MM_ANONPAGES: u32 = 1;
pub const MM_SWAPENTS: u32 = 2;
pub const MM_SHMEMPAGES: u32 = 3;
/// Number of `mm_struct` RSS counters the program tracks (file, anon, swap, shmem).
pub const NR_MM_COUNTERS: u32 = 4;

/// RSS reporting step: a counter is reported when it changes by at least
/// `1 << RSS_STEP_SHIFT` pages (1 MiB with 4 KiB pages), or by 1/128 of its value
/// when that is larger.
pub const RSS_STEP_SHIFT: u32 = 8;

/// Name of the task iterator program (an `iter/task` program, not attached to an event:
/// each snapshot creates an iterator and reads it to the end).
pub const TASK_SNAPSHOT_PROGRAM: &str = "task_snapshot";

/// Name of the ring buffer map all programs write to.
pub const EVENTS_MAP: &str = "EVENTS";
/// Ring buffer size in bytes (a power of two, multiple of the page size).
pub const EVENTS_BYTES: u32 = 1 << 20;

/// The one global userspace sets before loading (`EbpfLoader::override_global`), named
/// [`LAYOUT_GLOBAL`]: kernel struct offsets read from BTF, so one object works across
/// kernel builds, plus who the guardian is. It lives in frozen read-only data, so the
/// verifier knows every field as a constant: that is what lets the programs load fields
/// straight from BTF-typed pointers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelLayout {
    /// `offsetof(struct mm_struct, rss_stat[member].count)`, indexed by `MM_*`.
    pub mm_count: [u64; 4],
    /// 1 when the counters must be read with `bpf_probe_read_kernel` (before 6.2, where
    /// they are `atomic_long_t`s the verifier's BTF walk rejects), 0 to load them
    /// directly.
    pub mm_count_probe: u64,
    /// `offsetof(struct mm_struct, total_vm)`.
    pub mm_total_vm: u64,
    /// `task_struct` members.
    pub task_mm: u64,
    pub task_pid: u64,
    pub task_tgid: u64,
    pub task_flags: u64,
    pub task_start_boottime: u64,
    pub task_real_parent: u64,
    pub task_group_leader: u64,
    pub task_thread_pid: u64,
    pub task_cred: u64,
    pub task_signal: u64,
    pub task_comm: u64,
    /// `offsetof(struct cred, uid)`.
    pub cred_uid: u64,
    /// `offsetof(struct signal_struct, oom_score_adj)`.
    pub signal_oom_score_adj: u64,
    /// `offsetof(struct signal_struct, live)`: threads not yet exited; 0 once the last
    /// has begun exiting.
    pub signal_live: u64,
    /// `offsetof(struct pid, level)` and `offsetof(struct pid, numbers)`.
    pub pid_level: u64,
    pub pid_numbers: u64,
    /// `sizeof(struct upid)`, `offsetof(struct upid, nr)`, `offsetof(struct upid, ns)`.
    pub upid_size: u64,
    pub upid_nr: u64,
    pub upid_ns: u64,
    /// `offsetof(struct pid_namespace, ns.inum)`.
    pub pid_ns_inum: u64,
    /// The inode number of the guardian's PID namespace (`/proc/self/ns/pid`): pids are
    /// reported as that namespace numbers them, and tasks it cannot see are left out.
    pub own_pid_ns_inum: u64,
    /// The guardian's own pid (in its namespace), whose RSS steps are dropped.
    pub self_tgid: u64,
    /// The page size in KiB (OOM records are in KiB, counters in pages).
    pub page_kb: u64,
}

/// `PROC_PID_INIT_INO`: the inode number of the initial PID namespace. A guardian there
/// sees every task under its global pid, with no translation.
pub const INIT_PID_NS_INUM: u64 = 0xEFFF_FFFC;

/// Deepest PID namespace level (the kernel's `MAX_PID_NS_LEVEL`): the programs look a pid
/// up at levels 0 to this.
pub const MAX_PID_NS_LEVEL: u64 = 32;

/// Name of the [`KernelLayout`] global in the object.
pub const LAYOUT_GLOBAL: &str = "LAYOUT";

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], Copy, made of integers with explicit padding,
    // so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::EventHeader {}
    unsafe impl aya::Pod for super::RssEvent {}
    unsafe impl aya::Pod for super::OomEvent {}
    unsafe impl aya::Pod for super::ProcEvent {}
    unsafe impl aya::Pod for super::TaskRecord {}
    unsafe impl aya::Pod for super::KernelLayout {}
}
