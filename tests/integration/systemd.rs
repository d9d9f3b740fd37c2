//! The Debian package under a real systemd: a systemd-booted Docker container from an
//! image built locally with debootstrap (no registry), the .deb installed with dpkg, the
//! unit started, reloaded, hung and stopped.
//!
//! Cost: the first run builds `guardian-test:systemd` (debootstrap of a minimal Debian
//! with systemd, about 40 s and 150 MB with a near mirror); it is kept and reused. Set
//! `GUARDIAN_TEST_DEBIAN_MIRROR` for another mirror. The test then takes about a minute,
//! most of it waiting for the watchdog (`WatchdogSec=20s`, then SIGABRT, which a stopped
//! process only takes as SIGKILL after `TimeoutStopSec=10s`).
//!
//! The container runs with every capability this host grants (not `--privileged`: this
//! host's bounding set lacks CAP_SYS_RESOURCE, which `--privileged` insists on), the
//! host's cgroup tree and namespace, so the guardian inside sees real cgroups and can
//! load its eBPF programs. It sees only the container's processes and kills only the
//! test's marked workload.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

use crate::common::{Needs, marker, require, wait_for, which};

const IMAGE: &str = "guardian-test:systemd";
const UNIT: &str = "guardian.service";
const CONFIG: &str = "/etc/guardian/guardian.toml";
const METRICS: &str = "http://127.0.0.1:9471/metrics";
/// Exposure score the unit must stay at or below (`systemd-analyze security`).
const EXPOSURE_TARGET: f64 = 4.0;

#[test]
fn packaged_service_under_systemd() {
    if !require(&[Needs::Root, Needs::Docker, Needs::Bpf]) {
        return;
    }
    if !require_tool("cargo-deb", "`cargo xtask setup --tests` installs it") {
        return;
    }
    let started = Instant::now();
    let packages = tempfile::tempdir().expect("temp dir");
    let deb = build_deb(packages.path());
    if !ensure_image() {
        return;
    }
    let container = Container::boot(&marker("systemd"));
    container.copy_in(&deb, "/tmp/guardian.deb");
    container.copy_in(&crate::common::memhog_bin(), "/usr/local/bin/memhog");
    // postinst creates the state directory, enables and starts the unit.
    container.ok(&["dpkg", "-i", "/tmp/guardian.deb"]);
    assert_eq!(
        container
            .ok(&["stat", "-c", "%a %U", "/var/lib/guardian"])
            .trim(),
        "700 root"
    );
    assert_eq!(
        container.ok(&["systemctl", "is-enabled", UNIT]).trim(),
        "enabled"
    );

    verify_unit(&container);
    let first_pid = container.wait_active(Duration::from_secs(90));
    let metrics = container.wait_metrics(|body| body.contains("guardian_build_info"));
    assert!(
        metrics.contains("guardian_source_info{source=\"ebpf\""),
        "the sandboxed unit must still load its eBPF programs:\n{}\n{}",
        grep(&metrics, "guardian_source_info"),
        container.journal()
    );
    let status = container.show("StatusText");
    assert!(
        status.contains("ebpf"),
        "STATUS= names the source: {status:?}"
    );

    reload_applies_a_new_rule(&container, first_pid);
    reload_rejects_a_broken_config(&container, first_pid);
    watchdog_restarts_a_stopped_guardian(&container, first_pid);

    let stop = Instant::now();
    container.ok(&["systemctl", "stop", UNIT]);
    println!("systemctl stop took {:?}", stop.elapsed());
    assert_eq!(container.show("ActiveState"), "inactive");
    println!("systemd test took {:?}", started.elapsed());
}

/// `systemd-analyze verify` passes; `systemd-analyze security` is recorded and bounded.
fn verify_unit(container: &Container) {
    let verify = container.run(&["systemd-analyze", "verify", UNIT]);
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && !complaints.contains("guardian"),
        "systemd-analyze verify {UNIT}: {complaints}"
    );
    let security = container.ok(&["systemd-analyze", "security", "--no-pager", UNIT]);
    let score = exposure(&security).unwrap_or_else(|| panic!("no score in:\n{security}"));
    println!("systemd-analyze security {UNIT}: exposure {score}");
    assert!(
        score <= EXPOSURE_TARGET,
        "exposure {score} above {EXPOSURE_TARGET}:\n{security}"
    );
}

/// A reload with a new kill rule: applied without a restart, counted, and the rule kills
/// the test's marked workload with a structured journal entry.
fn reload_applies_a_new_rule(container: &Container, pid: u32) {
    let tag = marker("systemd-hog");
    container.write(
        CONFIG,
        &format!(
            "[daemon]\nscan_interval = \"1s\"\n\n\
             [[rule]]\nname = \"systemd-test\"\nthreshold = \"32MiB\"\nscope = \"any\"\n\
             action = \"kill\"\nmatch = {{ cmdline = \"{tag}\" }}\n"
        ),
    );
    container.ok(&["systemctl", "reload", UNIT]);
    container.wait_metrics(|body| body.contains("guardian_config_reloads_total{result=\"ok\"} 1"));
    assert_eq!(
        container.main_pid(),
        pid,
        "a reload must not restart the guardian"
    );

    let hog = format!("guardian-test-hog-{}", std::process::id());
    container.ok(&[
        "systemd-run",
        "--unit",
        &hog,
        "/usr/local/bin/memhog",
        "--rss",
        "64",
        "--marker",
        &tag,
    ]);
    let killed = wait_for(Duration::from_secs(60), || {
        let entries = container.ok(&["journalctl", "-u", UNIT, "-o", "json", "--no-pager"]);
        entries
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|entry| {
                entry.to_string().contains(&tag)
                    && entry
                        .as_object()
                        .is_some_and(|fields| fields.keys().any(|key| key == "GUARDIAN_PID"))
            })
    });
    let entry = killed.unwrap_or_else(|| {
        panic!(
            "no structured journal entry for the kill of {tag}:\n{}",
            container.journal()
        )
    });
    println!("journal kill entry: {entry}");
    let hog_state = container.ok(&["systemctl", "show", "-p", "Result", "--value", &hog]);
    let _ = container.run(&["systemctl", "reset-failed", &hog]);
    assert_eq!(hog_state.trim(), "signal", "the marked workload was killed");
}

/// A broken config is rejected with line and column; the old one keeps running.
fn reload_rejects_a_broken_config(container: &Container, pid: u32) {
    container.write(
        CONFIG,
        "[daemon]\nscan_interval = \"1s\"\nno_such_key = true\n",
    );
    container.ok(&["systemctl", "reload", UNIT]);
    container
        .wait_metrics(|body| body.contains("guardian_config_reloads_total{result=\"error\"} 1"));
    assert_eq!(container.main_pid(), pid);
    assert_eq!(container.show("ActiveState"), "active");
    let journal = container.journal();
    assert!(
        journal.contains(&format!("{CONFIG}:3:1")),
        "the rejection names line and column:\n{journal}"
    );
}

/// SIGSTOP: no more WATCHDOG=1, so systemd kills and restarts the guardian.
fn watchdog_restarts_a_stopped_guardian(container: &Container, pid: u32) {
    let stopped = Instant::now();
    container.ok(&["kill", "-STOP", &pid.to_string()]);
    let restarted = wait_for(Duration::from_secs(120), || {
        let now = container.main_pid();
        (now != 0 && now != pid && container.show("ActiveState") == "active").then_some(now)
    });
    assert!(
        restarted.is_some(),
        "the watchdog did not restart the stopped guardian:\n{}",
        container.journal()
    );
    println!(
        "watchdog restart after SIGSTOP took {:?}",
        stopped.elapsed()
    );
    let journal = container.journal();
    assert!(journal.contains("Watchdog timeout"), "{journal}");
    container.wait_metrics(|body| body.contains("guardian_build_info"));
}

/// The score in "→ Overall exposure level for guardian.service: 2.6 OK".
fn exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|line| line.contains("Overall exposure level"))?;
    line.split(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn grep(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|line| line.contains(needle))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Like [`require`] for a program on PATH.
fn require_tool(tool: &str, hint: &str) -> bool {
    if which(tool).is_some() {
        return true;
    }
    let reason = format!("needs {tool} on PATH; {hint}");
    if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") {
        panic!("CI=true but this test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
    false
}

/// The .deb from the binary under test (`cargo deb --no-build`: no second build).
fn build_deb(out: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "deb",
            "-p",
            "guardian",
            "--no-build",
            "--profile",
            "dev",
            "-o",
        ])
        .arg(out)
        .current_dir(root)
        .output()
        .expect("run cargo deb");
    assert!(
        output.status.success(),
        "cargo deb failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_dir(out)
        .expect("read .deb dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .expect("cargo deb wrote a .deb")
}

/// Builds [`IMAGE`] once (debootstrap, then `docker import`); later runs reuse it.
fn ensure_image() -> bool {
    if docker(&["image", "inspect", IMAGE]).status.success() {
        return true;
    }
    if !require_tool(
        "debootstrap",
        "`apt-get install debootstrap` (`cargo xtask setup --tests` installs it)",
    ) {
        return false;
    }
    let suite = host_debian_suite();
    let mirror = std::env::var("GUARDIAN_TEST_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    let dir = tempfile::Builder::new()
        .prefix("guardian-systemd-rootfs-")
        .tempdir_in("/var/tmp")
        .expect("temp dir for the rootfs");
    let rootfs = dir.path().join("rootfs");
    let started = Instant::now();
    eprintln!("building {IMAGE}: debootstrap {suite} from {mirror} (once; about 40 s)");
    let status = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=systemd,systemd-sysv,dbus,curl,procps,ca-certificates",
            &suite,
        ])
        .arg(&rootfs)
        .arg(&mirror)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run debootstrap");
    assert!(status.success(), "debootstrap {suite} failed ({status})");
    for leftover in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let _ = std::fs::remove_dir_all(rootfs.join(leftover));
        std::fs::create_dir_all(rootfs.join(leftover)).expect("recreate apt dir");
    }
    // Empty: systemd makes one on first boot of each container.
    std::fs::write(rootfs.join("etc/machine-id"), "").expect("machine-id");
    let import = format!(
        "tar -C '{}' -c . | docker import --change 'ENV container=docker' \
         --change 'CMD [\"/sbin/init\"]' - {IMAGE}",
        rootfs.display()
    );
    let status = Command::new("sh")
        .args(["-c", &import])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("docker import");
    assert!(status.success(), "{import} failed ({status})");
    eprintln!("built {IMAGE} in {:?}", started.elapsed());
    true
}

/// The image must run the binary built here: same Debian release as the host (bookworm
/// when the host is not Debian).
fn host_debian_suite() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        release
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim_matches('"').to_string())
    };
    match (field("ID="), field("VERSION_CODENAME=")) {
        (Some(id), Some(codename)) if id == "debian" && !codename.is_empty() => codename,
        _ => "bookworm".into(),
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
}

/// A systemd-booted container, removed on drop.
struct Container {
    name: String,
}

impl Container {
    fn boot(name: &str) -> Container {
        let run = docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--cap-add",
            "ALL",
            "--cap-drop",
            "SYS_RESOURCE",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "systempaths=unconfined",
            "--cgroupns",
            "host",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "--tmpfs",
            "/tmp",
            IMAGE,
            "/sbin/init",
        ]);
        let container = Container {
            name: name.to_string(),
        };
        assert!(
            run.status.success(),
            "docker run {IMAGE}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let booted = wait_for(Duration::from_secs(60), || {
            let state = container.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
            matches!(state.as_str(), "running" | "degraded").then_some(state)
        });
        assert!(
            booted.is_some(),
            "systemd did not boot in {name}: {}",
            String::from_utf8_lossy(&docker(&["logs", name]).stdout)
        );
        container
    }

    fn run(&self, command: &[&str]) -> Output {
        let mut args = vec!["exec", self.name.as_str()];
        args.extend_from_slice(command);
        docker(&args)
    }

    /// Runs `command` in the container; it must succeed. Returns stdout.
    fn ok(&self, command: &[&str]) -> String {
        let output = self.run(command);
        assert!(
            output.status.success(),
            "{command:?} in the container failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn copy_in(&self, from: &Path, to: &str) {
        let target = format!("{}:{to}", self.name);
        let copied = docker(&["cp", &from.display().to_string(), &target]);
        assert!(
            copied.status.success(),
            "docker cp {} {target}: {}",
            from.display(),
            String::from_utf8_lossy(&copied.stderr)
        );
    }

    fn write(&self, path: &str, text: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("file");
        std::fs::write(&file, text).expect("write file");
        self.copy_in(&file, path);
    }

    /// A property of the guardian unit (`systemctl show -p NAME --value`).
    fn show(&self, property: &str) -> String {
        self.ok(&["systemctl", "show", "-p", property, "--value", UNIT])
            .trim()
            .to_string()
    }

    fn main_pid(&self) -> u32 {
        self.show("MainPID").parse().unwrap_or(0)
    }

    /// Waits for the unit to be active (READY=1 received); returns its main pid.
    fn wait_active(&self, timeout: Duration) -> u32 {
        let active = wait_for(timeout, || {
            (self.show("ActiveState") == "active").then(|| self.main_pid())
        });
        active.unwrap_or_else(|| {
            panic!(
                "{UNIT} is {}:\n{}",
                self.show("ActiveState"),
                self.journal()
            )
        })
    }

    /// Polls /metrics (curl inside the container) until `accept` takes the body.
    fn wait_metrics(&self, accept: impl Fn(&str) -> bool) -> String {
        let body = wait_for(Duration::from_secs(60), || {
            let output = self.run(&["curl", "-sf", "--max-time", "5", METRICS]);
            let body = String::from_utf8_lossy(&output.stdout).into_owned();
            (output.status.success() && accept(&body)).then_some(body)
        });
        body.unwrap_or_else(|| {
            let last = self.run(&["curl", "-s", "--max-time", "5", METRICS]);
            panic!(
                "/metrics never showed what the test waits for; last:\n{}\n{}",
                String::from_utf8_lossy(&last.stdout),
                self.journal()
            )
        })
    }

    fn journal(&self) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["journalctl", "-u", UNIT, "--no-pager", "-n", "200"])
                .stdout,
        )
        .into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

#[test]
fn reads_the_exposure_score() {
    let report = "✓ UMask=  ...\n\n→ Overall exposure level for guardian.service: 2.6 OK 🙂\n";
    assert_eq!(exposure(report), Some(2.6));
    assert_eq!(exposure("nothing"), None);
}
