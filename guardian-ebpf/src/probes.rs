//! The programs. Each entry point only calls its `try_*` function; the page-fault path
//! (`rss_stat`) filters first and touches a shared map only when a counter crosses a
//! reporting step. Every program is a BTF tracepoint (or the task iterator): task and
//! mm pointers come typed, fields are loaded at offsets read from BTF, and no tracefs is
//! needed. Pids are reported as the guardian's own PID namespace numbers them.

use core::ptr::read_volatile;

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel,
    },
    macros::{btf_tracepoint, map},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::BtfTracePointContext,
};
use guardian_ebpf::{
    EVENTS_BYTES, EventHeader, EventKind, INIT_PID_NS_INUM, KernelLayout, MAX_PID_NS_LEVEL,
    MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, OomEvent, ProcEvent, RSS_STEP_SHIFT, RssEvent,
    TaskRecord,
};

/// Set by userspace with `EbpfLoader::override_global` (see guardian_ebpf::KernelLayout).
/// It lives in frozen read-only data, so the verifier knows each field as a constant.
#[unsafe(no_mangle)]
static LAYOUT: KernelLayout = unsafe { core::mem::zeroed() };

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// Records the kernel could not write because the ring buffer was full, per CPU.
#[map]
static DROPPED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU: the last mm seen and the step bucket of each of its counters. A page fault
/// that leaves the same mm's counter in the same bucket returns here.
#[repr(C)]
#[derive(Clone, Copy)]
struct CpuCache {
    mm: u64,
    bucket: [i64; 4],
}

#[map]
static RSS_CACHE: PerCpuArray<CpuCache> = PerCpuArray::with_max_entries(1, 0);

/// The lowest rule threshold in pages, set by userspace (at start and on reload). A
/// step of a process below it that was below it at its last report too cannot make
/// anything due: userspace learns of it from the next task snapshot instead. 0 (the
/// value before userspace sets it) reports every step.
#[map]
static REPORT_FLOOR: Array<u64> = Array::with_max_entries(1, 0);

/// Per mm: the counter values last reported to userspace.
#[map]
static REPORTED: LruHashMap<u64, [i64; 4]> = LruHashMap::with_max_entries(32768, 0);

/// A field of [`LAYOUT`].
fn layout(field: &'static u64) -> u64 {
    // SAFETY: a plain read of a global the loader rewrote; volatile keeps the compiler
    // from folding the compile-time zero.
    unsafe { read_volatile(field) }
}

/// Loads a field at a BTF-checked offset of a kernel object the verifier types.
///
/// # Safety
/// `base` must be a BTF-typed kernel pointer and `offset` a member's offset read from
/// BTF, so the verifier checks the access and the kernel makes it fault-safe.
unsafe fn field<T: Copy>(base: *const u8, offset: u64) -> T {
    unsafe { read_volatile(base.add(offset as usize).cast::<T>()) }
}

/// An `mm_struct` RSS counter (`offset` is one of `LAYOUT.mm_count`) of a BTF-typed mm.
/// Before 6.2 the counters are `atomic_long_t`s in an array the verifier cannot walk
/// ("Type 'atomic_long_t' is not a struct"): there userspace sets `mm_count_probe` and
/// they are probe-read. The flag is a constant to the verifier, which only checks the
/// branch taken.
///
/// # Safety
/// `mm` must be a BTF-typed `mm_struct` pointer and `offset` a counter's offset from BTF.
unsafe fn mm_counter(mm: *const u8, offset: u64) -> i64 {
    if layout(&LAYOUT.mm_count_probe) != 0 {
        probe::<i64>(mm as u64 + offset).unwrap_or(0)
    } else {
        unsafe { field(mm, offset) }
    }
}

/// A fault-safe read of a kernel address that is not BTF-typed.
fn probe<T: Copy>(address: u64) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel copes with any address.
    unsafe { bpf_probe_read_kernel(address as *const T).ok() }
}

/// The tgid of the process of `task` (an address) as the guardian's PID namespace
/// numbers it, `global` being its tgid in the initial namespace; `None` when the
/// guardian cannot see it. In the initial namespace that is `global` itself; otherwise
/// the group leader's pid is looked up at the level where the namespace is the
/// guardian's.
fn visible_tgid(task: u64, global: u32) -> Option<u32> {
    let own = layout(&LAYOUT.own_pid_ns_inum);
    if own == INIT_PID_NS_INUM {
        return Some(global);
    }
    let leader: u64 = probe(task + layout(&LAYOUT.task_group_leader))?;
    let pid: u64 = probe(leader + layout(&LAYOUT.task_thread_pid))?;
    let level: u32 = probe(pid + layout(&LAYOUT.pid_level))?;
    let numbers = pid + layout(&LAYOUT.pid_numbers);
    let size = layout(&LAYOUT.upid_size);
    for at in 0..=MAX_PID_NS_LEVEL {
        if at > u64::from(level) {
            break;
        }
        let upid = numbers + at * size;
        let ns: u64 = probe(upid + layout(&LAYOUT.upid_ns))?;
        let inum: u32 = probe(ns + layout(&LAYOUT.pid_ns_inum))?;
        if u64::from(inum) == own {
            return probe::<i32>(upid + layout(&LAYOUT.upid_nr)).map(|nr| nr as u32);
        }
    }
    None
}

/// `visible_tgid` of a BTF-typed task.
fn visible_tgid_of(task: *const u8) -> Option<u32> {
    // SAFETY: `task` is BTF-typed; the offset comes from BTF.
    let global: i32 = unsafe { field(task, layout(&LAYOUT.task_tgid)) };
    visible_tgid(task as u64, global as u32)
}

/// `visible_tgid` of the current task.
fn current_visible_tgid() -> Option<u32> {
    let global = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: helper without preconditions.
    visible_tgid(unsafe { bpf_get_current_task() }, global)
}

/// Whether a BTF-typed task is a thread-group leader (a process, not a thread).
fn is_leader(task: *const u8) -> bool {
    // SAFETY: `task` is BTF-typed; the offsets come from BTF.
    unsafe {
        field::<i32>(task, layout(&LAYOUT.task_pid))
            == field::<i32>(task, layout(&LAYOUT.task_tgid))
    }
}

fn header(kind: EventKind, tgid: u32) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        tgid,
        // SAFETY: helper without preconditions.
        ktime_ns: unsafe { bpf_ktime_get_boot_ns() },
    }
}

fn count_drop() {
    if let Some(dropped) = DROPPED.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *dropped += 1 };
    }
}

/// Writes a record. The kernel wakes the reader only when it had caught up (it is then
/// waiting), so a burst costs one wake-up, not one per record; records are rare anyway:
/// process events, OOM victims, and RSS steps of processes at a rule threshold.
fn emit<T: 'static>(event: T) {
    match EVENTS.reserve::<T>(0) {
        Some(mut slot) => {
            slot.write(event);
            slot.submit(0);
        }
        None => count_drop(),
    }
}

#[btf_tracepoint(function = "rss_stat")]
pub fn rss_stat(ctx: BtfTracePointContext) -> i32 {
    match try_rss_stat(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// `TP_PROTO(struct mm_struct *mm, int member)`, BTF-typed: `mm` may be read directly.
fn try_rss_stat(ctx: &BtfTracePointContext) -> Result<(), i32> {
    let member: u64 = ctx.arg(1);
    // A constant index per arm keeps the verifier happy; swap entries are not RSS.
    let (index, offset) = match member as u32 {
        MM_FILEPAGES => (0usize, layout(&LAYOUT.mm_count[0])),
        MM_ANONPAGES => (1, layout(&LAYOUT.mm_count[1])),
        MM_SHMEMPAGES => (3, layout(&LAYOUT.mm_count[3])),
        _ => return Ok(()),
    };
    let mm: *const u8 = ctx.arg(0);
    // SAFETY: `mm` is the tracepoint's BTF-typed mm_struct and `offset` one of its
    // rss_stat counters (read from BTF).
    let pages = unsafe { mm_counter(mm, offset) };
    let bucket = pages >> RSS_STEP_SHIFT;

    let cache = RSS_CACHE.get_ptr_mut(0).ok_or(0)?;
    // SAFETY: per-CPU slot, no concurrent writer on this CPU (programs do not nest here).
    unsafe {
        if (*cache).mm == mm as u64 && (*cache).bucket[index] == bucket {
            return Ok(());
        }
        if (*cache).mm != mm as u64 {
            (*cache).mm = mm as u64;
            (*cache).bucket = [i64::MIN; 4];
        }
        (*cache).bucket[index] = bucket;
    }
    report_rss(mm, index, member as u32, pages)
}

/// The slow path: at most once per step crossing per CPU.
fn report_rss(mm_ptr: *const u8, index: usize, member: u32, pages: i64) -> Result<(), i32> {
    let mm = mm_ptr as u64;
    // Only the current task's own mm: then the current process owns it.
    // SAFETY: helper without preconditions.
    let task = unsafe { bpf_get_current_task() };
    let current_mm: u64 = probe(task + layout(&LAYOUT.task_mm)).ok_or(0)?;
    if current_mm != mm {
        return Ok(());
    }
    let Some(tgid) = current_visible_tgid() else {
        return Ok(());
    };
    if u64::from(tgid) == layout(&LAYOUT.self_tgid) {
        return Ok(());
    }
    let floor = REPORT_FLOOR.get(0).map_or(0, |floor| *floor as i64);
    // SAFETY: `mm_ptr` is the tracepoint's BTF-typed mm and the offsets come from BTF.
    let rss: i64 = unsafe {
        mm_counter(mm_ptr, layout(&LAYOUT.mm_count[0]))
            + mm_counter(mm_ptr, layout(&LAYOUT.mm_count[1]))
            + mm_counter(mm_ptr, layout(&LAYOUT.mm_count[3]))
    };
    match REPORTED.get_ptr_mut(&mm) {
        Some(last) => {
            // SAFETY: the map value outlives this call; races only cost an extra report.
            let (previous, last_rss) =
                unsafe { ((*last)[index], (*last)[0] + (*last)[1] + (*last)[3]) };
            let step = core::cmp::max(1i64 << RSS_STEP_SHIFT, previous.abs() >> 7);
            if (pages - previous).abs() < step || (rss < floor && last_rss < floor) {
                return Ok(());
            }
            unsafe { (*last)[index] = pages };
        }
        None if rss < floor => return Ok(()),
        None => {
            let mut values = [0i64; 4];
            values[index] = pages;
            REPORTED.insert(&mm, &values, 0)?;
        }
    }
    emit(RssEvent {
        header: header(EventKind::Rss, tgid),
        member,
        _pad: 0,
        pages,
    });
    Ok(())
}

/// `TP_PROTO(struct task_struct *task, uid_t uid)` (from 6.8): the OOM killer chose
/// `task`.
#[btf_tracepoint(function = "mark_victim")]
pub fn mark_victim(ctx: BtfTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    let uid: u64 = ctx.arg(1);
    // A victim the guardian's namespace cannot see is still an OOM kill: pid 0.
    let pid = visible_tgid_of(task).unwrap_or(0);
    let page_kb = layout(&LAYOUT.page_kb);
    // SAFETY: `task` is BTF-typed; every offset comes from BTF; loads through the
    // pointers read from it are fault-safe.
    let (comm, mm, signal) = unsafe {
        (
            field::<[u64; 2]>(task, layout(&LAYOUT.task_comm)),
            field::<*const u8>(task, layout(&LAYOUT.task_mm)),
            field::<*const u8>(task, layout(&LAYOUT.task_signal)),
        )
    };
    let counter = |member: usize| -> u64 {
        if mm.is_null() {
            return 0;
        }
        // SAFETY: as above.
        let pages = unsafe { mm_counter(mm, layout(&LAYOUT.mm_count[member])) };
        u64::try_from(pages).unwrap_or(0) * page_kb
    };
    let (anon, file, shmem) = (counter(1), counter(0), counter(3));
    let total_vm = if mm.is_null() {
        0
    } else {
        // SAFETY: as above.
        unsafe { field::<u64>(mm, layout(&LAYOUT.mm_total_vm)) * page_kb }
    };
    let oom_score_adj = if signal.is_null() {
        0
    } else {
        // SAFETY: as above.
        i32::from(unsafe { field::<i16>(signal, layout(&LAYOUT.signal_oom_score_adj)) })
    };
    aya_log_ebpf::info!(&ctx, "OOM victim pid {} anon_rss {} kB", pid, anon);
    emit(OomEvent {
        header: header(EventKind::Oom, pid),
        uid: uid as u32,
        trigger_tgid: current_visible_tgid().unwrap_or(0),
        total_vm_kb: total_vm,
        anon_rss_kb: anon,
        file_rss_kb: file,
        shmem_rss_kb: shmem,
        oom_score_adj,
        detailed: 1,
        // SAFETY: same size, any bits valid.
        comm: unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(comm) },
    });
    0
}

/// `TP_PROTO(int pid)` (before 6.8): the OOM killer chose the process with this pid in
/// the initial PID namespace. Userspace loads this instead of [`mark_victim`] when BTF
/// says so; with no task at hand, only the pid is reported (userspace adds what it knew
/// of the process).
#[btf_tracepoint(function = "mark_victim")]
pub fn mark_victim_pid(ctx: BtfTracePointContext) -> i32 {
    let global: u64 = ctx.arg(0);
    // Only a guardian in the initial namespace can tell whose pid this is.
    let pid = if layout(&LAYOUT.own_pid_ns_inum) == INIT_PID_NS_INUM {
        global as u32
    } else {
        0
    };
    emit(OomEvent {
        header: header(EventKind::Oom, pid),
        trigger_tgid: current_visible_tgid().unwrap_or(0),
        ..OomEvent::default()
    });
    0
}

/// A process event about the BTF-typed `task`, known to the guardian as `pid`.
fn proc_event(kind: EventKind, pid: u32, parent_tgid: u32, task: *const u8) -> ProcEvent {
    ProcEvent {
        header: header(kind, pid),
        parent_tgid,
        _pad: 0,
        // SAFETY: `task` is BTF-typed; the offset comes from BTF.
        start_boottime_ns: unsafe { field(task, layout(&LAYOUT.task_start_boottime)) },
    }
}

/// `TP_PROTO(struct task_struct *parent, struct task_struct *child)`.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn process_fork(ctx: BtfTracePointContext) -> i32 {
    let parent: *const u8 = ctx.arg(0);
    let child: *const u8 = ctx.arg(1);
    // A new thread is not a new process.
    if !is_leader(child) {
        return 0;
    }
    if let Some(pid) = visible_tgid_of(child) {
        let parent = visible_tgid_of(parent).unwrap_or(0);
        emit(proc_event(EventKind::Fork, pid, parent, child));
    }
    0
}

/// `TP_PROTO(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)`.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn process_exec(ctx: BtfTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    if let Some(pid) = visible_tgid_of(task) {
        emit(proc_event(EventKind::Exec, pid, 0, task));
    }
    0
}

/// `TP_PROTO(struct task_struct *p)` (6.16 adds `bool group_dead`, not read here so one
/// program fits every kernel): the process ends with its last thread, the one that
/// finds `signal->live` at 0 (decremented earlier in `do_exit`).
#[btf_tracepoint(function = "sched_process_exit")]
pub fn process_exit(ctx: BtfTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    // SAFETY: `task` is BTF-typed, so is the `signal` read from it; the offsets come
    // from BTF.
    let live: i32 = unsafe {
        let signal: *const u8 = field(task, layout(&LAYOUT.task_signal));
        if signal.is_null() {
            return 0;
        }
        field(signal, layout(&LAYOUT.signal_live))
    };
    if live != 0 {
        return 0;
    }
    // Forget the mm's reported values so a recycled mm address starts afresh (before
    // 6.16 the tracepoint comes after `exit_mm`: no mm here, and the LRU map forgets it
    // in time; task snapshots keep every process current meanwhile).
    // SAFETY: `task` is BTF-typed; the offset comes from BTF.
    let mm: u64 = unsafe { field::<u64>(task, layout(&LAYOUT.task_mm)) };
    if mm != 0 {
        let _ = REPORTED.remove(&mm);
    }
    if let Some(pid) = visible_tgid_of(task) {
        emit(proc_event(EventKind::Exit, pid, 0, task));
    }
    0
}

/// `struct bpf_iter_meta`: the seq_file the iterator's output goes to.
#[repr(C)]
pub struct IterMeta {
    seq: *mut aya_ebpf::bindings::seq_file,
    session_id: u64,
    seq_num: u64,
}

/// `struct bpf_iter__task`: the context of an `iter/task` program, once per task.
#[repr(C)]
pub struct IterTaskContext {
    meta: *const IterMeta,
    /// NULL once after the last task.
    task: *const u8,
}

/// The task iterator: one [`TaskRecord`] per thread-group leader, written to the
/// iterator's seq_file. Runs only when userspace reads a snapshot, never on an event.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub extern "C" fn task_snapshot(ctx: *const IterTaskContext) -> i32 {
    // SAFETY: the kernel passes a valid `bpf_iter__task`; `task` is checked for NULL
    // and every other pointer load is BTF-typed and fault-safe.
    unsafe {
        let task = read_volatile(&(*ctx).task);
        if task.is_null() || !is_leader(task) {
            return 0;
        }
        let Some(tgid) = visible_tgid_of(task) else {
            return 0;
        };
        let mm: *const u8 = field(task, layout(&LAYOUT.task_mm));
        let mut pages = [0i64; 4];
        if !mm.is_null() {
            pages = [
                mm_counter(mm, layout(&LAYOUT.mm_count[0])),
                mm_counter(mm, layout(&LAYOUT.mm_count[1])),
                mm_counter(mm, layout(&LAYOUT.mm_count[2])),
                mm_counter(mm, layout(&LAYOUT.mm_count[3])),
            ];
        }
        let parent: *const u8 = field(task, layout(&LAYOUT.task_real_parent));
        let cred: *const u8 = field(task, layout(&LAYOUT.task_cred));
        let record = TaskRecord {
            tgid,
            ppid: if parent.is_null() {
                0
            } else {
                visible_tgid_of(parent).unwrap_or(0)
            },
            uid: if cred.is_null() {
                0
            } else {
                field(cred, layout(&LAYOUT.cred_uid))
            },
            flags: field(task, layout(&LAYOUT.task_flags)),
            start_boottime_ns: field(task, layout(&LAYOUT.task_start_boottime)),
            pages,
            comm: core::mem::transmute::<[u64; 2], [u8; 16]>(field(
                task,
                layout(&LAYOUT.task_comm),
            )),
        };
        let meta = read_volatile(&(*ctx).meta);
        let seq = read_volatile(&(*meta).seq);
        aya_ebpf::helpers::bpf_seq_write(
            seq,
            (&raw const record).cast(),
            core::mem::size_of::<TaskRecord>() as u32,
        );
    }
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
