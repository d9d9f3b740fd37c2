//! The Kubernetes DaemonSet's container, under Docker: the image `cargo xtask image`
//! builds (here around the binary under test), run with the privileges and mounts of
//! deploy/kubernetes/daemonset.yaml (host pid namespace, host cgroup namespace, its
//! capabilities and nothing else, /sys/fs/cgroup and /sys/kernel/btf read-only, a state
//! volume for the kill log, the runtimes' socket directories read-only, and Docker's
//! socket read-only as the Helm chart's `runtimeSockets.docker` mounts it), sees a process
//! the test starts on the host and classifies it as a host process, and itself as a
//! Docker container named by the Docker Engine through the read-only socket.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use crate::{
    common::{Needs, free_port, guardian_bin, http_get, marker, require, spawn_hog, wait_for},
    docker::docker,
};

const IMAGE: &str = "guardian-test:daemonset";

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// The capabilities the DaemonSet adds (it drops all others), from its manifest.
fn daemonset_capabilities() -> Vec<String> {
    let manifest = std::fs::read_to_string(repo_file("deploy/kubernetes/daemonset.yaml"))
        .expect("read deploy/kubernetes/daemonset.yaml");
    let mut lines = manifest.lines().skip_while(|line| line.trim() != "add:");
    lines.next().expect("capabilities.add in the DaemonSet");
    lines
        .map_while(|line| line.trim().strip_prefix("- "))
        .map(|name| name.split_whitespace().next().unwrap_or(name).to_string())
        .collect()
}

/// The runtimes' directories the DaemonSet mounts read-only (host path, container path),
/// as HostToContainer (`rslave`); plus Docker's socket, as the Helm chart's
/// `runtimeSockets.docker` mounts it.
const RUNTIME_DIRS: [(&str, &str); 5] = [
    ("/run/containerd", "/run/containerd"),
    ("/run/crio", "/run/crio"),
    ("/run/podman", "/run/podman"),
    ("/run/containers", "/run/containers"),
    ("/run/docker", "/var/run/docker"),
];
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// `docker run -v` arguments for the runtime directories this host has (Docker would
/// create the others, as the kubelet's DirectoryOrCreate does on a node: not on this
/// host), each checked against the manifest so the two cannot drift apart.
fn runtime_mounts() -> Vec<String> {
    let manifest = std::fs::read_to_string(repo_file("deploy/kubernetes/daemonset.yaml"))
        .expect("read deploy/kubernetes/daemonset.yaml");
    let mut mounts = Vec::new();
    for (host, container) in RUNTIME_DIRS {
        assert!(
            manifest.contains(&format!(
                "path: {host}\n            type: DirectoryOrCreate"
            )) && manifest.contains(&format!("mountPath: {container}\n")),
            "the DaemonSet no longer mounts {host} at {container}"
        );
        if std::path::Path::new(host).is_dir() {
            // HostToContainer needs the host's mount to be shared (systemd's default on
            // a node); a host whose mounts are private gets a plain read-only mount.
            let options = if propagates(host) { "ro,rslave" } else { "ro" };
            mounts.push(format!("{host}:{container}:{options}"));
        }
    }
    mounts.push(format!("{DOCKER_SOCKET}:{DOCKER_SOCKET}:ro"));
    mounts
}

/// Whether the mount holding `path` is shared or a slave, so that a slave copy of it
/// (`rslave`, Kubernetes' HostToContainer) can be made.
fn propagates(path: &str) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = *fields.get(4)?;
            let under = path == point
                || point == "/"
                || path.starts_with(&format!("{}/", point.trim_end_matches('/')));
            under.then(|| {
                let optional = fields[6..].iter().take_while(|field| **field != "-");
                let propagates = optional
                    .clone()
                    .any(|field| field.starts_with("shared:") || field.starts_with("master:"));
                (point.len(), propagates)
            })
        })
        .max_by_key(|(length, _)| *length)
        .is_some_and(|(_, propagates)| propagates)
}

/// A container this test started; removed on drop.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// `docker run` with the DaemonSet's privileges and `capabilities`.
fn run_daemonset(
    name: &str,
    capabilities: &[String],
    state: &std::path::Path,
    config: &std::path::Path,
    port: u16,
) -> Result<String, String> {
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        name,
        "--pid=host",
        "--cgroupns=host",
        "--cap-drop",
        "ALL",
    ]
    .map(String::from)
    .to_vec();
    for capability in capabilities {
        args.extend(["--cap-add".to_string(), capability.clone()]);
    }
    for mount in [
        "/sys/fs/cgroup:/sys/fs/cgroup:ro".to_string(),
        "/sys/kernel/btf:/sys/kernel/btf:ro".to_string(),
        format!("{}:/var/lib/guardian", state.display()),
        format!("{}:/etc/guardian/guardian.toml:ro", config.display()),
    ]
    .into_iter()
    .chain(runtime_mounts())
    {
        args.extend(["-v".to_string(), mount]);
    }
    args.extend([
        "-p".to_string(),
        format!("127.0.0.1:{port}:9471"),
        IMAGE.to_string(),
        // What the DaemonSet runs (the image's default command), in dry-run here.
        "run".to_string(),
        "--listen".to_string(),
        "0.0.0.0:9471".to_string(),
        "--dry-run".to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // A run that fails after creating the container (a refused mount) leaves it behind.
    docker(&args).inspect_err(|_| {
        let _ = docker(&["rm", "-f", name]);
    })
}

/// The DaemonSet's guardian in a Docker container: the image built around the binary
/// under test, `config` as its /etc/guardian/guardian.toml, in dry-run, its port
/// published on loopback; removed on drop.
pub struct DaemonSetGuardian {
    container: Container,
    pub addr: SocketAddr,
    _state: tempfile::TempDir,
}

impl DaemonSetGuardian {
    /// Builds the image (once per test binary) and starts the container; waits for
    /// /healthz. `config` must hold no kill rule that matches anything but the test's
    /// own processes: the container sees the whole host.
    pub fn start(config: &str) -> DaemonSetGuardian {
        build_image();
        let state = tempfile::tempdir().expect("state dir");
        let config_file = state.path().join("guardian.toml");
        std::fs::write(&config_file, config).expect("write config");
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "guardian-test-daemonset-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let port = free_port();
        let capabilities = daemonset_capabilities();
        assert!(
            capabilities.contains(&"KILL".to_string()),
            "{capabilities:?}"
        );
        run_daemonset(&name, &capabilities, state.path(), &config_file, port)
            .or_else(|error| {
                // Docker before 23 knows neither CAP_BPF nor CAP_PERFMON (kernel 5.8):
                // what the chart's `legacyCapabilities` gives, SYS_ADMIN, covers both.
                assert!(error.contains("unknown capability"), "{error}");
                let legacy: Vec<String> = capabilities
                    .iter()
                    .filter(|capability| !["BPF", "PERFMON"].contains(&capability.as_str()))
                    .cloned()
                    .chain(["SYS_ADMIN".to_string()])
                    .collect();
                run_daemonset(&name, &legacy, state.path(), &config_file, port)
            })
            .unwrap_or_else(|error| panic!("docker run: {error}"));
        let guardian = DaemonSetGuardian {
            container: Container(name),
            addr: format!("127.0.0.1:{port}").parse().expect("addr"),
            _state: state,
        };
        let healthy = wait_for(Duration::from_secs(60), || {
            matches!(http_get(guardian.addr, "/healthz"), Ok((200, _))).then_some(())
        });
        assert!(
            healthy.is_some(),
            "container {} not healthy:\n{}",
            guardian.container.0,
            guardian.logs()
        );
        guardian
    }

    /// What the container logged so far.
    pub fn logs(&self) -> String {
        docker(&["logs", &self.container.0]).unwrap_or_default()
    }

    /// The container's main process, as the host sees it.
    pub fn host_pid(&self) -> String {
        docker(&["inspect", "--format", "{{.State.Pid}}", &self.container.0]).expect("inspect")
    }
}

/// `cargo xtask image` around the binary under test, once per test binary.
fn build_image() {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *built {
        return;
    }
    let xtask = PathBuf::from(guardian_bin()).with_file_name("xtask");
    assert!(
        xtask.is_file(),
        "{} is missing: build the workspace first (`cargo xtask test` does)",
        xtask.display()
    );
    let output = std::process::Command::new(&xtask)
        .args(["image", "--binary", guardian_bin(), "--tag", IMAGE])
        .output()
        .expect("run xtask image");
    assert!(
        output.status.success(),
        "xtask image failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    *built = true;
}

#[test]
fn the_daemonset_image_sees_and_classifies_host_processes_from_its_container() {
    if !require(&[Needs::Root, Needs::Bpf, Needs::Docker]) {
        return;
    }
    let marker = marker("daemonset");
    let hog = spawn_hog(&marker, &["--rss", "8"]);
    // One dry-run rule (and --dry-run) matching only the test's marker, with a sustain
    // longer than the test: it tracks the hog, so the hog is exported, and signals
    // nothing on this host.
    let guardian = DaemonSetGuardian::start(&format!(
        "[daemon]\nscan_interval = \"500ms\"\n\n[[rule]]\nname = \"daemonset-test\"\n\
         threshold = \"1MiB\"\nsustain = \"1h\"\ndry_run = true\n\
         match = {{ cmdline = '--marker {}( |$)' }}\n",
        regex::escape(&marker)
    ));
    let addr = guardian.addr;
    let logs = || guardian.logs();

    let get = |path: &str| -> serde_json::Value {
        let (status, body) = http_get(addr, path).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}"))
    };
    let status = get("/api/v1/status");
    assert_eq!(status["source"]["source"], "ebpf", "{status}\n{}", logs());

    // The test's own process on the host: seen through the host pid namespace, with its
    // command line, classified as a host process.
    let seen = wait_for(Duration::from_secs(30), || {
        get(&format!("/api/v1/processes?pid={}", hog.pid()))
            .as_array()
            .and_then(|processes| processes.first().cloned())
    })
    .unwrap_or_else(|| panic!("pid {} not seen from the container\n{}", hog.pid(), logs()));
    assert!(
        seen["cmdline"]
            .as_str()
            .is_some_and(|cmdline| cmdline.contains(&marker)),
        "{seen}"
    );
    assert_eq!(seen["class"]["kind"], "host", "{seen}");
    let metrics = wait_for(Duration::from_secs(30), || {
        let (_, body) = http_get(addr, "/metrics").ok()?;
        body.lines()
            .find(|line| {
                line.starts_with("guardian_process_rss_bytes{")
                    && line.contains(&format!("pid=\"{}\"", hog.pid()))
            })
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("pid {} not exported\n{}", hog.pid(), logs()));
    assert!(metrics.contains("scope=\"host\""), "{metrics}");

    // And the guardian itself, seen from inside: a Docker container.
    let own = guardian.host_pid();
    let itself = get(&format!("/api/v1/processes?pid={own}"));
    let itself = itself.as_array().and_then(|all| all.first()).cloned();
    let itself = itself.unwrap_or_else(|| panic!("own pid {own} not seen\n{}", logs()));
    assert_eq!(itself["class"]["kind"], "container", "{itself}");
    assert_eq!(itself["class"]["runtime"], "docker", "{itself}");

    // Named through Docker's socket, mounted read-only: a read-only mount still lets it
    // connect (the socket's mode, not the mount's, decides).
    let id = docker(&["inspect", "--format", "{{.Id}}", &guardian.container.0]).expect("inspect");
    let named = wait_for(Duration::from_secs(30), || {
        let containers = get("/api/v1/containers");
        (containers[id.trim()]["name"] == guardian.container.0.as_str()).then_some(containers)
    });
    assert!(
        named.is_some(),
        "the guardian never named its own container {} through the read-only socket: {}\n{}",
        guardian.container.0,
        get("/api/v1/containers"),
        logs()
    );
}
