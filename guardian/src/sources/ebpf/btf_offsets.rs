//! Kernel struct offsets the programs need, read from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`) so one object works across kernel builds.

use std::path::{Path, PathBuf};

use btf_rs::{Btf, Type};
use guardian_ebpf::KernelLayout;

/// Why the offsets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("kernel BTF has no {what}")]
    Missing { what: String },
}

/// Reads the offsets from the BTF file at `path`. Who the guardian is (its PID
/// namespace, its pid) and the page size are left for the caller to fill in.
pub fn read(path: &Path) -> Result<KernelLayout, BtfError> {
    let btf = Btf::from_file(path).map_err(|error| BtfError::Read {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    let structs = Structs { btf: &btf };
    let mm = structs.find("mm_struct")?;
    let percpu_counter = structs.find("percpu_counter")?;
    let task = structs.find("task_struct")?;
    let pid = structs.find("pid")?;
    let upid = structs.find("upid")?;
    let pid_namespace = structs.find("pid_namespace")?;
    let ns_common = structs.find("ns_common")?;

    let rss_stat = structs.member(&mm, "mm_struct", "rss_stat")?;
    let stride = percpu_counter.size() as u64;
    let count = structs.member(&percpu_counter, "percpu_counter", "count")?;
    let counter = |member: u32| rss_stat + u64::from(member) * stride + count;
    let task_member = |name: &str| structs.member(&task, "task_struct", name);
    Ok(KernelLayout {
        mm_count: [0, 1, 2, 3].map(counter),
        mm_total_vm: structs.member(&mm, "mm_struct", "total_vm")?,
        task_mm: task_member("mm")?,
        task_pid: task_member("pid")?,
        task_tgid: task_member("tgid")?,
        task_flags: task_member("flags")?,
        task_start_boottime: task_member("start_boottime")?,
        task_real_parent: task_member("real_parent")?,
        task_group_leader: task_member("group_leader")?,
        task_thread_pid: task_member("thread_pid")?,
        task_cred: task_member("cred")?,
        task_signal: task_member("signal")?,
        task_comm: task_member("comm")?,
        cred_uid: structs.member(&structs.find("cred")?, "cred", "uid")?,
        signal_oom_score_adj: structs.member(
            &structs.find("signal_struct")?,
            "signal_struct",
            "oom_score_adj",
        )?,
        pid_level: structs.member(&pid, "pid", "level")?,
        pid_numbers: structs.member(&pid, "pid", "numbers")?,
        upid_size: upid.size() as u64,
        upid_nr: structs.member(&upid, "upid", "nr")?,
        upid_ns: structs.member(&upid, "upid", "ns")?,
        pid_ns_inum: structs.member(&pid_namespace, "pid_namespace", "ns")?
            + structs.member(&ns_common, "ns_common", "inum")?,
        own_pid_ns_inum: 0,
        self_tgid: 0,
        page_kb: 0,
    })
}

fn missing(what: &str) -> BtfError {
    BtfError::Missing {
        what: what.to_string(),
    }
}

/// Struct lookups in one BTF.
struct Structs<'a> {
    btf: &'a Btf,
}

impl Structs<'_> {
    fn find(&self, name: &str) -> Result<btf_rs::Struct, BtfError> {
        self.btf
            .resolve_types_by_name(name)
            .map_err(|_| missing(&format!("struct {name}")))?
            .into_iter()
            .find_map(|ty| match ty {
                Type::Struct(found) if !found.members.is_empty() => Some(found),
                _ => None,
            })
            .ok_or_else(|| missing(&format!("struct {name}")))
    }

    /// Byte offset of member `name` of `parent` (called `parent_name` in errors).
    fn member(
        &self,
        parent: &btf_rs::Struct,
        parent_name: &str,
        name: &str,
    ) -> Result<u64, BtfError> {
        member_offset(self.btf, parent, name)
            .ok_or_else(|| missing(&format!("{parent_name}.{name}")))
    }
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
        let layout = read(path).expect("offsets");
        // Counters are s64, 8-aligned, in member order, one percpu_counter apart.
        let [file, anon, swap, shmem] = layout.mm_count;
        assert_eq!(file % 8, 0);
        assert!(file < anon);
        assert_eq!(swap - anon, anon - file);
        assert_eq!(shmem - swap, anon - file);
        assert!(layout.task_mm > 0);
        // pid and tgid are adjacent ints; comm is a 16-byte array further on.
        assert_eq!(layout.task_tgid, layout.task_pid + 4);
        assert!(layout.task_comm > layout.task_real_parent && layout.task_real_parent > 0);
        assert_eq!(layout.task_start_boottime % 8, 0);
        // struct upid { int nr; struct pid_namespace *ns; }
        assert_eq!(
            (layout.upid_nr, layout.upid_ns, layout.upid_size),
            (0, 8, 16)
        );
        assert!(layout.pid_numbers > layout.pid_level);
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
