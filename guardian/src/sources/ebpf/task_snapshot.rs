//! Snapshots of every process from the kernel's task iterator (`task_snapshot`, an
//! `iter/task` program): one read of an iterator file gives pid, start time, parent, uid,
//! comm and the mm counters of all processes, where /proc needs a file per process.

use std::io::Read;

use aya::{Ebpf, programs::Iter};
use guardian_ebpf::{
    MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, PF_KTHREAD, TASK_SNAPSHOT_PROGRAM,
    TaskRecord,
};

use crate::{
    model::{MemoryUsage, ProcessKey},
    sources::{Sighting, SnapshotError, kernfs::system::start_ticks_from_ns},
};

/// Loads the iterator program and returns what the kernel says of it; it attaches only
/// when a snapshot is taken.
pub fn load(ebpf: &mut Ebpf, btf: &aya::Btf) -> Result<aya::programs::ProgramInfo, SnapshotError> {
    let program = iter(ebpf)?;
    program
        .load("task", btf)
        .map_err(|error| iterator("load", error))?;
    program.info().map_err(|error| iterator("info", error))
}

/// Bytes read from the iterator at a time. Records are decoded and handed on as they
/// arrive, so neither the raw output for every process (72 bytes each) nor the decoded
/// sightings (88 bytes each) are ever held at once.
const READ_CHUNK: usize = 64 * 1024;

/// Runs the iterator once and hands each decoded record to `each`, in the kernel's
/// order. `buf` is the reused read buffer of [`READ_CHUNK`] bytes.
pub fn take(
    ebpf: &mut Ebpf,
    clock_ticks: u64,
    page_size: u64,
    buf: &mut Vec<u8>,
    each: &mut dyn FnMut(Sighting),
) -> Result<(), SnapshotError> {
    let program = iter(ebpf)?;
    let link = program
        .attach()
        .map_err(|error| iterator("attach", error))?;
    let link = program
        .take_link(link)
        .map_err(|error| iterator("link", error))?;
    let file = link
        .into_file()
        .map_err(|error| iterator("create", error))?;
    read_records(file, clock_ticks, page_size, buf, each)
}

fn iter(ebpf: &mut Ebpf) -> Result<&mut Iter, SnapshotError> {
    ebpf.program_mut(TASK_SNAPSHOT_PROGRAM)
        .ok_or(SnapshotError::NotLoaded)?
        .try_into()
        .map_err(|error| iterator("program type", error))
}

fn iterator(step: &'static str, error: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Iterator {
        step,
        message: error.to_string(),
    }
}

/// Reads `reader` to its end a chunk at a time, handing whole records to `each`; a
/// record split between two reads is completed by the next one.
fn read_records(
    mut reader: impl Read,
    clock_ticks: u64,
    page_size: u64,
    buf: &mut Vec<u8>,
    each: &mut dyn FnMut(Sighting),
) -> Result<(), SnapshotError> {
    let size = std::mem::size_of::<TaskRecord>();
    buf.resize(READ_CHUNK.max(size), 0);
    let (mut filled, mut total) = (0, 0);
    loop {
        let read = match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(iterator("read", error)),
        };
        filled += read;
        total += read;
        let whole = filled - filled % size;
        for chunk in buf[..whole].chunks_exact(size) {
            // SAFETY: `chunk` holds exactly one TaskRecord, which is Pod (any bytes
            // valid); read_unaligned copes with the buffer's alignment.
            let record: TaskRecord = unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast()) };
            each(sighting(&record, clock_ticks, page_size));
        }
        buf.copy_within(whole..filled, 0);
        filled -= whole;
    }
    if filled != 0 {
        return Err(SnapshotError::Torn { len: total });
    }
    Ok(())
}

fn sighting(record: &TaskRecord, clock_ticks: u64, page_size: u64) -> Sighting {
    let pages = |member: u32| u64::try_from(record.pages[member as usize]).unwrap_or(0) * page_size;
    let kernel_thread = record.flags & PF_KTHREAD != 0;
    Sighting {
        key: ProcessKey {
            pid: record.tgid as i32,
            start_ticks: start_ticks_from_ns(record.start_boottime_ns, clock_ticks),
        },
        ppid: record.ppid as i32,
        uid: record.uid,
        comm: record.comm,
        kernel_thread,
        memory: if kernel_thread {
            MemoryUsage::default()
        } else {
            MemoryUsage::from_parts(
                pages(MM_ANONPAGES),
                pages(MM_FILEPAGES),
                pages(MM_SHMEMPAGES),
                pages(MM_SWAPENTS),
            )
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tgid: u32, comm: &[u8], flags: u32) -> TaskRecord {
        let mut name = [0u8; 16];
        name[..comm.len()].copy_from_slice(comm);
        TaskRecord {
            tgid,
            ppid: 1,
            uid: 1000,
            flags,
            start_boottime_ns: 12_345_678_901,
            pages: [10, 20, 3, 4],
            comm: name,
        }
    }

    fn bytes(records: &[TaskRecord]) -> Vec<u8> {
        records
            .iter()
            .flat_map(|record| {
                // SAFETY: TaskRecord is repr(C) plain integers.
                let raw = unsafe {
                    std::slice::from_raw_parts(
                        (record as *const TaskRecord).cast::<u8>(),
                        std::mem::size_of::<TaskRecord>(),
                    )
                };
                raw.to_vec()
            })
            .collect()
    }

    #[test]
    fn decodes_records_like_proc_shows_them() {
        let raw = bytes(&[record(42, b"memhog", 0), record(2, b"kthreadd", PF_KTHREAD)]);
        let mut out = Vec::new();
        read_records(&raw[..], 100, 4096, &mut Vec::new(), &mut |seen| {
            out.push(seen)
        })
        .expect("decode");
        assert_eq!(out.len(), 2);
        let hog = &out[0];
        assert_eq!(hog.key.pid, 42);
        assert_eq!(hog.key.start_ticks, 1234, "start_boottime in 1/100 s");
        assert_eq!(hog.comm(), "memhog");
        assert_eq!(hog.ppid, 1);
        assert_eq!(hog.uid, 1000);
        assert_eq!(
            hog.memory,
            MemoryUsage::from_parts(20 * 4096, 10 * 4096, 4 * 4096, 3 * 4096)
        );
        assert!(out[1].kernel_thread);
        assert_eq!(out[1].memory, MemoryUsage::default());
    }

    /// Hands out a few bytes per read, as a read that ends mid-record would.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, into: &mut [u8]) -> std::io::Result<usize> {
            let n = into.len().min(self.0.len()).min(50);
            into[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn records_split_between_reads_and_chunks_are_whole() {
        let records: Vec<TaskRecord> = (1..=3000).map(|pid| record(pid, b"sleep", 0)).collect();
        let raw = bytes(&records);
        assert!(raw.len() > 2 * READ_CHUNK, "spans several read chunks");
        let (mut whole, mut trickled) = (Vec::new(), Vec::new());
        read_records(&raw[..], 100, 4096, &mut Vec::new(), &mut |seen| {
            whole.push(seen)
        })
        .expect("whole");
        read_records(Trickle(&raw), 100, 4096, &mut Vec::new(), &mut |seen| {
            trickled.push(seen)
        })
        .expect("trickled");
        assert_eq!(whole.len(), 3000);
        assert_eq!(whole, trickled);
        assert!(
            whole
                .iter()
                .zip(1..)
                .all(|(seen, pid)| seen.key.pid == pid && seen.comm() == "sleep")
        );
    }

    #[test]
    fn a_torn_snapshot_is_an_error() {
        let raw = bytes(&[record(42, b"memhog", 0)]);
        let error = read_records(
            &raw[..raw.len() - 1],
            100,
            4096,
            &mut Vec::new(),
            &mut |_| {},
        )
        .expect_err("torn");
        assert!(error.to_string().contains("not a whole number"), "{error}");
    }
}
