//! The orphan rule: only orphans that match and are past their age are killed.
//!
//! Orphans are made for real: a shell starts memhog in the background and exits, so
//! memhog is reparented to the nearest subreaper. The test provides that subreaper
//! itself (a shell with `PR_SET_CHILD_SUBREAPER`, run under the name `dumb-init`, one of
//! the subreapers the guardian knows), so the orphan lands there whatever runs above
//! the test.

use std::{
    io::{BufRead as _, BufReader, Lines},
    os::unix::process::CommandExt as _,
    process::{Child, ChildStdout, Command, Stdio},
};

use super::{config, marker_pattern, records_for, wait_outcome};
use crate::common::{Daemon, Needs, marker, memhog_bin, require, spawn_hog, wait_for};

/// A subreaper named `dumb-init` holding one orphaned memhog; both killed on drop.
struct Orphan {
    adopter: Child,
    pid: i32,
    _dir: tempfile::TempDir,
}

impl Orphan {
    fn start(marker: &str, rss_mib: u32) -> Orphan {
        let dir = tempfile::tempdir().expect("temp dir");
        let shell = dir.path().join("dumb-init");
        std::os::unix::fs::symlink("/bin/sh", &shell).expect("symlink");
        let mut command = Command::new(&shell);
        command
            .args([
                "-c",
                // The inner shell exits at once: memhog is orphaned to this shell. Then
                // wait (a builtin: no child left behind) until the test closes stdin.
                "sh -c '\"$HOG\" --rss \"$RSS\" --marker \"$MARK\" & echo $!'; read _",
            ])
            .env("HOG", memhog_bin())
            .env("RSS", rss_mib.to_string())
            .env("MARK", marker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut adopter = command.spawn().expect("spawn the subreaper");
        let mut lines = BufReader::new(adopter.stdout.take().expect("stdout")).lines();
        let (pid, ready) = read_pid_and_ready(&mut lines);
        let orphan = Orphan {
            adopter,
            pid,
            _dir: dir,
        };
        assert!(ready, "memhog did not start");
        let ppid = wait_for(std::time::Duration::from_secs(10), || {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let ppid: u32 = status
                .lines()
                .find_map(|line| line.strip_prefix("PPid:"))?
                .trim()
                .parse()
                .ok()?;
            (ppid == orphan.adopter.id()).then_some(ppid)
        });
        assert!(
            ppid.is_some(),
            "memhog {pid} was not adopted by the subreaper"
        );
        orphan
    }

    fn is_alive(&self) -> bool {
        // A zombie (exited, not yet reaped by the subreaper) is not alive.
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
    }
}

fn read_pid_and_ready(lines: &mut Lines<BufReader<ChildStdout>>) -> (i32, bool) {
    let mut pid = None;
    let mut ready = false;
    while pid.is_none() || !ready {
        let Some(Ok(line)) = lines.next() else { break };
        match line.trim() {
            "ready" => ready = true,
            number => pid = number.parse().ok(),
        }
    }
    (pid.expect("orphan pid"), ready)
}

impl Drop for Orphan {
    fn drop(&mut self) {
        // Only the test's own processes: the orphan it made and its subreaper.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.adopter.kill();
        let _ = self.adopter.wait();
    }
}

#[test]
fn orphan_rule_kills_only_matching_orphans_past_their_age() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("orphan");
    let other = marker("orphan-other");
    let text = config(&format!(
        "[[orphan_rule]]\nname = \"leftovers\"\nolder_than = \"3s\"\ngrace = \"2s\"\n\
         match = {{ cmdline = '{}' }}\n",
        marker_pattern(&m)
    ));
    let daemon = Daemon::start(&text, &["--source", "procfs"]);
    let matching = Orphan::start(&m, 10);
    let not_matching = Orphan::start(&other, 10);
    let mut not_orphaned = spawn_hog(&m, &["--rss", "10"]);

    let outcome = wait_outcome(&daemon, matching.pid);
    assert_eq!(outcome["outcome"], "exited", "{outcome}");
    assert!(!matching.is_alive());
    let intent = records_for(&daemon, matching.pid)
        .into_iter()
        .find(|r| r["kind"] == "intent")
        .expect("intent");
    assert_eq!(intent["rule"], "leftovers");
    let reason = intent["reason"].as_str().unwrap_or_default();
    let age: f64 = regex::Regex::new(r"age (\d+)s")
        .expect("regex")
        .captures(reason)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("no age in {reason:?}"));
    assert!(
        age >= 3.0,
        "killed at age {age}s, before older_than: {reason}"
    );
    assert!(reason.contains("subreaper"), "{reason}");

    // Both orphans are older than 3 s by now; neither of the others is taken.
    std::thread::sleep(super::SPARE_WAIT);
    assert!(not_matching.is_alive(), "a non-matching orphan was killed");
    assert!(records_for(&daemon, not_matching.pid).is_empty());
    assert!(
        !not_orphaned.has_exited(),
        "a process that is no orphan was killed"
    );
    assert!(records_for(&daemon, not_orphaned.pid()).is_empty());
}
