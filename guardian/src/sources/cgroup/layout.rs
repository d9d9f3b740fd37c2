//! Which cgroup layout a host runs, and where its memory controller is.

use std::{
    io,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::CgroupError;
use crate::sources::kernfs::cgroup::has_memory;

/// The host's cgroup layout, detected at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Only cgroup v1 hierarchies (`/sys/fs/cgroup/<controller>`).
    V1,
    /// Only the unified v2 hierarchy at `/sys/fs/cgroup`.
    V2,
    /// v1 controllers plus a v2 hierarchy at `/sys/fs/cgroup/unified` (systemd's hybrid
    /// mode; the memory controller is on v1 there).
    Hybrid,
}

/// The version of the hierarchy holding the memory controller: what decides the file
/// names (`memory.current` or `memory.usage_in_bytes`) and what the OOM counters mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    V1,
    V2,
}

/// Finds the layout and the memory hierarchy's root directory under `root`.
pub fn detect(root: &Path) -> Result<(Layout, Hierarchy, PathBuf), CgroupError> {
    if let Some(controllers) = controllers(root)? {
        return if has_memory(&controllers) {
            Ok((Layout::V2, Hierarchy::V2, root.to_path_buf()))
        } else {
            Err(CgroupError::NoMemoryController {
                root: root.to_path_buf(),
            })
        };
    }
    let unified = root.join("unified");
    let unified_controllers = controllers(&unified)?;
    let v1_memory = root.join("memory");
    if v1_memory.join("memory.usage_in_bytes").is_file() {
        let layout = if unified_controllers.is_some() {
            Layout::Hybrid
        } else {
            Layout::V1
        };
        return Ok((layout, Hierarchy::V1, v1_memory));
    }
    if unified_controllers.as_deref().is_some_and(has_memory) {
        return Ok((Layout::Hybrid, Hierarchy::V2, unified));
    }
    Err(CgroupError::NoMemoryController {
        root: root.to_path_buf(),
    })
}

/// `cgroup.controllers` of a v2 mount at `dir`; `None` when `dir` is no v2 root.
fn controllers(dir: &Path) -> Result<Option<String>, CgroupError> {
    let path = dir.join("cgroup.controllers");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(CgroupError::Io {
            op: "read",
            path,
            source,
        }),
    }
}
