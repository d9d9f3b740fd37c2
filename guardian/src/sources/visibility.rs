//! Whether /proc shows the guardian every process: a /proc mounted with `hidepid=1|2`
//! (`noaccess`/`invisible`, `ptraceable`) or `subset=pid` hides other users' processes
//! from a reader outside the mount's `gid=` group (root's group 0 when none is given)
//! and without CAP_SYS_PTRACE, so no rule could see or kill them. Said once at start,
//! with what to do, instead of a quietly smaller process table.

use std::path::{Path, PathBuf};

/// CAP_SYS_PTRACE's bit in a capability mask (`linux/capability.h`).
const CAP_SYS_PTRACE: u64 = 1 << 19;

/// A /proc mount that hides processes from the guardian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenProcesses {
    /// Where /proc is mounted.
    pub mount_point: PathBuf,
    /// The hiding option as mounted (`hidepid=2`, `hidepid=invisible`, `subset=pid`).
    pub option: String,
    /// The group that sees every process anyway (`gid=`, 0 when not given).
    pub gid: u32,
}

impl std::fmt::Display for HiddenProcesses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is mounted with {} (gid={}, a group the guardian is not in) and the guardian \
             lacks CAP_SYS_PTRACE: processes of other users are invisible to it, so no rule \
             can see or kill them; remount {} without hidepid, run the guardian in group {}, \
             or grant it CAP_SYS_PTRACE",
            self.mount_point.display(),
            self.option,
            self.gid,
            self.mount_point.display(),
            self.gid
        )
    }
}

/// Reads this process's mounts and capabilities; `Some` when `proc_root` hides processes
/// from it. Unreadable mount or capability files give `None` (nothing to say for sure).
pub fn hidden_processes(proc_root: &Path) -> Option<HiddenProcesses> {
    let myself = procfs::process::Process::myself().ok()?;
    let capeff = own_capeff()?;
    let mut groups: Vec<u32> = nix::unistd::getgroups()
        .ok()?
        .into_iter()
        .map(nix::unistd::Gid::as_raw)
        .collect();
    groups.push(nix::unistd::getegid().as_raw());
    let mounts = myself.mountinfo().ok()?;
    let options = mounts
        .into_iter()
        // The last mount on a point is the one path lookups see.
        .rfind(|mount| mount.mount_point == proc_root && mount.fs_type == "proc")?
        .super_options;
    judge(proc_root, &options, capeff, &groups)
}

/// What the guardian cannot vet without CAP_SYS_PTRACE, said once at start: the kernel
/// refuses `/proc/PID/exe` of a process whose credentials exceed the reader's (a
/// runtime's shim, sshd), so containers stay unconfirmed and protected names unproven.
pub const EXECUTABLES_CLOSED: &str = "the guardian lacks CAP_SYS_PTRACE: it cannot read \
    /proc/PID/exe of processes with other credentials (container runtime shims, sshd), so \
    containers cannot be confirmed (they are spared, and so is a host process in a \
    container-shaped cgroup under a process that took a shim's name) and built-in \
    protected names are not recognised; grant it CAP_SYS_PTRACE (the packaged unit does)";

/// Whether this process lacks CAP_SYS_PTRACE (`None` when its status is unreadable).
pub fn lacks_ptrace() -> Option<bool> {
    Some(own_capeff()? & CAP_SYS_PTRACE == 0)
}

/// This process's effective capabilities (`CapEff` of /proc/self/status).
fn own_capeff() -> Option<u64> {
    Some(
        procfs::process::Process::myself()
            .ok()?
            .status()
            .ok()?
            .capeff,
    )
}

/// The decision on one mount's super options and an effective capability mask.
fn judge(
    proc_root: &Path,
    options: &std::collections::HashMap<String, Option<String>>,
    capeff: u64,
    groups: &[u32],
) -> Option<HiddenProcesses> {
    if capeff & CAP_SYS_PTRACE != 0 {
        return None;
    }
    let gid = match options.get("gid") {
        Some(Some(gid)) => gid.parse().ok()?,
        _ => 0,
    };
    // The kernel lets the mount's group see everything (`has_pid_permissions`).
    if groups.contains(&gid) {
        return None;
    }
    let option = match (options.get("hidepid"), options.get("subset")) {
        (Some(Some(level)), _) if !matches!(level.as_str(), "0" | "off") => {
            format!("hidepid={level}")
        }
        (_, Some(Some(subset))) if subset == "pid" => "subset=pid".to_string(),
        _ => return None,
    };
    Some(HiddenProcesses {
        mount_point: proc_root.to_path_buf(),
        option,
        gid,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn options(pairs: &[(&str, &str)]) -> HashMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_string(), Some((*value).to_string())))
            .collect()
    }

    #[test]
    fn hidepid_without_ptrace_hides() {
        let proc = Path::new("/proc");
        for level in ["1", "2", "invisible", "noaccess", "ptraceable"] {
            let hidden = judge(proc, &options(&[("hidepid", level)]), 0, &[65534]);
            assert_eq!(
                hidden.map(|hidden| hidden.option),
                Some(format!("hidepid={level}"))
            );
        }
        let hidden =
            judge(proc, &options(&[("subset", "pid")]), 0, &[65534]).expect("subset hides");
        assert!(
            hidden
                .to_string()
                .contains("/proc is mounted with subset=pid (gid=0")
        );
        // Root's group is not the mount's group: hidden (a hardened host's gid=proc).
        let hidden = judge(
            proc,
            &options(&[("hidepid", "invisible"), ("gid", "27")]),
            0,
            &[0],
        )
        .expect("gid=27 hides from group 0");
        assert_eq!(hidden.gid, 27);
    }

    #[test]
    fn no_hiding_or_ptrace_says_nothing() {
        let proc = Path::new("/proc");
        let others = &[65534];
        assert_eq!(judge(proc, &options(&[]), 0, others), None);
        assert_eq!(judge(proc, &options(&[("hidepid", "0")]), 0, others), None);
        assert_eq!(
            judge(proc, &options(&[("hidepid", "off")]), 0, others),
            None
        );
        let hiding = options(&[("hidepid", "2")]);
        assert_eq!(judge(proc, &hiding, CAP_SYS_PTRACE, others), None);
        // Group 0 without gid=: root's group sees everything.
        assert_eq!(judge(proc, &hiding, 0, &[0]), None);
        let proc_group = options(&[("hidepid", "2"), ("gid", "27")]);
        assert_eq!(judge(proc, &proc_group, 0, &[100, 27]), None);
    }

    #[test]
    fn this_process_reads_its_own_mounts() {
        // Whatever this host mounts, reading must not fail in a way that panics.
        let _ = hidden_processes(Path::new("/proc"));
    }
}
