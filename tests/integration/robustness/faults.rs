//! Faults thrown at a running daemon: a read-only kill log device, SIGSTOP/SIGCONT, a
//! storm of SIGHUPs. Each: a clear error naming what and where, no kill without its
//! intent record, nothing killed that no rule names.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use nix::sys::signal::Signal;

use super::{SmallFs, TIMEOUT};
use crate::{
    common::{
        Daemon, Needs, assert_every_kill_has_an_intent, free_port, guardian_bin, marker, require,
        spawn_hog, wait_for, which,
    },
    killswitch::{config, rule},
};

/// A kill log on a read-only file system stops the start with the path and the cause.
#[test]
fn a_read_only_kill_log_device_is_named_at_start() {
    if !require(&[Needs::Root]) {
        return;
    }
    let fs = SmallFs::mount("64k");
    nix::mount::mount(
        None::<&str>,
        fs.path(),
        None::<&str>,
        nix::mount::MsFlags::MS_REMOUNT | nix::mount::MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .expect("remount the tmpfs read-only");
    let log = fs.path().join("kills.jsonl");
    let output = Command::new(guardian_bin())
        .args(["run", "--source", "procfs", "--kill-log"])
        .arg(&log)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .stdin(Stdio::null())
        .output()
        .expect("run guardian");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "started on a read-only log:\n{stderr}"
    );
    assert!(
        stderr.contains(&fs.path().display().to_string())
            && stderr.contains("Read-only file system"),
        "the error names neither the kill log nor the cause:\n{stderr}"
    );
}

/// A daemon stopped with SIGSTOP and continued catches up. It runs the eBPF source with a
/// one-page ring; while it is stopped nothing drains the ring, so a burst of forks fills
/// it and the kernel drops every event of a hog started next (the only way to find that
/// hog is the next refresh). After SIGCONT: /healthz comes back, the drops are counted,
/// the hog is killed with its intent record, and a process no rule names is spared.
#[test]
fn sigstop_and_sigcont_of_the_daemon() {
    if !require(&[Needs::Root, Needs::Bpf]) {
        return;
    }
    let hog_mark = marker("sigstop-hog");
    let bystander_mark = marker("sigstop-bystander");
    let daemon = Daemon::start(
        &config(&format!(
            "lock_memory = false\nring_buffer_bytes = \"4KiB\"\n{}",
            rule("stopped", &hog_mark, "8MiB", "action = \"kill\"")
        )),
        &["--source", "ebpf"],
    );
    let mut bystander = spawn_hog(&bystander_mark, &["--rss", "16"]);
    daemon.signal(Signal::SIGSTOP);
    let python = which("python3").expect("python3 on PATH (setup --tests installs it)");
    let burst = Command::new(&python)
        .args(["-c", super::ring::BURST_SCRIPT, "2000"])
        .stdin(Stdio::null())
        .status()
        .expect("run the fork burst");
    assert!(burst.success(), "the fork burst failed: {burst}");
    let mut hog = spawn_hog(&hog_mark, &["--rss", "16"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!hog.has_exited(), "killed while the daemon was stopped");
    daemon.signal(Signal::SIGCONT);

    let healthy = wait_for(TIMEOUT, || {
        matches!(daemon.get("/healthz"), (200, _)).then_some(())
    });
    assert!(
        healthy.is_some(),
        "/healthz not 200 after SIGCONT:\n{}",
        daemon.log()
    );
    assert!(
        super::ring::kernel_drops(&daemon) > 0.0,
        "a full ring while the daemon was stopped lost nothing (or the loss is not counted):\n{}",
        daemon.get("/metrics").1
    );
    let killed = wait_for(TIMEOUT, || hog.has_exited().then_some(()));
    assert!(
        killed.is_some(),
        "hog not killed after SIGCONT (its events were dropped: the refresh must find it):\n{}",
        daemon.log()
    );
    assert_every_kill_has_an_intent(&daemon.kill_log_path(), &[hog.pid()]);
    assert!(
        !bystander.has_exited(),
        "a process no rule names was killed"
    );
}

/// 100 SIGHUPs a second for three seconds, alternating a valid and a broken config,
/// while hogs are being killed: the daemon stays up and fresh, every reload is counted,
/// the broken ones are rejected with their line and leave the last good config in force
/// (the storm ends on a broken one; a hog started after it is killed), and every kill
/// has its intent record.
#[test]
fn a_storm_of_sighups() {
    if !require(&[Needs::Root]) {
        return;
    }
    let mark = marker("sighup-storm");
    let good = config(&format!(
        "lock_memory = false\n[safety]\nmax_kills = 1000\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n{}",
        rule("storm", &mark, "8MiB", "action = \"kill\"")
    ));
    let broken = format!("bogus_key = 1\n{good}");
    let daemon = Daemon::start(&good, &["--source", "procfs"]);
    let mut hogs = Vec::new();
    for round in 0..300 {
        // Half the reloads read a broken file, half a good one (the file is replaced
        // whole by a rename, as editors and config managers do).
        let text = if round % 2 == 0 { &broken } else { &good };
        let staged = daemon.dir.path().join("staged.toml");
        std::fs::write(&staged, text).expect("stage config");
        std::fs::rename(&staged, daemon.config_path()).expect("replace config");
        daemon.signal(Signal::SIGHUP);
        if round % 100 == 0 {
            // Ready below the rule's 8 MiB, then past it: a hog already above the
            // threshold could be killed before it says it started.
            hogs.push(spawn_hog(
                &mark,
                &["--rss", "2", "--grow", "32", "--max", "16"],
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = wait_for(TIMEOUT, || {
        hogs.iter_mut().all(|hog| hog.has_exited()).then_some(())
    });
    assert!(
        killed.is_some(),
        "hogs not killed during the storm:\n{}",
        daemon.log()
    );
    // The storm ends on a broken file: the last good config must stay in force, so a
    // hog started after the rejection is still killed.
    let rejected = |daemon: &Daemon| daemon.log().matches("config reload rejected").count();
    let before = rejected(&daemon);
    std::fs::write(daemon.config_path(), &broken).expect("write the broken config");
    daemon.signal(Signal::SIGHUP);
    let seen = wait_for(TIMEOUT, || (rejected(&daemon) > before).then_some(()));
    assert!(
        seen.is_some(),
        "the last, broken reload was not rejected:\n{}",
        daemon.log()
    );
    hogs.push(spawn_hog(&mark, &["--rss", "16"]));
    let killed = wait_for(TIMEOUT, || {
        hogs.iter_mut().all(|hog| hog.has_exited()).then_some(())
    });
    assert!(
        killed.is_some(),
        "a hog started after a rejected reload was not killed: the old config did not stay in force:\n{}",
        daemon.log()
    );
    let pids: Vec<i32> = hogs.iter().map(|hog| hog.pid()).collect();
    assert_every_kill_has_an_intent(&daemon.kill_log_path(), &pids);
    let (status, body) = daemon.get("/healthz");
    assert_eq!(status, 200, "{body}\n{}", daemon.log());
    let (_, metrics) = daemon.get("/metrics");
    let reloads: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("guardian_config_reloads_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(reloads >= 1.0, "no reload counted:\n{metrics}");
    let log = daemon.log();
    assert!(
        log.contains("config reload rejected") && log.contains(":1:1"),
        "a broken reload was not rejected with its line:\n{log}"
    );
}
