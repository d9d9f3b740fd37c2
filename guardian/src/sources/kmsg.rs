//! OOM victims from the kernel log (`/dev/kmsg`), for procfs mode.
//!
//! Without eBPF the guardian learns of an OOM kill from cgroup counters, which say where
//! and how many but not who. The kernel also logs each kill (as cAdvisor reads it):
//!
//! ```text
//! oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=memhog,pid=2394,uid=0
//! Memory cgroup out of memory: Killed process 2394 (memhog) total-vm:52192kB, anon-rss:48896kB, file-rss:1784kB, shmem-rss:0kB, UID:0 pgtables:144kB oom_score_adj:0
//! ```
//!
//! The "Killed process" line is printed for every victim; the `oom-kill:` line comes
//! first but is rate limited, so it only adds the memory cgroups and the constraint when
//! present. Pids are the initial PID namespace's.

use std::{
    fs::File,
    io::{ErrorKind, Read as _, Seek as _, SeekFrom},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use crate::model::OomScope;

/// One OOM victim as the kernel logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedVictim {
    pub pid: i32,
    pub comm: String,
    pub uid: Option<u32>,
    /// `Cgroup` for "Memory cgroup out of memory", else `Host`.
    pub scope: OomScope,
    /// The victim's memory cgroup (`task_memcg=`), when the `oom-kill:` line was logged.
    pub task_memcg: Option<String>,
    /// The cgroup whose limit was hit (`oom_memcg=`), for cgroup OOMs.
    pub oom_memcg: Option<String>,
    /// `CONSTRAINT_MEMCG`, `CONSTRAINT_NONE`, ...
    pub constraint: Option<String>,
    pub anon_rss_bytes: Option<u64>,
    pub file_rss_bytes: Option<u64>,
    pub shmem_rss_bytes: Option<u64>,
    pub oom_score_adj: Option<i32>,
    /// When the kernel logged it (CLOCK_MONOTONIC µs, the record's timestamp).
    pub logged_us: u64,
}

/// The `oom-kill:` line, kept until its victim's "Killed process" line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct OomContext {
    pid: Option<i32>,
    constraint: Option<String>,
    oom_memcg: Option<String>,
    task_memcg: Option<String>,
}

/// Turns kernel log records into victims; remembers the last `oom-kill:` line.
#[derive(Debug, Default)]
pub struct VictimParser {
    context: Option<OomContext>,
}

impl VictimParser {
    /// Feeds one `/dev/kmsg` record (`prio,seq,usec,flags;message`); returns the victim a
    /// "Killed process" record names.
    pub fn record(&mut self, record: &str) -> Option<LoggedVictim> {
        let (header, message) = record.split_once(';')?;
        let logged_us = header.split(',').nth(2)?.parse().ok()?;
        // Continuation lines (" KEY=value") follow the message: not needed here.
        let message = message.lines().next()?;
        self.line(message, logged_us)
    }

    /// Feeds one message line.
    pub fn line(&mut self, message: &str, logged_us: u64) -> Option<LoggedVictim> {
        if let Some(fields) = message.strip_prefix("oom-kill:") {
            self.context = Some(context(fields));
            return None;
        }
        let (prefix, rest) = message.split_once(": Killed process ")?;
        let scope = if prefix.starts_with("Memory cgroup out of memory") {
            OomScope::Cgroup
        } else if prefix.starts_with("Out of memory") {
            OomScope::Host
        } else {
            return None;
        };
        let (pid, rest) = rest.split_once(" (")?;
        let pid: i32 = pid.parse().ok()?;
        // comm may hold spaces and parentheses: it ends at the last ") total-vm:".
        let (comm, fields) = rest.rsplit_once(") total-vm:")?;
        let context = self
            .context
            .take()
            .filter(|context| context.pid.is_none_or(|logged| logged == pid))
            .unwrap_or_default();
        Some(LoggedVictim {
            pid,
            comm: comm.to_owned(),
            uid: field(fields, "UID:").and_then(|uid| uid.parse().ok()),
            scope,
            task_memcg: context.task_memcg,
            oom_memcg: context.oom_memcg,
            constraint: context.constraint,
            anon_rss_bytes: kib(fields, "anon-rss:"),
            file_rss_bytes: kib(fields, "file-rss:"),
            shmem_rss_bytes: kib(fields, "shmem-rss:"),
            oom_score_adj: field(fields, "oom_score_adj:").and_then(|adj| adj.parse().ok()),
            logged_us,
        })
    }
}

/// `constraint=...,oom_memcg=/a,task_memcg=/a/b,task=x,pid=1,uid=0`; the memcg paths may
/// hold commas, so each value runs to the next known key.
fn context(fields: &str) -> OomContext {
    const KEYS: [&str; 9] = [
        "constraint=",
        ",nodemask=",
        ",cpuset=",
        ",mems_allowed=",
        ",oom_memcg=",
        ",task_memcg=",
        ",task=",
        ",pid=",
        ",uid=",
    ];
    let value = |key: &str| {
        let start = fields.find(key)? + key.len();
        let end = KEYS
            .iter()
            .filter_map(|next| fields[start..].find(next))
            .min()
            .map_or(fields.len(), |at| start + at);
        Some(fields[start..end].to_owned())
    };
    OomContext {
        pid: value(",pid=").and_then(|pid| pid.parse().ok()),
        constraint: value("constraint="),
        oom_memcg: value(",oom_memcg="),
        task_memcg: value(",task_memcg="),
    }
}

/// The token after `key` in `anon-rss:48896kB, UID:0 ...`.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let start = fields.find(key)? + key.len();
    fields[start..]
        .split([',', ' '])
        .next()
        .filter(|value| !value.is_empty())
}

fn kib(fields: &str, key: &str) -> Option<u64> {
    let kib: u64 = field(fields, key)?.strip_suffix("kB")?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Why the kernel log cannot be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read the kernel log {path}: {source} (OOM victims need CAP_SYSLOG; without it \
     procfs mode reports OOM kills from cgroup counters, without the victim)"
)]
pub struct KmsgError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The kernel log, read from its end without blocking.
#[derive(Debug)]
pub struct KmsgReader {
    file: File,
    parser: VictimParser,
    buffer: Vec<u8>,
    /// Records the kernel overwrote before they were read.
    lost: u64,
}

impl KmsgReader {
    /// Opens `path` (`/dev/kmsg`) at its end: kills logged before the start are history.
    pub fn open(path: &Path) -> Result<KmsgReader, KmsgError> {
        let error = |source| KmsgError {
            path: path.to_owned(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(error)?;
        file.seek(SeekFrom::End(0)).map_err(error)?;
        Ok(KmsgReader {
            file,
            parser: VictimParser::default(),
            // A record is at most about 1 KiB of text plus its continuation lines.
            buffer: vec![0; 8192],
            lost: 0,
        })
    }

    /// Every victim logged since the last call.
    pub fn drain(&mut self) -> Vec<LoggedVictim> {
        let mut victims = Vec::new();
        loop {
            match self.file.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(len) => {
                    let record = String::from_utf8_lossy(&self.buffer[..len]);
                    victims.extend(self.parser.record(&record));
                }
                // The ring buffer wrapped past our position: records were lost.
                Err(error) if error.raw_os_error() == Some(libc::EPIPE) => self.lost += 1,
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    tracing::warn!(%error, "reading the kernel log failed");
                    break;
                }
            }
        }
        victims
    }

    /// Records the kernel overwrote before the guardian read them.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests;
