//! The killer against real processes this test starts (`sleep`, owned and reaped here).

use std::{
    path::Path,
    process::{Child, Command},
    time::Duration,
};

use super::*;

/// A child process killed and reaped on drop.
struct Sleeper(Child);

impl Sleeper {
    fn start(ignore_term: bool) -> Sleeper {
        let script = if ignore_term {
            // An ignored disposition survives exec: this sleep ignores SIGTERM.
            "trap '' TERM; exec sleep 1000"
        } else {
            "exec sleep 1000"
        };
        let child = Command::new("sh")
            .args(["-c", script])
            .spawn()
            .expect("spawn sleep");
        let sleeper = Sleeper(child);
        // Wait for the exec (and the trap) to be in place: comm turns into "sleep".
        for _ in 0..200 {
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", sleeper.pid()));
            if comm.is_ok_and(|comm| comm.trim() == "sleep") {
                return sleeper;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("sleep did not start");
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn key(&self) -> ProcessKey {
        let start_ticks = read_start_ticks(Path::new("/proc"), self.pid())
            .expect("read stat")
            .expect("running");
        ProcessKey {
            pid: self.pid(),
            start_ticks,
        }
    }

    fn exit_signal(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt as _;
        self.0.try_wait().ok().flatten().and_then(|s| s.signal())
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn start_ticks_parse_even_with_parentheses_in_comm() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("42")).expect("mkdir");
    let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 \
                1000 10 18446744073709551615";
    std::fs::write(dir.path().join("42/stat"), stat).expect("write");
    assert_eq!(
        read_start_ticks(dir.path(), 42).expect("parse"),
        Some(98765)
    );
    assert_eq!(read_start_ticks(dir.path(), 43).expect("absent"), None);
}

#[tokio::test]
async fn sigterm_is_enough_for_a_cooperative_process() {
    let mut sleeper = Sleeper::start(false);
    let result = kill(
        Path::new("/proc"),
        sleeper.key(),
        KillAction::Term,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(result.outcome, OutcomeKind::Exited, "{result:?}");
    assert_eq!(result.signals_sent, ["SIGTERM"]);
    assert!(result.time_to_exit.is_some());
    let _ = sleeper.0.wait();
    assert_eq!(sleeper.exit_signal(), Some(libc::SIGTERM));
}

#[tokio::test]
async fn a_process_ignoring_sigterm_gets_sigkill_after_grace() {
    let mut sleeper = Sleeper::start(true);
    let result = kill(
        Path::new("/proc"),
        sleeper.key(),
        KillAction::Term,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(result.outcome, OutcomeKind::Exited, "{result:?}");
    assert_eq!(result.signals_sent, ["SIGTERM", "SIGKILL"]);
    let _ = sleeper.0.wait();
    assert_eq!(sleeper.exit_signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn kill_action_sends_sigkill_at_once() {
    let mut sleeper = Sleeper::start(false);
    let result = kill(
        Path::new("/proc"),
        sleeper.key(),
        KillAction::Kill,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(result.outcome, OutcomeKind::Exited, "{result:?}");
    assert_eq!(result.signals_sent, ["SIGKILL"]);
    let _ = sleeper.0.wait();
    assert_eq!(sleeper.exit_signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn a_reused_pid_is_never_signalled() {
    let mut sleeper = Sleeper::start(false);
    let real = sleeper.key();
    // The decision was about an earlier process that held this pid.
    let stale = ProcessKey {
        pid: real.pid,
        start_ticks: real.start_ticks.saturating_sub(1),
    };
    let result = kill(Path::new("/proc"), stale, KillAction::Kill, Duration::ZERO).await;
    assert_eq!(result.outcome, OutcomeKind::Vanished, "{result:?}");
    assert!(result.signals_sent.is_empty());
    assert!(
        sleeper.0.try_wait().expect("try_wait").is_none(),
        "the process now holding the pid was signalled"
    );
}

#[tokio::test]
async fn a_process_that_is_gone_is_reported_vanished() {
    let mut sleeper = Sleeper::start(false);
    let key = sleeper.key();
    sleeper.0.kill().expect("kill");
    sleeper.0.wait().expect("reap");
    let result = kill(Path::new("/proc"), key, KillAction::Term, Duration::ZERO).await;
    assert_eq!(result.outcome, OutcomeKind::Vanished, "{result:?}");
    assert!(result.signals_sent.is_empty());
}
