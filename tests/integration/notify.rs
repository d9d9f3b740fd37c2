//! sd_notify from the real daemon to a socket the test listens on (`NOTIFY_SOCKET`), the
//! way systemd's manager receives it: READY=1 with the main pid and a status, WATCHDOG=1
//! on its own timer (even with a scan interval longer than the watchdog period),
//! RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.

use std::{
    os::unix::net::UnixDatagram,
    time::{Duration, Instant},
};

use nix::sys::signal::{Signal, kill};

use crate::common::{Daemon, DaemonOptions};

/// The notify socket systemd would hold, in a temp dir.
struct Manager {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Manager {
    fn new() -> Manager {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager {
            socket,
            _dir: dir,
            path,
        }
    }

    /// Datagrams until one satisfies `done` (returned last), within `timeout`.
    fn until(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no matching datagram; got {seen:?}");
            self.socket.set_read_timeout(Some(left)).expect("timeout");
            let Ok(len) = self.socket.recv(&mut buf) else {
                panic!("no matching datagram within {timeout:?}; got {seen:?}");
            };
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            let matched = done(&text);
            seen.push(text);
            if matched {
                return seen;
            }
        }
    }
}

fn signal(daemon: &Daemon, signal: Signal) {
    kill(nix::unistd::Pid::from_raw(daemon.child.id() as i32), signal).expect("signal guardian");
}

#[test]
fn tells_the_service_manager_ready_alive_reloading_and_stopping() {
    let manager = Manager::new();
    // A scan interval 60 times the watchdog period: the pings must come from their own
    // timer, not from the scan tick.
    let mut daemon = Daemon::start_with(
        "[daemon]\nscan_interval = \"60s\"\nlock_memory = false\n",
        &["--source", "procfs", "--dry-run"],
        &DaemonOptions {
            env: &[
                (
                    "NOTIFY_SOCKET",
                    manager.path.to_str().expect("UTF-8 socket path"),
                ),
                ("WATCHDOG_USEC", "1000000"),
            ],
            ..DaemonOptions::default()
        },
    );
    let pid = daemon.child.id();
    let ready = manager.until(Duration::from_secs(30), |text| text.contains("READY=1"));
    let ready = ready.last().expect("READY=1");
    assert!(ready.contains(&format!("MAINPID={pid}\n")), "{ready:?}");
    assert!(
        ready.contains("STATUS=source=procfs processes="),
        "{ready:?}"
    );

    // Three pings with at most the first tick's STATUS= among them: they follow their
    // own timer (every 0.5 s), not the minute-long scan tick.
    let pings = std::cell::Cell::new(0);
    let alive = manager.until(Duration::from_secs(30), |text| {
        if text == "WATCHDOG=1\n" {
            pings.set(pings.get() + 1);
        }
        pings.get() == 3
    });
    let ticks = alive
        .iter()
        .filter(|text| text.starts_with("STATUS="))
        .count();
    assert!(ticks <= 1, "pings waited for scan ticks: {alive:?}");

    signal(&daemon, Signal::SIGHUP);
    let reload = manager.until(Duration::from_secs(10), |text| text.contains("READY=1"));
    let reloading = reload
        .iter()
        .find(|text| text.starts_with("RELOADING=1\n"))
        .unwrap_or_else(|| panic!("RELOADING=1 before READY=1: {reload:?}"));
    let usec: u64 = reloading
        .lines()
        .find_map(|line| line.strip_prefix("MONOTONIC_USEC="))
        .and_then(|usec| usec.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 carries MONOTONIC_USEC: {reloading:?}"));
    assert!(usec > 0);

    signal(&daemon, Signal::SIGTERM);
    let stopping = manager.until(Duration::from_secs(10), |text| {
        text.starts_with("STOPPING=1\n")
    });
    assert!(
        stopping
            .last()
            .expect("STOPPING=1")
            .contains("STATUS=stopping"),
        "{stopping:?}"
    );
    assert!(daemon.stop().success(), "{}", daemon.log());
}
