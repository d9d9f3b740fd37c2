//! The reader against the fixture tree in tests/fixtures/proc (a v2 host with one
//! hybrid-style process), then against this host's /proc.

use std::path::{Path, PathBuf};

use super::*;
use crate::classify::{Classification, Runtime};
use crate::model::Model;
use crate::test_support::{Sleeper, wait_for_comm};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/proc")
}

fn reader() -> ProcReader {
    ProcReader::new(fixture()).expect("fixture reader")
}

fn model_of<P: Clone + Into<std::sync::Arc<Process>>>(processes: &[P]) -> Model {
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
        process.cmdline.to_vec(),
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
        .into()
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
    assert_eq!(process.cmdline.to_vec()[0], "node", "cmdline reused");
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
    assert_eq!(process.cmdline.to_vec()[0], "node", "still reused");
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
    assert_eq!(by_pid(42).cmdline.to_vec(), ["python3", "app.py"]);
    assert_eq!(by_pid(42).comm, "python3");
    assert_eq!(by_pid(43).key.start_ticks, 4100);
    assert_eq!(by_pid(43).cmdline.to_vec(), ["new"]);
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
    let _host = host_scan();
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

/// Scans with `model` as the previous view and makes the result the new one, as the
/// daemon does.
fn rescan(reader: &ProcReader, model: &mut Model) -> ScanReport {
    let report = reader.scan(model);
    model.replace_processes(report.processes.clone());
    report
}

#[test]
fn a_rescan_drops_exited_processes_and_refreshes_known_ones() {
    let dir = scratch();
    let reader = ProcReader::new(dir.path()).expect("reader");
    let mut model = Model::default();
    let first = rescan(&reader, &mut model);
    assert_eq!(
        (first.processes.len(), first.vanished, first.errors),
        (7, 1, 0)
    );

    // 43 exits, 42's RSS grows, 120 cannot be parsed any more.
    std::fs::remove_dir_all(dir.path().join("43")).expect("rm");
    set_rss_pages(dir.path(), 42, 13_312 + 64);
    std::fs::write(dir.path().join("120/stat"), "garbage").expect("write");
    let second = rescan(&reader, &mut model);
    assert_eq!(
        (second.processes.len(), second.vanished, second.errors),
        (5, 1, 1)
    );
    assert!(model.process_by_pid(43).is_none());
    let hog = model.process_by_pid(42).expect("42");
    assert_eq!(hog.memory.rss, (13_312 + 64) * reader.page_size);
    assert_eq!(
        hog.cmdline.to_vec()[0],
        "node",
        "a known process keeps its command line"
    );
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
        process.cmdline.to_vec()[0],
        "node",
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

/// Serialises the tests that scan this host's /proc: each reader holds a `stat` file
/// of every process, and the tests count the files open on their children's.
fn host_scan() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child of this test that sleeps until killed (and is reaped when dropped).
/// This process's descriptors open on `/proc/PID/stat`.
fn open_stat_files(pid: i32) -> usize {
    let target = PathBuf::from(format!("/proc/{pid}/stat"));
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|link| *link == target)
        .count()
}

fn held_count(reader: &ProcReader) -> usize {
    reader.held_stats.lock().expect("held").len()
}

#[test]
fn a_held_stat_file_reads_its_process_gone_once_it_exits() {
    let _host = host_scan();
    let reader = ProcReader::new("/proc").expect("/proc");
    let mut child = Sleeper::spawn();
    let pid = child.pid();
    wait_for_comm(pid, "sleep");
    let mut model = Model::default();
    rescan(&reader, &mut model);
    let key = model.process_by_pid(pid).expect("child scanned").key;
    let mut buf = io::buffer();
    {
        let held = reader.held_stats.lock().expect("held");
        assert!(held.holds(pid), "the scan keeps the child's stat open");
        let len = held.reread(pid, &mut buf).expect("held").expect("read");
        let stat = parse::stat(&buf[..len.expect("alive")]).expect("parse");
        assert_eq!(stat.start_ticks, key.start_ticks);
    }
    child.end();
    let held = reader.held_stats.lock().expect("held");
    // Reaped: the kernel answers ESRCH, which reads as gone.
    let read = held
        .reread(pid, &mut buf)
        .expect("still held")
        .expect("read");
    assert_eq!(read, None, "a held file of a reaped process reads as gone");
}

/// Writes `ns_last_pid` so that the next fork gets `pid` (root only; another fork in
/// between can take it, so callers retry).
fn next_pid_is(pid: i32) -> bool {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_ok()
}

#[test]
fn a_reused_pid_is_not_taken_for_the_process_that_held_it() {
    let _host = host_scan();
    let reader = ProcReader::new("/proc").expect("/proc");
    let mut old = Sleeper::spawn();
    let pid = old.pid();
    wait_for_comm(pid, "sleep");
    let mut model = Model::default();
    rescan(&reader, &mut model);
    let old_key = model.process_by_pid(pid).expect("old scanned").key;
    assert!(reader.held_stats.lock().expect("held").holds(pid));
    old.end();
    // A start time in another clock tick than the old process's.
    std::thread::sleep(std::time::Duration::from_millis(50));
    // Whether or not the pid can be handed out again here, the old file reads as gone.
    let mut buf = io::buffer();
    let gone = reader
        .held_stats
        .lock()
        .expect("held")
        .reread(pid, &mut buf);
    assert_eq!(gone.expect("held").expect("read"), None);
    let mut new = None;
    for _ in 0..50 {
        if !next_pid_is(pid) {
            break;
        }
        let candidate = Sleeper::spawn();
        if candidate.pid() == pid {
            new = Some(candidate);
            break;
        }
    }
    let Some(new) = new else {
        eprintln!("pid {pid} could not be reused here (needs root); reuse not exercised");
        return;
    };
    wait_for_comm(pid, "sleep");
    let report = rescan(&reader, &mut model);
    assert_eq!(report.errors, 0);
    let process = model.process_by_pid(pid).expect("new process scanned");
    assert_ne!(process.key, old_key, "the new process has its own identity");
    assert_eq!(
        Some(process.key.start_ticks),
        reader.start_ticks(pid).expect("read")
    );
    assert!(
        reader.held_stats.lock().expect("held").holds(pid),
        "a fresh file is held for the new process"
    );
    drop(new);
}

#[test]
fn held_files_are_closed_once_their_processes_are_gone() {
    let _host = host_scan();
    let reader = ProcReader::new("/proc").expect("/proc");
    let mut children: Vec<Sleeper> = (0..20).map(|_| Sleeper::spawn()).collect();
    for child in &children {
        wait_for_comm(child.pid(), "sleep");
    }
    let mut model = Model::default();
    rescan(&reader, &mut model);
    let pids: Vec<i32> = children.iter().map(Sleeper::pid).collect();
    for &pid in &pids {
        assert_eq!(open_stat_files(pid), 1, "{pid}: one held stat file");
    }
    for child in &mut children {
        child.end();
    }
    rescan(&reader, &mut model);
    for &pid in &pids {
        assert!(model.process_by_pid(pid).is_none());
        assert_eq!(open_stat_files(pid), 0, "{pid}: its stat file is closed");
    }
    assert!(held_count(&reader) > 0, "the remaining processes stay held");
}

/// Sorted Debug renderings: processes compare field by field.
fn rendered<P: std::fmt::Debug>(processes: &[P]) -> Vec<String> {
    let mut out: Vec<String> = processes.iter().map(|p| format!("{p:?}")).collect();
    out.sort();
    out
}

#[test]
fn without_held_files_or_past_the_cap_a_scan_reads_the_same() {
    let dir = scratch();
    let readers: Vec<ProcReader> = [None, Some(0), Some(2)]
        .into_iter()
        .map(|cap| {
            let reader = ProcReader::new(dir.path()).expect("reader");
            if let Some(cap) = cap {
                reader.held_stats.lock().expect("held").set_cap(cap);
            }
            reader
        })
        .collect();
    let mut models: Vec<Model> = (0..readers.len()).map(|_| Model::default()).collect();
    let mut scans = |round: &str| {
        let reports: Vec<ScanReport> = readers
            .iter()
            .zip(&mut models)
            .map(|(reader, model)| {
                let report = reader.scan(model);
                *model = model_of(&report.processes);
                report
            })
            .collect();
        for report in &reports[1..] {
            assert_eq!(
                rendered(&report.processes),
                rendered(&reports[0].processes),
                "{round}"
            );
            assert_eq!(
                (report.vanished, report.errors),
                (reports[0].vanished, reports[0].errors),
                "{round}"
            );
        }
    };
    scans("first scan");
    assert_eq!(
        readers.iter().map(held_count).collect::<Vec<_>>(),
        [7, 0, 2],
        "held: all listed, none, the cap"
    );
    scans("steady state");
    set_rss_pages(dir.path(), 42, 13_312 + 4096);
    let stat = std::fs::read_to_string(dir.path().join("43/stat")).expect("stat");
    std::fs::write(dir.path().join("43/stat"), stat.replace(" 4000 ", " 4100 ")).expect("write");
    std::fs::remove_dir_all(dir.path().join("120")).expect("rm");
    scans("changed");
    // 120's file is closed; 43's now shows another start time than it was opened with,
    // which a pinned /proc file never does: it is closed too, and reopened next scan.
    assert_eq!(held_count(&readers[0]), 5);
    scans("after the change");
    assert_eq!(held_count(&readers[0]), 6);
}

#[test]
fn without_held_files_no_process_of_this_host_is_lost() {
    let _host = host_scan();
    let children: Vec<Sleeper> = (0..5).map(|_| Sleeper::spawn()).collect();
    for child in &children {
        wait_for_comm(child.pid(), "sleep");
    }
    for cap in [0, 1] {
        let reader = ProcReader::new("/proc").expect("/proc");
        reader.held_stats.lock().expect("held").set_cap(cap);
        let mut model = Model::default();
        for _ in 0..2 {
            let report = rescan(&reader, &mut model);
            assert_eq!(report.errors, 0, "cap {cap}");
            for child in &children {
                assert!(model.process_by_pid(child.pid()).is_some(), "cap {cap}");
            }
            assert!(held_count(&reader) <= cap);
        }
    }
}

#[test]
fn held_files_are_closed_when_scans_come_far_apart() {
    let dir = scratch();
    let reader = ProcReader::new(dir.path()).expect("reader");
    let model = model_of(&reader.scan(&Model::default()).processes);
    assert_eq!(held_count(&reader), 7);
    // The next scan starts long after this one.
    reader
        .held_stats
        .lock()
        .expect("held")
        .begin(std::time::Instant::now() + std::time::Duration::from_secs(60));
    assert_eq!(held_count(&reader), 0);
    let report = reader.scan(&model);
    assert_eq!(report.processes.len(), 7);
    assert_eq!(held_count(&reader), 7, "scans close together hold again");
}

/// Set in the copy of the test binary that `out_of_descriptors_...` runs under a low
/// open-file limit: the pids of the sleepers it must find.
const LOW_NOFILE_PIDS: &str = "GUARDIAN_TEST_LOW_NOFILE_PIDS";

#[test]
fn out_of_descriptors_a_scan_falls_back_without_losing_a_process() {
    if let Ok(pids) = std::env::var(LOW_NOFILE_PIDS) {
        // The re-executed copy, with 64 descriptors at most: holding a file for every
        // process runs into EMFILE, and the scan must go on the old way.
        let reader = ProcReader::new("/proc").expect("/proc");
        reader.held_stats.lock().expect("held").set_cap(usize::MAX);
        let mut model = Model::default();
        for _ in 0..3 {
            let report = rescan(&reader, &mut model);
            assert_eq!(report.errors, 0, "{} errors", report.errors);
        }
        for pid in pids.split(',').map(|pid| pid.parse::<i32>().expect("pid")) {
            assert!(model.process_by_pid(pid).is_some(), "{pid} lost");
        }
        let held = reader.held_stats.lock().expect("held");
        assert!(held.cap() < 64, "EMFILE lowered the cap to {}", held.cap());
        assert!(held.len() <= held.cap());
        return;
    }
    let _host = host_scan();
    let children: Vec<Sleeper> = (0..100).map(|_| Sleeper::spawn()).collect();
    for child in &children {
        wait_for_comm(child.pid(), "sleep");
    }
    let pids: Vec<String> = children.iter().map(|c| c.pid().to_string()).collect();
    let name =
        "sources::procfs::tests::out_of_descriptors_a_scan_falls_back_without_losing_a_process";
    let output = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" --exact \"$1\" --test-threads=1")
        .arg(std::env::current_exe().expect("test binary"))
        .arg(name)
        .env(LOW_NOFILE_PIDS, pids.join(","))
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
