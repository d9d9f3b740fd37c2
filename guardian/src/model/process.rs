//! A process as the model knows it, whichever source filled it in.

use std::sync::Arc;

use serde::Serialize;

use crate::classify::{CgroupLine, Classification};

/// A process's identity: its pid and its start time (clock ticks after boot, field 22 of
/// `/proc/PID/stat`). A reused pid has another start time, so it is another key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProcessKey {
    pub pid: i32,
    pub start_ticks: u64,
}

/// Resident memory in bytes, split as the kernel counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryUsage {
    pub rss: u64,
    pub anon: u64,
    pub file: u64,
    pub shmem: u64,
    pub swap: u64,
}

impl MemoryUsage {
    /// Builds a usage from its parts, with `rss` their sum (as VmRSS is).
    pub fn from_parts(anon: u64, file: u64, shmem: u64, swap: u64) -> Self {
        MemoryUsage {
            rss: anon + file + shmem,
            anon,
            file,
            shmem,
            swap,
        }
    }
}

/// Everything known of one process.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    pub key: ProcessKey,
    pub ppid: i32,
    pub uid: u32,
    pub comm: String,
    /// Shared: a steady-state scan copies a process without copying its arguments.
    /// Serialized redacted, as one string: whatever shows a process shows no secret.
    #[serde(serialize_with = "serialize_redacted")]
    pub cmdline: Cmdline,
    /// Kernel threads have no mm and are never candidates for anything.
    pub kernel_thread: bool,
    pub oom_score_adj: i32,
    pub memory: MemoryUsage,
    /// The raw `/proc/PID/cgroup` lines, shared by every process with the same ones
    /// (most of a host's processes sit in a handful of cgroups).
    pub cgroups: Arc<[CgroupLine]>,
    /// Path of the process's cgroup in the hierarchy that holds the memory controller,
    /// shared like `cgroups` (a copy of the process copies no path).
    pub memory_cgroup: Option<Arc<str>>,
    /// Told from `cgroups` alone, so shared like them: one per distinct set of lines, not
    /// a copy (and its unit or container id strings) per process.
    pub class: Arc<Classification>,
    /// Seconds since boot at which the process started.
    pub started_secs: f64,
}

impl Process {
    /// The command line as one string (arguments joined by spaces), or `[comm]` for
    /// processes without one, as `ps` shows them.
    pub fn cmdline_text(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }
}

/// The arguments redacted and joined by spaces (see [`crate::redact::redact_argv`]).
fn serialize_redacted<S: serde::Serializer>(
    cmdline: &Cmdline,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::redact::redact_argv(&cmdline.to_vec()))
}

/// A command line as `/proc/PID/cmdline` holds it: the arguments in one shared string,
/// each ended by a NUL. One allocation per process instead of one per argument plus the
/// list (at 10,000 processes of two arguments, 0.5 instead of 1.4 MiB); the arguments are
/// borrowed from it when needed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmdline(Arc<str>);

impl Cmdline {
    /// Parses the raw file: NUL-separated arguments, a trailing NUL ending the last one;
    /// invalid UTF-8 is replaced (lossy). An empty file is no arguments.
    pub fn from_raw(raw: &[u8]) -> Cmdline {
        let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
        if raw.is_empty() {
            return Cmdline::default();
        }
        let mut text = String::with_capacity(raw.len() + 1);
        text.push_str(&String::from_utf8_lossy(raw));
        text.push('\0');
        Cmdline(text.into())
    }

    /// The arguments, in order.
    pub fn args(&self) -> std::str::SplitTerminator<'_, char> {
        self.0.split_terminator('\0')
    }

    /// The arguments as a list (for the redaction functions, which take one).
    pub fn to_vec(&self) -> Vec<&str> {
        self.args().collect()
    }

    /// True for a process without arguments (kernel threads, zombies).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The arguments joined by `separator`.
    pub fn join(&self, separator: &str) -> String {
        self.to_vec().join(separator)
    }
}

impl<S: AsRef<str>> FromIterator<S> for Cmdline {
    /// Arguments from a list (tests, fixtures); an argument is cut at a NUL, which no
    /// kernel argument holds.
    fn from_iter<I: IntoIterator<Item = S>>(args: I) -> Cmdline {
        let mut text = String::new();
        for arg in args {
            let arg = arg.as_ref();
            text.push_str(arg.split('\0').next().unwrap_or(arg));
            text.push('\0');
        }
        Cmdline(text.into())
    }
}

impl From<Vec<String>> for Cmdline {
    fn from(args: Vec<String>) -> Cmdline {
        args.into_iter().collect()
    }
}
