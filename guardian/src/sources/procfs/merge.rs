//! Building the process table from a whole-host snapshot (the eBPF task iterator)
//! instead of a /proc scan: /proc is read only for what the snapshot cannot tell.

use std::sync::{Arc, atomic::Ordering};

use tracing::debug;

use crate::{model::Model, sources::Sighting};

use super::{ProcReader, io, scan};

/// One snapshot being merged into a process table, a sighting at a time as the iterator
/// hands them over (no list of every sighting is held).
pub struct Merge<'a> {
    reader: &'a ProcReader,
    previous: &'a Model,
    pass: u64,
    buf: Vec<u8>,
    report: scan::ScanReport,
}

impl ProcReader {
    /// Starts merging one snapshot of every process against `previous`: see
    /// [`Merge::add`].
    pub fn merge<'a>(&'a self, previous: &'a Model) -> Merge<'a> {
        let mut report = scan::ScanReport::default();
        // About the previous count: the table rarely grows by much between snapshots.
        let known = previous.process_count();
        report.processes.reserve(known + known / 16 + 64);
        Merge {
            reader: self,
            previous,
            pass: self.scans.fetch_add(1, Ordering::Relaxed),
            buf: io::buffer(),
            report,
        }
    }
}

impl Merge<'_> {
    /// Adds one process of the snapshot. A process the previous table knows under the
    /// same identity and comm takes the snapshot's ppid, uid and memory and keeps its
    /// cmdline, cgroups and classification; a new one, an exec'd one (comm changed) or
    /// one due for the staggered full read is read in full from /proc, like a scan would.
    /// Processes gone since the snapshot are counted as vanished.
    pub fn add(&mut self, sighting: &Sighting) {
        let pid = sighting.key.pid;
        let known = self.previous.shared_process(&sighting.key).filter(|known| {
            !scan::due_for_full_read(pid, self.pass) && sighting.comm() == known.comm
        });
        if let Some(known) = known {
            let refresh = scan::Refresh {
                key: sighting.key,
                ppid: sighting.ppid,
                uid: sighting.uid,
                memory: sighting.memory,
            };
            self.report.processes.push(refresh.apply(known));
            return;
        }
        match self.reader.read_full(pid, &mut self.buf) {
            Ok(Some(process)) => self.report.processes.push(Arc::new(process)),
            Ok(None) => self.report.vanished += 1,
            Err(error) => {
                debug!(pid, %error, "reading process failed");
                self.report.errors += 1;
            }
        }
    }

    /// The process table of every sighting added.
    pub fn finish(self) -> scan::ScanReport {
        self.report
    }
}
