//! The programs. Each entry point only calls its `try_*` function; the page-fault path
//! (`rss_stat`) filters first and touches a shared map only when a counter crosses a
//! reporting step.

use core::ptr::read_volatile;

use aya_ebpf::{
    EbpfContext as _,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes,
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, TracePointContext},
};
use guardian_ebpf::{
    EVENTS_BYTES, EventHeader, EventKind, MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, OomEvent,
    ProcEvent, RSS_STEP_SHIFT, RssEvent, TaskRecord, tracepoint_fields as tf,
};

// Set by userspace with `EbpfLoader::override_global` (see guardian_ebpf::globals). They
// live in frozen read-only data, so the verifier knows them as constants: that is what
// lets `rss_stat` load a counter straight from its BTF-typed `mm` pointer.
#[unsafe(no_mangle)]
static MM_FILE_COUNT_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static MM_ANON_COUNT_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static MM_SHMEM_COUNT_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static MM_SWAP_COUNT_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_MM_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_PID_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_TGID_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_FLAGS_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_START_BOOTTIME_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_REAL_PARENT_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_CRED_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static TASK_COMM_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static CRED_UID_OFFSET: u64 = 0;
#[unsafe(no_mangle)]
static SELF_TGID: u32 = 0;

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

fn global_u64(value: &'static u64) -> u64 {
    // SAFETY: a plain read of a global the loader rewrote; volatile keeps the compiler
    // from folding the compile-time zero.
    unsafe { read_volatile(value) }
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

fn current_tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
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
    // A constant index and offset per arm keep the verifier happy; swap entries are not
    // RSS.
    let (index, offset) = match member as u32 {
        MM_FILEPAGES => (0usize, global_u64(&MM_FILE_COUNT_OFFSET)),
        MM_ANONPAGES => (1, global_u64(&MM_ANON_COUNT_OFFSET)),
        MM_SHMEMPAGES => (3, global_u64(&MM_SHMEM_COUNT_OFFSET)),
        _ => return Ok(()),
    };
    let mm: *const u8 = ctx.arg(0);
    // SAFETY: `mm` is the tracepoint's BTF-typed mm_struct and `offset` one of its
    // rss_stat counters (read from BTF); the verifier checks the access against BTF and
    // the kernel makes it fault-safe.
    let pages: i64 = unsafe { core::ptr::read_volatile(mm.add(offset as usize).cast::<i64>()) };
    let bucket = pages >> RSS_STEP_SHIFT;
    let mm_ptr = mm;
    let mm = mm as u64;

    let cache = RSS_CACHE.get_ptr_mut(0).ok_or(0)?;
    // SAFETY: per-CPU slot, no concurrent writer on this CPU (programs do not nest here).
    unsafe {
        if (*cache).mm == mm && (*cache).bucket[index] == bucket {
            return Ok(());
        }
        if (*cache).mm != mm {
            (*cache).mm = mm;
            (*cache).bucket = [i64::MIN; 4];
        }
        (*cache).bucket[index] = bucket;
    }
    report_rss(mm_ptr, index, member as u32, pages)
}

/// The slow path: at most once per step crossing per CPU.
fn report_rss(mm_ptr: *const u8, index: usize, member: u32, pages: i64) -> Result<(), i32> {
    let mm = mm_ptr as u64;
    // Only the current task's own mm: then the current tgid names the owner.
    // SAFETY: probe reads fault-safely.
    let task = unsafe { bpf_get_current_task() };
    let current_mm: u64 =
        unsafe { bpf_probe_read_kernel((task + global_u64(&TASK_MM_OFFSET)) as *const u64)? };
    if current_mm != mm {
        return Ok(());
    }
    let tgid = current_tgid();
    // SAFETY: plain read of a loader-set global.
    if tgid == unsafe { read_volatile(&SELF_TGID) } {
        return Ok(());
    }
    let floor = REPORT_FLOOR.get(0).map_or(0, |floor| *floor as i64);
    // SAFETY: `mm_ptr` is the tracepoint's BTF-typed mm and the offsets come from BTF.
    let rss: i64 = unsafe {
        field::<i64>(mm_ptr, &MM_FILE_COUNT_OFFSET)
            + field::<i64>(mm_ptr, &MM_ANON_COUNT_OFFSET)
            + field::<i64>(mm_ptr, &MM_SHMEM_COUNT_OFFSET)
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

#[tracepoint(category = "oom", name = "mark_victim")]
pub fn mark_victim(ctx: TracePointContext) -> i32 {
    match try_mark_victim(&ctx) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn try_mark_victim(ctx: &TracePointContext) -> Result<(), i32> {
    // SAFETY: offsets checked against the event's format file by userspace.
    let (pid, uid, adj, total_vm, anon, file, shmem, comm_loc) = unsafe {
        (
            ctx.read_at::<i32>(tf::MARK_VICTIM_PID)?,
            ctx.read_at::<u32>(tf::MARK_VICTIM_UID)?,
            ctx.read_at::<i16>(tf::MARK_VICTIM_OOM_SCORE_ADJ)?,
            ctx.read_at::<u64>(tf::MARK_VICTIM_TOTAL_VM)?,
            ctx.read_at::<u64>(tf::MARK_VICTIM_ANON_RSS)?,
            ctx.read_at::<u64>(tf::MARK_VICTIM_FILE_RSS)?,
            ctx.read_at::<u64>(tf::MARK_VICTIM_SHMEM_RSS)?,
            ctx.read_at::<u32>(tf::MARK_VICTIM_COMM_LOC)?,
        )
    };
    aya_log_ebpf::info!(ctx, "OOM victim pid {} anon_rss {} kB", pid, anon);
    let mut comm = [0u8; 16];
    // __data_loc: low 16 bits are the string's offset in the record.
    let comm_ptr = (ctx.as_ptr() as *const u8).wrapping_add((comm_loc & 0xffff) as usize);
    // SAFETY: probe reads fault-safely and stops at the buffer's end.
    let _ = unsafe { bpf_probe_read_kernel_str_bytes(comm_ptr, &mut comm) };
    emit(OomEvent {
        header: header(EventKind::Oom, pid as u32),
        uid,
        trigger_tgid: current_tgid(),
        total_vm_kb: total_vm,
        anon_rss_kb: anon,
        file_rss_kb: file,
        shmem_rss_kb: shmem,
        oom_score_adj: i32::from(adj),
        _pad: 0,
        comm,
    });
    Ok(())
}

#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn process_fork(ctx: TracePointContext) -> i32 {
    // SAFETY: offsets checked against the event's format file by userspace.
    let fields = unsafe {
        (
            ctx.read_at::<i32>(tf::FORK_PARENT_PID),
            ctx.read_at::<i32>(tf::FORK_CHILD_PID),
        )
    };
    if let (Ok(parent), Ok(child)) = fields {
        emit(ProcEvent {
            header: header(EventKind::Fork, child as u32),
            parent_tgid: parent as u32,
            _pad: 0,
        });
    }
    0
}

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn process_exec(ctx: TracePointContext) -> i32 {
    // SAFETY: offset checked against the event's format file by userspace.
    if let Ok(pid) = unsafe { ctx.read_at::<i32>(tf::EXEC_PID) } {
        emit(ProcEvent {
            header: header(EventKind::Exec, pid as u32),
            parent_tgid: 0,
            _pad: 0,
        });
    }
    0
}

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn process_exit(_ctx: TracePointContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // Threads exit too; only the group leader's exit ends the process.
    if tgid != pid_tgid as u32 {
        return 0;
    }
    // Forget the mm's reported values so a recycled mm address starts afresh.
    // SAFETY: probe reads fault-safely.
    let task = unsafe { bpf_get_current_task() };
    if let Ok(mm) =
        unsafe { bpf_probe_read_kernel((task + global_u64(&TASK_MM_OFFSET)) as *const u64) }
    {
        let _ = REPORTED.remove(&mm);
    }
    emit(ProcEvent {
        header: header(EventKind::Exit, tgid),
        parent_tgid: 0,
        _pad: 0,
    });
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

/// Loads a field at a BTF-checked offset of a kernel object the verifier types.
///
/// # Safety
/// `base` must be a BTF-typed kernel pointer and `offset` a member's offset read from
/// BTF, so the verifier checks the access and the kernel makes it fault-safe.
unsafe fn field<T: Copy>(base: *const u8, offset: &'static u64) -> T {
    unsafe { read_volatile(base.add(global_u64(offset) as usize).cast::<T>()) }
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
        if task.is_null() {
            return 0;
        }
        let tgid: i32 = field(task, &TASK_TGID_OFFSET);
        if field::<i32>(task, &TASK_PID_OFFSET) != tgid {
            return 0;
        }
        let mm: *const u8 = field(task, &TASK_MM_OFFSET);
        let mut pages = [0i64; 4];
        if !mm.is_null() {
            pages = [
                field(mm, &MM_FILE_COUNT_OFFSET),
                field(mm, &MM_ANON_COUNT_OFFSET),
                field(mm, &MM_SWAP_COUNT_OFFSET),
                field(mm, &MM_SHMEM_COUNT_OFFSET),
            ];
        }
        let parent: *const u8 = field(task, &TASK_REAL_PARENT_OFFSET);
        let cred: *const u8 = field(task, &TASK_CRED_OFFSET);
        let comm: [u64; 2] = field(task, &TASK_COMM_OFFSET);
        let record = TaskRecord {
            tgid: tgid as u32,
            ppid: if parent.is_null() {
                0
            } else {
                field::<i32>(parent, &TASK_TGID_OFFSET) as u32
            },
            uid: if cred.is_null() {
                0
            } else {
                field(cred, &CRED_UID_OFFSET)
            },
            flags: field(task, &TASK_FLAGS_OFFSET),
            start_boottime_ns: field(task, &TASK_START_BOOTTIME_OFFSET),
            pages,
            comm: core::mem::transmute::<[u64; 2], [u8; 16]>(comm),
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
