//! cgroup reader for pure v2, hybrid and pure v1 hosts: finds the hierarchy that holds
//! the memory controller once, at start, then reads usage, limits, OOM counters, the
//! anon/file split and pressure of every memory cgroup from it. The root is a parameter
//! so fixture trees of each layout run the same code as the daemon.

mod layout;
mod oom_watch;
pub(crate) mod stats;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use tracing::debug;

use crate::{
    classify::{self, CgroupLine},
    model::{Cgroup, CgroupStats},
};

pub use layout::{Hierarchy, Layout};
pub use oom_watch::{OomCounterChange, OomWatch};

/// What can go wrong reading cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no memory controller under {root}: expected {root}/cgroup.controllers to list \
         \"memory\" (cgroup v2) or {root}/memory/memory.usage_in_bytes (cgroup v1); \
         is cgroupfs mounted there, and is the memory controller enabled \
         (no cgroup_disable=memory on the kernel command line)?"
    )]
    NoMemoryController { root: PathBuf },
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}: unexpected {value:?}")]
    Parse { path: PathBuf, value: String },
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
}

/// Reads the memory cgroups of one host.
#[derive(Debug, Clone)]
pub struct CgroupReader {
    layout: Layout,
    hierarchy: Hierarchy,
    memory_root: PathBuf,
}

impl CgroupReader {
    /// Detects the layout under `root` ("/sys/fs/cgroup") and the hierarchy holding the
    /// memory controller: v2 at the root when its `cgroup.controllers` lists memory,
    /// v1 at `memory/` (pure v1, or hybrid when `unified/` exists without memory), or
    /// v2 at `unified/` on the rare hybrid host that put memory there.
    pub fn detect(root: &Path) -> Result<Self, CgroupError> {
        let (layout, hierarchy, memory_root) = layout::detect(root)?;
        debug!(?layout, ?hierarchy, memory_root = %memory_root.display(), "cgroup layout");
        Ok(CgroupReader {
            layout,
            hierarchy,
            memory_root,
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The version of the hierarchy that holds the memory controller.
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// The directory of the memory hierarchy's root cgroup.
    pub fn memory_root(&self) -> &Path {
        &self.memory_root
    }

    /// The directory of the cgroup at `path` ("/docker/<id>"); rejects paths that are
    /// not absolute or that climb out of the hierarchy.
    pub fn dir(&self, path: &str) -> Result<PathBuf, CgroupError> {
        let invalid = |reason| CgroupError::InvalidPath {
            path: path.to_string(),
            reason,
        };
        let relative = path
            .strip_prefix('/')
            .ok_or_else(|| invalid("not absolute (cgroup paths start with /)"))?;
        if relative.split('/').any(|part| part == ".." || part == ".") {
            return Err(invalid("contains . or .. components"));
        }
        if path.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        Ok(if relative.is_empty() {
            self.memory_root.clone()
        } else {
            self.memory_root.join(relative)
        })
    }

    /// Every memory cgroup, root first, parents before children. Cgroups that vanish
    /// mid-walk are skipped silently; a cgroup that cannot be read is skipped with a
    /// debug log; only an unreadable root is an error. On v2, cgroups whose parent does
    /// not enable the memory controller have no memory files and are not listed (their
    /// processes are charged to the nearest listed ancestor).
    pub fn read_all(&self) -> Result<Vec<Cgroup>, CgroupError> {
        let root_stats = self.read("/")?.ok_or_else(|| CgroupError::Io {
            op: "read",
            path: self.memory_root.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        let mut out = vec![cgroup("/".to_string(), root_stats)];
        let mut pending = vec![(self.memory_root.clone(), String::new())];
        while let Some((dir, path)) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue; // Removed since its parent was listed.
            };
            for entry in entries.flatten() {
                if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    continue;
                }
                let child = format!("{path}/{}", entry.file_name().to_string_lossy());
                let child_dir = entry.path();
                match stats::read(self.hierarchy, &child_dir, false) {
                    Ok(Some(stats)) => {
                        out.push(cgroup(child.clone(), stats));
                        pending.push((child_dir, child));
                    }
                    Ok(None) => {}
                    Err(error) => debug!(cgroup = %child, %error, "skipping unreadable cgroup"),
                }
            }
        }
        Ok(out)
    }

    /// The figures of one cgroup ("/docker/<id>", "/" for the root); `None` if it is
    /// gone (or, on v2, has no memory controller).
    pub fn read(&self, path: &str) -> Result<Option<CgroupStats>, CgroupError> {
        let dir = self.dir(path)?;
        stats::read(self.hierarchy, &dir, dir == self.memory_root)
    }

    /// A process's memory cgroup path from its `/proc/PID/cgroup` lines: the line of the
    /// v1 memory controller, or the v2 `0::` line when memory is on v2.
    pub fn memory_path(&self, lines: &[CgroupLine]) -> Option<String> {
        lines
            .iter()
            .find(|line| match self.hierarchy {
                Hierarchy::V1 => line.controllers.iter().any(|c| c == "memory"),
                Hierarchy::V2 => line.hierarchy == 0 && line.controllers.is_empty(),
            })
            .map(|line| line.path.clone())
    }
}

/// The memory cgroup line of a process without knowing the host's layout: the line
/// naming the memory controller (v1, hybrid), else the v2 `0::` line. A controller sits
/// on one hierarchy only, so this agrees with [`CgroupReader::memory_path`].
pub fn memory_line(lines: &[CgroupLine]) -> Option<&CgroupLine> {
    lines
        .iter()
        .find(|line| line.controllers.iter().any(|c| c == "memory"))
        .or_else(|| {
            lines
                .iter()
                .find(|line| line.hierarchy == 0 && line.controllers.is_empty())
        })
}

fn cgroup(path: String, stats: CgroupStats) -> Cgroup {
    let class = classify::classify_path(&path);
    Cgroup { path, stats, class }
}
