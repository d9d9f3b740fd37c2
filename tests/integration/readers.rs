//! The /proc and cgroup readers against this host's real kernel: a memhog's RSS, a test
//! cgroup's limit and a real OOM kill in it, and scans that survive processes exiting
//! and cgroups vanishing while they run.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use guardian::{
    classify::Classification,
    model::{Limit, Model, OomScope},
    sources::{
        cgroup::{CgroupReader, OomWatch},
        procfs::ProcReader,
    },
};

use crate::common::{Needs, TestCgroup, marker, require, spawn_hog, spawn_hog_with, wait_for};

const MIB: u64 = 1 << 20;

fn proc_reader() -> ProcReader {
    ProcReader::new("/proc").expect("open /proc")
}

fn cgroup_reader() -> CgroupReader {
    CgroupReader::detect(Path::new("/sys/fs/cgroup")).expect("detect cgroup layout")
}

/// VmRSS of `pid` as the process's own status file shows it.
fn own_vm_rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

fn assert_close(read: u64, own: u64, what: &str) {
    let tolerance = (own / 50).max(MIB);
    assert!(
        read.abs_diff(own) <= tolerance,
        "{what}: read {read} bytes, the process's own VmRSS is {own} (tolerance {tolerance})"
    );
}

#[test]
fn memhog_rss_reads_back_within_tolerance() {
    let marker = marker("readers-rss");
    let hog = spawn_hog(&marker, &["--rss", "96"]);
    let reader = proc_reader();

    let process = reader
        .read_process(hog.pid())
        .expect("read_process")
        .expect("memhog is running");
    assert_close(process.memory.rss, own_vm_rss(hog.pid()), "read_process");
    assert!(process.memory.rss >= 96 * MIB, "{:?}", process.memory);
    assert!(process.memory.anon >= 96 * MIB, "{:?}", process.memory);
    assert!(process.cmdline.args().any(|arg| arg == marker));
    assert_eq!(process.key.pid, hog.pid());
    assert!(!process.kernel_thread);

    let memory = reader
        .read_memory(process.key)
        .expect("read_memory")
        .expect("same process");
    assert_close(memory.rss, own_vm_rss(hog.pid()), "read_memory");
    assert_eq!(
        reader.start_ticks(hog.pid()).expect("start_ticks"),
        Some(process.key.start_ticks)
    );

    // A full scan, then a steady-state one that reuses what it knows.
    let mut model = Model::default();
    for round in 0..2 {
        let report = reader.scan(&model);
        let found = report
            .processes
            .iter()
            .find(|p| p.key == process.key)
            .unwrap_or_else(|| panic!("scan {round} missed memhog"));
        assert_close(found.memory.rss, own_vm_rss(hog.pid()), "scan");
        assert!(found.cmdline.args().any(|arg| arg == marker));
        model.replace_processes(report.processes);
    }
}

#[test]
fn test_cgroup_limit_and_usage_read_back() {
    if !require(&[Needs::Root]) {
        return;
    }
    let name = marker("readers-limit");
    let cgroup = TestCgroup::new(&name, Some(256 * MIB));
    let hog = spawn_hog_with(&marker("readers-limit-hog"), &["--rss", "32"], |command| {
        cgroup.enter(command)
    });
    let reader = cgroup_reader();

    let stats = reader
        .read(&cgroup.path)
        .expect("read cgroup")
        .expect("test cgroup exists");
    assert_eq!(stats.limit, Limit::Bytes(256 * MIB));
    assert!(stats.usage >= 32 * MIB, "{stats:?}");
    assert!(stats.anon >= 30 * MIB, "{stats:?}");

    let all = reader.read_all().expect("read_all");
    let listed = all
        .iter()
        .find(|found| found.path == cgroup.path)
        .expect("read_all lists the test cgroup");
    assert_eq!(listed.stats.limit, Limit::Bytes(256 * MIB));
    assert_eq!(listed.class, Classification::Host { unit: None });

    let process = proc_reader()
        .read_process(hog.pid())
        .expect("read_process")
        .expect("hog is running");
    assert_eq!(
        reader.memory_path(&process.cgroups),
        Some(cgroup.path.clone())
    );
    assert_eq!(process.memory_cgroup.as_deref(), Some(cgroup.path.as_str()));
    assert!(matches!(*process.class, Classification::Host { .. }));
}

#[test]
fn oom_kill_in_a_limited_cgroup_is_counted_with_cgroup_scope() {
    if !require(&[Needs::Root]) {
        return;
    }
    let name = marker("readers-oom");
    let cgroup = TestCgroup::new(&name, Some(48 * MIB));
    let reader = cgroup_reader();
    let mut watch = OomWatch::new(reader.hierarchy());
    assert!(
        watch
            .update(&reader.read_all().expect("read_all"))
            .is_empty()
    );

    // Resident at 8 MiB, then growing past the 48 MiB limit until the kernel kills it.
    let mut hog = spawn_hog_with(
        &marker("readers-oom-hog"),
        &["--rss", "8", "--grow", "200", "--max", "400"],
        |command| cgroup.enter(command),
    );
    let exited = wait_for(Duration::from_secs(30), || hog.has_exited().then_some(()));
    assert!(
        exited.is_some(),
        "memhog outgrew its limit but was not killed"
    );
    assert_eq!(hog.exit_signal(), Some(libc::SIGKILL));

    let changes = watch.update(&reader.read_all().expect("read_all"));
    let change = changes
        .iter()
        .find(|change| change.path == cgroup.path)
        .unwrap_or_else(|| panic!("no OOM counted in {}: {changes:?}", cgroup.path));
    assert!(change.kills >= 1, "{change:?}");
    assert_eq!(change.scope, OomScope::Cgroup);
    assert_eq!(change.limit_cgroup.as_deref(), Some(cgroup.path.as_str()));
}

/// Stops and joins a background churn thread when dropped, even if an assertion fails.
struct Churn {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl Churn {
    fn start(work: impl Fn() + Send + 'static) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut rounds = 0;
            while !flag.load(Ordering::Relaxed) {
                work();
                rounds += 1;
            }
            rounds
        });
        Churn {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or(0)
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn scans_survive_processes_exiting_mid_scan() {
    // Short-lived children of this test only: spawned, killed and reaped in a loop.
    let churn = Churn::start(|| {
        let mut children: Vec<_> = (0..16)
            .filter_map(|_| {
                Command::new("sleep")
                    .arg("30")
                    .stdin(Stdio::null())
                    .spawn()
                    .ok()
            })
            .collect();
        for child in &mut children {
            let _ = child.kill();
        }
        for child in &mut children {
            let _ = child.wait();
        }
    });
    let reader = proc_reader();
    let mut model = Model::default();
    let mut vanished = 0;
    for _ in 0..40 {
        let report = reader.scan(&model);
        assert_eq!(report.errors, 0, "a scan failed on a process");
        assert!(report.processes.iter().any(|p| p.key.pid == 1));
        vanished += report.vanished;
        model.replace_processes(report.processes);
    }
    let rounds = churn.finish();
    assert!(rounds > 0, "the churn thread never ran");
    eprintln!(
        "40 scans beside {rounds} rounds of 16 short processes: {vanished} vanished mid-scan"
    );
}

#[test]
fn cgroup_walk_survives_cgroups_vanishing() {
    if !require(&[Needs::Root]) {
        return;
    }
    let parent = TestCgroup::new(&marker("readers-walk"), None);
    let dir = parent.dir.clone();
    let churn = Churn::start(move || {
        for index in 0..8 {
            let _ = std::fs::create_dir(dir.join(format!("c{index}")));
        }
        for index in 0..8 {
            let _ = std::fs::remove_dir(dir.join(format!("c{index}")));
        }
    });
    let reader = cgroup_reader();
    for _ in 0..40 {
        let all = reader
            .read_all()
            .expect("read_all while cgroups come and go");
        assert!(all.iter().any(|cgroup| cgroup.path == parent.path));
        for cgroup in all.iter().filter(|c| c.path.starts_with(&parent.path)) {
            // Each read races with the removal: present or gone, never an error.
            reader.read(&cgroup.path).expect("read a vanishing cgroup");
        }
    }
    let rounds = churn.finish();
    assert!(rounds > 0, "the churn thread never ran");
    // The churn removed its children; the parent goes in TestCgroup's Drop.
    for index in 0..8 {
        let _ = std::fs::remove_dir(parent.dir.join(format!("c{index}")));
    }
}

#[test]
fn host_memory_reads_back() {
    let host = proc_reader().host_memory().expect("host memory");
    assert!(host.total > 0 && host.available <= host.total, "{host:?}");
}
