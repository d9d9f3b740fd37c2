//! The kill log through the real `guardian audit` binary: tampering caught at the record,
//! torn tails noted, rotation with retention, restarts, and a full or read-only disk.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use guardian::{
    audit::{Intent, KillLog, Outcome, OutcomeKind, files},
    config::{Bytes, KillLogConfig},
};

use crate::common::{Needs, assert_every_kill_has_an_intent, guardian_bin, marker, require};

fn intent(pid: i32, rule: &str) -> Intent {
    Intent {
        rule: rule.into(),
        dry_run: false,
        pid,
        start_ticks: 1000 + pid as u64,
        comm: "node".into(),
        cmdline: format!("node dist/main --token=tok-{pid} {}", marker("audit")),
        uid: 0,
        user: Some("root".into()),
        cgroup: Some("/test".into()),
        classification: serde_json::json!({"class": "host"}),
        rss_bytes: 400 << 20,
        threshold_bytes: Some(300 << 20),
        reason: "above threshold".into(),
        signals: vec!["SIGTERM".into(), "SIGKILL".into()],
        trigger: None,
    }
}

fn outcome(intent_seq: u64, pid: i32, rule: &str, kind: OutcomeKind) -> Outcome {
    Outcome {
        intent_seq,
        rule: rule.into(),
        pid,
        start_ticks: 1000 + pid as u64,
        outcome: kind,
        signals_sent: vec!["SIGTERM".into()],
        time_to_exit_s: Some(0.5),
        detail: None,
    }
}

fn config(path: PathBuf) -> KillLogConfig {
    KillLogConfig {
        path,
        ..KillLogConfig::default()
    }
}

/// Writes `decisions` intent+outcome pairs (pid 1..=decisions).
fn write_decisions(log: &mut KillLog, decisions: i32) {
    for pid in 1..=decisions {
        let seq = log.write_intent(&intent(pid, "leak")).expect("intent");
        log.write_outcome(&outcome(seq, pid, "leak", OutcomeKind::Exited))
            .expect("outcome");
    }
}

/// A fresh log of `decisions` decisions in `dir`.
fn new_log(dir: &Path, decisions: i32) -> PathBuf {
    let path = dir.join("kills.jsonl");
    write_decisions(
        &mut KillLog::open(&config(path.clone())).expect("open"),
        decisions,
    );
    path
}

/// Runs `guardian audit ARGS`; returns (exit code, stdout, stderr).
fn audit(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(guardian_bin())
        .arg("audit")
        .args(args)
        .output()
        .expect("run guardian audit");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn verify_path(path: &Path) -> (i32, String, String) {
    audit(&["verify", path.to_str().expect("utf-8 path")])
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").expect("write");
}

#[test]
fn audit_verify_passes_an_intact_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = new_log(dir.path(), 5);
    let (code, out, err) = verify_path(&path);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: 10 record(s) in 1 file(s)"), "{out}");
    assert!(out.contains("first record ever"), "{out}");
    assert!(!fs::read_to_string(&path).expect("read").contains("tok-"));
}

#[test]
fn audit_verify_catches_an_edited_field_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = new_log(dir.path(), 5);
    let mut lines = lines(&path);
    lines[4] = lines[4].replace("\"rss_bytes\":419430400", "\"rss_bytes\":1");
    write_lines(&path, &lines);
    let (code, out, _) = verify_path(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("kills.jsonl line 5 (seq 5)"), "{out}");
    assert!(out.contains("edited"), "{out}");
}

#[test]
fn audit_verify_catches_a_deleted_record_where_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = new_log(dir.path(), 5);
    let mut lines = lines(&path);
    lines.remove(3);
    write_lines(&path, &lines);
    let (code, out, _) = verify_path(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 4 (seq 5)"), "{out}");
    assert!(out.contains("missing"), "{out}");
}

#[test]
fn audit_verify_catches_reordered_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = new_log(dir.path(), 5);
    let mut lines = lines(&path);
    lines.swap(5, 6);
    write_lines(&path, &lines);
    let (code, out, _) = verify_path(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 6 (seq 7)"), "{out}");
}

#[test]
fn audit_verify_notes_a_line_truncated_mid_way_and_the_log_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = new_log(dir.path(), 5);
    // Cut the file in the middle of line 7, as a crash during that write would.
    let text = fs::read_to_string(&path).expect("read");
    let line_7: usize = text.lines().take(6).map(|line| line.len() + 1).sum();
    fs::write(&path, &text[..line_7 + 40]).expect("truncate");
    let (code, out, err) = verify_path(&path);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: 6 record(s)"), "{out}");
    assert!(out.contains("line 7 is a torn record"), "{out}");
    // The guardian cuts the torn line on restart and continues the chain after seq 6.
    let mut log = KillLog::open(&config(path.clone())).expect("reopen");
    assert_eq!(log.write_intent(&intent(9, "leak")).expect("intent"), 7);
    drop(log);
    let (code, out, _) = verify_path(&path);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok: 7 record(s)") && !out.contains("torn"),
        "{out}"
    );
}

#[test]
fn audit_verify_follows_the_chain_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = new_log(dir.path(), 2);
    let mut log = KillLog::open(&config(path.clone())).expect("reopen");
    assert_eq!(log.last_seq(), 4);
    write_decisions(&mut log, 2);
    drop(log);
    let (code, out, _) = verify_path(&path);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: 8 record(s)"), "{out}");
}

#[test]
fn audit_verify_reads_rotated_files_from_the_config_and_accepts_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log/kills.jsonl");
    let config_path = dir.path().join("guardian.toml");
    fs::write(
        &config_path,
        format!(
            "[kill_log]\npath = {:?}\nmax_file_bytes = 4000\nkeep_files = 3\n",
            path.to_str().expect("utf-8")
        ),
    )
    .expect("write config");
    let config = KillLogConfig {
        max_file_bytes: Bytes(4000),
        keep_files: 3,
        ..config(path.clone())
    };
    write_decisions(&mut KillLog::open(&config).expect("open"), 30);
    let rotated = files::rotated_files(&path).expect("rotated");
    assert_eq!(rotated.len(), 3, "{rotated:?}");
    let config_arg = config_path.to_str().expect("utf-8");
    let (code, out, err) = audit(&["verify", "--config", config_arg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in 4 file(s)"), "{out}");
    assert!(out.contains("dropped by retention"), "{out}");

    // Explicit paths in the wrong order break the chain at the first file's first record.
    let newest_first: Vec<String> = files::log_files(&path)
        .expect("files")
        .iter()
        .rev()
        .map(|path| path.display().to_string())
        .collect();
    let mut args = vec!["verify"];
    args.extend(newest_first.iter().map(String::as_str));
    let (code, out, _) = audit(&args);
    assert_eq!(code, 1, "{out}");

    // Tampering in a rotated file is named by that file and line.
    let middle = files::rotated_path(&path, 2);
    let mut lines = lines(&middle);
    lines[1] = lines[1].replace("\"rule\":\"leak\"", "\"rule\":\"leaK\"");
    write_lines(&middle, &lines);
    let (code, out, _) = audit(&["verify", "--config", config_arg]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{} line 2", middle.display())),
        "{out}"
    );
}

#[test]
fn audit_verify_exits_2_when_the_log_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = verify_path(&dir.path().join("nothing.jsonl"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing.jsonl"), "{err}");
}

#[test]
fn audit_list_shows_decisions_and_filters_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kills.jsonl");
    let mut log = KillLog::open(&config(path.clone())).expect("open");
    let seq = log.write_intent(&intent(11, "leak")).expect("intent");
    log.write_outcome(&outcome(seq, 11, "leak", OutcomeKind::Exited))
        .expect("outcome");
    let seq = log.write_intent(&intent(22, "orphans")).expect("intent");
    log.write_outcome(&outcome(seq, 22, "orphans", OutcomeKind::PermissionDenied))
        .expect("outcome");
    log.write_intent(&intent(33, "leak")).expect("intent");
    drop(log);
    let path_arg = path.to_str().expect("utf-8");

    let (code, out, err) = audit(&["list", "--path", path_arg]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 4, "{out}");
    for column in ["SEQ", "TIME", "RULE", "PID", "COMM", "OUTCOME", "RSS"] {
        assert!(rows[0].contains(column), "{out}");
    }
    assert!(
        rows[1].contains("leak") && rows[1].contains("exited") && rows[1].contains("400.0 MiB")
    );
    assert!(rows[3].contains("pending"), "{out}");

    let count = |args: &[&str]| {
        let mut all = vec!["list", "--path", path_arg, "--json"];
        all.extend_from_slice(args);
        let (code, out, err) = audit(&all);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("json line"))
            .collect::<Vec<_>>()
    };
    assert_eq!(count(&[]).len(), 5);
    let orphans = count(&["--rule", "orphans"]);
    assert_eq!(orphans.len(), 2);
    assert_eq!(orphans[1]["outcome"], "permission-denied");
    assert_eq!(count(&["--pid", "33"]).len(), 1);
    assert_eq!(count(&["--outcome", "exited"])[0]["pid"], 11);
    assert_eq!(count(&["--since", "1h"]).len(), 5);
    assert_eq!(count(&["--since", "2999-01-01T00:00:00Z"]).len(), 0);
    let (code, _, err) = audit(&["list", "--path", path_arg, "--since", "last tuesday"]);
    assert_ne!(code, 0);
    assert!(err.contains("RFC 3339"), "{err}");
}

/// A small tmpfs the test mounted; unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(options: &str) -> SmallFs {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "guardian-test"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs -o {options} failed");
        SmallFs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn audit_full_disk_fails_the_intent_cleanly_and_the_log_recovers() {
    if !require(&[Needs::Root]) {
        return;
    }
    let fs_ = SmallFs::mount("size=64k");
    let path = fs_.path().join("kills.jsonl");
    let mut log = KillLog::open(&config(path.clone())).expect("open");
    write_decisions(&mut log, 3);
    // Fill the rest of the filesystem.
    let filler = fs_.path().join("filler");
    let mut file = fs::File::create(&filler).expect("filler");
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    drop(file);
    // Records may still fit in the log's last page; one soon does not.
    let mut error = None;
    for pid in 100..200 {
        match log.write_intent(&intent(pid, "leak")) {
            Ok(_) => continue,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let error = error.expect("a full disk never failed a write");
    assert!(
        error.contains(&path.display().to_string()) && error.contains("No space left on device"),
        "{error}"
    );
    assert_eq!(log.failures(), 1);
    let written = log.last_seq();
    // No half record is left behind: the log verifies without even a torn line.
    let (code, out, _) = verify_path(&path);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("torn"), "{out}");
    assert!(out.contains(&format!("ok: {written} record(s)")), "{out}");
    // Space freed: writes resume where the chain stood.
    fs::remove_file(&filler).expect("remove filler");
    assert_eq!(
        log.write_intent(&intent(300, "leak"))
            .expect("intent after space freed"),
        written + 1
    );
    drop(log);
    let (code, out, _) = verify_path(&path);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("ok: {} record(s)", written + 1)),
        "{out}"
    );
}

#[test]
fn audit_read_only_disk_fails_open_naming_path_and_error() {
    if !require(&[Needs::Root]) {
        return;
    }
    let fs_ = SmallFs::mount("size=64k,ro");
    let path = fs_.path().join("kills.jsonl");
    let error = KillLog::open(&config(path.clone()))
        .expect_err("open on a read-only filesystem")
        .to_string();
    assert!(error.contains("Read-only file system"), "{error}");
    assert!(error.contains(&fs_.path().display().to_string()), "{error}");
}

/// Set in the environment of [`audit_crash_writer_child`]'s process: "LOG|PID,PID,...".
const CRASH_CHILD_ENV: &str = "GUARDIAN_AUDIT_CRASH_CHILD";

/// Not a test on its own (returns at once without its variable): the writer that
/// [`audit_log_survives_sigkill_at_random_moments_during_kills`] runs in a child process
/// and SIGKILLs. For each pid: intent (fsynced), SIGKILL, outcome, as the kill-switch does.
#[test]
fn audit_crash_writer_child() {
    let Ok(spec) = std::env::var(CRASH_CHILD_ENV) else {
        return;
    };
    let (path, pids) = spec.split_once('|').expect("LOG|PIDS");
    let mut log = KillLog::open(&config(PathBuf::from(path))).expect("open");
    for pid in pids.split(',').map(|pid| pid.parse::<i32>().expect("pid")) {
        let seq = log.write_intent(&intent(pid, "crash")).expect("intent");
        // Only the test's own `sleep` processes, started by the parent test.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        log.write_outcome(&outcome(seq, pid, "crash", OutcomeKind::Exited))
            .expect("outcome");
    }
}

/// The crash acceptance test at the kill-log level: the writer is SIGKILLed at random
/// moments while it kills; every killed process has an intent record, and the log
/// verifies (a torn tail allowed) after each restart continues the chain.
#[test]
fn audit_log_survives_sigkill_at_random_moments_during_kills() {
    use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};

    const VICTIMS: usize = 150;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kills.jsonl");
    let tag = marker("audit-crash");
    let mut victims: Vec<std::process::Child> = (0..VICTIMS)
        .map(|_| {
            Command::new("sleep")
                .arg0(&tag)
                .arg("1000")
                .spawn()
                .expect("spawn sleep")
        })
        .collect();
    struct Reap<'a>(&'a mut Vec<std::process::Child>);
    impl Drop for Reap<'_> {
        fn drop(&mut self) {
            for victim in self.0.iter_mut() {
                let _ = victim.kill();
                let _ = victim.wait();
            }
        }
    }
    let victims = Reap(&mut victims);
    let mut killed: Vec<i32> = Vec::new();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |t| t.subsec_nanos() as u64 | 1);
    let mut crashes = 0;
    for round in 0..300 {
        let remaining: Vec<String> = victims
            .0
            .iter()
            .filter(|victim| !killed.contains(&(victim.id() as i32)))
            .map(|victim| victim.id().to_string())
            .collect();
        if remaining.is_empty() {
            break;
        }
        let mut writer = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "audit::audit_crash_writer_child",
                "--exact",
                "--test-threads=1",
            ])
            .env(
                CRASH_CHILD_ENV,
                format!("{}|{}", path.display(), remaining.join(",")),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn writer");
        // The last rounds run to completion; the others die at a random moment.
        if round < 60 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(std::time::Duration::from_micros(seed % 25_000));
            let _ = writer.kill();
        }
        let status = writer.wait().expect("wait writer");
        if status.signal() == Some(9) {
            crashes += 1;
        } else {
            assert!(status.success(), "writer failed: {status}");
        }
        for victim in victims.0.iter_mut() {
            if let Ok(Some(status)) = victim.try_wait() {
                assert_eq!(status.signal(), Some(9), "a victim died otherwise");
                killed.push(victim.id() as i32);
            }
        }
        killed.sort_unstable();
        killed.dedup();
    }
    assert_eq!(killed.len(), VICTIMS, "not every victim was killed");
    eprintln!("writer SIGKILLed {crashes} times");

    let (code, out, err) = verify_path(&path);
    assert_eq!(code, 0, "{out}{err}");
    assert_every_kill_has_an_intent(&path, &killed);
}
