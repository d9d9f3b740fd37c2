//! A memory cgroup of our own with a small limit, on whichever hierarchy holds the
//! memory controller (v1 `/sys/fs/cgroup/memory`, or v2). On drop, the processes in it
//! (only ours: we made it) are killed and the cgroup removed.

use std::{
    ffi::CString,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, bail};

use super::harness::wait_for;

/// Our memory cgroup.
pub struct MemCgroup {
    path: PathBuf,
    v2: bool,
}

impl MemCgroup {
    /// Creates `<memory hierarchy>/<name>` limited to `limit` bytes.
    pub fn create(name: &str, limit: u64) -> anyhow::Result<MemCgroup> {
        let (root, v2) = memory_hierarchy()?;
        if v2 {
            enable_memory_controller(&root)?;
        }
        let path = root.join(name);
        std::fs::create_dir(&path)
            .with_context(|| format!("creating cgroup {}", path.display()))?;
        let cgroup = MemCgroup { path, v2 };
        if v2 {
            cgroup.write("memory.max", &limit.to_string())?;
            // No swap, so the limit is the limit (absent when swap accounting is off).
            if cgroup.path.join("memory.swap.max").exists() {
                cgroup.write("memory.swap.max", "0")?;
            }
        } else {
            cgroup.write("memory.limit_in_bytes", &limit.to_string())?;
        }
        Ok(cgroup)
    }

    /// The cgroup's path inside its hierarchy, as /proc/PID/cgroup shows it.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// OOM kills in this cgroup so far (v1 memory.oom_control, v2 memory.events).
    pub fn oom_kills(&self) -> anyhow::Result<u64> {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let path = self.path.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
            .with_context(|| format!("no oom_kill line in {}", path.display()))
    }

    /// Makes `command` join this cgroup between fork and exec.
    pub fn join_on_spawn(&self, command: &mut Command) -> anyhow::Result<()> {
        let procs = CString::new(
            self.path
                .join("cgroup.procs")
                .as_os_str()
                .as_encoded_bytes(),
        )
        .context("cgroup path holds a NUL")?;
        // SAFETY: the hook only calls async-signal-safe open/write/close on a path prepared
        // before the fork.
        unsafe {
            command.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let error = std::io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(error);
                }
                Ok(())
            });
        }
        Ok(())
    }

    fn write(&self, file: &str, value: &str) -> anyhow::Result<()> {
        let path = self.path.join(file);
        std::fs::write(&path, value)
            .with_context(|| format!("writing {value} to {}", path.display()))
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let _ = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            let pids = self.pids();
            for pid in &pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Ok(pids.is_empty().then_some(()))
        });
        if let Err(error) = std::fs::remove_dir(&self.path) {
            eprintln!(
                "bench: could not remove cgroup {}: {error}",
                self.path.display()
            );
        }
    }
}

/// On v2 a child only gets memory files when its parent delegates the controller.
fn enable_memory_controller(root: &Path) -> anyhow::Result<()> {
    let control = root.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control).unwrap_or_default();
    if enabled.split_whitespace().any(|c| c == "memory") {
        return Ok(());
    }
    std::fs::write(&control, "+memory")
        .with_context(|| format!("enabling the memory controller in {}", control.display()))
}

/// The hierarchy with the memory controller: (its root, whether it is v2).
fn memory_hierarchy() -> anyhow::Result<(PathBuf, bool)> {
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let controllers = Path::new(root).join("cgroup.controllers");
        if std::fs::read_to_string(&controllers)
            .is_ok_and(|text| text.split_whitespace().any(|c| c == "memory"))
        {
            return Ok((PathBuf::from(root), true));
        }
    }
    let v1 = PathBuf::from("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").exists() {
        return Ok((v1, false));
    }
    bail!("no memory cgroup controller on v1 or v2")
}
