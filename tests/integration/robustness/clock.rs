//! Wall-clock jumps (an NTP step, a wrong RTC fixed by hand) seen by the daemon alone:
//! the host clock is shared and must not move, so Debian's libfaketime, preloaded into
//! the guardian, shifts its CLOCK_REALTIME by what a file says, reread on every call;
//! the monotonic clocks stay real (the kernel never steps them).

use std::path::Path;

use super::{TIMEOUT, wait_log};
use crate::{
    common::{
        Daemon, DaemonOptions, Needs, assert_every_kill_has_an_intent, assert_log_verifies, marker,
        require, spawn_hog, wait_for,
    },
    killswitch::{config, rule},
};

/// Where Debian's libfaketime puts its preload library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The dates (`YYYY-MM-DD`) of the daemon's log lines, in order.
fn log_dates(daemon: &Daemon) -> Vec<String> {
    daemon
        .log()
        .lines()
        .filter_map(|line| line.get(..10))
        .map(str::to_string)
        .collect()
}

/// Sets the daemon's clock offset and reloads, so a log line stamped with the new time
/// follows; returns that line's date.
fn jump(daemon: &Daemon, offsets: &Path, offset: &str, reloads: usize, settings: &str) -> String {
    std::fs::write(offsets, format!("{offset}\n")).expect("write the faketime offset");
    daemon.reload(settings, reloads);
    log_dates(daemon).pop().expect("a log line")
}

/// With at most one kill an hour, a hog is killed; then the daemon's wall clock jumps two
/// days back and 400 days ahead. A second hog stays held back by the rate limit through
/// both jumps (an hour of wall time "passed", none of real time), /healthz stays 200,
/// snapshots keep coming, and the kill log verifies.
#[test]
fn wall_clock_jumps_neither_open_the_brakes_nor_stall_the_pipeline() {
    if !require(&[Needs::Root]) {
        return;
    }
    if !Path::new(LIBFAKETIME).exists() {
        let reason = format!("{LIBFAKETIME} is missing (Debian's libfaketime; setup --tests)");
        assert!(
            !std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1"),
            "CI=true but {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    let clock_dir = tempfile::tempdir().expect("temp dir");
    let offsets = clock_dir.path().join("faketime");
    std::fs::write(&offsets, "+0\n").expect("write the faketime offset");
    let offsets_text = offsets.to_str().expect("UTF-8 temp path");
    let mark = marker("clock-jump");
    let settings = config(&format!(
        "lock_memory = false\n[safety]\nmax_kills = 1\nrate_window = \"1h\"\n\
         backoff = \"1ms\"\nmax_backoff = \"1ms\"\n{}",
        rule("clock", &mark, "8MiB", "action = \"kill\"")
    ));
    let daemon = Daemon::start_with(
        &settings,
        &["--source", "procfs"],
        &DaemonOptions {
            env: &[
                ("LD_PRELOAD", LIBFAKETIME),
                ("FAKETIME_TIMESTAMP_FILE", offsets_text),
                ("FAKETIME_NO_CACHE", "1"),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
            ],
            ..DaemonOptions::default()
        },
    );
    let started = log_dates(&daemon).first().cloned().expect("a log line");

    let mut first = spawn_hog(&mark, &["--rss", "16"]);
    let killed = wait_for(TIMEOUT, || first.has_exited().then_some(()));
    assert!(killed.is_some(), "first hog not killed:\n{}", daemon.log());

    let back = jump(&daemon, &offsets, "-2d", 1, &settings);
    assert!(
        back < started,
        "the daemon's clock did not jump back (log dated {back}, started {started}): is \
         libfaketime preloaded?\n{}",
        daemon.log()
    );
    let mut second = spawn_hog(&mark, &["--rss", "16"]);
    wait_log(&daemon, "safety.max_kills reached");
    let ahead = jump(&daemon, &offsets, "+400d", 2, &settings);
    assert!(
        ahead > started,
        "the daemon's clock did not jump ahead (log dated {ahead}, started {started})"
    );

    let tick = |daemon: &Daemon| daemon.get_json("/api/v1/status")["tick"].as_u64();
    let now = tick(&daemon).expect("tick");
    let advanced = wait_for(TIMEOUT, || {
        (tick(&daemon).expect("tick") > now + 10).then_some(())
    });
    assert!(
        advanced.is_some(),
        "snapshots stopped after the jump:\n{}",
        daemon.log()
    );
    super::assert_healthy(&daemon);
    assert!(
        !second.has_exited(),
        "a wall-clock jump opened the rate limit (1 kill per hour):\n{}",
        daemon.log()
    );
    assert_every_kill_has_an_intent(&daemon.kill_log_path(), &[first.pid()]);
    assert_log_verifies(
        &daemon.kill_log_path(),
        "the kill log after the clock jumps",
    );
}
