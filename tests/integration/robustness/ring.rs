//! A ring buffer too small for a burst: the eBPF source with a one-page ring
//! (`ring_buffer_bytes = "4KiB"`) under bursts of thousands of forks. The
//! kernel drops what does not fit and the guardian counts it; the next refresh (the task
//! iterator) brings back what the lost events would have said: a hog started amid the
//! burst is seen and killed with its intent record, and /healthz stays 200.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use super::{TIMEOUT, assert_healthy};
use crate::{
    common::{
        Daemon, Needs, assert_every_kill_has_an_intent, marker, require, spawn_hog, wait_for, which,
    },
    killswitch::{config, rule},
};

/// Forks per burst, and bursts at most.
const FORKS: usize = 5000;
const BURSTS: usize = 5;

/// Forks children that exit at once as fast as Python can, 500 at a time then reaped
/// (few pids held: the host's pid_max is shared): a fork and an exit event each,
/// thousands within a fraction of a second.
pub(super) const BURST_SCRIPT: &str = "
import os, sys
n = int(sys.argv[1])
for _ in range(n // 500):
    for _ in range(500):
        if os.fork() == 0:
            os._exit(0)
    for _ in range(500):
        os.wait()
";

pub(super) fn kernel_drops(daemon: &Daemon) -> f64 {
    daemon
        .get("/metrics")
        .1
        .lines()
        .filter(|line| {
            line.starts_with("guardian_events_lost_total") && line.contains("side=\"kernel\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_one_page_ring_drops_a_burst_counts_it_and_catches_up() {
    if !require(&[Needs::Root, Needs::Bpf]) {
        return;
    }
    let mark = marker("small-ring");
    let daemon = Daemon::start(
        &config(&format!(
            "lock_memory = false\nring_buffer_bytes = \"4KiB\"\n\
             [safety]\nmax_kills = 1000\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n{}",
            rule("small-ring", &mark, "8MiB", "action = \"kill\"")
        )),
        &["--source", "ebpf"],
    );
    let python = which("python3").expect("python3 on PATH (setup --tests installs it)");
    let mut hog = None;
    // Bursts until the kernel reports a loss (the first almost always overflows one
    // page; the bound keeps a reader that keeps up from looping forever).
    for round in 0..BURSTS {
        let mut burst = Command::new(&python)
            .args(["-c", BURST_SCRIPT, &FORKS.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the fork burst");
        if round == 0 {
            hog = Some(spawn_hog(&mark, &["--rss", "16"]));
        }
        assert!(burst.wait().expect("wait the burst").success());
        if wait_for(Duration::from_secs(5), || {
            (kernel_drops(&daemon) > 0.0).then_some(())
        })
        .is_some()
        {
            break;
        }
    }
    let mut hog = hog.expect("hog started amid the burst");
    assert!(
        kernel_drops(&daemon) > 0.0,
        "{BURSTS} bursts of {FORKS} forks into a one-page ring lost nothing (or the loss is not counted):\n{}",
        daemon.get("/metrics").1
    );
    let killed = wait_for(TIMEOUT, || hog.has_exited().then_some(()));
    assert!(
        killed.is_some(),
        "the hog started amid the burst was not caught up with:\n{}",
        daemon.log()
    );
    assert_every_kill_has_an_intent(&daemon.kill_log_path(), &[hog.pid()]);
    assert_healthy(&daemon);
}
