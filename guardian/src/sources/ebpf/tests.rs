//! Loads the real programs into the running kernel and watches them report.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use tokio::sync::mpsc;

use super::*;
use crate::test_support::{Sleeper, wait_for_comm};

/// A memory cgroup the test made: removed on drop, also when an assertion fails (the
/// test's only process in it is killed and reaped before that).
struct TestCgroup(std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn privileged() -> bool {
    let ok = nix::unistd::geteuid().is_root() && Path::new("/sys/kernel/btf/vmlinux").exists();
    if !ok {
        if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") {
            panic!("CI=true but eBPF tests need root and kernel BTF");
        }
        eprintln!("skipped: eBPF tests need root and kernel BTF");
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_rss_growth_of_a_process_and_its_exit() {
    if !privileged() {
        return;
    }
    // Our own events are wanted here: no self filter.
    let mut source = EbpfSource::load(0, guardian_ebpf::EVENTS_BYTES).expect("load and attach");
    let (tx, mut rx) = mpsc::channel(65_536);
    let dropped = Arc::new(AtomicU64::new(0));
    source.spawn_reader(tx, dropped).expect("reader");

    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "x=$(head -c 48000000 /dev/zero | tr '\\0' a); sleep 2",
        ])
        .spawn()
        .expect("spawn sh");
    let pid = child.id() as i32;
    let mut biggest_anon = 0i64;
    let mut exited = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(exited && biggest_anon > 0) && tokio::time::Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await else {
            continue;
        };
        match event {
            KernelEvent::Rss {
                pid: p,
                member: guardian_ebpf::MM_ANONPAGES,
                pages,
            } if p == pid => {
                biggest_anon = biggest_anon.max(pages);
            }
            KernelEvent::Exit { pid: p } if p == pid => exited = true,
            _ => {}
        }
    }
    let _ = child.wait();
    // The shell held ~46 MiB of anonymous memory; steps are reported at least every MiB.
    assert!(
        biggest_anon * 4096 > 40 << 20,
        "largest anon RSS reported: {biggest_anon} pages"
    );
    assert!(exited, "no exit event for pid {pid}");
    assert!(source.kernel_dropped() < 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_an_oom_victim_in_a_memory_limited_cgroup() {
    if !privileged() {
        return;
    }
    let root = if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        Path::new("/sys/fs/cgroup/memory").to_path_buf()
    } else {
        Path::new("/sys/fs/cgroup").to_path_buf()
    };
    let v1 = root.ends_with("memory");
    let cgroup = TestCgroup(root.join(format!("guardian-unit-oom-{}", std::process::id())));
    let dir = &cgroup.0;
    std::fs::create_dir_all(dir).expect("create test cgroup");
    let limit_file = if v1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    std::fs::write(dir.join(limit_file), "33554432").expect("limit");
    if !v1 {
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
    }

    let mut source = EbpfSource::load(0, guardian_ebpf::EVENTS_BYTES).expect("load and attach");
    let (tx, mut rx) = mpsc::channel(65_536);
    source
        .spawn_reader(tx, Arc::new(AtomicU64::new(0)))
        .expect("reader");

    let procs = dir.join("cgroup.procs");
    let mut command = std::process::Command::new("sh");
    command.args(["-c", "exec tail /dev/zero"]);
    // SAFETY: only a write(2) to a cgroup file between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        command.pre_exec(move || std::fs::write(&procs, b"0"));
    }
    let mut child = command.spawn().expect("spawn the hog");
    let pid = child.id();
    let mut victim = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while victim.is_none() && tokio::time::Instant::now() < deadline {
        if let Ok(Some(KernelEvent::Oom(event))) =
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
            && event.header.tgid == pid
        {
            victim = Some(event);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let victim = victim.expect("no OOM event for the hog");
    assert_eq!(&victim.comm[..4], b"tail");
    assert!(
        victim.anon_rss_kb > 16 * 1024,
        "anon RSS {} kB",
        victim.anon_rss_kb
    );
}

#[test]
fn task_snapshot_matches_proc_for_this_process_and_a_child() {
    if !privileged() {
        return;
    }
    let mut source = EbpfSource::load(0, guardian_ebpf::EVENTS_BYTES).expect("load and attach");
    let child = Sleeper::spawn();
    let child_pid = child.pid();
    let proc = crate::sources::procfs::ProcReader::new("/proc").expect("proc");
    // Compare a settled child: exec'd, its RSS the same in two reads.
    wait_for_comm(child_pid, "sleep");
    let mut last = None;
    for _ in 0..100 {
        let now = proc
            .read_process(child_pid)
            .expect("read")
            .map(|process| process.memory.rss);
        if now.is_some() && now == last {
            break;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut sightings = Vec::new();
    source
        .snapshot_tasks(proc.clock_ticks(), 4096, &mut |seen| sightings.push(seen))
        .expect("snapshot");
    let me = std::process::id() as i32;
    for pid in [me, child_pid] {
        let seen = sightings
            .iter()
            .find(|sighting| sighting.key.pid == pid)
            .unwrap_or_else(|| panic!("pid {pid} not in the snapshot of {}", sightings.len()));
        let expected = proc.read_process(pid).expect("read").expect("alive");
        assert_eq!(seen.key, expected.key, "identity of {pid}");
        assert_eq!(seen.comm(), expected.comm);
        assert_eq!(seen.ppid, expected.ppid);
        assert_eq!(seen.uid, expected.uid);
        assert!(!seen.kernel_thread);
        let (a, b) = (seen.memory.rss, expected.memory.rss);
        assert!(
            a.abs_diff(b) <= (b / 50).max(1 << 20),
            "rss {a} vs /proc {b}"
        );
    }
    // Threads are not processes; kernel threads are marked.
    assert!(sightings.iter().all(|s| s.key.pid > 0));
    assert!(
        sightings
            .iter()
            .any(|s| s.kernel_thread && s.comm() == "kthreadd")
    );
    let pids: std::collections::HashSet<i32> = sightings.iter().map(|s| s.key.pid).collect();
    assert_eq!(pids.len(), sightings.len(), "one record per process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_below_the_report_floor_stay_in_the_kernel() {
    if !privileged() {
        return;
    }
    let mut source = EbpfSource::load(0, guardian_ebpf::EVENTS_BYTES).expect("load and attach");
    // Far above what the shell below reaches: none of its steps is worth a record.
    source
        .set_report_floor(Some(1 << 30), 4096)
        .expect("set floor");
    let (tx, mut rx) = mpsc::channel(65_536);
    source
        .spawn_reader(tx, Arc::new(AtomicU64::new(0)))
        .expect("reader");
    let mut child = std::process::Command::new("sh")
        .args(["-c", "x=$(head -c 48000000 /dev/zero | tr '\\0' a)"])
        .spawn()
        .expect("spawn sh");
    let pid = child.id() as i32;
    let (mut steps, mut exited) = (0, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !exited && tokio::time::Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await else {
            continue;
        };
        match event {
            KernelEvent::Rss { pid: p, .. } if p == pid => steps += 1,
            KernelEvent::Exit { pid: p } if p == pid => exited = true,
            _ => {}
        }
    }
    let _ = child.wait();
    assert!(exited, "no exit event for pid {pid}");
    assert_eq!(steps, 0, "RSS steps reported below the floor");
}

/// Set in the copy of the test binary that runs inside a new PID namespace.
const IN_PID_NS: &str = "GUARDIAN_TEST_IN_PID_NS";

/// Run as a DaemonSet without hostPID (a PID namespace of its own, /proc mounted for
/// it), the guardian sees its namespace's processes under their pids there, and no
/// other: the programs translate host pids.
#[test]
fn pids_are_reported_as_the_guardians_pid_namespace_numbers_them() {
    if std::env::var_os(IN_PID_NS).is_some() {
        snapshot_inside_a_pid_namespace();
        return;
    }
    if !privileged() {
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let output = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--"])
        .arg(exe)
        .args([
            "--exact",
            "sources::ebpf::tests::pids_are_reported_as_the_guardians_pid_namespace_numbers_them",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(IN_PID_NS, "1")
        .output()
        .expect("run unshare (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "inside the PID namespace:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}

fn snapshot_inside_a_pid_namespace() {
    let me = std::process::id() as i32;
    assert!(me < 100, "not in a fresh PID namespace: pid {me}");
    let mut source =
        EbpfSource::load(me as u32, guardian_ebpf::EVENTS_BYTES).expect("load and attach");
    let proc = crate::sources::procfs::ProcReader::new("/proc").expect("proc");
    let mut sightings = Vec::new();
    source
        .snapshot_tasks(proc.clock_ticks(), 4096, &mut |seen| sightings.push(seen))
        .expect("snapshot");
    let visible: std::collections::HashSet<i32> = proc.pids().expect("pids").into_iter().collect();
    let seen: std::collections::HashSet<i32> = sightings.iter().map(|s| s.key.pid).collect();
    assert_eq!(seen, visible, "snapshot pids vs this namespace's /proc");
    let mine = sightings
        .iter()
        .find(|s| s.key.pid == me)
        .expect("own process in the snapshot");
    let expected = proc.read_process(me).expect("read").expect("alive");
    assert_eq!(mine.key, expected.key);
    assert_eq!(
        mine.ppid, expected.ppid,
        "parent as this namespace numbers it"
    );
}
