//! Podman (Debian's podman with conmon), rootful: `podman import` of the busybox rootfs,
//! a container holding memory, and Podman's Docker-compatible API service for the names.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::{Case, HOG_SCRIPT, busybox_rootfs, check, parent_of, run, wait_rss};
use crate::common::{Needs, marker, require, wait_for};

const IMAGE: &str = "localhost/guardian-test:busybox";

/// Global flags: without systemd (as on these machines) Podman needs the cgroupfs
/// manager and a file event log.
fn podman_args() -> Vec<&'static str> {
    if Path::new("/run/systemd/system").exists() {
        Vec::new()
    } else {
        vec!["--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    }
}

fn podman(args: &[&str]) -> Result<String, String> {
    let mut all = podman_args();
    all.extend_from_slice(args);
    run("podman", &all)
}

fn ensure_image() {
    if podman(&["image", "exists", IMAGE]).is_ok() {
        return;
    }
    let rootfs = busybox_rootfs();
    let tar = rootfs.path().with_extension("tar");
    run(
        "tar",
        &[
            "-C",
            &rootfs.path().to_string_lossy(),
            "-cf",
            &tar.to_string_lossy(),
            ".",
        ],
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let imported = podman(&["import", &tar.to_string_lossy(), IMAGE]);
    let _ = std::fs::remove_file(&tar);
    imported.unwrap_or_else(|error| panic!("{error}"));
}

/// A container the test started, removed on drop.
struct PodmanContainer {
    name: String,
}

impl PodmanContainer {
    fn run_sh(name: &str) -> PodmanContainer {
        ensure_image();
        // Limits the container may set without CAP_SYS_RESOURCE (Podman otherwise raises
        // nofile and nproc, which an unprivileged-capability root here cannot).
        podman(&[
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--name",
            name,
            IMAGE,
            "sh",
            "-c",
            HOG_SCRIPT,
            name,
        ])
        .unwrap_or_else(|error| panic!("{error}"));
        PodmanContainer {
            name: name.to_string(),
        }
    }

    fn inspect(&self, format: &str) -> String {
        podman(&["inspect", "-f", format, &self.name]).unwrap_or_else(|error| panic!("{error}"))
    }
}

impl Drop for PodmanContainer {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.name]);
    }
}

/// Podman's API service at its usual socket (where the guardian looks by default),
/// started by the test unless one already answers there; stopped on drop.
struct ApiService {
    child: Option<Child>,
}

/// Where rootful Podman's API socket lives.
const SOCKET: &str = "/run/podman/podman.sock";

impl ApiService {
    fn start() -> ApiService {
        if std::os::unix::net::UnixStream::connect(SOCKET).is_ok() {
            return ApiService { child: None };
        }
        let _ = std::fs::remove_file(SOCKET);
        if let Some(dir) = Path::new(SOCKET).parent() {
            std::fs::create_dir_all(dir).expect("mkdir /run/podman");
        }
        let mut args = podman_args();
        let uri = format!("unix://{SOCKET}");
        args.extend_from_slice(&["system", "service", "--time=0", &uri]);
        let child = Command::new("podman")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start podman system service");
        let service = ApiService { child: Some(child) };
        let up = wait_for(Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(SOCKET).ok()
        });
        assert!(
            up.is_some(),
            "podman system service never answered on {SOCKET}"
        );
        service
    }
}

impl Drop for ApiService {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(SOCKET);
        }
    }
}

#[test]
fn podman_container_is_named_confirmed_and_spared_and_conmon_protected() {
    if !require(&[Needs::Root, Needs::Podman]) {
        return;
    }
    let m = marker("podman");
    let container = PodmanContainer::run_sh(&m);
    let pid: i32 = container
        .inspect("{{.State.Pid}}")
        .parse()
        .expect("container pid");
    wait_rss(pid, 50 * 1024 * 1024);
    let id = container.inspect("{{.Id}}");
    let conmon = parent_of(pid);
    let _api = ApiService::start();
    check(&Case {
        marker: &m,
        runtime: "podman",
        id: &id,
        name: Some(&m),
        pod: None,
        pid,
        helper: conmon,
        containers_config: "",
    });
}
