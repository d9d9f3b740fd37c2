//! Building the process table from a whole-host snapshot (the eBPF task iterator)
//! instead of a /proc scan: /proc is read only for what the snapshot cannot tell.

use std::sync::atomic::Ordering;

use tracing::debug;

use crate::{model::Model, sources::Sighting};

use super::{ProcReader, io, scan};

impl ProcReader {
    /// The process table for `sightings`, one snapshot of every process. A process
    /// `previous` knows under the same identity and comm takes the snapshot's ppid, uid
    /// and memory and keeps its cmdline, cgroups and classification; a new one, an
    /// exec'd one (comm changed) or one due for the staggered full read is read in full
    /// from /proc, like a scan would. Processes gone since the snapshot are counted as
    /// vanished.
    pub fn merge(&self, previous: &Model, sightings: &[Sighting]) -> scan::ScanReport {
        let pass = self.scans.fetch_add(1, Ordering::Relaxed);
        let mut report = scan::ScanReport::default();
        report.processes.reserve(sightings.len());
        let mut buf = io::buffer();
        for sighting in sightings {
            let pid = sighting.key.pid;
            let known = previous.shared_process(&sighting.key).filter(|known| {
                !scan::due_for_full_read(pid, pass) && sighting.comm() == known.comm
            });
            if let Some(known) = known {
                let refresh = scan::Refresh {
                    key: sighting.key,
                    ppid: sighting.ppid,
                    uid: sighting.uid,
                    memory: sighting.memory,
                };
                report.processes.push(refresh.apply(known));
                continue;
            }
            match self.read_full(pid, &mut buf) {
                Ok(Some(process)) => report.processes.push(std::sync::Arc::new(process)),
                Ok(None) => report.vanished += 1,
                Err(error) => {
                    debug!(pid, %error, "reading process failed");
                    report.errors += 1;
                }
            }
        }
        report
    }
}
