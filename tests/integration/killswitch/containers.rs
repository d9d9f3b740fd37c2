//! Container awareness: a host-scope rule kills a host process and spares a container
//! process with the same footprint, in a real Docker container and in hand-made cgroups
//! laid out like the other runtimes.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use sha2::Digest as _;

use super::{config, rule, wait_exit};
use crate::{
    common::{
        Daemon, DaemonOptions, Needs, TestCgroup, TestProcess, drop_ptrace, guardian_bin, marker,
        memory_hierarchy, require, spawn_hog, spawn_hog_with,
    },
    docker::TestContainer,
};

/// 64 hex digits derived from `seed`, as runtimes name containers.
fn container_id(seed: &str) -> String {
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

/// A pod UID (with dashes) derived from `seed`.
fn pod_uid(seed: &str) -> String {
    let h = container_id(seed);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A cgroup at a runtime's path; the ancestors it had to create are removed on drop,
/// after the leaf (and the test's processes in it).
pub struct LayoutCgroup {
    leaf: Option<TestCgroup>,
    created: Vec<PathBuf>,
}

impl LayoutCgroup {
    pub fn new(relative: &str) -> LayoutCgroup {
        let root = memory_hierarchy();
        let mut created = Vec::new();
        let mut dir = root.clone();
        let parts: Vec<&str> = relative.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => created.push(dir.clone()),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => panic!("mkdir {}: {error}", dir.display()),
            }
        }
        LayoutCgroup {
            leaf: Some(TestCgroup::new(relative, None)),
            created,
        }
    }

    /// Starts memhog (`args` plus the marker) inside this cgroup.
    pub fn spawn_hog(&self, marker: &str, args: &[&str]) -> TestProcess {
        let leaf = self.leaf.as_ref().expect("leaf");
        spawn_hog_with(marker, args, |command| leaf.enter(command))
    }
}

impl Drop for LayoutCgroup {
    fn drop(&mut self) {
        drop(self.leaf.take());
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Layout cgroups dropped newest first, so a parent one of them created is empty (and
/// removed) by the time its creator goes.
struct Layouts(Vec<LayoutCgroup>);

impl Drop for Layouts {
    fn drop(&mut self) {
        while let Some(cgroup) = self.0.pop() {
            drop(cgroup);
        }
    }
}

/// `guardian explain PID --json`.
pub fn explain(pid: i32) -> serde_json::Value {
    let output = Command::new(guardian_bin())
        .args(["explain", &pid.to_string(), "--json"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run guardian explain");
    assert!(output.status.success(), "guardian explain {pid} failed");
    serde_json::from_slice(&output.stdout).expect("explain prints JSON")
}

/// `guardian explain PID --json`: the classification's kind.
fn classified_as(pid: i32) -> String {
    explain(pid)["classification"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn docker_container_is_spared_while_its_host_twin_is_killed() {
    if !require(&[Needs::Root, Needs::Docker]) {
        return;
    }
    docker_twin("docker", &DaemonOptions::default());
}

/// A guardian without CAP_SYS_PTRACE (a unit with a trimmed capability set) cannot read
/// the shim's `/proc/PID/exe`, so it cannot confirm the container: it says so at start
/// and spares the container anyway, and still kills the host twin. (The packaged unit
/// once lacked the capability and killed a Docker container in the VM suite.)
#[test]
fn docker_container_is_spared_by_a_guardian_without_cap_sys_ptrace() {
    if !require(&[Needs::Root, Needs::Docker]) {
        return;
    }
    let daemon = docker_twin(
        "noptrace",
        &DaemonOptions {
            pre_exec: Some(drop_ptrace),
            ..DaemonOptions::default()
        },
    );
    assert!(
        daemon.log().contains("lacks CAP_SYS_PTRACE"),
        "no warning about the missing capability\n{}",
        daemon.log()
    );
}

/// A host rule on one marker: the host twin is killed, the container's shell holding the
/// same is spared and absent from the kill log.
fn docker_twin(name: &str, options: &DaemonOptions<'_>) -> Daemon {
    let m = marker(name);
    // ~60 MB held by the container's shell; the twin on the host holds the same. The
    // trailing `:` keeps busybox sh from exec'ing `sleep` (which would drop the memory).
    let container = TestContainer::run_sh(
        &m,
        "x=$(head -c 60000000 /dev/zero | tr '\\0' a); sleep 100000; :",
    );
    container.wait_rss(50 * 1024 * 1024);
    let pid = container.pid();
    assert_eq!(classified_as(pid), "container");
    // The container's argv is `sh -c SCRIPT MARKER`; the host twin's `memhog ... --marker
    // MARKER`: one pattern for both.
    let text = format!(
        "[[rule]]\nname = \"host\"\nthreshold = \"40MiB\"\ngrace = \"2s\"\n\
         match = {{ cmdline = '{}( |$)' }}\n",
        regex::escape(&m)
    );
    let mut twin = spawn_hog(&m, &["--rss", "60"]);
    let daemon = Daemon::start_with(&config(&text), &["--source", "procfs"], options);
    wait_exit(&mut twin, &daemon);
    std::thread::sleep(super::SPARE_WAIT);
    assert!(
        container.is_running(),
        "the container was killed\n{}",
        daemon.log()
    );
    assert!(
        super::records_for(&daemon, pid).is_empty(),
        "the kill log names the container's process"
    );
    daemon
}

/// Hand-made cgroups laid out like every runtime's: classified as that runtime's
/// containers, but no runtime helper (shim, conmon, monitor) is among the processes'
/// ancestors and no runtime knows the ids, so to a host rule they are host processes
/// (the real runtimes' containers are spared: see the Docker, Podman, containerd and
/// LXC tests).
#[test]
fn runtime_cgroup_layouts_without_a_runtime_are_killed_by_host_rules() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("layouts");
    let id = |n: u32| container_id(&format!("{m}-{n}"));
    let uid = pod_uid(&m);
    let uid_ = uid.replace('-', "_");
    let short = container_id(&m)[..12].to_string();
    let layouts = [
        // Kubernetes, kubelet's cgroupfs driver.
        format!("kubepods/burstable/pod{uid}/{}", id(1)),
        // containerd (CRI), systemd driver.
        format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/\
             cri-containerd-{}.scope",
            id(2)
        ),
        // CRI-O, systemd driver.
        format!(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/\
             crio-{}.scope",
            id(3)
        ),
        // Docker, systemd driver.
        format!("system.slice/docker-{}.scope", id(4)),
        // Podman, rootful and rootless.
        format!("machine.slice/libpod-{}.scope", id(5)),
        format!(
            "user.slice/user-4242.slice/user@4242.service/user.slice/libpod-{}.scope",
            id(6)
        ),
        // LXD / LXC.
        format!("lxc.payload.gt{short}"),
        // systemd-nspawn.
        format!("machine.slice/machine-gt{short}.scope"),
    ];
    let cgroups = Layouts(layouts.iter().map(|path| LayoutCgroup::new(path)).collect());
    let mut hogs: Vec<(String, TestProcess)> = layouts
        .iter()
        .zip(&cgroups.0)
        .map(|(path, cgroup)| (path.clone(), cgroup.spawn_hog(&m, &["--rss", "60"])))
        .collect();
    for (path, hog) in &hogs {
        let explained = explain(hog.pid());
        assert_eq!(
            explained["classification"]["kind"], "container",
            "layout {path}"
        );
        assert_eq!(
            explained["vetted"]["verdict"], "unconfirmed",
            "layout {path}"
        );
    }
    let daemon = Daemon::start(
        &config(&rule(
            "host",
            &m,
            "40MiB",
            "[safety]\nmax_kills = 100\nbackoff = \"0s\"\n",
        )),
        &["--source", "procfs"],
    );
    for (_, hog) in &mut hogs {
        wait_exit(hog, &daemon);
    }
}
