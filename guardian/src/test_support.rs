//! Helpers the unit tests share: a model process, and a child process of their own to
//! look at.

use std::{process::Child, time::Duration};

use crate::{
    classify::Classification,
    model::{MemoryUsage, Process, ProcessKey},
};

/// A plain host process `p<pid>` with `rss` bytes of anonymous memory.
pub fn process(pid: i32, start_ticks: u64, rss: u64) -> Process {
    Process {
        key: ProcessKey { pid, start_ticks },
        ppid: 1,
        uid: 0,
        comm: format!("p{pid}"),
        cmdline: vec![format!("p{pid}")].into(),
        kernel_thread: false,
        oom_score_adj: 0,
        memory: MemoryUsage::from_parts(rss, 0, 0, 0),
        cgroups: Vec::new().into(),
        memory_cgroup: None,
        class: Classification::default().into(),
        started_secs: 0.0,
    }
}

/// A `sleep` child of the test, killed and reaped on every path (tests only ever signal
/// processes they started).
pub struct Sleeper(Child);

impl Sleeper {
    pub fn spawn() -> Sleeper {
        Sleeper(
            std::process::Command::new("sleep")
                .arg("1000")
                .spawn()
                .expect("spawn sleep"),
        )
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Kills and reaps it: its pid is free for reuse afterwards.
    pub fn end(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.end();
    }
}

/// Waits until `pid` shows `comm` (a just-spawned child may still be the test binary).
pub fn wait_for_comm(pid: i32, comm: &str) {
    let path = format!("/proc/{pid}/comm");
    for _ in 0..500 {
        if std::fs::read_to_string(&path).is_ok_and(|text| text.trim_end() == comm) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{pid} never became {comm}");
}

/// A stand-in for /proc holding only `PID/exe` links, for the executable checks. A
/// system program's link leads (through a link with its name) to `/usr/bin/true`, a
/// root-owned system binary; anyone else's to a file others may write.
pub struct ExeRoot(tempfile::TempDir);

impl ExeRoot {
    pub fn new() -> ExeRoot {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("bin")).expect("bin dir");
        let anyones = dir.path().join("anyones");
        std::fs::write(&anyones, b"#!/bin/sh\n").expect("write");
        std::fs::set_permissions(
            &anyones,
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        ExeRoot(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// Makes `PID/exe` name `program`, a system binary or not.
    pub fn link(&self, pid: i32, program: &str, system: bool) {
        let root = self.0.path();
        let dir = root.join(if system { "bin" } else { "user" });
        std::fs::create_dir_all(&dir).expect("program dir");
        let named = dir.join(program);
        if !named.exists() {
            let target = if system {
                std::path::PathBuf::from("/usr/bin/true")
            } else {
                root.join("anyones")
            };
            std::os::unix::fs::symlink(target, &named).expect("program link");
        }
        let pid_dir = root.join(pid.to_string());
        std::fs::create_dir_all(&pid_dir).expect("pid dir");
        std::os::unix::fs::symlink(&named, pid_dir.join("exe")).expect("exe link");
    }
}
