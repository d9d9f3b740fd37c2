//! Log setup for every command: journald with structured fields when systemd connected
//! stderr to the journal, else text or JSON lines on stderr. `RUST_LOG` filters both
//! (default `info`).
//!
//! Under systemd each event's MESSAGE reads like the text log and each `tracing` field
//! is also a journal field prefixed `GUARDIAN_` (`pid = 42` is `GUARDIAN_PID=42`), so
//! `journalctl -u guardian GUARDIAN_PID=42` or `-o json` reads kill decisions as data
//! (see [`super::journald`]).

use std::{
    ffi::OsStr,
    io::IsTerminal as _,
    os::fd::{AsFd as _, BorrowedFd},
    os::unix::fs::MetadataExt as _,
};

use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

use super::{LogFormat, journald::JournaldLayer};

/// Filter used when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber. Journald wins over `format` when stderr is the
/// journal stream; if journald cannot be reached the logs go to stderr in `format` and
/// say why. Calling it twice keeps the first setup.
pub fn init(format: LogFormat) {
    let (filter, bad_filter) = filter();
    let mut journald_error = None;
    if stderr_is_journal() {
        match JournaldLayer::connect() {
            Ok(layer) => {
                if tracing_subscriber::registry()
                    .with(filter)
                    .with(layer)
                    .try_init()
                    .is_ok()
                {
                    report_bad_filter(bad_filter);
                }
                return;
            }
            Err(error) => journald_error = Some(error),
        }
    }
    let ansi = std::io::stderr().is_terminal();
    let installed = match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .fmt_fields(escaped_fields())
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    if installed.is_ok() {
        report_bad_filter(bad_filter);
        if let Some(error) = journald_error {
            tracing::warn!(%error, "JOURNAL_STREAM is set but journald is unreachable; logging to stderr");
        }
    }
}

/// Text-log fields with every control character escaped: a process's own text (comm,
/// command line, cgroup path) or a multi-line error can neither split one event over
/// several lines nor send terminal sequences to whoever tails the log.
fn escaped_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let raw = format!("{value:?}");
        let text = escape_controls(&raw);
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{field}={text}")
        }
    })
    .delimited(" ")
}

/// `text` with its control characters (C0, DEL, C1) as Rust escapes (`\n`, `\u{1b}`).
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// `RUST_LOG`, or the default with the reason `RUST_LOG` was not usable.
fn filter() -> (EnvFilter, Option<String>) {
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(error) => (
                EnvFilter::new(DEFAULT_FILTER),
                Some(format!(
                    "RUST_LOG={spec:?} is invalid ({error}); using {DEFAULT_FILTER:?}"
                )),
            ),
        },
        _ => (EnvFilter::new(DEFAULT_FILTER), None),
    }
}

fn report_bad_filter(bad_filter: Option<String>) {
    if let Some(message) = bad_filter {
        tracing::warn!("{message}");
    }
}

/// True when systemd connected our stderr to journald: `JOURNAL_STREAM` names stderr's
/// device and inode (a child that inherited the variable but not the fd does not match).
fn stderr_is_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM")
        .is_some_and(|stream| names_fd(&stream, std::io::stderr().as_fd()))
}

/// True when `stream` (a `JOURNAL_STREAM` value) is the device and inode of `fd`.
fn names_fd(stream: &OsStr, fd: BorrowedFd<'_>) -> bool {
    let Some(stream) = stream.to_str().and_then(parse_journal_stream) else {
        return false;
    };
    let Ok(fd) = fd.try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|meta| (meta.dev(), meta.ino()) == stream)
}

/// `JOURNAL_STREAM` is `DEVICE:INODE`, both decimal.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use std::os::{fd::AsFd as _, unix::fs::MetadataExt as _};

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            super::escape_controls("comm=\u{1b}[2J\u{7}\r\nnext\u{9b}"),
            "comm=\\u{1b}[2J\\u{7}\\r\\nnext\\u{9b}"
        );
        assert!(matches!(
            super::escape_controls("plain text"),
            std::borrow::Cow::Borrowed("plain text")
        ));
    }

    use super::{names_fd, parse_journal_stream};

    #[test]
    fn matches_the_fd_it_names_only() {
        let file = tempfile::tempfile().expect("temp file");
        let other = tempfile::tempfile().expect("temp file");
        let meta = file.metadata().expect("metadata");
        let stream = format!("{}:{}", meta.dev(), meta.ino());
        assert!(names_fd(stream.as_ref(), file.as_fd()));
        assert!(!names_fd(stream.as_ref(), other.as_fd()));
        assert!(!names_fd("garbage".as_ref(), file.as_fd()));
    }

    #[test]
    fn parses_device_and_inode() {
        assert_eq!(parse_journal_stream("8:123456"), Some((8, 123456)));
        assert_eq!(parse_journal_stream(" 0:1\n"), Some((0, 1)));
    }

    #[test]
    fn rejects_malformed_streams() {
        assert_eq!(parse_journal_stream(""), None);
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("8:"), None);
        assert_eq!(parse_journal_stream("a:1"), None);
        assert_eq!(parse_journal_stream("1:2:3"), None);
    }
}
