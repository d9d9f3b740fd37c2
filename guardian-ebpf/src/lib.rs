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
    /// A task was forked: [`ProcEvent`] (userspace drops threads).
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
    pub _pad: u32,
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

/// Globals userspace sets before loading (`EbpfLoader::set_global`): kernel struct
/// offsets read from BTF and the guardian's own tgid. Names of the `static`s.
pub mod globals {
    /// `offsetof(struct mm_struct, rss_stat[MM_FILEPAGES].count)`.
    pub const MM_FILE_COUNT_OFFSET: &str = "MM_FILE_COUNT_OFFSET";
    /// `offsetof(struct mm_struct, rss_stat[MM_ANONPAGES].count)`.
    pub const MM_ANON_COUNT_OFFSET: &str = "MM_ANON_COUNT_OFFSET";
    /// `offsetof(struct mm_struct, rss_stat[MM_SHMEMPAGES].count)`.
    pub const MM_SHMEM_COUNT_OFFSET: &str = "MM_SHMEM_COUNT_OFFSET";
    /// `offsetof(struct mm_struct, rss_stat[MM_SWAPENTS].count)`.
    pub const MM_SWAP_COUNT_OFFSET: &str = "MM_SWAP_COUNT_OFFSET";
    /// `offsetof(struct task_struct, mm)`: to keep only changes to the current task's mm.
    pub const TASK_MM_OFFSET: &str = "TASK_MM_OFFSET";
    /// `task_struct` fields the task iterator reads: `pid`, `tgid`, `flags`,
    /// `start_boottime`, `real_parent`, `cred`, `comm`; and `cred.uid`.
    pub const TASK_PID_OFFSET: &str = "TASK_PID_OFFSET";
    pub const TASK_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
    pub const TASK_FLAGS_OFFSET: &str = "TASK_FLAGS_OFFSET";
    pub const TASK_START_BOOTTIME_OFFSET: &str = "TASK_START_BOOTTIME_OFFSET";
    pub const TASK_REAL_PARENT_OFFSET: &str = "TASK_REAL_PARENT_OFFSET";
    pub const TASK_CRED_OFFSET: &str = "TASK_CRED_OFFSET";
    pub const TASK_COMM_OFFSET: &str = "TASK_COMM_OFFSET";
    pub const CRED_UID_OFFSET: &str = "CRED_UID_OFFSET";
    /// The guardian's own tgid, whose events are dropped in the kernel.
    pub const SELF_TGID: &str = "SELF_TGID";
}

/// Field offsets of the classic tracepoints the programs read, as this crate's programs
/// assume them. Userspace checks each against the event's `format` file before loading
/// and refuses the eBPF source with a clear reason when a kernel lays them out otherwise.
pub mod tracepoint_fields {
    /// `(event, field, offset, size)` for every field read in the kernel.
    pub const EXPECTED: &[(&str, &str, usize, usize)] = &[
        ("oom/mark_victim", "pid", MARK_VICTIM_PID, 4),
        ("oom/mark_victim", "comm", MARK_VICTIM_COMM_LOC, 4),
        ("oom/mark_victim", "total_vm", MARK_VICTIM_TOTAL_VM, 8),
        ("oom/mark_victim", "anon_rss", MARK_VICTIM_ANON_RSS, 8),
        ("oom/mark_victim", "file_rss", MARK_VICTIM_FILE_RSS, 8),
        ("oom/mark_victim", "shmem_rss", MARK_VICTIM_SHMEM_RSS, 8),
        ("oom/mark_victim", "uid", MARK_VICTIM_UID, 4),
        (
            "oom/mark_victim",
            "oom_score_adj",
            MARK_VICTIM_OOM_SCORE_ADJ,
            2,
        ),
        ("sched/sched_process_fork", "parent_pid", FORK_PARENT_PID, 4),
        ("sched/sched_process_fork", "child_pid", FORK_CHILD_PID, 4),
        ("sched/sched_process_exec", "pid", EXEC_PID, 4),
    ];
    pub const MARK_VICTIM_PID: usize = 8;
    pub const MARK_VICTIM_COMM_LOC: usize = 12;
    pub const MARK_VICTIM_TOTAL_VM: usize = 16;
    pub const MARK_VICTIM_ANON_RSS: usize = 24;
    pub const MARK_VICTIM_FILE_RSS: usize = 32;
    pub const MARK_VICTIM_SHMEM_RSS: usize = 40;
    pub const MARK_VICTIM_UID: usize = 48;
    pub const MARK_VICTIM_OOM_SCORE_ADJ: usize = 64;
    pub const FORK_PARENT_PID: usize = 12;
    pub const FORK_CHILD_PID: usize = 20;
    pub const EXEC_PID: usize = 12;
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)], Copy, made of integers with explicit padding,
    // so every bit pattern is a valid value.
    unsafe impl aya::Pod for super::EventHeader {}
    unsafe impl aya::Pod for super::RssEvent {}
    unsafe impl aya::Pod for super::OomEvent {}
    unsafe impl aya::Pod for super::ProcEvent {}
    unsafe impl aya::Pod for super::TaskRecord {}
}
