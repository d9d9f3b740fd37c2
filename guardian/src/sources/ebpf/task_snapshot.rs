//! Snapshots of every process from the kernel's task iterator (`task_snapshot`, an
//! `iter/task` program): one read of an iterator file gives pid, start time, parent, uid,
//! comm and the mm counters of all processes, where /proc needs a file per process.

use std::io::Read as _;

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

/// Runs the iterator once and decodes its records into `out` (cleared first). `buf` is
/// the reused read buffer.
pub fn take(
    ebpf: &mut Ebpf,
    clock_ticks: u64,
    page_size: u64,
    buf: &mut Vec<u8>,
    out: &mut Vec<Sighting>,
) -> Result<(), SnapshotError> {
    let program = iter(ebpf)?;
    let link = program
        .attach()
        .map_err(|error| iterator("attach", error))?;
    let link = program
        .take_link(link)
        .map_err(|error| iterator("link", error))?;
    let mut file = link
        .into_file()
        .map_err(|error| iterator("create", error))?;
    buf.clear();
    file.read_to_end(buf)
        .map_err(|error| iterator("read", error))?;
    decode(buf, clock_ticks, page_size, out)
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

/// Turns the iterator's raw records into sightings.
fn decode(
    bytes: &[u8],
    clock_ticks: u64,
    page_size: u64,
    out: &mut Vec<Sighting>,
) -> Result<(), SnapshotError> {
    let size = std::mem::size_of::<TaskRecord>();
    if !bytes.len().is_multiple_of(size) {
        return Err(SnapshotError::Torn { len: bytes.len() });
    }
    out.clear();
    out.reserve(bytes.len() / size);
    for chunk in bytes.chunks_exact(size) {
        // SAFETY: `chunk` holds exactly one TaskRecord, which is Pod (any bytes valid);
        // read_unaligned copes with the Vec's alignment.
        let record: TaskRecord = unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast()) };
        out.push(sighting(&record, clock_ticks, page_size));
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
        comm: String::from_utf8_lossy(guardian_ebpf::trim_comm(&record.comm)).into_owned(),
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
        decode(&raw, 100, 4096, &mut out).expect("decode");
        assert_eq!(out.len(), 2);
        let hog = &out[0];
        assert_eq!(hog.key.pid, 42);
        assert_eq!(hog.key.start_ticks, 1234, "start_boottime in 1/100 s");
        assert_eq!(hog.comm, "memhog");
        assert_eq!(hog.ppid, 1);
        assert_eq!(hog.uid, 1000);
        assert_eq!(
            hog.memory,
            MemoryUsage::from_parts(20 * 4096, 10 * 4096, 4 * 4096, 3 * 4096)
        );
        assert!(out[1].kernel_thread);
        assert_eq!(out[1].memory, MemoryUsage::default());
    }

    #[test]
    fn a_torn_snapshot_is_an_error() {
        let raw = bytes(&[record(42, b"memhog", 0)]);
        let error = decode(&raw[..raw.len() - 1], 100, 4096, &mut Vec::new()).expect_err("torn");
        assert!(error.to_string().contains("not a whole number"), "{error}");
    }
}
