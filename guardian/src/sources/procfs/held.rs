//! `/proc/PID/stat` files kept open across scans, one per known process.
//!
//! Reading a held file again (`pread` at offset 0) costs about half of opening, reading
//! and closing it, and it cannot be confused by a
//! reused pid: the file is pinned to the process it was opened for, and reads fail with
//! ESRCH once that process is reaped. The price is one descriptor and 4.4 KiB of kernel
//! memory per held file, charged to our memory cgroup: 0.4 KiB for the open file and
//! 4 KiB for the seq_file page allocated on its first read (figures in the README's
//! "Open files"). Hence the limits: files are held only while scans come often (the procfs
//! source's 1 s, not the eBPF source's 10 s rescans, where they would save little CPU
//! for that memory), and at most [`HELD_MAX`] of them, within the open-file limit.
//! Past those, or when the process runs out of descriptors, the remaining processes are
//! read the old way (open, read, close), never skipped.

use std::{
    collections::HashMap,
    io,
    sync::OnceLock,
    time::{Duration, Instant},
};

use tracing::{debug, info, warn};

use super::io::{HeldFile, ProcRoot};

/// Descriptors left to everything else the daemon opens (HTTP connections, pidfds,
/// cgroup files, the kill log, full reads of new processes).
pub(super) const FD_RESERVE: usize = 512;

/// At most this many held files whatever the open-file limit: 16,384 of them cost
/// 70 MiB of kernel memory. Beyond that a host is better served by the eBPF source than
/// by a faster /proc scan.
pub(super) const HELD_MAX: usize = 16_384;

/// Files are held only while scans start at most this far apart; a slower scanner
/// closes them (their memory would buy little CPU).
const HOLD_SCAN_GAP: Duration = Duration::from_secs(5);

/// The held `stat` files, by pid. Every entry was listed in the last scan that saw it;
/// the pid alone is the key because the file itself carries the process identity.
#[derive(Debug)]
pub(super) struct HeldStats {
    files: HashMap<i32, Held>,
    /// How many files may be held (0: none, every read opens and closes).
    cap: usize,
    /// Start of the previous scan, and whether this one holds files (see
    /// [`HOLD_SCAN_GAP`]).
    last_scan: Option<Instant>,
    holding: bool,
}

#[derive(Debug)]
struct Held {
    file: HeldFile,
    /// Start time read through the file when it was opened: the identity of the process
    /// it is pinned to (a later read showing another one means the file is not pinned,
    /// as in a fixture tree, and it is reopened).
    start_ticks: Option<u64>,
    /// Number of the last scan that read it: files of pids no longer listed are closed.
    seen: u64,
}

impl HeldStats {
    pub(super) fn new(cap: usize) -> HeldStats {
        HeldStats {
            files: HashMap::new(),
            cap,
            last_scan: None,
            holding: true,
        }
    }

    /// Starts a scan: files are held if the previous scan started less than
    /// [`HOLD_SCAN_GAP`] ago (or there was none); otherwise those held are closed.
    pub(super) fn begin(&mut self, now: Instant) {
        self.holding = self
            .last_scan
            .is_none_or(|last| now.saturating_duration_since(last) <= HOLD_SCAN_GAP);
        if !self.holding && !self.files.is_empty() {
            debug!(
                held = self.files.len(),
                "scans are far apart: closing the held /proc stat files"
            );
            self.files.clear();
        }
        self.last_scan = Some(now);
    }

    /// Reads `PID/stat` into the front of `buf`: through the held file if there is one,
    /// else by opening it (and keeping it, under the cap). `None` when the process is
    /// gone. A held file whose process is gone is closed, and a process now listed under
    /// its pid (a reused pid) is opened afresh.
    pub(super) fn read(
        &mut self,
        root: &ProcRoot,
        pid: i32,
        scan: u64,
        buf: &mut Vec<u8>,
    ) -> io::Result<Option<usize>> {
        if let Some(held) = self.files.get_mut(&pid) {
            match held.file.read(buf) {
                Ok(Some(len)) if len > 0 => {
                    held.seen = scan;
                    return Ok(Some(len));
                }
                // Gone (ESRCH, or nothing to read), or a read error the fresh open
                // below will report if it persists.
                Ok(_) | Err(_) => {
                    self.files.remove(&pid);
                }
            }
        }
        if self.holding && self.files.len() < self.cap {
            match root.open_held(pid, "stat") {
                Ok(None) => return Ok(None),
                Ok(Some(file)) => {
                    let len = file.read(buf)?;
                    if len.is_some() {
                        let held = Held {
                            file,
                            start_ticks: None,
                            seen: scan,
                        };
                        self.files.insert(pid, held);
                    }
                    return Ok(len);
                }
                Err(error) if out_of_descriptors(&error) => {
                    self.shrink(&error);
                }
                Err(error) => return Err(error),
            }
        }
        root.read(pid, "stat", buf)
    }

    /// Records the start time just read for `pid`; closes its held file if the file now
    /// shows another process than the one it was opened for.
    pub(super) fn identify(&mut self, pid: i32, start_ticks: u64) {
        let Some(held) = self.files.get_mut(&pid) else {
            return;
        };
        match held.start_ticks {
            None => held.start_ticks = Some(start_ticks),
            Some(known) if known != start_ticks => {
                self.files.remove(&pid);
            }
            Some(_) => {}
        }
    }

    /// Closes the files of pids the scan numbered `scan` did not read (no longer listed).
    pub(super) fn sweep(&mut self, scan: u64) {
        self.files.retain(|_, held| held.seen == scan);
    }

    /// Out of descriptors (ours or the system's): hold `FD_RESERVE` fewer files from now
    /// on, and close the excess right away so the scan and the rest of the daemon can open
    /// files again. False if no file was held (closing none frees nothing).
    pub(super) fn shrink(&mut self, error: &dyn std::fmt::Display) -> bool {
        if self.files.is_empty() {
            return false;
        }
        let cap = self.files.len().saturating_sub(FD_RESERVE);
        warn!(
            %error,
            held = self.files.len(),
            cap,
            "out of file descriptors: holding fewer /proc stat files"
        );
        self.cap = cap;
        let mut keep = cap;
        self.files.retain(|_, _| {
            let kept = keep > 0;
            keep = keep.saturating_sub(1);
            kept
        });
        true
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.files.len()
    }

    #[cfg(test)]
    pub(super) fn holds(&self, pid: i32) -> bool {
        self.files.contains_key(&pid)
    }

    /// Reads `pid`'s held file as a scan would, without acting on the result.
    #[cfg(test)]
    pub(super) fn reread(&self, pid: i32, buf: &mut Vec<u8>) -> Option<io::Result<Option<usize>>> {
        self.files.get(&pid).map(|held| held.file.read(buf))
    }

    #[cfg(test)]
    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    #[cfg(test)]
    pub(super) fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }
}

/// EMFILE (this process) or ENFILE (the system) out of file descriptors.
pub(super) fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// How many `stat` files a reader may hold: the open-file limit (its soft limit raised
/// to the hard one, once per process) less [`FD_RESERVE`], at most [`HELD_MAX`].
pub(super) fn cap() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| {
        let soft = raise_open_file_limit();
        let cap = usize::try_from(soft)
            .unwrap_or(usize::MAX)
            .saturating_sub(FD_RESERVE)
            .min(HELD_MAX);
        debug!(open_files = soft, cap, "holding /proc stat files");
        cap
    })
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; the soft limit in force after. The
/// soft limit is 1024 by default (for `select`, which nothing here uses) and systemd's
/// hard one 524,288; the packaged unit sets both with `LimitNOFILE=`. (Its
/// `~@resources` filter denies the `setrlimit` syscall, but glibc sets limits with
/// `prlimit64`, which it allows.)
fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            debug!(%error, "cannot read the open-file limit; holding no /proc files");
            return 0;
        }
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            info!(from = soft, to = hard, "raised the open-file limit");
            hard
        }
        Err(error) => {
            debug!(%error, soft, hard, "cannot raise the open-file limit");
            soft
        }
    }
}
