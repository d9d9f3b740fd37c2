//! Helpers shared by the integration tests: capability gates, the guardian daemon,
//! marked test processes and test cgroups, each cleaned up in `Drop`.
#![allow(
    dead_code,
    reason = "each test module uses a different subset of the helpers"
)]

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// What a test needs from the host.
#[derive(Clone, Copy, Debug)]
pub enum Needs {
    Root,
    Bpf,
    Docker,
    Prometheus,
    /// Debian's podman (and conmon).
    Podman,
    /// containerd's `ctr` and a containerd socket (Docker's own will do).
    Containerd,
    /// Debian's lxc with its busybox template.
    Lxc,
}

/// True when the host gives what the test needs. Outside CI a missing capability skips the
/// test with one printed line; under `CI=true` it fails the test.
pub fn require(needs: &[Needs]) -> bool {
    for need in needs {
        if let Err(reason) = check(*need) {
            if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") {
                panic!("CI=true but this test cannot run: {reason}");
            }
            eprintln!("skipped: {reason}");
            return false;
        }
    }
    true
}

fn check(need: Needs) -> Result<(), String> {
    let root = nix::unistd::geteuid().is_root();
    match need {
        Needs::Root if !root => Err("needs root".into()),
        Needs::Bpf if !root => Err("eBPF needs root".into()),
        Needs::Bpf if !Path::new("/sys/kernel/btf/vmlinux").exists() => {
            Err("eBPF needs kernel BTF at /sys/kernel/btf/vmlinux".into())
        }
        Needs::Docker if !Path::new("/var/run/docker.sock").exists() => Err(
            "needs a running Docker engine (/var/run/docker.sock); `cargo xtask test` starts one"
                .into(),
        ),
        Needs::Prometheus if which("prometheus").is_none() => {
            Err("needs Debian's prometheus; `cargo xtask test` installs it".into())
        }
        Needs::Podman if which("podman").is_none() => {
            Err("needs Debian's podman; `cargo xtask test` installs it".into())
        }
        Needs::Containerd if which("ctr").is_none() => {
            Err("needs containerd's ctr; `cargo xtask test` installs it".into())
        }
        Needs::Lxc if which("lxc-start").is_none() => {
            Err("needs Debian's lxc; `cargo xtask test` installs it".into())
        }
        _ => Ok(()),
    }
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// The guardian binary under test.
pub fn guardian_bin() -> &'static str {
    env!("CARGO_BIN_EXE_guardian")
}

/// The memhog test workload, built beside the test binary by `cargo test --workspace`.
pub fn memhog_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let hog = dir.join("memhog");
    assert!(
        hog.is_file(),
        "{} is missing: build the workspace first (`cargo xtask test` does)",
        hog.display()
    );
    hog
}

/// A marker unique to one test run, carried in the argv of the test's own processes so
/// kill rules match nothing else on the host.
pub fn marker(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "guardian-test-{test}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A process the test started; killed and reaped on drop.
pub struct TestProcess {
    pub child: Child,
}

impl TestProcess {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// True once the process has exited (reaps it).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The exit status's signal, once it exited.
    pub fn exit_signal(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt as _;
        self.child
            .try_wait()
            .ok()
            .flatten()
            .and_then(|status| status.signal())
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts memhog with `args` plus `--marker MARKER` and waits until its memory is resident.
pub fn spawn_hog(marker: &str, args: &[&str]) -> TestProcess {
    spawn_hog_with(marker, args, |_| {})
}

/// Like [`spawn_hog`], with a hook to adjust the command (e.g. to join a cgroup first).
pub fn spawn_hog_with(
    marker: &str,
    args: &[&str],
    adjust: impl FnOnce(&mut Command),
) -> TestProcess {
    let mut command = Command::new(memhog_bin());
    command
        .args(args)
        .args(["--marker", marker])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    adjust(&mut command);
    let mut child = command.spawn().expect("spawn memhog");
    let stdout = child.stdout.take().expect("memhog stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read memhog stdout");
    let process = TestProcess { child };
    assert_eq!(line.trim(), "ready", "memhog did not start");
    process
}

/// Polls `condition` every 50 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

/// Plain HTTP/1.0 GET on loopback: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(addr, path, &[])
}

/// GET with extra request headers.
pub fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A running `guardian run`, stopped with SIGTERM on drop; its temp dir holds the config
/// and (unless the test chose another place) the kill log.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    kill_log: PathBuf,
}

/// CAP_SYS_PTRACE out of the bounding set, so the next exec (as root) lacks it: a
/// [`DaemonOptions::pre_exec`] for a guardian as a unit with a trimmed capability set.
pub fn drop_ptrace() -> std::io::Result<()> {
    /// CAP_SYS_PTRACE's number (`linux/capability.h`).
    const CAP_SYS_PTRACE: libc::c_ulong = 19;
    // SAFETY: one prctl, in the child before exec.
    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Where a test's daemon writes its kill log, and what it finds in its environment.
#[derive(Default)]
pub struct DaemonOptions<'a> {
    /// The kill log (default: `kills.jsonl` in the daemon's temp dir).
    pub kill_log: Option<&'a Path>,
    pub env: &'a [(&'a str, &'a str)],
    /// Run in the child between fork and exec (async-signal-safe work only), e.g. to
    /// enter a namespace or drop a capability.
    pub pre_exec: Option<fn() -> std::io::Result<()>>,
}

impl Daemon {
    /// Starts `guardian run` with `config` (TOML) and extra flags, and waits for /healthz.
    pub fn start(config: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with(config, extra, &DaemonOptions::default())
    }

    /// [`Daemon::start`] with a kill log path and environment of the test's choosing.
    pub fn start_with(config: &str, extra: &[&str], options: &DaemonOptions<'_>) -> Daemon {
        // A port found free can be taken by another test before the daemon binds it:
        // try again on another one.
        for _ in 0..4 {
            match Daemon::try_start(config, extra, options) {
                Ok(daemon) => return daemon,
                Err(log) if log.contains("cannot listen") => continue,
                Err(log) => panic!("guardian exited early:\n{log}"),
            }
        }
        panic!("guardian could not bind a free loopback port in 4 tries");
    }

    fn try_start(
        config: &str,
        extra: &[&str],
        options: &DaemonOptions<'_>,
    ) -> Result<Daemon, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("guardian.toml");
        std::fs::write(&config_path, config).expect("write config");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let kill_log = options
            .kill_log
            .map_or_else(|| dir.path().join("kills.jsonl"), Path::to_path_buf);
        let log = std::fs::File::create(dir.path().join("guardian.log")).expect("log file");
        let mut command = Command::new(guardian_bin());
        if let Some(hook) = options.pre_exec {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: the hook is a plain fn the test promises is async-signal-safe.
            unsafe {
                command.pre_exec(hook);
            }
        }
        let child = command
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--kill-log")
            .arg(&kill_log)
            .args(extra)
            .env("RUST_LOG", "guardian=debug,info")
            .envs(options.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn guardian");
        let mut daemon = Daemon {
            child,
            addr,
            dir,
            kill_log,
        };
        let ready = wait_for(Duration::from_secs(60), || {
            if let Ok(Some(_)) = daemon.child.try_wait() {
                return Some(false);
            }
            matches!(http_get(addr, "/healthz"), Ok((200, _))).then_some(true)
        });
        match ready {
            Some(true) => Ok(daemon),
            Some(false) => Err(daemon.log()),
            None => panic!("guardian did not become healthy:\n{}", daemon.log()),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path)
            .unwrap_or_else(|error| panic!("GET {path}: {error}\n{}", self.log()))
    }

    /// GET a JSON document.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {path}: {error}: {body}"))
    }

    pub fn kill_log_path(&self) -> PathBuf {
        self.kill_log.clone()
    }

    /// The config file the daemon rereads on SIGHUP.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("guardian.toml")
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .unwrap_or_else(|error| panic!("{signal} to the guardian: {error}"));
    }

    /// Writes `config` over the config file and sends SIGHUP; returns once the daemon
    /// logged the reload's result (`count` reloads so far, this one included).
    pub fn reload(&self, config: &str, count: usize) {
        std::fs::write(self.config_path(), config).expect("rewrite config");
        self.signal(nix::sys::signal::Signal::SIGHUP);
        let done = wait_for(Duration::from_secs(20), || {
            let log = self.log();
            (log.matches("config reloaded").count() + log.matches("config reload rejected").count()
                >= count)
                .then_some(())
        });
        assert!(
            done.is_some(),
            "no reload logged after SIGHUP:\n{}",
            self.log()
        );
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("guardian.log")).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.child.wait().expect("wait guardian")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// MemAvailable now, from /proc/meminfo.
pub fn mem_available() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    text.lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .expect("MemAvailable in /proc/meminfo")
        * 1024
}

/// Where the memory controller lives on this host.
pub fn memory_hierarchy() -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").exists() {
        v1.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// A memory cgroup the test made, on whichever hierarchy holds the memory controller;
/// its processes are killed and the cgroup removed on drop.
pub struct TestCgroup {
    pub dir: PathBuf,
    /// The path as the cgroup reader names it ("/guardian-test-...").
    pub path: String,
    v1: bool,
}

impl TestCgroup {
    pub fn new(name: &str, limit_bytes: Option<u64>) -> TestCgroup {
        let root = memory_hierarchy();
        let v1 = root.ends_with("memory");
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let cgroup = TestCgroup {
            path: format!("/{name}"),
            dir,
            v1,
        };
        if let Some(limit) = limit_bytes {
            let file = if v1 {
                "memory.limit_in_bytes"
            } else {
                "memory.max"
            };
            std::fs::write(cgroup.dir.join(file), limit.to_string()).expect("set memory limit");
            if v1 {
                // No swap to escape to: the limit holds memory+swap.
                let _ = std::fs::write(
                    cgroup.dir.join("memory.memsw.limit_in_bytes"),
                    limit.to_string(),
                );
            } else {
                let _ = std::fs::write(cgroup.dir.join("memory.swap.max"), "0");
            }
        }
        cgroup
    }

    /// Makes `command` join this cgroup before it execs.
    pub fn enter(&self, command: &mut Command) {
        use std::os::unix::process::CommandExt as _;
        let procs = self.dir.join("cgroup.procs");
        // SAFETY: only async-signal-safe work between fork and exec: open, write, close.
        unsafe {
            command.pre_exec(move || std::fs::write(&procs, b"0"));
        }
    }

    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    pub fn is_v1(&self) -> bool {
        self.v1
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Only processes this test put here: the cgroup is the test's own.
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = wait_for(Duration::from_secs(5), || {
            self.pids().is_empty().then_some(())
        });
        let _ = wait_for(Duration::from_secs(5), || {
            std::fs::remove_dir(&self.dir).ok()
        });
    }
}

/// Fails unless `guardian audit verify` accepts the kill log at `log`; `what` names the
/// log in the failure, with the tool's output.
pub fn assert_log_verifies(log: &Path, what: &str) {
    let output = std::process::Command::new(guardian_bin())
        .args(["audit", "verify"])
        .arg(log)
        .output()
        .expect("run guardian audit verify");
    assert!(
        output.status.success(),
        "{what} does not verify:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Fails unless every pid in `killed` has an intent record in the kill log at `log`:
/// the log is written before any signal, so a kill without one is the bug. Returns how
/// many intent records the log holds.
pub fn assert_every_kill_has_an_intent(log: &Path, killed: &[i32]) -> usize {
    let text = std::fs::read_to_string(log).expect("read kill log");
    let intents: std::collections::HashSet<i64> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|record| record["kind"] == "intent")
        .filter_map(|record| record["pid"].as_i64())
        .collect();
    for pid in killed {
        assert!(
            intents.contains(&i64::from(*pid)),
            "pid {pid} was killed without an intent record"
        );
    }
    intents.len()
}
