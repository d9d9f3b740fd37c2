//! Kernel struct offsets the programs need, and the tracepoint signatures that differ
//! between kernel versions, read from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`) so one object works across kernel builds and versions.

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

/// What the programs need to know about the running kernel.
#[derive(Debug)]
pub struct KernelShape {
    /// Struct offsets. Who the guardian is (its PID namespace, its pid) and the page size
    /// are left for the caller to fill in.
    pub layout: KernelLayout,
    /// Whether `oom:mark_victim` passes the victim's task (`TP_PROTO(struct task_struct
    /// *task, uid_t uid)`, from 6.8); before that it passes only its pid.
    pub victim_task: bool,
}

/// Reads the kernel's shape from the BTF file at `path`.
pub fn read(path: &Path) -> Result<KernelShape, BtfError> {
    let btf = Btf::from_file(path).map_err(|error| BtfError::Read {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    let structs = Structs { btf: &btf };
    let mm = structs.find("mm_struct")?;
    let task = structs.find("task_struct")?;
    let pid = structs.find("pid")?;
    let upid = structs.find("upid")?;
    let pid_namespace = structs.find("pid_namespace")?;
    let ns_common = structs.find("ns_common")?;

    let signal = structs.find("signal_struct")?;
    let task_member = |name: &str| structs.member(&task, "task_struct", name);
    let (mm_count, mm_count_probe) = structs.mm_counters(&mm)?;
    let layout = KernelLayout {
        mm_count,
        mm_count_probe: u64::from(mm_count_probe),
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
        signal_oom_score_adj: structs.member(&signal, "signal_struct", "oom_score_adj")?,
        // `atomic_t live`: its `int counter` is its only member.
        signal_live: structs.member(&signal, "signal_struct", "live")?,
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
    };
    Ok(KernelShape {
        layout,
        victim_task: tracepoint_args(&btf, "mark_victim").is_none_or(|args| args >= 2),
    })
}

/// The number of arguments of tracepoint `name` (its `btf_trace_NAME` typedef is a
/// pointer to a function taking a context pointer and then the `TP_PROTO` arguments);
/// `None` when BTF does not say.
fn tracepoint_args(btf: &Btf, name: &str) -> Option<usize> {
    let types = btf
        .resolve_types_by_name(&format!("btf_trace_{name}"))
        .ok()?;
    let Some(Type::Typedef(typedef)) = types.into_iter().next() else {
        return None;
    };
    let Type::Ptr(pointer) = btf.resolve_chained_type(&typedef).ok()? else {
        return None;
    };
    match btf.resolve_chained_type(&pointer).ok()? {
        Type::FuncProto(proto) => proto.parameters.len().checked_sub(1),
        _ => None,
    }
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
        self.typed_member(parent, parent_name, name)
            .map(|(offset, _)| offset)
    }

    /// Byte offset and type (typedefs and qualifiers removed) of member `name`.
    fn typed_member(
        &self,
        parent: &btf_rs::Struct,
        parent_name: &str,
        name: &str,
    ) -> Result<(u64, Type), BtfError> {
        member_offset(self.btf, parent, name)
            .and_then(|(offset, member)| {
                let ty = self.btf.resolve_chained_type(&member).ok()?;
                Some((offset, self.strip(ty)?))
            })
            .ok_or_else(|| missing(&format!("{parent_name}.{name}")))
    }

    /// `ty` without typedefs, `const` and `volatile`.
    fn strip(&self, mut ty: Type) -> Option<Type> {
        loop {
            ty = match ty {
                Type::Typedef(inner) => self.btf.resolve_chained_type(&inner).ok()?,
                Type::Const(inner) | Type::Volatile(inner) => {
                    self.btf.resolve_chained_type(&inner).ok()?
                }
                other => return Some(other),
            };
        }
    }

    /// The element type of `array` (called `what` in errors), as a struct.
    fn element(&self, array: &btf_rs::Array, what: &str) -> Result<btf_rs::Struct, BtfError> {
        match self
            .btf
            .resolve_chained_type(array)
            .ok()
            .and_then(|ty| self.strip(ty))
        {
            Some(Type::Struct(element)) => Ok(element),
            _ => Err(missing(&format!("struct element of {what}"))),
        }
    }

    /// Offsets of the `mm_struct` RSS counters (each an s64), indexed by `MM_*`, and
    /// whether they must be probe-read. From 6.2 `rss_stat` is an array of `struct
    /// percpu_counter` (the counter is its `count`); before, a `struct mm_rss_stat`
    /// holding `atomic_long_t count[NR_MM_COUNTERS]`, which those kernels' verifier
    /// cannot walk into.
    fn mm_counters(&self, mm: &btf_rs::Struct) -> Result<([u64; 4], bool), BtfError> {
        let (rss_stat, stat_type) = self.typed_member(mm, "mm_struct", "rss_stat")?;
        let (base, stride, within, probe) = match stat_type {
            Type::Array(array) => {
                let counter = self.element(&array, "mm_struct.rss_stat")?;
                let count = self.member(&counter, "percpu_counter", "count")?;
                (rss_stat, counter.size() as u64, count, false)
            }
            Type::Struct(stat) => {
                let (count, count_type) = self.typed_member(&stat, "mm_rss_stat", "count")?;
                let Type::Array(array) = count_type else {
                    return Err(missing("array mm_rss_stat.count"));
                };
                let atomic = self.element(&array, "mm_rss_stat.count")?;
                let counter = self.member(&atomic, "atomic_long_t", "counter")?;
                (rss_stat + count, atomic.size() as u64, counter, true)
            }
            _ => return Err(missing("array or struct mm_struct.rss_stat")),
        };
        let offsets = [0u64, 1, 2, 3].map(|member| base + member * stride + within);
        Ok((offsets, probe))
    }
}

/// Byte offset of member `name` and the member, looking inside anonymous structs and
/// unions (the kernel wraps most of `mm_struct` in one).
fn member_offset(btf: &Btf, parent: &btf_rs::Struct, name: &str) -> Option<(u64, btf_rs::Member)> {
    parent.members.iter().find_map(|member| {
        let here = u64::from(member.bit_offset() / 8);
        match btf.resolve_name(member) {
            Ok(member_name) if member_name == name => Some((here, member.clone())),
            Ok(member_name) if member_name.is_empty() => {
                match btf.resolve_chained_type(member).ok()? {
                    Type::Struct(inner) | Type::Union(inner) => member_offset(btf, &inner, name)
                        .map(|(offset, found)| (here + offset, found)),
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
        let shape = read(path).expect("offsets");
        // This kernel (6.18) passes the victim's task to mark_victim.
        assert!(shape.victim_task);
        let layout = shape.layout;
        assert!(layout.signal_live > 0);
        // 6.18's counters are percpu_counters, loaded directly.
        assert_eq!(layout.mm_count_probe, 0);
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
