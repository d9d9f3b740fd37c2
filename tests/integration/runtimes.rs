//! Real container runtimes, each started by the test with an image imported offline
//! (busybox): Podman, containerd through `ctr`, LXC (Docker's are in killswitch and
//! docker.rs). For each: the classification names the runtime, the id and the name; a
//! hog inside is spared by a host rule while its host twin is killed; the runtime's
//! helper (conmon, the shim, the LXC monitor) is protected. And containerd's CRI plugin,
//! as kubelet drives it: names with the pod's namespace and name from the CRI socket.

mod containerd;
mod cri;
mod lxc;
mod podman;

use std::{path::Path, process::Command};

use sha2::Digest as _;

use crate::{
    common::{Daemon, spawn_hog, wait_for},
    killswitch::{self, config, containers::explain, records_for, wait_exit},
};

/// The shell a container runs: ~60 MB held in a variable (the trailing `:` keeps busybox
/// sh from exec'ing `sleep`, which would drop the memory); the marker is `$0`.
pub const HOG_SCRIPT: &str = "x=$(head -c 60000000 /dev/zero | tr '\\0' a); sleep 100000; :";

/// 64 hex digits derived from `seed`, as runtimes name containers.
pub fn container_id(seed: &str) -> String {
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

/// Runs `program ARGS`, returning stdout on success.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("{program} {}: {error}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A directory holding busybox and its applet links: the image every runtime imports.
pub fn busybox_rootfs() -> tempfile::TempDir {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .expect("busybox is missing: apt-get install busybox-static");
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    let list = run(&busybox.to_string_lossy(), &["--list"]).expect("busybox --list");
    for applet in list.lines().map(str::trim) {
        if !applet.is_empty() && applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
        }
    }
    dir
}

/// The parent of `pid` (field 4 of /proc/PID/stat).
pub fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm end") + 2..];
    after
        .split(' ')
        .nth(1)
        .and_then(|ppid| ppid.parse().ok())
        .expect("ppid")
}

/// What the test expects of one runtime's container.
pub struct Case<'a> {
    pub marker: &'a str,
    /// The classification's runtime label.
    pub runtime: &'a str,
    pub id: &'a str,
    /// The name `guardian explain` must report (`None`: the id is the name, as for LXC).
    pub name: Option<&'a str>,
    /// The pod's namespace and name the runtime must report, for a Kubernetes container.
    pub pod: Option<(&'a str, &'a str)>,
    /// The container's hog (its main process).
    pub pid: i32,
    /// The runtime helper above it, which must be protected.
    pub helper: i32,
    /// Config lines the daemon needs to reach the runtime (sockets, dirs).
    pub containers_config: &'a str,
}

/// Classification, name and confirmation; the helper protected; then a host rule kills
/// the host twin and spares the container.
pub fn check(case: &Case<'_>) {
    let explained = explain_with(case.pid, case.containers_config);
    let class = &explained["classification"];
    assert_eq!(class["kind"], "container", "{explained}");
    assert_eq!(class["runtime"], case.runtime, "{explained}");
    assert_eq!(class["id"], case.id, "{explained}");
    if let Some(name) = case.name {
        assert_eq!(explained["container"]["name"], name, "{explained}");
    }
    if let Some((namespace, pod)) = case.pod {
        assert_eq!(
            explained["container"]["pod_namespace"], namespace,
            "{explained}"
        );
        assert_eq!(explained["container"]["pod_name"], pod, "{explained}");
    }
    let verdict = explained["vetted"]["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict == "confirmed" || verdict == "known-to-runtime",
        "not confirmed: {explained}"
    );
    let helper = explain(case.helper);
    assert_eq!(helper["protected"]["reason"], "runtime-helper", "{helper}");

    let rule = format!(
        "[[rule]]\nname = \"host\"\nthreshold = \"40MiB\"\ngrace = \"2s\"\n\
         match = {{ cmdline = '{}( |$)' }}\n\n{}\n",
        regex::escape(case.marker),
        case.containers_config
    );
    let mut twin = spawn_hog(case.marker, &["--rss", "60"]);
    let daemon = Daemon::start(&config(&rule), &["--source", "procfs"]);
    wait_exit(&mut twin, &daemon);
    std::thread::sleep(killswitch::SPARE_WAIT);
    assert!(
        Path::new(&format!("/proc/{}", case.pid)).exists(),
        "the container's process was killed\n{}",
        daemon.log()
    );
    assert!(
        records_for(&daemon, case.pid).is_empty(),
        "the kill log names the container's process"
    );
    if let Some(name) = case.name {
        let named = wait_for(std::time::Duration::from_secs(30), || {
            let containers = daemon.get_json("/api/v1/containers");
            (containers[case.id]["name"] == name).then_some(())
        });
        assert!(
            named.is_some(),
            "the daemon never named {}\n{}",
            case.id,
            daemon.log()
        );
        let (_, metrics) = daemon.get("/metrics");
        let series = format!("container_id=\"{}\",container_name=\"{name}\"", case.id);
        assert!(
            metrics.contains(&series),
            "no guardian_container_info with {series}"
        );
        if let Some((namespace, pod)) = case.pod {
            let containers = daemon.get_json("/api/v1/containers");
            assert_eq!(
                containers[case.id]["pod_namespace"], namespace,
                "{containers}"
            );
            assert_eq!(containers[case.id]["pod_name"], pod, "{containers}");
            let info = metrics
                .lines()
                .find(|line| line.starts_with("guardian_container_info{") && line.contains(&series))
                .unwrap_or_default();
            for label in [
                format!("pod_name=\"{pod}\""),
                format!("pod_namespace=\"{namespace}\""),
            ] {
                assert!(info.contains(&label), "no {label} in {info}");
            }
        }
    }
}

/// `guardian explain PID --json`, with `containers_config` (when any) as its config, so
/// it asks the runtimes the test started.
fn explain_with(pid: i32, containers_config: &str) -> serde_json::Value {
    if containers_config.is_empty() {
        return explain(pid);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("guardian.toml");
    std::fs::write(&path, containers_config).expect("write config");
    let output = Command::new(crate::common::guardian_bin())
        .args(["explain", &pid.to_string(), "--json", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run guardian explain");
    assert!(output.status.success(), "guardian explain {pid} failed");
    serde_json::from_slice(&output.stdout).expect("explain prints JSON")
}

/// Waits until `pid`'s resident set reaches `bytes`.
pub fn wait_rss(pid: i32, bytes: u64) {
    let reached = wait_for(std::time::Duration::from_secs(60), || {
        (crate::docker::rss_bytes(pid)? >= bytes).then_some(())
    });
    assert!(reached.is_some(), "pid {pid} never reached {bytes} bytes");
}
