//! Scanning every process: a full read for processes the model does not know, and for
//! the ones it does only what changes between scans (RSS, ppid), from one `stat` read.

use std::{
    sync::{Arc, TryLockError, atomic::Ordering},
    time::Instant,
};

use tracing::debug;

use crate::model::{MemoryUsage, Model, Process, ProcessKey};

use super::{ProcError, ProcReader, held::HeldStats, io, parse};

/// Every how many scans a known process is read in full again (cmdline, cgroups,
/// oom_score_adj, uid), staggered by pid so each scan refreshes about 1/60 of them. This
/// bounds how stale a reused field can be (a process moved to another cgroup, a
/// `setproctitle`, a changed `oom_score_adj`) at a cost of about 0.5 us per process.
const FULL_REFRESH_SCANS: u64 = 60;

/// Whether pass `scan` reads `pid` in full even if it is known (see
/// [`FULL_REFRESH_SCANS`]).
pub(super) fn due_for_full_read(pid: i32, scan: u64) -> bool {
    u64::from(pid.unsigned_abs()).wrapping_add(scan) % FULL_REFRESH_SCANS == 0
}

/// The outcome of [`ProcReader::scan`]: what was read, and what was not.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Unchanged processes are the previous model's, shared, not copied.
    pub processes: Vec<Arc<Process>>,
    /// Processes that exited between listing /proc and reading them (normal).
    pub vanished: u32,
    /// Processes that could not be read or parsed (logged at debug level).
    pub errors: u32,
}

/// What one pid turned out to be.
enum Seen {
    /// A process the model knows: only what changes between scans.
    Known(Refresh),
    /// A process read in full (new, exec'd, reused pid, or due for a refresh).
    Full(Process),
    Gone,
}

/// The fields a steady-state scan refreshes in a known process.
pub(super) struct Refresh {
    pub(super) key: ProcessKey,
    pub(super) ppid: i32,
    pub(super) uid: u32,
    pub(super) memory: MemoryUsage,
}

impl Refresh {
    /// `known` with this refresh: the same shared process when nothing changed.
    pub(super) fn apply(self, known: &Arc<Process>) -> Arc<Process> {
        if known.ppid == self.ppid && known.uid == self.uid && known.memory == self.memory {
            return Arc::clone(known);
        }
        let mut process = Process::clone(known);
        process.ppid = self.ppid;
        process.uid = self.uid;
        process.memory = self.memory;
        Arc::new(process)
    }
}

impl ProcReader {
    /// Reads every process. Processes already in `previous` under the same identity and
    /// `comm` keep their cmdline, cgroups, classification, uid and oom_score_adj (an exec
    /// changes `comm` and triggers a full read; so does a staggered refresh every 60
    /// scans); their RSS comes fresh from `stat`, and `status` is read again only when
    /// the RSS moved by more than max(1 MiB, 1 %) since the anon/file/shmem split was
    /// last read. Exits mid-scan are counted, not failed on.
    pub fn scan(&self, previous: &Model) -> ScanReport {
        let scan = self.scans.fetch_add(1, Ordering::Relaxed);
        let mut report = ScanReport::default();
        let pids = match self.pids() {
            Ok(pids) => pids,
            Err(error) => {
                debug!(%error, "listing processes failed");
                report.errors += 1;
                return report;
            }
        };
        report.processes.reserve(pids.len());
        let mut buf = io::buffer();
        self.with_held_stats(|held| {
            for pid in pids {
                match self.look(pid, previous, scan, held, &mut buf) {
                    Ok(Seen::Known(refresh)) => {
                        if let Some(known) = previous.shared_process(&refresh.key) {
                            report.processes.push(refresh.apply(known));
                        }
                    }
                    Ok(Seen::Full(process)) => report.processes.push(Arc::new(process)),
                    Ok(Seen::Gone) => report.vanished += 1,
                    Err(error) => {
                        debug!(pid, %error, "reading process failed");
                        report.errors += 1;
                    }
                }
            }
            held.sweep(scan);
        });
        report
    }

    /// Runs a scan with the held `stat` files, or, if another scan has them, with none
    /// (every read then opens and closes its file, as before files were held).
    fn with_held_stats<R>(&self, run: impl FnOnce(&mut HeldStats) -> R) -> R {
        let mut none = HeldStats::new(0);
        let mut guard = match self.held_stats.try_lock() {
            Ok(held) => Some(held),
            // A scan that panicked leaves every entry valid (each is a whole file).
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let held = guard.as_deref_mut().unwrap_or(&mut none);
        held.begin(Instant::now());
        run(held)
    }

    /// Reads `stat` of `pid` (through its held file when there is one) and decides:
    /// refresh a process `known` has, or read it in full. Out of descriptors anywhere in
    /// that (a full read opens two files at once), it closes held files and tries once
    /// more: the held files must never cost a process.
    fn look(
        &self,
        pid: i32,
        known: &Model,
        scan: u64,
        held: &mut HeldStats,
        buf: &mut Vec<u8>,
    ) -> Result<Seen, ProcError> {
        match self.look_once(pid, known, scan, held, buf) {
            Err(error) if error.out_of_descriptors() && held.shrink(&error) => {
                self.look_once(pid, known, scan, held, buf)
            }
            seen => seen,
        }
    }

    fn look_once(
        &self,
        pid: i32,
        known: &Model,
        scan: u64,
        held: &mut HeldStats,
        buf: &mut Vec<u8>,
    ) -> Result<Seen, ProcError> {
        let Some(len) = held
            .read(&self.dir, pid, scan, buf)
            .map_err(|source| self.io("read", Some((pid, "stat")), source))?
        else {
            return Ok(Seen::Gone);
        };
        let stat =
            parse::stat(&buf[..len]).ok_or_else(|| self.parse_error(pid, "stat", "malformed"))?;
        held.identify(pid, stat.start_ticks);
        let key = ProcessKey {
            pid,
            start_ticks: stat.start_ticks,
        };
        let refresh = due_for_full_read(pid, scan);
        // The model keeps comm as (lossy) UTF-8: compare the same way, which borrows
        // instead of allocating when the raw comm is valid UTF-8.
        let known = known
            .process(&key)
            .filter(|known| !refresh && String::from_utf8_lossy(stat.comm) == known.comm);
        let Some(known) = known else {
            return Ok(match self.read_full(pid, buf)? {
                Some(process) => Seen::Full(process),
                None => Seen::Gone,
            });
        };
        let (ppid, kernel_thread) = (stat.ppid, stat.kernel_thread());
        let rss = stat.rss_pages * self.page_size;
        let split = &known.memory;
        let split_rss = split.anon + split.file + split.shmem;
        let (memory, uid) = if kernel_thread {
            (MemoryUsage::default(), known.uid)
        } else if rss.abs_diff(split_rss) <= (split_rss / 100).max(1 << 20) {
            (MemoryUsage { rss, ..*split }, known.uid)
        } else {
            let Some(len) = self.read_by_path(pid, "status", buf)? else {
                return Ok(Seen::Gone);
            };
            let status = parse::status(&buf[..len])
                .ok_or_else(|| self.parse_error(pid, "status", "no Uid line"))?;
            (status.memory, status.uid)
        };
        Ok(Seen::Known(Refresh {
            key,
            ppid,
            uid,
            memory,
        }))
    }
}
