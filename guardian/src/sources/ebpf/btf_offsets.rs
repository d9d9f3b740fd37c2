//! Kernel struct offsets the `rss_stat` and `task_snapshot` programs need, read from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`) so one object works across kernel builds.

use std::path::{Path, PathBuf};

use btf_rs::{Btf, Type};

/// Why the offsets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("kernel BTF has no {what}")]
    Missing { what: String },
}

/// The offsets handed to the program as globals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `rss_stat[member].count` within `mm_struct`, for file, anon and shmem pages.
    pub mm_file_count: u64,
    pub mm_anon_count: u64,
    pub mm_shmem_count: u64,
    pub mm_swap_count: u64,
    pub task_mm: u64,
    /// The `task_struct` and `cred` members the task iterator reads.
    pub task: TaskOffsets,
}

/// Offsets of the `task_struct` members (and `cred.uid`) the task iterator reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskOffsets {
    pub pid: u64,
    pub tgid: u64,
    pub flags: u64,
    pub start_boottime: u64,
    pub real_parent: u64,
    pub cred: u64,
    pub comm: u64,
    pub cred_uid: u64,
}

/// Reads the offsets from the BTF file at `path`.
pub fn read(path: &Path) -> Result<KernelOffsets, BtfError> {
    let btf = Btf::from_file(path).map_err(|error| BtfError::Read {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    let mm = find_struct(&btf, "mm_struct")?;
    let percpu_counter = find_struct(&btf, "percpu_counter")?;
    let task = find_struct(&btf, "task_struct")?;
    let cred = find_struct(&btf, "cred")?;
    let rss_stat =
        member_offset(&btf, &mm, "rss_stat").ok_or_else(|| missing("mm_struct.rss_stat"))?;
    let stride = percpu_counter.size() as u64;
    let count = member_offset(&btf, &percpu_counter, "count")
        .ok_or_else(|| missing("percpu_counter.count"))?;
    let counter = |member: u32| rss_stat + u64::from(member) * stride + count;
    Ok(KernelOffsets {
        mm_file_count: counter(guardian_ebpf::MM_FILEPAGES),
        mm_anon_count: counter(guardian_ebpf::MM_ANONPAGES),
        mm_shmem_count: counter(guardian_ebpf::MM_SHMEMPAGES),
        mm_swap_count: counter(guardian_ebpf::MM_SWAPENTS),
        task_mm: member_offset(&btf, &task, "mm").ok_or_else(|| missing("task_struct.mm"))?,
        task: TaskOffsets {
            pid: required(&btf, &task, "task_struct", "pid")?,
            tgid: required(&btf, &task, "task_struct", "tgid")?,
            flags: required(&btf, &task, "task_struct", "flags")?,
            start_boottime: required(&btf, &task, "task_struct", "start_boottime")?,
            real_parent: required(&btf, &task, "task_struct", "real_parent")?,
            cred: required(&btf, &task, "task_struct", "cred")?,
            comm: required(&btf, &task, "task_struct", "comm")?,
            cred_uid: required(&btf, &cred, "cred", "uid")?,
        },
    })
}

fn required(
    btf: &Btf,
    parent: &btf_rs::Struct,
    parent_name: &str,
    name: &str,
) -> Result<u64, BtfError> {
    member_offset(btf, parent, name).ok_or_else(|| missing(&format!("{parent_name}.{name}")))
}

fn missing(what: &str) -> BtfError {
    BtfError::Missing {
        what: what.to_string(),
    }
}

fn find_struct(btf: &Btf, name: &str) -> Result<btf_rs::Struct, BtfError> {
    btf.resolve_types_by_name(name)
        .map_err(|_| missing(&format!("struct {name}")))?
        .into_iter()
        .find_map(|ty| match ty {
            Type::Struct(found) if !found.members.is_empty() => Some(found),
            _ => None,
        })
        .ok_or_else(|| missing(&format!("struct {name}")))
}

/// Byte offset of member `name`, looking inside anonymous structs and unions (the kernel
/// wraps most of `mm_struct` in one).
fn member_offset(btf: &Btf, parent: &btf_rs::Struct, name: &str) -> Option<u64> {
    parent.members.iter().find_map(|member| {
        let here = u64::from(member.bit_offset() / 8);
        match btf.resolve_name(member) {
            Ok(member_name) if member_name == name => Some(here),
            Ok(member_name) if member_name.is_empty() => {
                match btf.resolve_chained_type(member).ok()? {
                    Type::Struct(inner) | Type::Union(inner) => {
                        member_offset(btf, &inner, name).map(|offset| here + offset)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_offsets_from_the_running_kernel() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("skipped: no kernel BTF at {}", path.display());
            return;
        }
        let offsets = read(path).expect("offsets");
        // Counters are s64, 8-aligned, in member order, one percpu_counter apart.
        assert_eq!(offsets.mm_file_count % 8, 0);
        assert!(offsets.mm_file_count < offsets.mm_anon_count);
        assert_eq!(
            offsets.mm_shmem_count - offsets.mm_anon_count,
            2 * (offsets.mm_anon_count - offsets.mm_file_count)
        );
        assert!(offsets.task_mm > 0);
        assert_eq!(
            offsets.mm_swap_count - offsets.mm_anon_count,
            offsets.mm_anon_count - offsets.mm_file_count
        );
        let task = offsets.task;
        // pid and tgid are adjacent ints; comm is a 16-byte array further on.
        assert_eq!(task.tgid, task.pid + 4);
        assert!(task.comm > task.real_parent && task.real_parent > 0);
        assert_eq!(task.start_boottime % 8, 0);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let error = read(Path::new("/nonexistent/vmlinux")).expect_err("missing");
        assert!(
            error.to_string().contains("/nonexistent/vmlinux"),
            "{error}"
        );
    }
}
