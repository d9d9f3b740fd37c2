//! Orphans: processes whose parent is gone, reparented to PID 1 or to a subreaper.
//!
//! Linux does not say whether a process was reparented or started by its current
//! parent, and whether another process is a subreaper (`PR_SET_CHILD_SUBREAPER`) is not
//! visible in /proc. So a process counts as orphaned when its parent is PID 1, or when
//! its parent's comm is one of the well-known subreapers in [`SUBREAPERS`]. Services a
//! PID 1 init started itself also have parent 1: orphan rules must be narrowed with
//! matchers (a cmdline pattern, `unit = "session-*.scope"`, a user).

use std::fmt;

use serde::Serialize;

use crate::model::{Model, Process};

/// Process managers that set `PR_SET_CHILD_SUBREAPER` and so adopt orphans below them:
/// `systemd --user`, and the small inits of containers and desktops.
pub const SUBREAPERS: &[&str] = &["systemd", "tini", "dumb-init", "catatonit"];

/// Whom an orphan was reparented to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Adopter {
    Init,
    Subreaper { pid: i32, comm: String },
}

impl fmt::Display for Adopter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Adopter::Init => write!(f, "parent is PID 1"),
            Adopter::Subreaper { pid, comm } => write!(f, "parent {pid} ({comm}) is a subreaper"),
        }
    }
}

/// Whom `process` was reparented to, or `None` when its parent is an ordinary process.
pub(crate) fn adopter(process: &Process, model: &Model) -> Option<Adopter> {
    if process.key.pid == 1 || process.ppid <= 0 {
        return None;
    }
    if process.ppid == 1 {
        return Some(Adopter::Init);
    }
    let parent = model.process_by_pid(process.ppid)?;
    SUBREAPERS
        .contains(&parent.comm.as_str())
        .then(|| Adopter::Subreaper {
            pid: process.ppid,
            comm: parent.comm.clone(),
        })
}

/// Seconds since `process` started, given the seconds since boot now.
pub(crate) fn age_secs(process: &Process, uptime_secs: f64) -> f64 {
    (uptime_secs - process.started_secs).max(0.0)
}
