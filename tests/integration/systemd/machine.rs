//! A systemd-booted machine for the systemd test: `systemd-nspawn --boot` over a Debian
//! rootfs made once with debootstrap and kept in a cache directory. Each run boots it
//! with a tmpfs overlay (`--volatile=overlay`), so the cached tree never changes.
//!
//! Why nspawn and not Docker: Docker 20.10 (Debian's docker.io) does not know CAP_BPF or
//! CAP_PERFMON, so a container cannot give the unit the capabilities it ships with, and
//! `--privileged` fails on hosts whose bounding set lacks a capability (this one lacks
//! CAP_SYS_RESOURCE). nspawn passes every host capability (`--capability=all`) and, with
//! `bpf` added to its seccomp allow list, the unit's own sandbox is
//! what decides.
//!
//! The machine has its own PID namespace and network (loopback only): the guardian in it
//! sees and can signal only the machine's processes.

use std::{
    fs::File,
    os::{fd::AsRawFd as _, unix::process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::common::wait_for;

/// Debian packages the image needs besides the minimal base.
const PACKAGES: &str = "systemd,systemd-sysv,dbus,curl,procps,ca-certificates";

/// The cached rootfs, built on first use (about 40 s and 260 MB with a near mirror).
/// `None` (with a printed reason) when it cannot be built here.
pub fn rootfs() -> Option<PathBuf> {
    let suite = host_debian_suite();
    let cache = std::env::var_os("GUARDIAN_TEST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/guardian-test"), PathBuf::from);
    let dir = cache.join(format!("systemd-{suite}"));
    let stamp = dir.join(".guardian-test-complete");
    if stamp.exists() {
        return Some(dir);
    }
    if !super::require_tool("debootstrap", "`apt-get install debootstrap`") {
        return None;
    }
    let mirror = std::env::var("GUARDIAN_TEST_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    std::fs::create_dir_all(&cache).expect("create the test cache dir");
    let partial =
        RemoveOnDrop(cache.join(format!("systemd-{suite}.partial-{}", std::process::id())));
    let started = Instant::now();
    eprintln!(
        "building the systemd test rootfs {}: debootstrap {suite} from {mirror} (once; about 40 s)",
        dir.display()
    );
    let status = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={PACKAGES}"),
            &suite,
        ])
        .arg(&partial.0)
        .arg(&mirror)
        .stdout(Stdio::null())
        .status()
        .expect("run debootstrap");
    assert!(status.success(), "debootstrap {suite} failed ({status})");
    for leftover in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let _ = std::fs::remove_dir_all(partial.0.join(leftover));
        std::fs::create_dir_all(partial.0.join(leftover)).expect("recreate apt dir");
    }
    // Empty: each boot makes up its own machine id.
    std::fs::write(partial.0.join("etc/machine-id"), "").expect("machine-id");
    std::fs::write(partial.0.join("etc/hostname"), "guardian-test\n").expect("hostname");
    std::fs::write(partial.0.join(".guardian-test-complete"), "").expect("stamp");
    if std::fs::rename(&partial.0, &dir).is_err() && !stamp.exists() {
        panic!("cannot move the rootfs into {}", dir.display());
    }
    eprintln!("built {} in {:?}", dir.display(), started.elapsed());
    Some(dir)
}

/// The rootfs must run the binary built here: the host's Debian release (bookworm when
/// the host is not Debian).
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

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A booted machine; powered off and its cgroups removed on drop.
pub struct Machine {
    nspawn: Child,
    leader: u32,
    cgroups: Vec<PathBuf>,
    console_dir: tempfile::TempDir,
}

impl Machine {
    pub fn boot(rootfs: &Path, name: &str) -> Machine {
        let console = tempfile::tempdir().expect("temp dir");
        let log = File::create(console.path().join("console.log")).expect("console log");
        let cgroups = own_cgroups(name);
        let procs: Vec<File> = cgroups
            .iter()
            .map(|dir| {
                File::options()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .expect("open cgroup.procs")
            })
            .collect();
        let fds: Vec<i32> = procs.iter().map(|file| file.as_raw_fd()).collect();
        let mut command = Command::new("systemd-nspawn");
        command
            .args(["--quiet", "--boot", "--directory"])
            .arg(rootfs)
            .args([
                "--volatile=overlay",
                "--register=no",
                "--keep-unit",
                "--capability=all",
                "--system-call-filter=bpf",
                "--private-network",
                "--console=read-only",
                "--machine",
                name,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        // SAFETY: between fork and exec only write(2) on descriptors opened before the
        // fork: nspawn (and the machine under it) starts in the test's own cgroups.
        unsafe {
            command.pre_exec(move || {
                for fd in &fds {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let nspawn = command.spawn().expect("start systemd-nspawn");
        drop(procs);
        let mut machine = Machine {
            nspawn,
            leader: 0,
            cgroups,
            console_dir: console,
        };
        let pid = machine.nspawn.id();
        let leader = wait_for(Duration::from_secs(30), || {
            let children =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            children.split_whitespace().find_map(|child| {
                let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).ok()?;
                (comm.trim() == "systemd")
                    .then(|| child.parse().ok())
                    .flatten()
            })
        });
        machine.leader =
            leader.unwrap_or_else(|| panic!("no systemd in {name}:\n{}", machine.console()));
        let booted = wait_for(Duration::from_secs(60), || {
            let state = machine.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
            matches!(state.as_str(), "running" | "degraded").then_some(state)
        });
        assert!(
            booted.is_some(),
            "{name} did not boot:\n{}",
            machine.console()
        );
        machine
    }

    /// Runs `command` inside the machine (all its namespaces).
    pub fn run(&self, command: &[&str]) -> Output {
        Command::new("nsenter")
            .arg("--target")
            .arg(self.leader.to_string())
            .args(["--all", "--"])
            .args(command)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Runs `command`; it must succeed. Returns stdout.
    pub fn ok(&self, command: &[&str]) -> String {
        let output = self.run(command);
        assert!(
            output.status.success(),
            "{command:?} in the machine failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The machine's view of `path` (through its root, overlay included).
    fn inside(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.leader))
    }

    pub fn copy_in(&self, from: &Path, to: &str) {
        std::fs::copy(from, self.inside(to))
            .unwrap_or_else(|error| panic!("copy {} to {to}: {error}", from.display()));
    }

    pub fn write(&self, path: &str, text: &str) {
        std::fs::write(self.inside(path), text)
            .unwrap_or_else(|error| panic!("write {path}: {error}"));
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.console_dir.path().join("console.log")).unwrap_or_default()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // SIGTERM: nspawn powers the machine off cleanly.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.nspawn.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let exited = wait_for(Duration::from_secs(30), || {
            self.nspawn.try_wait().ok().flatten()
        });
        if exited.is_none() {
            let _ = self.nspawn.kill();
            let _ = self.nspawn.wait();
        }
        for dir in &self.cgroups {
            let _ = wait_for(Duration::from_secs(5), || remove_tree(dir).then_some(()));
        }
    }
}

/// Cgroups of the test's own for nspawn, on hosts not run by systemd, where nspawn would
/// otherwise put its `payload` and `supervisor` groups at the top of the hierarchy: the
/// named `systemd` v1 hierarchy and, on hybrid hosts, the v2 one beside it.
fn own_cgroups(name: &str) -> Vec<PathBuf> {
    if Path::new("/run/systemd/system").exists() {
        return Vec::new();
    }
    ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
        .iter()
        .map(Path::new)
        .filter(|root| root.join("cgroup.procs").exists())
        .map(|root| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|error| panic!("mkdir {}: {error}", dir.display()));
            dir
        })
        .collect()
}

/// Removes an empty cgroup tree, children first. True when it is gone.
fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
    !dir.exists()
}
