//! Killing one process safely through a pidfd, so a reused pid is never signalled.
//!
//! The start time in `/proc/PID/stat` is compared with the decision's [`ProcessKey`]
//! before the pidfd is opened and again after: if the pid changed hands before the open,
//! the second read shows the new owner's start time, and a pidfd, once open, always
//! names the process it was opened on. Signals go through `pidfd_send_signal`; the pidfd
//! turns readable when the process exits, which is how the exit is confirmed.

use std::{
    io,
    os::fd::OwnedFd,
    path::Path,
    time::{Duration, Instant},
};

use nix::errno::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
use tokio::io::unix::AsyncFd;

use serde::Serialize;

use crate::{audit::OutcomeKind, config::KillAction, model::ProcessKey, sources::kernfs};

/// How long the killer waits for the exit after SIGKILL before it reports `survived`
/// (tearing down many GiB takes a moment; a process stuck in the kernel takes longer).
pub const KILL_CONFIRM: Duration = Duration::from_secs(10);

/// What a kill attempt came to (the outcome record's fields, and the report's).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KillResult {
    pub outcome: OutcomeKind,
    pub signals_sent: Vec<String>,
    /// From the first signal to the exit.
    #[serde(rename = "time_to_exit_s", serialize_with = "seconds")]
    pub time_to_exit: Option<Duration>,
    pub detail: Option<String>,
}

/// A duration as seconds, the way the kill log writes `time_to_exit_s`.
fn seconds<S: serde::Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.map(|d| d.as_secs_f64()).serialize(serializer)
}

impl KillResult {
    /// Seconds from the first signal to the exit.
    pub fn time_to_exit_s(&self) -> Option<f64> {
        self.time_to_exit.map(|d| d.as_secs_f64())
    }

    fn not_signalled(outcome: OutcomeKind, detail: String) -> Self {
        KillResult {
            outcome,
            signals_sent: Vec::new(),
            time_to_exit: None,
            detail: Some(detail),
        }
    }
}

/// The start time (field 22 of `PROC/PID/stat`), or `None` when the pid is free.
pub(crate) fn read_start_ticks(proc_root: &Path, pid: i32) -> io::Result<Option<u64>> {
    let path = proc_root.join(pid.to_string()).join("stat");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error)
            if matches!(error.kind(), io::ErrorKind::NotFound)
                || error.raw_os_error() == Some(libc::ESRCH) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    kernfs::proc::stat(&bytes)
        .map(|stat| Some(stat.start_ticks))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: no start time in {:?}",
                    path.display(),
                    String::from_utf8_lossy(&bytes)
                ),
            )
        })
}

/// An open pidfd.
struct Pidfd(OwnedFd);

impl Pidfd {
    fn open(pid: i32) -> Result<Pidfd, Errno> {
        let pid = Pid::from_raw(pid).ok_or(Errno::ESRCH)?;
        pidfd_open(pid, PidfdFlags::empty())
            .map(Pidfd)
            .map_err(rustix_errno)
    }

    /// Registers the pidfd with the runtime's reactor, to await its readability.
    fn into_async(self) -> io::Result<AsyncFd<OwnedFd>> {
        // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which owns it until it is
        // dropped: the descriptor stays open and names the same pidfd all along.
        unsafe { AsyncFd::register_with_interest(self.0, tokio::io::Interest::READABLE) }
            .map_err(|error| error.into_parts().1)
    }

    fn send(&self, signal: Signal) -> Result<(), Errno> {
        Pidfd::send_on(&self.0, signal)
    }

    fn send_on(fd: &OwnedFd, signal: Signal) -> Result<(), Errno> {
        pidfd_send_signal(fd, signal).map_err(rustix_errno)
    }
}

/// rustix's errno as nix's, which the outcome mapping and messages use.
fn rustix_errno(errno: rustix::io::Errno) -> Errno {
    Errno::from_raw(errno.raw_os_error())
}

/// Waits until the pidfd is readable (the process exited) or `timeout` passes.
async fn wait_exit(fd: &AsyncFd<OwnedFd>, timeout: Duration) -> io::Result<bool> {
    match tokio::time::timeout(timeout, fd.readable()).await {
        Ok(Ok(_guard)) => Ok(true),
        Ok(Err(error)) => Err(error),
        Err(_elapsed) => Ok(false),
    }
}

/// Kills the process `key` names, if it still is the process holding that pid: SIGTERM
/// then SIGKILL after `grace` (or SIGKILL at once), and waits for the exit.
pub(crate) async fn kill(
    proc_root: &Path,
    key: ProcessKey,
    action: KillAction,
    grace: Duration,
) -> KillResult {
    if let Err(result) = same_process(proc_root, key, "before opening a pidfd") {
        return result;
    }
    let pidfd = match Pidfd::open(key.pid) {
        Ok(pidfd) => pidfd,
        Err(errno) => return errno_result(errno, key, "pidfd_open", Vec::new()),
    };
    if let Err(result) = same_process(proc_root, key, "after opening its pidfd") {
        return result;
    }
    let first = match action {
        KillAction::Term => (Signal::TERM, "SIGTERM"),
        KillAction::Kill => (Signal::KILL, "SIGKILL"),
    };
    if let Err(errno) = pidfd.send(first.0) {
        return errno_result(errno, key, "pidfd_send_signal", Vec::new());
    }
    let start = Instant::now();
    let mut sent = vec![first.1.to_string()];
    let fd = match pidfd.into_async() {
        Ok(fd) => fd,
        Err(error) => {
            return KillResult {
                outcome: OutcomeKind::Failed,
                signals_sent: sent,
                time_to_exit: None,
                detail: Some(format!("pid {}: cannot poll its pidfd: {error}", key.pid)),
            };
        }
    };
    let first_wait = match action {
        KillAction::Term => grace,
        KillAction::Kill => KILL_CONFIRM,
    };
    let exited = wait_exit(&fd, first_wait).await;
    if action == KillAction::Kill || !matches!(exited, Ok(false)) {
        return exit_result(key, sent, start, exited);
    }
    // Still alive after the grace period.
    match Pidfd::send_on(fd.get_ref(), Signal::KILL) {
        // It exited (and was reaped) between the wait and SIGKILL.
        Err(Errno::ESRCH) => return exit_result(key, sent, start, Ok(true)),
        Err(errno) => return errno_result(errno, key, "pidfd_send_signal SIGKILL", sent),
        Ok(()) => sent.push("SIGKILL".to_string()),
    }
    let exited = wait_exit(&fd, KILL_CONFIRM).await;
    exit_result(key, sent, start, exited)
}

/// Restarts `unit` through systemd (see `unit_restart`) when `key` still is the process
/// holding that pid (its main process), and waits for that process to exit; when
/// systemd refuses or cannot be asked, kills it as [`kill`] does and says why.
pub(crate) async fn restart_unit(
    proc_root: &Path,
    key: ProcessKey,
    unit: &str,
    action: KillAction,
    grace: Duration,
) -> KillResult {
    if let Err(result) = same_process(proc_root, key, "before opening a pidfd") {
        return result;
    }
    let fd = match Pidfd::open(key.pid).map(Pidfd::into_async) {
        Ok(Ok(fd)) => fd,
        Ok(Err(error)) => {
            return KillResult::not_signalled(
                OutcomeKind::Failed,
                format!("pid {}: cannot poll its pidfd: {error}", key.pid),
            );
        }
        Err(errno) => return errno_result(errno, key, "pidfd_open", Vec::new()),
    };
    if let Err(result) = same_process(proc_root, key, "after opening its pidfd") {
        return result;
    }
    let start = Instant::now();
    let job = match super::unit_restart::restart(unit).await {
        Ok(job) => job,
        Err(error) => {
            let mut result = kill(proc_root, key, action, grace).await;
            let said = result
                .detail
                .take()
                .map(|detail| format!("; {detail}"))
                .unwrap_or_default();
            result.detail = Some(format!("{error}; signalled instead{said}"));
            return result;
        }
    };
    let sent = vec![RESTART_UNIT.to_string()];
    // systemd stops the unit its own way (ExecStop, KillSignal, TimeoutStopSec).
    let exited = wait_exit(&fd, grace + KILL_CONFIRM).await;
    let mut result = exit_result(key, sent, start, exited);
    let done = format!("unit {unit} restarted through systemd's D-Bus API (job {job})");
    result.detail = Some(match result.detail.take() {
        Some(detail) => format!("{done}; {detail}"),
        None => done,
    });
    result
}

/// What the kill log lists among the signals for a unit restart.
pub const RESTART_UNIT: &str = "restart-unit";

fn exit_result(
    key: ProcessKey,
    signals_sent: Vec<String>,
    start: Instant,
    exited: io::Result<bool>,
) -> KillResult {
    match exited {
        Ok(true) => KillResult {
            outcome: OutcomeKind::Exited,
            signals_sent,
            time_to_exit: Some(start.elapsed()),
            detail: None,
        },
        Ok(false) => KillResult {
            outcome: OutcomeKind::Survived,
            detail: Some(format!(
                "pid {} still alive {}s after {}",
                key.pid,
                KILL_CONFIRM.as_secs(),
                signals_sent.last().map_or("the signal", String::as_str),
            )),
            signals_sent,
            time_to_exit: None,
        },
        Err(error) => KillResult {
            outcome: OutcomeKind::Failed,
            signals_sent,
            time_to_exit: None,
            detail: Some(format!(
                "pid {}: waiting for the exit failed: {error}",
                key.pid
            )),
        },
    }
}

/// `Ok` when `pid` still belongs to the process `key` names.
fn same_process(proc_root: &Path, key: ProcessKey, when: &str) -> Result<(), KillResult> {
    match read_start_ticks(proc_root, key.pid) {
        Ok(Some(ticks)) if ticks == key.start_ticks => Ok(()),
        Ok(Some(ticks)) => Err(KillResult::not_signalled(
            OutcomeKind::Vanished,
            format!(
                "pid {} now belongs to another process (start time {ticks}, decided on {}) \
                 {when}; not signalled",
                key.pid, key.start_ticks
            ),
        )),
        Ok(None) => Err(KillResult::not_signalled(
            OutcomeKind::Vanished,
            format!("pid {} exited {when}; not signalled", key.pid),
        )),
        Err(error) => Err(KillResult::not_signalled(
            OutcomeKind::Failed,
            format!(
                "pid {}: cannot read its start time {when}: {error}; not signalled",
                key.pid
            ),
        )),
    }
}

fn errno_result(errno: Errno, key: ProcessKey, call: &str, sent: Vec<String>) -> KillResult {
    let outcome = match errno {
        Errno::ESRCH => OutcomeKind::Vanished,
        Errno::EPERM | Errno::EACCES => OutcomeKind::PermissionDenied,
        _ => OutcomeKind::Failed,
    };
    KillResult {
        outcome,
        signals_sent: sent,
        time_to_exit: None,
        detail: Some(format!("pid {}: {call}: {}", key.pid, errno.desc())),
    }
}

#[cfg(test)]
mod tests;
