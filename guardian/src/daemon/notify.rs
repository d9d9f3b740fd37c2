//! sd_notify: tells systemd (a `Type=notify` unit) when the guardian is ready, alive,
//! reloading or stopping, and what it is doing (`STATUS=`), so a hung guardian is
//! restarted by the watchdog instead of looking alive while deaf.
//!
//! A datagram to `$NOTIFY_SOCKET` (a path, or an abstract socket written `@name`), as
//! `sd_notify(3)` describes. Everything is a no-op when `NOTIFY_SOCKET` is unset (run by
//! hand, in a test, under another supervisor). A failed send is logged, never fatal: the
//! guardian keeps guarding even when systemd cannot hear it.

use std::{
    ffi::{OsStr, OsString},
    os::unix::net::UnixDatagram,
    path::PathBuf,
    time::Duration,
};

/// Why a notification could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET {socket:?}: {op}: {source}")]
    Io {
        op: &'static str,
        socket: OsString,
        #[source]
        source: std::io::Error,
    },
    #[error("NOTIFY_SOCKET {socket:?} is neither an absolute path nor an abstract name (@...)")]
    BadAddress { socket: OsString },
}

/// Where notifications go: the socket named by `NOTIFY_SOCKET`, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    socket: Option<OsString>,
}

impl Notifier {
    /// The notifier systemd configured for this process through `NOTIFY_SOCKET`.
    pub fn from_env() -> Notifier {
        Notifier::new(std::env::var_os("NOTIFY_SOCKET").filter(|socket| !socket.is_empty()))
    }

    /// A notifier for an explicit socket (`None`: every send is a no-op).
    pub fn new(socket: Option<OsString>) -> Notifier {
        Notifier { socket }
    }

    /// Sends `state` (newline-separated `KEY=value` lines). `Ok(false)`: no socket, nothing sent.
    pub fn send(&self, state: &str) -> Result<bool, NotifyError> {
        let Some(socket) = &self.socket else {
            return Ok(false);
        };
        let io = |op| {
            move |source| NotifyError::Io {
                op,
                socket: socket.clone(),
                source,
            }
        };
        let sender = UnixDatagram::unbound().map_err(io("socket"))?;
        let sent = match target(socket)? {
            Target::Path(path) => sender.send_to(state.as_bytes(), path),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .map_err(io("abstract address"))?;
                sender.send_to_addr(state.as_bytes(), &addr)
            }
        }
        .map_err(io("send"))?;
        if sent != state.len() {
            return Err(io("send")(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short datagram: {sent} of {} bytes", state.len()),
            )));
        }
        Ok(true)
    }
}

enum Target<'a> {
    Path(PathBuf),
    Abstract(&'a [u8]),
}

fn target(socket: &OsStr) -> Result<Target<'_>, NotifyError> {
    use std::os::unix::ffi::OsStrExt as _;
    let bytes = socket.as_bytes();
    match bytes.first() {
        Some(b'@') => Ok(Target::Abstract(&bytes[1..])),
        Some(b'/') => Ok(Target::Path(PathBuf::from(socket))),
        _ => Err(NotifyError::BadAddress {
            socket: socket.to_owned(),
        }),
    }
}

/// `STATUS=` text on one line: systemd shows it in `systemctl status`.
fn status_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn ready_message(status: &str, pid: u32) -> String {
    format!("READY=1\nMAINPID={pid}\nSTATUS={}", status_line(status))
}

fn reloading_message(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\nSTATUS=reloading config")
}

fn send_logged(state: &str) {
    match Notifier::from_env().send(state) {
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "sd_notify failed; systemd may consider the guardian hung")
        }
    }
}

/// READY=1 with a status line: the sources are attached and the first scan is done (also
/// sent after a reload, which ends the RELOADING=1 state).
pub fn ready(status: &str) {
    send_logged(&ready_message(status, std::process::id()));
}

/// WATCHDOG=1: the pipeline is fresh. Call only when it is, every half
/// [`watchdog_interval`], so a hung guardian misses it and systemd restarts it.
pub fn watchdog() {
    send_logged("WATCHDOG=1");
}

/// STATUS=: what the guardian is doing (source, processes tracked, kills).
pub fn status(text: &str) {
    send_logged(&format!("STATUS={}", status_line(text)));
}

/// RELOADING=1: a SIGHUP reload started; follow with [`ready`] when it is done, whether
/// the new config was applied or rejected.
pub fn reloading() {
    send_logged(&reloading_message(monotonic_usec()));
}

/// STOPPING=1: shutdown began (programs are being detached, the kill log flushed).
pub fn stopping() {
    send_logged("STOPPING=1\nSTATUS=stopping");
}

/// How often systemd expects WATCHDOG=1 (`WatchdogSec=`), if it watches this process.
/// Ping at half of it.
pub fn watchdog_interval() -> Option<Duration> {
    parse_watchdog(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// `WATCHDOG_USEC` applies to us when `WATCHDOG_PID` is unset or names our pid.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok()? != own_pid
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants it alongside.
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return 0;
    }
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(now.tv_nsec).unwrap_or(0) / 1_000
}

#[cfg(test)]
mod tests {
    use std::{os::unix::net::UnixDatagram, time::Duration};

    use super::*;

    fn receive(listener: &UnixDatagram) -> String {
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut buf = [0u8; 4096];
        let len = listener.recv(&mut buf).expect("a datagram within 5 s");
        String::from_utf8(buf[..len].to_vec()).expect("UTF-8 datagram")
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).expect("bind listener");
        let notifier = Notifier::new(Some(path.into_os_string()));
        assert!(
            notifier
                .send(&ready_message("source=procfs processes=12", 42))
                .expect("send")
        );
        assert_eq!(
            receive(&listener),
            "READY=1\nMAINPID=42\nSTATUS=source=procfs processes=12"
        );
        assert!(notifier.send("WATCHDOG=1").expect("send"));
        assert_eq!(receive(&listener), "WATCHDOG=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("guardian-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind abstract listener");
        let notifier = Notifier::new(Some(format!("@{name}").into()));
        assert!(notifier.send(&reloading_message(1234)).expect("send"));
        assert_eq!(
            receive(&listener),
            "RELOADING=1\nMONOTONIC_USEC=1234\nSTATUS=reloading config"
        );
    }

    #[test]
    fn no_socket_is_a_no_op() {
        assert!(!Notifier::new(None).send("READY=1").expect("no-op"));
    }

    #[test]
    fn a_missing_socket_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("absent.sock");
        let error = Notifier::new(Some(path.clone().into_os_string()))
            .send("WATCHDOG=1")
            .expect_err("must fail");
        assert!(matches!(error, NotifyError::Io { op: "send", .. }));
        assert!(error.to_string().contains("absent.sock"), "{error}");
    }

    #[test]
    fn a_relative_socket_is_rejected() {
        let error = Notifier::new(Some("run/notify".into()))
            .send("READY=1")
            .expect_err("must fail");
        assert!(matches!(error, NotifyError::BadAddress { .. }), "{error}");
    }

    #[test]
    fn status_stays_on_one_line() {
        assert_eq!(status_line("a\nb\r\nc"), "a b  c");
    }

    #[test]
    fn watchdog_interval_applies_to_our_pid_only() {
        let five = Some(Duration::from_secs(5));
        assert_eq!(parse_watchdog(Some("5000000"), None, 7), five);
        assert_eq!(parse_watchdog(Some("5000000"), Some("7"), 7), five);
        assert_eq!(parse_watchdog(Some("5000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("5000000"), Some("x"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
    }

    #[test]
    fn monotonic_clock_moves() {
        let first = monotonic_usec();
        assert!(first > 0);
        assert!(monotonic_usec() >= first);
    }
}
