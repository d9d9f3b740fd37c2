//! Hostile processes the test starts itself: a comm and command line full of newlines,
//! carriage returns, terminal control sequences and invalid UTF-8; a 1 MiB command line;
//! thousands of threads in one process; a fork bomb held by `pids.max` in a cgroup of its
//! own. The outputs stay well-formed (promtool accepts /metrics, the API is JSON, the log
//! is one line per event, the kill log verifies) and the pipeline stays fresh.

use std::{
    ffi::{OsStr, OsString},
    io::{BufRead as _, BufReader},
    os::unix::ffi::{OsStrExt as _, OsStringExt as _},
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use super::TIMEOUT;
use crate::{
    common::{
        Daemon, Needs, TestProcess, guardian_bin, marker, memhog_bin, require, wait_for, which,
    },
    killswitch::{config, rule},
};

/// Threads in the many-threads process.
const THREADS: usize = 3000;
/// The fork bomb's `pids.max`.
const BOMB_PIDS: u64 = 300;

/// A name (hence comm, cut to 15 bytes by the kernel) and arguments no terminal or log
/// parser should have to meet.
const HOSTILE_NAME: &[u8] = b"\x1b[2J\x1b]0;pwn\x07\r\n\xff";
const HOSTILE_ARGS: &[&[u8]] = &[
    b"\x1b[31mred\x1b[0m",
    b"line one\nline two\r\n",
    b"tab\there\x08\x7f",
    b"\xff\xfe\xc3(invalid utf-8",
    b"%s %n {} \\x41 \\u{1b} \"quoted\"",
    b"\xc2\x9b31m C1 CSI",
];

/// Starts memhog through a symlink named `name`, with `args`, `--rss 16` and the marker.
fn spawn_memhog_as(
    dir: &tempfile::TempDir,
    name: &[u8],
    args: &[OsString],
    mark: &str,
) -> TestProcess {
    let link = dir.path().join(OsStr::from_bytes(name));
    std::os::unix::fs::symlink(memhog_bin(), &link).expect("symlink memhog");
    let mut child = Command::new(&link)
        .args(args)
        .args(["--rss", "16", "--marker", mark])
        .env("MEMHOG_ANY_ARGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn hostile memhog");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("memhog stdout"))
        .read_line(&mut line)
        .expect("read memhog stdout");
    let process = TestProcess { child };
    assert_eq!(line.trim(), "ready", "hostile memhog did not start");
    process
}

/// python3 running `script` with `args`; waits for its "ready" line.
fn spawn_python(script: &str, args: &[&str], adjust: impl FnOnce(&mut Command)) -> TestProcess {
    let python = which("python3").expect("python3 on PATH (setup --tests installs it)");
    let mut command = Command::new(python);
    command
        .args(["-c", script])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    adjust(&mut command);
    let mut child = command.spawn().expect("spawn python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("python stdout"))
        .read_line(&mut line)
        .expect("read python stdout");
    let process = TestProcess { child };
    assert_eq!(line.trim(), "ready", "python3 {args:?} did not start");
    process
}

/// `THREADS` threads with small stacks, all waiting.
const THREADS_SCRIPT: &str = "
import sys, threading, time
threading.stack_size(65536)
stop = threading.Event()
for _ in range(int(sys.argv[1])):
    threading.Thread(target=stop.wait, daemon=True).start()
print('ready', flush=True)
time.sleep(3600)
";

/// Every process forks until a fork fails (`pids.max`), then sleeps: bounded by the
/// cgroup, and quiet once it is full.
const BOMB_SCRIPT: &str = "
import os, sys, time
print('ready', flush=True)
os.close(1)
for _ in range(64):
    try:
        os.fork()
    except OSError:
        break
time.sleep(3600)
";

/// A v1 `pids` cgroup (or a v2 one where the controller is enabled) with a `pids.max`;
/// on drop every process in it is killed (all the test's own) and it is removed.
struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    fn new(name: &str, max: u64) -> Result<PidsCgroup, String> {
        let v1 = PathBuf::from("/sys/fs/cgroup/pids");
        let root = if v1.join("cgroup.procs").exists() {
            v1
        } else {
            let v2 = PathBuf::from("/sys/fs/cgroup");
            let controllers =
                std::fs::read_to_string(v2.join("cgroup.subtree_control")).unwrap_or_default();
            if !controllers.split_whitespace().any(|c| c == "pids") {
                return Err("no pids controller (v1 /sys/fs/cgroup/pids or v2)".into());
            }
            v2
        };
        let dir = root.join(name);
        std::fs::create_dir(&dir).map_err(|error| format!("mkdir {}: {error}", dir.display()))?;
        let cgroup = PidsCgroup { dir };
        std::fs::write(cgroup.dir.join("pids.max"), max.to_string())
            .map_err(|error| format!("pids.max: {error}"))?;
        Ok(cgroup)
    }

    fn enter(&self, command: &mut Command) {
        use std::os::unix::process::CommandExt as _;
        let procs = self.dir.join("cgroup.procs");
        // SAFETY: only async-signal-safe work between fork and exec: open, write, close.
        unsafe {
            command.pre_exec(move || std::fs::write(&procs, b"0"));
        }
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    /// How many forks `pids.max` refused so far.
    fn refused(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("pids.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("max ")?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Only the test's fork bomb lives here. Its processes sleep once the cgroup is
        // full, so killing until the list is empty ends it.
        let _ = wait_for(Duration::from_secs(30), || {
            let pids = self.pids();
            for pid in &pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            pids.is_empty().then_some(())
        });
        let _ = wait_for(Duration::from_secs(10), || {
            std::fs::remove_dir(&self.dir).ok()
        });
    }
}

/// The published snapshot's tick.
fn tick(daemon: &Daemon) -> u64 {
    daemon.get_json("/api/v1/status")["tick"]
        .as_u64()
        .expect("tick in /api/v1/status")
}

/// Fails unless every line of the daemon's log is one event: it starts with a timestamp
/// and carries no raw control character (a newline or ESC from a comm would split or
/// repaint it).
fn assert_one_line_per_event(log: &str) {
    for (number, line) in log.lines().enumerate() {
        let stamped = line.len() > 20
            && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && line.as_bytes()[4] == b'-'
            && line.as_bytes()[10] == b'T';
        assert!(
            stamped,
            "log line {} is not an event of its own (a hostile name split a record): {line:?}",
            number + 1
        );
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "log line {} carries a raw control character: {line:?}",
            number + 1
        );
    }
}

/// All the hostile processes at once under a dry-run kill rule that judges the hostile
/// memhogs (so their names reach the kill log and the log lines): the guardian stays
/// fresh and every output stays well-formed.
#[test]
fn hostile_processes_keep_every_output_well_formed() {
    if !require(&[Needs::Root, Needs::Prometheus]) {
        return;
    }
    let mark = marker("hostile");
    let daemon = Daemon::start(
        &config(&format!(
            "lock_memory = false\n[metrics]\ntop_processes = 100000\n{}",
            rule("hostile", &mark, "8MiB", "action = \"kill\"")
        )),
        &["--source", "procfs", "--dry-run"],
    );
    let first_tick = tick(&daemon);

    let dir = tempfile::tempdir().expect("temp dir");
    let hostile_args: Vec<OsString> = HOSTILE_ARGS
        .iter()
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect();
    let hostile = spawn_memhog_as(&dir, HOSTILE_NAME, &hostile_args, &mark);
    // 16 arguments of 64 KiB (one argument may hold at most 128 KiB): a 1 MiB command line.
    let long_args: Vec<OsString> = (0..16)
        .map(|i| OsString::from(format!("{i:x}").repeat(64 * 1024)))
        .collect();
    let long = spawn_memhog_as(&dir, b"long-cmdline", &long_args, &mark);
    let threads_mark = marker("hostile-threads");
    let threads = spawn_python(
        THREADS_SCRIPT,
        &[&THREADS.to_string(), &threads_mark],
        |_| {},
    );
    let bomb_mark = marker("hostile-bomb");
    let bomb_cgroup =
        PidsCgroup::new(&format!("{bomb_mark}.slice"), BOMB_PIDS).unwrap_or_else(|reason| {
            panic!("cannot hold a fork bomb: {reason}");
        });
    let _bomb = spawn_python(BOMB_SCRIPT, &[&bomb_mark], |command| {
        command.stderr(Stdio::null());
        bomb_cgroup.enter(command);
    });
    let full = wait_for(TIMEOUT, || (bomb_cgroup.refused() > 0).then_some(()));
    assert!(full.is_some(), "the fork bomb never reached pids.max");

    // The dry-run decisions about both hostile memhogs are in the kill log.
    let decided = wait_for(TIMEOUT, || {
        let text = std::fs::read_to_string(daemon.kill_log_path()).unwrap_or_default();
        [hostile.pid(), long.pid()]
            .iter()
            .all(|pid| text.contains(&format!("\"pid\":{pid},")))
            .then_some(())
    });
    assert!(
        decided.is_some(),
        "no dry-run decision about the hostile processes:\n{}",
        daemon.log()
    );
    // The pipeline keeps publishing fresh snapshots with all of it running.
    let advanced = wait_for(TIMEOUT, || (tick(&daemon) > first_tick + 5).then_some(()));
    assert!(advanced.is_some(), "snapshots stopped:\n{}", daemon.log());
    super::assert_healthy(&daemon);

    // The model has each of them; the API answers JSON about every one.
    let threads_seen = daemon.get_json(&format!("/api/v1/processes?pid={}", threads.pid()));
    let threads_json = threads_seen
        .as_array()
        .and_then(|list| list.first())
        .unwrap_or_else(|| panic!("thread-heavy process not in the model: {threads_seen}"));
    assert!(
        threads_json.to_string().contains(&threads_mark),
        "{threads_json}"
    );
    for pid in [hostile.pid(), long.pid()] {
        let seen = daemon.get_json(&format!("/api/v1/processes?pid={pid}"));
        assert_eq!(seen.as_array().map(Vec::len), Some(1), "pid {pid}: {seen}");
    }
    let bomb_pid = bomb_cgroup.pids()[0];
    let bomb_seen = wait_for(TIMEOUT, || {
        let seen = daemon.get_json(&format!("/api/v1/processes?pid={bomb_pid}"));
        (seen.as_array().map(Vec::len) == Some(1)).then_some(())
    });
    assert!(
        bomb_seen.is_some(),
        "a fork bomb process is not in the model"
    );
    let all = daemon.get_json("/api/v1/processes?limit=100000");
    assert!(
        all.as_array()
            .is_some_and(|list| list.len() > BOMB_PIDS as usize / 2)
    );
    daemon.get_json("/api/v1/kills");
    daemon.get_json("/api/v1/cgroups?limit=100000");

    // /metrics in the classic text format passes promtool.
    let (status, metrics) = crate::common::http_get_with(
        daemon.addr,
        "/metrics",
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .expect("GET /metrics");
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.contains(&format!("pid=\"{}\"", hostile.pid())),
        "the hostile process is not exported"
    );
    crate::metrics::promtool(&["check", "metrics"], &metrics);

    // The kill log verifies and lists; the daemon's log is one line per event.
    for args in [&["audit", "verify"][..], &["audit", "list", "--path"][..]] {
        let output = Command::new(guardian_bin())
            .args(args)
            .arg(daemon.kill_log_path())
            .output()
            .expect("run guardian audit");
        assert!(
            output.status.success(),
            "guardian {args:?} on the hostile kill log:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let shown = String::from_utf8_lossy(&output.stdout);
        assert!(
            !shown.contains(['\x1b', '\x07', '\u{9b}']),
            "guardian {args:?} prints raw terminal control sequences: {shown:?}"
        );
    }
    assert_one_line_per_event(&daemon.log());
}
