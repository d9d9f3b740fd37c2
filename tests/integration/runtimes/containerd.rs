//! containerd through `ctr` (Debian's containerd: a standalone daemon, or the one Docker
//! runs): the busybox image imported from a `docker save` archive, a container in the
//! `default` namespace (cgroup `/default/<id>`), named from its bundle.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use super::{Case, HOG_SCRIPT, check, container_id, parent_of, run, wait_rss};
use crate::{
    common::{Needs, marker, require},
    docker::{TEST_IMAGE, ensure_test_image},
};

const IMAGE: &str = "docker.io/library/guardian-test:busybox";

/// The containerd socket: a standalone daemon's, else the one Docker runs.
fn address() -> Option<&'static str> {
    [
        "/run/containerd/containerd.sock",
        "/var/run/docker/containerd/containerd.sock",
    ]
    .into_iter()
    .find(|socket| std::os::unix::net::UnixStream::connect(socket).is_ok())
}

fn ctr(address: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["--address", address, "--namespace", "default"];
    all.extend_from_slice(args);
    run("ctr", &all)
}

/// Imports the Docker test image into containerd (offline: `docker save | ctr import`).
fn ensure_image(address: &str) {
    if ctr(address, &["image", "ls", "-q"]).is_ok_and(|list| list.lines().any(|l| l == IMAGE)) {
        return;
    }
    ensure_test_image();
    let mut save = Command::new("docker")
        .args(["save", TEST_IMAGE])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let status = Command::new("ctr")
        .args(["--address", address, "--namespace", "default"])
        .args(["image", "import", "-"])
        .stdin(save.stdout.take().expect("docker save stdout"))
        .stdout(Stdio::null())
        .status()
        .expect("ctr image import");
    let saved = save.wait().expect("wait for docker save");
    assert!(
        status.success() && saved.success(),
        "ctr image import failed"
    );
}

/// A ctr container and its task, removed on drop.
struct CtrContainer {
    address: &'static str,
    id: String,
}

impl CtrContainer {
    fn run_sh(address: &'static str, id: &str, marker: &str) -> CtrContainer {
        ensure_image(address);
        ctr(
            address,
            &["run", "-d", IMAGE, id, "sh", "-c", HOG_SCRIPT, marker],
        )
        .unwrap_or_else(|error| panic!("{error}"));
        CtrContainer {
            address,
            id: id.to_string(),
        }
    }

    /// The task's pid, from `ctr task ls`.
    fn pid(&self) -> i32 {
        let list = ctr(self.address, &["task", "ls"]).unwrap_or_else(|error| panic!("{error}"));
        list.lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                (fields.next()? == self.id).then(|| fields.next()?.parse().ok())?
            })
            .next()
            .unwrap_or_else(|| panic!("no task {} in\n{list}", self.id))
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        let _ = ctr(self.address, &["task", "kill", "-s", "SIGKILL", &self.id]);
        let _ = crate::common::wait_for(std::time::Duration::from_secs(10), || {
            ctr(self.address, &["task", "rm", &self.id]).ok()
        });
        let _ = ctr(self.address, &["task", "rm", "-f", &self.id]);
        let _ = ctr(self.address, &["container", "rm", &self.id]);
    }
}

#[test]
fn containerd_container_is_named_confirmed_and_spared_and_its_shim_protected() {
    if !require(&[Needs::Root, Needs::Containerd, Needs::Docker]) {
        return;
    }
    let Some(address) = address() else {
        assert!(
            !std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1"),
            "no containerd socket answers"
        );
        println!("skipped: no containerd socket answers");
        return;
    };
    let m = marker("containerd");
    let id = container_id(&m);
    let container = CtrContainer::run_sh(address, &id, &m);
    let pid = container.pid();
    wait_rss(pid, 50 * 1024 * 1024);
    let shim = parent_of(pid);
    assert!(
        Path::new(&format!("/proc/{shim}/exe")).exists(),
        "the shim is gone"
    );
    check(&Case {
        marker: &m,
        runtime: "containerd",
        id: &id,
        // A container ctr started is named by its id (namespace `default`).
        name: Some(&id),
        pod: None,
        pid,
        helper: shim,
        containers_config: "",
    });
}
