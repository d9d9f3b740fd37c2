//! /proc reader: processes and host memory, for the procfs source and for the checks
//! the killer and `guardian explain` make in either mode.
//!
//! Identity is (pid, start time): every read starts from `/proc/PID/stat`, and a full
//! read goes through one open `/proc/PID` directory so all its files describe the same
//! process even if the pid is reused meanwhile. A process that exits mid-read is
//! normal and yields `None`, never an error.
//!
//! Reading a /proc file costs far more than parsing it, and `stat` is the cheapest
//! file that holds the RSS, so a steady-state scan ([`ProcReader::scan`]) reads only
//! `stat` for a process it already knows, and `status` only when the RSS moved enough
//! for the anon/file/shmem split to be worth re-reading. That `stat` is a file kept open
//! from one scan to the next and read again with `pread` (pinned to its process, so a
//! reused pid reads as gone, never as the new process; `held` says what it costs in
//! kernel memory and how many are kept). The text is parsed by `sources::kernfs`, which
//! `cargo xtask bench --only parse` measures beside the `procfs` crate's parsers; the
//! scan's own cost is the `scan` benchmark (figures in the README).

mod held;
mod io;
mod merge;
mod scan;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use crate::{
    classify::{self, CgroupLine, Classification},
    model::{HostMemory, MemoryUsage, Process, ProcessKey},
    sources::{
        cgroup::memory_line,
        kernfs::{
            proc as parse,
            system::{self, start_ticks_from_ns},
        },
    },
};

use held::HeldStats;
use io::{ProcDir, ProcRoot};

pub use merge::Merge;
pub use scan::ScanReport;

/// What can go wrong reading /proc.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: &'static str },
}

impl ProcError {
    /// The process or the system ran out of file descriptors (EMFILE, ENFILE).
    fn out_of_descriptors(&self) -> bool {
        matches!(self, ProcError::Io { source, .. } if held::out_of_descriptors(source))
    }
}

/// Reads processes and host memory from a procfs root ("/proc", or a fixture tree).
#[derive(Debug)]
pub struct ProcReader {
    root: PathBuf,
    dir: ProcRoot,
    page_size: u64,
    clock_ticks: u64,
    scans: AtomicU64,
    /// Parsed `/proc/PID/cgroup` contents by their raw text, so processes in the same
    /// cgroups share one copy.
    cgroup_sets: Mutex<CgroupSets>,
    /// `stat` files of known processes kept open between scans. Behind a mutex because
    /// the reader is shared; a scan holds it throughout and a concurrent scan (which the
    /// daemon never runs) reads without it rather than wait.
    held_stats: Mutex<HeldStats>,
}

/// Raw `/proc/PID/cgroup` text to its parsed, shared lines.
type CgroupSets = HashMap<Box<[u8]>, CgroupSet>;

/// One distinct `/proc/PID/cgroup` text, parsed: its lines, the memory cgroup's path and
/// the classification they give, shared by every process that has it.
#[derive(Clone, Debug)]
struct CgroupSet {
    lines: Arc<[CgroupLine]>,
    memory_cgroup: Option<Arc<str>>,
    class: Arc<Classification>,
}

/// Distinct cgroup sets remembered before the cache starts afresh.
const CGROUP_SETS_MAX: usize = 4096;

impl ProcReader {
    /// Opens the reader on `root` ("/proc" in production); reads page size and clock
    /// ticks once.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, ProcError> {
        let root = root.into();
        let dir = ProcRoot::open(&root).map_err(|source| ProcError::Io {
            op: "open",
            path: root.clone(),
            source,
        })?;
        Ok(ProcReader {
            root,
            dir,
            page_size: system::page_size(),
            clock_ticks: system::clock_ticks(),
            scans: AtomicU64::new(0),
            cgroup_sets: Mutex::new(HashMap::new()),
            held_stats: Mutex::new(HeldStats::new(held::cap())),
        })
    }

    /// The procfs root this reader reads ("/proc" or a fixture tree).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The page size in bytes, the unit of the kernel's RSS counters.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Clock ticks per second (`USER_HZ`), the unit of start times.
    pub fn clock_ticks(&self) -> u64 {
        self.clock_ticks
    }

    /// A kernel `start_boottime` in ns as the start time of a [`ProcessKey`].
    pub fn ticks_from_ns(&self, ns: u64) -> u64 {
        start_ticks_from_ns(ns, self.clock_ticks)
    }

    /// The pids of all processes (thread-group leaders), in /proc's order.
    pub fn pids(&self) -> Result<Vec<i32>, ProcError> {
        let entries =
            std::fs::read_dir(&self.root).map_err(|source| self.io("list", None, source))?;
        Ok(entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid > 0)
            .collect())
    }

    /// Reads everything about one process. `Ok(None)` when it is gone (also when it
    /// vanished mid-read).
    pub fn read_process(&self, pid: i32) -> Result<Option<Process>, ProcError> {
        self.read_full(pid, &mut io::buffer())
    }

    /// Refreshes one process's memory (from `stat` and `status`, read through the same
    /// `/proc/PID` directory). `None` if the process is gone or the pid now belongs to a
    /// process with another start time. `statm` would be cheaper (stat + statm about
    /// 12 us here, stat + status about 20) but has no swap and lumps shmem with file
    /// pages; `status` keeps the split the same as a full read's.
    pub fn read_memory(&self, key: ProcessKey) -> Result<Option<MemoryUsage>, ProcError> {
        let mut buf = io::buffer();
        let Some((dir, stat)) = self.open_identified(key, &mut buf)? else {
            return Ok(None);
        };
        if stat.kernel_thread {
            return Ok(Some(MemoryUsage::default()));
        }
        Ok(self
            .read_status(&dir, key.pid, &mut buf)?
            .map(|status| status.memory))
    }

    /// The start time of the process now holding `pid`: the killer compares it with the
    /// identity it decided on, right before opening a pidfd.
    pub fn start_ticks(&self, pid: i32) -> Result<Option<u64>, ProcError> {
        let mut buf = io::buffer();
        let Some(len) = self.read_by_path(pid, "stat", &mut buf)? else {
            return Ok(None);
        };
        parse::stat(&buf[..len])
            .map(|stat| Some(stat.start_ticks))
            .ok_or_else(|| self.parse_error(pid, "stat", "malformed"))
    }

    /// Host-wide memory: `/proc/meminfo` and, when present, `/proc/pressure/memory`.
    pub fn host_memory(&self) -> Result<HostMemory, ProcError> {
        let path = self.root.join("meminfo");
        let text = std::fs::read(&path).map_err(|source| ProcError::Io {
            op: "read",
            path: path.clone(),
            source,
        })?;
        let info = parse::meminfo(&text).ok_or(ProcError::Parse {
            path,
            reason: "no MemTotal line",
        })?;
        // Missing without CONFIG_PSI, EOPNOTSUPP with psi=0: both mean "no pressure".
        let pressure = std::fs::read_to_string(self.root.join("pressure/memory"))
            .ok()
            .and_then(|text| parse::pressure(&text));
        Ok(HostMemory {
            total: info.total,
            available: info.available,
            swap_total: info.swap_total,
            swap_free: info.swap_free,
            pressure,
        })
    }

    /// Reads all of one process through one open `/proc/PID` directory.
    pub(super) fn read_full(
        &self,
        pid: i32,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Process>, ProcError> {
        let Some(dir) = self.open_dir(pid)? else {
            return Ok(None);
        };
        let Some(stat) = self.read_stat(&dir, pid, buf)? else {
            return Ok(None);
        };
        let Some(status) = self.read_status(&dir, pid, buf)? else {
            return Ok(None);
        };
        // `/proc/TID` of a thread reads like its process; it is not one (a fork event
        // names threads too).
        if status
            .tgid
            .is_some_and(|tgid| i64::from(tgid) != i64::from(pid))
        {
            return Ok(None);
        }
        let Some(len) = self.read_at(&dir, pid, "cmdline", buf)? else {
            return Ok(None);
        };
        let cmdline = parse::cmdline(&buf[..len]);
        let Some(len) = self.read_at(&dir, pid, "cgroup", buf)? else {
            return Ok(None);
        };
        let CgroupSet {
            lines: cgroups,
            memory_cgroup,
            class,
        } = self.cgroup_set(pid, &buf[..len])?;
        let Some(len) = self.read_at(&dir, pid, "oom_score_adj", buf)? else {
            return Ok(None);
        };
        let oom_score_adj = parse::oom_score_adj(&buf[..len])
            .ok_or_else(|| self.parse_error(pid, "oom_score_adj", "not an integer"))?;
        Ok(Some(Process {
            key: ProcessKey {
                pid,
                start_ticks: stat.start_ticks,
            },
            ppid: stat.ppid,
            uid: status.uid,
            comm: stat.comm,
            cmdline,
            kernel_thread: stat.kernel_thread,
            oom_score_adj,
            memory: if stat.kernel_thread {
                MemoryUsage::default()
            } else {
                status.memory
            },
            cgroups,
            memory_cgroup,
            class,
            started_secs: stat.start_ticks as f64 / self.clock_ticks as f64,
        }))
    }

    /// The parsed cgroup lines for this raw text and its memory cgroup, shared with
    /// processes that have the same.
    fn cgroup_set(&self, pid: i32, raw: &[u8]) -> Result<CgroupSet, ProcError> {
        let mut sets = self
            .cgroup_sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(set) = sets.get(raw) {
            return Ok(set.clone());
        }
        let lines: Arc<[CgroupLine]> = parse::cgroup(raw)
            .ok_or_else(|| self.parse_error(pid, "cgroup", "not id:controllers:path lines"))?
            .into();
        let set = CgroupSet {
            memory_cgroup: memory_line(&lines).map(|line| Arc::from(line.path.as_str())),
            class: Arc::new(classify::classify(&lines)),
            lines,
        };
        if sets.len() >= CGROUP_SETS_MAX {
            sets.clear();
        }
        sets.insert(raw.into(), set.clone());
        Ok(set)
    }

    fn open_dir(&self, pid: i32) -> Result<Option<ProcDir>, ProcError> {
        self.dir.open_pid(pid).map_err(|source| ProcError::Io {
            op: "open",
            path: self.root.join(pid.to_string()),
            source,
        })
    }

    /// Reads `name` under an open `/proc/PID`; the length read, or `None` if gone.
    fn read_at(
        &self,
        dir: &ProcDir,
        pid: i32,
        name: &'static str,
        buf: &mut Vec<u8>,
    ) -> Result<Option<usize>, ProcError> {
        dir.read(name, buf)
            .map_err(|source| self.io("read", Some((pid, name)), source))
    }

    /// Opens `/proc/PID` of the process `key` names and reads its `stat`; `None` when it
    /// is gone or the pid now belongs to a process with another start time.
    fn open_identified(
        &self,
        key: ProcessKey,
        buf: &mut Vec<u8>,
    ) -> Result<Option<(ProcDir, OwnedStat)>, ProcError> {
        let Some(dir) = self.open_dir(key.pid)? else {
            return Ok(None);
        };
        let Some(stat) = self.read_stat(&dir, key.pid, buf)? else {
            return Ok(None);
        };
        Ok((stat.start_ticks == key.start_ticks).then_some((dir, stat)))
    }

    fn read_stat(
        &self,
        dir: &ProcDir,
        pid: i32,
        buf: &mut Vec<u8>,
    ) -> Result<Option<OwnedStat>, ProcError> {
        let Some(len) = self.read_at(dir, pid, "stat", buf)? else {
            return Ok(None);
        };
        self.own_stat(pid, &buf[..len]).map(Some)
    }

    /// Reads `/proc/PID/name` with one open (no `/proc/PID` fd): for single-file reads
    /// where nothing needs to match another file of the same process.
    pub(super) fn read_by_path(
        &self,
        pid: i32,
        name: &'static str,
        buf: &mut Vec<u8>,
    ) -> Result<Option<usize>, ProcError> {
        self.dir
            .read(pid, name, buf)
            .map_err(|source| self.io("read", Some((pid, name)), source))
    }

    fn read_status(
        &self,
        dir: &ProcDir,
        pid: i32,
        buf: &mut Vec<u8>,
    ) -> Result<Option<parse::Status>, ProcError> {
        let Some(len) = self.read_at(dir, pid, "status", buf)? else {
            return Ok(None);
        };
        parse::status(&buf[..len])
            .map(Some)
            .ok_or_else(|| self.parse_error(pid, "status", "no Uid line"))
    }

    fn own_stat(&self, pid: i32, buf: &[u8]) -> Result<OwnedStat, ProcError> {
        let stat = parse::stat(buf).ok_or_else(|| self.parse_error(pid, "stat", "malformed"))?;
        Ok(OwnedStat {
            comm: String::from_utf8_lossy(stat.comm).into_owned(),
            ppid: stat.ppid,
            kernel_thread: stat.kernel_thread(),
            start_ticks: stat.start_ticks,
        })
    }

    fn path(&self, pid: i32, name: &str) -> PathBuf {
        let mut path = self.root.join(pid.to_string());
        path.push(name);
        path
    }

    fn io(&self, op: &'static str, file: Option<(i32, &str)>, source: std::io::Error) -> ProcError {
        let path = match file {
            Some((pid, name)) => self.path(pid, name),
            None => self.root.clone(),
        };
        ProcError::Io { op, path, source }
    }

    pub(super) fn parse_error(&self, pid: i32, name: &str, reason: &'static str) -> ProcError {
        ProcError::Parse {
            path: self.path(pid, name),
            reason,
        }
    }
}

/// The `stat` fields a full read keeps.
struct OwnedStat {
    comm: String,
    ppid: i32,
    kernel_thread: bool,
    start_ticks: u64,
}
