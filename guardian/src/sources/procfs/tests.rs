//! The reader against the fixture tree in tests/fixtures/proc (a v2 host with one
//! hybrid-style process), then against this host's /proc.

use std::path::{Path, PathBuf};

use super::*;
use crate::classify::{Classification, Runtime};
use crate::model::Model;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/proc")
}

fn reader() -> ProcReader {
    ProcReader::new(fixture()).expect("fixture reader")
}

fn model_of(processes: &[Process]) -> Model {
    let mut model = Model::default();
    model.replace_processes(processes.to_vec());
    model
}

#[test]
fn lists_only_numeric_entries() {
    let mut pids = reader().pids().expect("pids");
    pids.sort_unstable();
    assert_eq!(pids, vec![1, 2, 7, 42, 43, 99, 120, 4000]);
}

#[test]
fn reads_a_container_process_with_a_tricky_comm() {
    let process = reader().read_process(42).expect("read").expect("present");
    assert_eq!(
        process.key,
        ProcessKey {
            pid: 42,
            start_ticks: 5000
        }
    );
    assert_eq!(process.comm, "a) b");
    assert_eq!(process.ppid, 1);
    assert_eq!(process.uid, 1000);
    assert_eq!(
        *process.cmdline,
        ["node", "dist/main.js", "--port", " 8080"]
    );
    assert!(!process.kernel_thread);
    assert_eq!(process.oom_score_adj, 300);
    assert_eq!(
        process.memory,
        MemoryUsage {
            rss: 53_248 * 1024,
            anon: 51_200 * 1024,
            file: 2048 * 1024,
            shmem: 0,
            swap: 512 * 1024,
        }
    );
    assert_eq!(process.cgroups.len(), 5);
    let id = "3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f4031221304f5e6d7c8b9a";
    assert_eq!(
        process.memory_cgroup.as_deref(),
        Some(format!("/docker/{id}").as_str())
    );
    assert_eq!(process.class.runtime(), Some(Runtime::Docker));
    assert!((process.started_secs - 5000.0 / reader().clock_ticks() as f64).abs() < 1e-9);
}

#[test]
fn kernel_threads_zombies_and_sd_pam() {
    let reader = reader();
    for pid in [2, 7] {
        let kthread = reader.read_process(pid).expect("read").expect("present");
        assert!(kthread.kernel_thread, "pid {pid}");
        assert!(kthread.cmdline.is_empty());
        assert_eq!(kthread.memory, MemoryUsage::default());
        assert_eq!(kthread.cmdline_text(), format!("[{}]", kthread.comm));
    }
    let zombie = reader.read_process(99).expect("read").expect("present");
    assert!(!zombie.kernel_thread);
    assert_eq!(zombie.memory, MemoryUsage::default());
    assert!(zombie.cmdline.is_empty());
    let sd_pam = reader.read_process(43).expect("read").expect("present");
    assert_eq!(sd_pam.comm, "(sd-pam)");
    assert_eq!(
        sd_pam.class,
        Classification::Host {
            unit: Some("init.scope".into())
        }
    );
    let sshd = reader.read_process(120).expect("read").expect("present");
    assert_eq!(sshd.oom_score_adj, -1000);
    assert_eq!(sshd.class.unit(), Some("ssh.service"));
}

#[test]
fn gone_processes_are_none_not_errors() {
    let reader = reader();
    assert!(reader.read_process(4000).expect("read").is_none());
    assert!(reader.read_process(31_999).expect("read").is_none());
    assert!(reader.start_ticks(31_999).expect("read").is_none());
    let key = ProcessKey {
        pid: 31_999,
        start_ticks: 1,
    };
    assert!(reader.read_memory(key).expect("read").is_none());
}

#[test]
fn read_memory_checks_identity() {
    let reader = reader();
    assert_eq!(reader.start_ticks(42).expect("read"), Some(5000));
    let same = ProcessKey {
        pid: 42,
        start_ticks: 5000,
    };
    assert_eq!(
        reader.read_memory(same).expect("read").map(|m| m.rss),
        Some(53_248 * 1024)
    );
    let reused = ProcessKey {
        pid: 42,
        start_ticks: 4999,
    };
    assert_eq!(reader.read_memory(reused).expect("read"), None);
}

#[test]
fn scan_counts_vanished_and_reads_the_rest() {
    let report = reader().scan(&Model::default());
    assert_eq!(report.processes.len(), 7);
    assert_eq!(report.vanished, 1);
    assert_eq!(report.errors, 0);
}

/// Copies the fixture tree so a test can change it.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(), dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn set_rss_pages(root: &Path, pid: i32, pages: u64) {
    let path = root.join(format!("{pid}/stat"));
    let text = std::fs::read_to_string(&path).expect("stat");
    let close = text.rfind(')').expect(")");
    let mut fields: Vec<String> = text[close + 2..].split(' ').map(String::from).collect();
    fields[21] = pages.to_string(); // field 24
    std::fs::write(&path, format!("{} {}", &text[..=close], fields.join(" "))).expect("write");
}

#[test]
fn steady_state_scan_reuses_known_fields_and_refreshes_rss() {
    let dir = scratch();
    let reader = ProcReader::new(dir.path()).expect("reader");
    let first = reader.scan(&Model::default());
    let model = model_of(&first.processes);
    // Change what a steady-state scan must not re-read, and the RSS it must.
    std::fs::write(dir.path().join("42/cmdline"), b"changed\0").expect("write");
    std::fs::write(dir.path().join("42/cgroup"), b"0::/elsewhere\n").expect("write");
    set_rss_pages(dir.path(), 42, 13_312 + 64); // +256 KiB: within the split's tolerance
    let second = reader.scan(&model);
    let process = second
        .processes
        .iter()
        .find(|p| p.key.pid == 42)
        .expect("42");
    assert_eq!(process.cmdline[0], "node", "cmdline reused");
    assert_eq!(
        process.class.runtime(),
        Some(Runtime::Docker),
        "class reused"
    );
    assert_eq!(process.memory.rss, (13_312 + 64) * reader.page_size);
    assert_eq!(process.memory.anon, 51_200 * 1024, "split kept");

    // An RSS move past max(1 MiB, 1 %) re-reads the split from status.
    set_rss_pages(dir.path(), 42, 13_312 + 4096);
    let status = std::fs::read_to_string(dir.path().join("42/status")).expect("status");
    std::fs::write(
        dir.path().join("42/status"),
        status.replace("RssAnon:\t   51200 kB", "RssAnon:\t   67584 kB"),
    )
    .expect("write");
    let third = reader.scan(&model_of(&second.processes));
    let process = third
        .processes
        .iter()
        .find(|p| p.key.pid == 42)
        .expect("42");
    assert_eq!(process.memory.anon, 67_584 * 1024, "split re-read");
    assert_eq!(process.cmdline[0], "node", "still reused");
}

#[test]
fn exec_or_reused_pid_triggers_a_full_read() {
    let dir = scratch();
    let reader = ProcReader::new(dir.path()).expect("reader");
    let model = model_of(&reader.scan(&Model::default()).processes);
    std::fs::write(dir.path().join("42/cmdline"), b"python3\0app.py\0").expect("write");
    // An exec: same identity, new comm.
    let stat = std::fs::read_to_string(dir.path().join("42/stat")).expect("stat");
    std::fs::write(
        dir.path().join("42/stat"),
        stat.replace("(a) b)", "(python3)"),
    )
    .expect("write");
    // A reused pid: new start time.
    std::fs::write(dir.path().join("43/cmdline"), b"new\0").expect("write");
    let stat = std::fs::read_to_string(dir.path().join("43/stat")).expect("stat");
    std::fs::write(dir.path().join("43/stat"), stat.replace(" 4000 ", " 4100 ")).expect("write");
    let report = reader.scan(&model);
    let by_pid = |pid| {
        report
            .processes
            .iter()
            .find(|p| p.key.pid == pid)
            .expect("pid")
    };
    assert_eq!(*by_pid(42).cmdline, ["python3", "app.py"]);
    assert_eq!(by_pid(42).comm, "python3");
    assert_eq!(by_pid(43).key.start_ticks, 4100);
    assert_eq!(*by_pid(43).cmdline, ["new"]);
}

#[test]
fn host_memory_from_meminfo_and_psi() {
    let host = reader().host_memory().expect("host memory");
    assert_eq!(host.total, 24_684_084 * 1024);
    assert_eq!(host.available, 24_284_788 * 1024);
    assert_eq!(
        (host.swap_total, host.swap_free),
        (2_097_148 * 1024, 1_048_576 * 1024)
    );
    assert_eq!(host.pressure.map(|p| p.some_total_us), Some(123_456));
}

#[test]
fn missing_root_is_a_clear_error() {
    let error = ProcReader::new("/nonexistent/proc").expect_err("no root");
    assert!(error.to_string().contains("/nonexistent/proc"), "{error}");
}

#[test]
fn this_hosts_own_process_reads_back() {
    let reader = ProcReader::new("/proc").expect("/proc");
    let me = reader
        .read_process(std::process::id() as i32)
        .expect("read")
        .expect("present");
    assert!(!me.kernel_thread);
    assert!(me.memory.rss > 0);
    assert!(!me.cgroups.is_empty());
    assert!(me.memory_cgroup.is_some());
    assert!(reader.host_memory().expect("meminfo").total > 0);
    let report = reader.scan(&Model::default());
    assert!(report.processes.iter().any(|p| p.key == me.key));
    assert!(report.processes.iter().any(|p| p.kernel_thread));
}

#[test]
fn scan_into_matches_scan_and_removes_exited_processes() {
    let dir = scratch();
    let reader = ProcReader::new(dir.path()).expect("reader");
    let mut model = Model::default();
    let first = reader.scan_into(&mut model);
    assert_eq!(
        first,
        ScanSummary {
            processes: 7,
            exited: 0,
            vanished: 1,
            errors: 0
        }
    );
    let report = reader.scan(&Model::default());
    for process in &report.processes {
        let twin = model.process(&process.key).expect("same processes");
        assert_eq!(twin.memory, process.memory);
        assert_eq!(twin.cmdline, process.cmdline);
        assert_eq!(twin.class, process.class);
    }

    // 43 exits, 42's RSS grows, 120 cannot be parsed any more (kept as it was).
    std::fs::remove_dir_all(dir.path().join("43")).expect("rm");
    set_rss_pages(dir.path(), 42, 13_312 + 64);
    std::fs::write(dir.path().join("120/stat"), "garbage").expect("write");
    let second = reader.scan_into(&mut model);
    assert_eq!(
        second,
        ScanSummary {
            processes: 6,
            exited: 1,
            vanished: 1,
            errors: 1
        }
    );
    assert!(model.process_by_pid(43).is_none());
    assert!(model.process_by_pid(120).is_some());
    let hog = model.process_by_pid(42).expect("42");
    assert_eq!(hog.memory.rss, (13_312 + 64) * reader.page_size);
    assert_eq!(hog.cmdline[0], "node");
}

#[test]
fn a_comm_that_is_not_utf8_is_still_recognised_between_scans() {
    let dir = scratch();
    let path = dir.path().join("42/stat");
    let stat = std::fs::read(&path).expect("stat");
    let renamed = String::from_utf8(stat)
        .expect("utf-8 fixture")
        .replace("(a) b)", "(a\u{1}b)")
        .into_bytes()
        .into_iter()
        .map(|b| if b == 1 { 0xff } else { b })
        .collect::<Vec<u8>>();
    std::fs::write(&path, renamed).expect("write");
    let reader = ProcReader::new(dir.path()).expect("reader");
    let model = model_of(&reader.scan(&Model::default()).processes);
    assert_eq!(
        model.process_by_pid(42).map(|p| p.comm.as_str()),
        Some("a\u{fffd}b")
    );
    std::fs::write(dir.path().join("42/cmdline"), b"changed\0").expect("write");
    let again = reader.scan(&model);
    let process = again
        .processes
        .iter()
        .find(|p| p.key.pid == 42)
        .expect("42");
    assert_eq!(
        process.cmdline[0], "node",
        "known process reused, not re-read"
    );
}

#[test]
fn a_thread_is_not_read_as_a_process() {
    let reader = ProcReader::new("/proc").expect("reader");
    // Keep a second thread alive while we look at it.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let me = std::process::id();
    let tid = std::fs::read_dir("/proc/self/task")
        .expect("task dir")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&tid| tid as u32 != me)
        .expect("a second thread");
    let read = reader.read_process(tid).expect("read");
    let _ = tx.send(());
    let _ = thread.join();
    assert!(read.is_none(), "thread {tid} was read as a process");
    assert!(reader.read_process(me as i32).expect("read").is_some());
}
