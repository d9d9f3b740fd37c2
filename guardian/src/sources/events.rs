//! Applying kernel events to the model: RSS steps update one counter of a known
//! process (a new pid is read from /proc in full), exits remove it, OOM victims are
//! recorded with their cgroup and scope.

use guardian_ebpf::{MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES};

use crate::{
    model::{Limit, Model, OomEvent, OomOrigin, OomScope, ProcessKey},
    sources::{KernelEvent, cgroup::CgroupReader, procfs::ProcReader},
};

/// Kernel events queued between the ring buffer reader and the pipeline.
pub const CHANNEL_CAPACITY: usize = 65_536;
/// Events applied per pipeline wake-up.
pub const BATCH: usize = 4096;

/// Applies one event; returns the pid whose memory changed, if any.
pub fn apply(
    model: &mut Model,
    proc: &ProcReader,
    cgroups: &CgroupReader,
    event: KernelEvent,
) -> Option<i32> {
    match event {
        KernelEvent::Rss { pid, member, pages } => {
            let bytes = u64::try_from(pages).unwrap_or(0) * proc.page_size();
            match model.process_by_pid_mut(pid) {
                Some(process) => {
                    let memory = &mut process.memory;
                    match member {
                        MM_FILEPAGES => memory.file = bytes,
                        MM_ANONPAGES => memory.anon = bytes,
                        MM_SHMEMPAGES => memory.shmem = bytes,
                        _ => return None,
                    }
                    memory.rss = memory.anon + memory.file + memory.shmem;
                }
                None => discover(model, proc, pid)?,
            }
            Some(pid)
        }
        KernelEvent::Fork {
            pid,
            parent,
            start_ns,
        } => {
            let key = ProcessKey {
                pid,
                start_ticks: proc.ticks_from_ns(start_ns),
            };
            match model.process_by_pid(parent) {
                // Nothing to read: at fork the child is its parent's copy (command line,
                // cgroups, uid, memory shared copy-on-write) under its own identity.
                Some(parent_process) => {
                    let mut child = parent_process.clone();
                    child.key = key;
                    child.ppid = parent;
                    child.started_secs = key.start_ticks as f64 / proc.clock_ticks() as f64;
                    model.upsert_process(child);
                }
                None => discover(model, proc, pid)?,
            }
            Some(pid)
        }
        // A new program: command line, comm and memory (a new mm) are all new.
        KernelEvent::Exec { pid } => {
            discover(model, proc, pid)?;
            Some(pid)
        }
        KernelEvent::Exit { pid } => {
            model.remove_pid(pid);
            None
        }
        KernelEvent::Oom(victim) => {
            let event = oom_event(model, proc, cgroups, &victim);
            tracing::warn!(
                pid = event.pid,
                comm = event.comm.as_deref().unwrap_or(""),
                cgroup = event.cgroup.as_deref().unwrap_or(""),
                scope = event.scope.as_str(),
                anon_rss_bytes = event.anon_rss_bytes,
                "OOM kill"
            );
            model.record_oom(event);
            None
        }
    }
}

/// Reads a process the model has not seen (the reader returns nothing for a thread).
fn discover(model: &mut Model, proc: &ProcReader, pid: i32) -> Option<()> {
    match proc.read_process(pid) {
        Ok(Some(process)) => {
            model.upsert_process(process);
            Some(())
        }
        Ok(_) => None,
        Err(error) => {
            tracing::debug!(pid, %error, "cannot read a new process");
            None
        }
    }
}

/// Builds the model's OOM record from the tracepoint's victim, with its memory cgroup
/// (from the model, else /proc while it still exists) and scope: a cgroup OOM when the
/// victim's cgroup or an ancestor has a limit below the host's memory and the host still
/// had memory available, else a host-wide OOM. When the kernel passed only the pid
/// (before 6.8), the command and uid are the model's and the counters unknown.
fn oom_event(
    model: &Model,
    proc: &ProcReader,
    cgroups: &CgroupReader,
    victim: &guardian_ebpf::OomEvent,
) -> OomEvent {
    let pid = victim.header.tgid as i32;
    let detailed = victim.detailed != 0;
    let known = (pid > 0).then(|| model.process_by_pid(pid)).flatten();
    // Without details, the victim's current command (after its last exec) is worth a
    // read while it is still there.
    let fresh = (pid > 0 && (known.is_none() || !detailed))
        .then(|| proc.read_process(pid).ok().flatten())
        .flatten();
    let process = fresh.as_ref().or(known);
    let cgroup = process.and_then(|process| process.memory_cgroup.as_deref().map(str::to_owned));
    let scope = match &cgroup {
        Some(path) if limited(model, cgroups, path) && host_has_room(model) => OomScope::Cgroup,
        _ => OomScope::Host,
    };
    let counter = |kb: u64| detailed.then_some(kb * 1024);
    let now = time::OffsetDateTime::now_utc();
    OomEvent {
        time: now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        unix_time: now.unix_timestamp_nanos() as f64 / 1e9,
        // 0: a victim outside the guardian's PID namespace.
        pid: (pid > 0).then_some(pid),
        comm: if detailed {
            Some(String::from_utf8_lossy(guardian_ebpf::trim_comm(&victim.comm)).into_owned())
        } else {
            process.map(|process| process.comm.clone())
        },
        uid: if detailed {
            Some(victim.uid)
        } else {
            process.map(|process| process.uid)
        },
        cgroup,
        scope,
        anon_rss_bytes: counter(victim.anon_rss_kb),
        file_rss_bytes: counter(victim.file_rss_kb),
        shmem_rss_bytes: counter(victim.shmem_rss_kb),
        oom_score_adj: detailed.then_some(victim.oom_score_adj),
        origin: OomOrigin::Tracepoint,
        kernel_boot_ns: Some(victim.header.ktime_ns),
    }
}

/// True when `path` or one of its ancestors has a memory limit below the host's total
/// (read afresh when the model has not seen the cgroup yet).
fn limited(model: &Model, cgroups: &CgroupReader, path: &str) -> bool {
    let total = model.host.total;
    let mut current = path;
    loop {
        let limit = match model.cgroup(current) {
            Some(cgroup) => Some(cgroup.stats.limit),
            None => cgroups
                .read(current)
                .ok()
                .flatten()
                .map(|stats| stats.limit),
        };
        if let Some(Limit::Bytes(limit)) = limit
            && (total == 0 || limit < total)
        {
            return true;
        }
        match current.rfind('/') {
            Some(0) | None => return false,
            Some(slash) => current = &current[..slash],
        }
    }
}

/// More than 5 % of the host's memory still available: the OOM was not host-wide.
fn host_has_room(model: &Model) -> bool {
    model.host.total == 0 || model.host.available * 20 > model.host.total
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::test_support::{Sleeper, wait_for_comm};

    #[test]
    fn a_fork_copies_the_parent_without_reading_proc_and_an_exec_reads_it() {
        let proc = ProcReader::new("/proc").expect("proc");
        let Ok(cgroups) = CgroupReader::detect(Path::new("/sys/fs/cgroup")) else {
            eprintln!("skipped: no cgroup hierarchy here");
            return;
        };
        let me = std::process::id() as i32;
        let parent = proc.read_process(me).expect("read").expect("alive");
        let mut model = Model::default();
        model.upsert_process(parent.clone());

        let child = Sleeper::spawn();
        let pid = child.pid();
        // The child's identity as the kernel would report it.
        wait_for_comm(pid, "sleep");
        let start_ticks = proc
            .read_process(pid)
            .expect("read")
            .expect("alive")
            .key
            .start_ticks;
        let start_ns = start_ticks * (1_000_000_000 / proc.clock_ticks());
        let key = ProcessKey { pid, start_ticks };

        let fork = KernelEvent::Fork {
            pid,
            parent: me,
            start_ns,
        };
        assert_eq!(apply(&mut model, &proc, &cgroups, fork), Some(pid));
        let copy = model.process(&key).expect("child in the model");
        assert_eq!(copy.cmdline, parent.cmdline, "a copy of its parent at fork");
        assert_eq!(copy.ppid, me);
        assert_eq!(copy.class, parent.class);

        let exec = KernelEvent::Exec { pid };
        assert_eq!(apply(&mut model, &proc, &cgroups, exec), Some(pid));
        let execed = model.process(&key).expect("child in the model");
        assert_eq!(execed.comm, "sleep");
        assert_eq!(execed.cmdline.to_vec(), ["sleep", "1000"]);
    }
}
