//! A `tracing` layer that writes to journald's native socket: every event becomes one
//! journal entry whose MESSAGE reads like the text log (`message key=value ...`, so
//! plain `journalctl -u guardian` shows the pid, rule, error with line and column) and
//! whose fields are also stored one by one (`GUARDIAN_PID=42`, `GUARDIAN_RULE=...`), so
//! `journalctl GUARDIAN_RULE=host-over-300mb` or `-o json` read them as data.
//!
//! The protocol is systemd's native one (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/):
//! one datagram per entry, each field length-encoded. Spans are not exported (the
//! guardian logs events only).

use std::{
    fmt::{self, Write as _},
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
};

use tracing::{Event, Level, Subscriber, field::Field};
use tracing_subscriber::{Layer, layer::Context};

/// Where journald listens for native-protocol datagrams.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Prefix of the guardian's own fields, so they never collide with journald's.
const FIELD_PREFIX: &str = "GUARDIAN_";

/// Longest value kept when an entry is too large for one datagram.
const TRUNCATED_VALUE: usize = 4096;

/// Sends each event to journald; send failures are dropped (nowhere left to report them).
pub struct JournaldLayer {
    socket: UnixDatagram,
    path: PathBuf,
}

impl JournaldLayer {
    /// A layer for journald's socket at `path`; fails when nothing listens there.
    pub fn connect(path: &Path) -> std::io::Result<JournaldLayer> {
        let socket = UnixDatagram::unbound()?;
        // journald ignores an empty datagram: this only proves someone listens.
        socket.send_to(&[], path)?;
        Ok(JournaldLayer {
            socket,
            path: path.to_path_buf(),
        })
    }

    fn send(&self, entry: &Entry) {
        if let Err(error) = self.socket.send_to(&entry.encode(usize::MAX), &self.path)
            && error.raw_os_error() == Some(libc::EMSGSIZE)
        {
            let _ = self
                .socket
                .send_to(&entry.encode(TRUNCATED_VALUE), &self.path);
        }
    }
}

impl<S: Subscriber> Layer<S> for JournaldLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let entry = Entry {
            level: *meta.level(),
            target: meta.target(),
            file: meta.file(),
            line: meta.line(),
            fields,
        };
        self.send(&entry);
    }
}

/// The message and the other fields of one event, in the order they were recorded.
#[derive(Default)]
struct Fields {
    message: String,
    /// (name, value as stored in its own field, value as shown in MESSAGE)
    others: Vec<(&'static str, String, String)>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others
                .push((field.name(), value.to_string(), format!("{value:?}")));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.others.push((field.name(), text.clone(), text));
        }
    }
}

struct Entry<'a> {
    level: Level,
    target: &'a str,
    file: Option<&'a str>,
    line: Option<u32>,
    fields: Fields,
}

impl Entry<'_> {
    /// The native-protocol datagram, each value cut to `limit` bytes.
    fn encode(&self, limit: usize) -> Vec<u8> {
        let mut message = self.fields.message.clone();
        for (name, _, shown) in &self.fields.others {
            let _ = write!(message, " {name}={shown}");
        }
        let mut out = Vec::with_capacity(256 + message.len());
        put(&mut out, "MESSAGE", &message, limit);
        put(&mut out, "PRIORITY", priority(self.level), limit);
        put(&mut out, "SYSLOG_IDENTIFIER", "guardian", limit);
        put(&mut out, "TARGET", self.target, limit);
        if let Some(file) = self.file {
            put(&mut out, "CODE_FILE", file, limit);
        }
        if let Some(line) = self.line {
            put(&mut out, "CODE_LINE", &line.to_string(), limit);
        }
        for (name, value, _) in &self.fields.others {
            put(&mut out, &field_name(name), value, limit);
        }
        out
    }
}

/// syslog priorities: error 3, warning 4, notice 5 (info), info 6 (debug), debug 7.
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "5",
        Level::DEBUG => "6",
        Level::TRACE => "7",
    }
}

/// `GUARDIAN_` and the name in journald's alphabet: upper case, digits, `_`.
fn field_name(name: &str) -> String {
    let mut out = String::from(FIELD_PREFIX);
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    out.truncate(64);
    out
}

/// One field, length-encoded: `NAME\n`, the value's length (u64 LE), the value, `\n`.
fn put(out: &mut Vec<u8>, name: &str, value: &str, limit: usize) {
    let value = cut(value, limit);
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// `value` cut to at most `limit` bytes on a character boundary.
fn cut(value: &str, limit: usize) -> &str {
    if value.len() <= limit {
        return value;
    }
    let mut end = limit;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests;
