//! The eBPF source: loads guardian's programs (RSS steps from the `rss_stat` raw
//! tracepoint, OOM victims, fork/exec/exit), and turns ring buffer records into
//! [`KernelEvent`]s on a bounded channel. Dropping [`EbpfSource`] detaches everything.

mod btf_offsets;
pub(crate) mod decode;
mod task_snapshot;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::BtfTracePoint,
};
use guardian_ebpf::{EVENTS_MAP, LAYOUT_GLOBAL};
use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::mpsc,
};

use crate::sources::KernelEvent;

/// The object built by guardian's build script from the `guardian-ebpf` crate.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/guardian-probes"));

/// Why the eBPF source could not start (auto mode then falls back to /proc, with this as
/// the reason).
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("kernel offsets: {0}")]
    Btf(#[from] btf_offsets::BtfError),
    #[error("the guardian's PID namespace ({path}): {source}")]
    PidNamespace {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("loading the eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("map {map}: {message}")]
    Map { map: &'static str, message: String },
    #[error("ring buffer poll registration: {0}")]
    Poll(#[source] std::io::Error),
}

/// Loaded and attached programs.
pub struct EbpfSource {
    ebpf: Ebpf,
    /// Whether the task iterator loaded (an older kernel may lack it: rescans then read
    /// /proc).
    snapshots: bool,
    snapshot_buf: Vec<u8>,
    /// Owns the programs' log map: dropping it would close the map under them.
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

/// (program name in the object, the BTF tracepoint it attaches to), the OOM victim's
/// program aside (see [`victim_program`]).
const TRACEPOINTS: &[(&str, &str)] = &[
    ("rss_stat", "rss_stat"),
    ("process_fork", "sched_process_fork"),
    ("process_exec", "sched_process_exec"),
    ("process_exit", "sched_process_exit"),
];

/// The program for `oom:mark_victim`, whose arguments changed in 6.8: the victim's task
/// and uid, or before that its pid only.
fn victim_program(victim_task: bool) -> &'static str {
    if victim_task {
        "mark_victim"
    } else {
        "mark_victim_pid"
    }
}

impl EbpfSource {
    /// Loads and attaches every program with a ring buffer of `ring_bytes` (a power of
    /// two, at least a page); `self_tgid`'s own RSS events are dropped in the kernel.
    pub fn load(self_tgid: u32, ring_bytes: u32) -> Result<EbpfSource, EbpfError> {
        let started = std::time::Instant::now();
        raise_memlock_limit();
        let shape = btf_offsets::read(Path::new("/sys/kernel/btf/vmlinux"))?;
        let mut layout = shape.layout;
        layout.own_pid_ns_inum = own_pid_namespace()?;
        layout.self_tgid = u64::from(self_tgid);
        layout.page_kb = crate::sources::kernfs::system::page_size() / 1024;
        tracing::debug!(
            ?layout,
            victim_task = shape.victim_task,
            "kernel shape from BTF"
        );

        let mut ebpf = EbpfLoader::new()
            .override_global(LAYOUT_GLOBAL, &layout, true)
            .map_max_entries("EVENTS", ring_bytes)
            .load(OBJECT)?;
        let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
            Ok(logger) => Some(logger),
            Err(error) => {
                // The programs may log nothing; that is not a reason to fail.
                tracing::warn!(%error, "eBPF logger not initialised");
                None
            }
        };

        let btf = aya::Btf::from_sys_fs().map_err(|error| EbpfError::Map {
            map: "kernel BTF",
            message: error.to_string(),
        })?;
        let victim = (victim_program(shape.victim_task), "mark_victim");
        // What the verifier walked per program: compared across kernels by `cargo xtask vm`.
        let mut verified = Vec::new();
        for (name, event) in TRACEPOINTS.iter().chain([&victim]) {
            let tracepoint: &mut BtfTracePoint = program(&mut ebpf, name)?;
            tracepoint
                .load(event, &btf)
                .map_err(|source| EbpfError::Program {
                    program: name,
                    source,
                })?;
            verified.push(verified_insns(name, tracepoint.info().ok()));
            tracepoint.attach().map_err(|source| EbpfError::Program {
                program: name,
                source,
            })?;
        }
        let snapshots = match task_snapshot::load(&mut ebpf, &btf) {
            Ok(info) => {
                verified.push(verified_insns(
                    guardian_ebpf::TASK_SNAPSHOT_PROGRAM,
                    Some(info),
                ));
                true
            }
            Err(error) => {
                tracing::warn!(%error, "task iterator unavailable; eBPF-mode rescans read /proc");
                false
            }
        };
        tracing::info!(
            programs = TRACEPOINTS.len() + 1,
            oom_victim_program = victim.0,
            task_iterator = snapshots,
            verified_insns = verified.join(" "),
            // BTF parsing, relocation, verification and attach: compared across kernels
            // by `cargo xtask vm`.
            load_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "eBPF programs attached"
        );
        Ok(EbpfSource {
            ebpf,
            snapshots,
            snapshot_buf: Vec::new(),
            logger,
        })
    }

    /// Sets the RSS below which the kernel does not report steps (the lowest rule
    /// threshold; `None` when no rule has one: no step is then worth a record). Task
    /// snapshots keep every process current regardless.
    pub fn set_report_floor(
        &mut self,
        bytes: Option<u64>,
        page_size: u64,
    ) -> Result<(), EbpfError> {
        let pages = bytes.map_or(u64::MAX, |bytes| bytes / page_size.max(1));
        let map = self.ebpf.map_mut("REPORT_FLOOR").ok_or(EbpfError::Map {
            map: "REPORT_FLOOR",
            message: "not in the object".into(),
        })?;
        let mut floor =
            Array::<&mut MapData, u64>::try_from(map).map_err(|error| EbpfError::Map {
                map: "REPORT_FLOOR",
                message: error.to_string(),
            })?;
        floor
            .set(0, pages.min(i64::MAX as u64), 0)
            .map_err(|error| EbpfError::Map {
                map: "REPORT_FLOOR",
                message: error.to_string(),
            })
    }

    /// Whether [`EbpfSource::snapshot_tasks`] can answer.
    pub fn has_snapshots(&self) -> bool {
        self.snapshots
    }

    /// Every process as the kernel sees it now, from the task iterator, handed to `each`
    /// as it is read (none are collected).
    pub fn snapshot_tasks(
        &mut self,
        clock_ticks: u64,
        page_size: u64,
        each: &mut dyn FnMut(crate::sources::Sighting),
    ) -> Result<(), crate::sources::SnapshotError> {
        if !self.snapshots {
            return Err(crate::sources::SnapshotError::NotLoaded);
        }
        task_snapshot::take(
            &mut self.ebpf,
            clock_ticks,
            page_size,
            &mut self.snapshot_buf,
            each,
        )
    }

    /// Moves the ring buffer out into a task that decodes records onto `events`. Records
    /// the channel cannot take are counted in `dropped`, never silently lost.
    pub fn spawn_reader(
        &mut self,
        events: mpsc::Sender<KernelEvent>,
        dropped: Arc<AtomicU64>,
    ) -> Result<tokio::task::JoinHandle<()>, EbpfError> {
        let map = self.ebpf.take_map(EVENTS_MAP).ok_or(EbpfError::Map {
            map: "EVENTS",
            message: "not in the object".into(),
        })?;
        let ring = RingBuf::try_from(map).map_err(|error| EbpfError::Map {
            map: "EVENTS",
            message: error.to_string(),
        })?;
        // SAFETY: the RingBuf owns its map's fd and keeps it open, unchanged, for as long
        // as the AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|error| EbpfError::Poll(error.into()))?;
        if let Some(logger) = self.logger.take() {
            // SAFETY: the logger owns its map's fd, open and unchanged for its lifetime.
            let logger = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
                .map_err(|error| EbpfError::Poll(error.into()))?;
            tokio::spawn(forward_logs(logger));
        }
        Ok(tokio::spawn(read_ring(ring, events, dropped)))
    }

    /// Records the kernel could not write because the ring buffer was full.
    pub fn kernel_dropped(&self) -> u64 {
        let Some(map) = self.ebpf.map("DROPPED") else {
            return 0;
        };
        PerCpuArray::<&MapData, u64>::try_from(map)
            .ok()
            .and_then(|array| array.get(&0, 0).ok())
            .map_or(0, |values| values.iter().sum())
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, EbpfError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(EbpfError::Program {
            program: name,
            source: aya::programs::ProgramError::UnexpectedProgramType,
        })?
        .try_into()
        .map_err(|source| EbpfError::Program {
            program: name,
            source,
        })
}

/// `NAME=COUNT`: the instructions the verifier processed loading program `name` ("?"
/// when the kernel does not say, before 5.16).
fn verified_insns(name: &str, info: Option<aya::programs::ProgramInfo>) -> String {
    let count = info
        .and_then(|info| info.verified_instruction_count())
        .map_or_else(|| "?".to_string(), |count| count.to_string());
    format!("{name}={count}")
}

/// The inode number of this process's PID namespace: the programs report pids as it
/// numbers them.
fn own_pid_namespace() -> Result<u64, EbpfError> {
    const PATH: &str = "/proc/self/ns/pid";
    std::fs::metadata(PATH)
        .map(|meta| std::os::unix::fs::MetadataExt::ino(&meta))
        .map_err(|source| EbpfError::PidNamespace { path: PATH, source })
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = nix::sys::resource::RLIM_INFINITY;
    if let Err(error) = nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_MEMLOCK,
        unlimited,
        unlimited,
    ) {
        tracing::debug!(%error, "cannot raise RLIMIT_MEMLOCK");
    }
}

/// Hands the programs' aya-log records to `log`, which tracing picks up.
async fn forward_logs(mut logger: AsyncFd<aya_log::EbpfLogger<&'static dyn log::Log>>) {
    loop {
        let Ok(mut guard) = logger.readable_mut().await else {
            return;
        };
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}

async fn read_ring(
    mut ring: AsyncFd<RingBuf<MapData>>,
    events: mpsc::Sender<KernelEvent>,
    dropped: Arc<AtomicU64>,
) {
    loop {
        let mut guard = match ring.readable_mut().await {
            Ok(guard) => guard,
            Err(error) => {
                tracing::error!(%error, "eBPF ring buffer poll failed; events stop");
                return;
            }
        };
        let open = drain(guard.get_inner_mut(), &events, &dropped);
        guard.clear_ready();
        if !open {
            return;
        }
        // The first record after a quiet spell is read at once (kill latency); in a burst
        // (many processes above a threshold growing together) records gather for a
        // moment and are read in one go, instead of a wake-up each.
        tokio::time::sleep(BURST_GATHER).await;
    }
}

/// How long the reader lets records gather after reading some.
const BURST_GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// Decodes every pending record onto `events`; false once the receiver is gone.
fn drain(
    ring: &mut RingBuf<MapData>,
    events: &mpsc::Sender<KernelEvent>,
    dropped: &AtomicU64,
) -> bool {
    while let Some(record) = ring.next() {
        let Some(event) = decode::decode(&record) else {
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
