//! containerd's CRI plugin, as kubelet drives it: the test starts its own containerd
//! (Debian's, with its own root, state and socket, so the CRI plugin is on whatever the
//! host's config says), imports busybox and a "pause" image (busybox sleeping) offline
//! from Docker, and through the CRI v1 API runs a host-network pod sandbox (no CNI
//! needed) in a kubepods cgroup and a container holding memory in it. The daemon, given
//! only that CRI socket (no bundle directories), must name the container, its pod and
//! namespace.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ImageSpec, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopPodSandboxRequest, runtime_service_client::RuntimeServiceClient,
};
use tonic::transport::{Channel, Endpoint, Uri};

use super::{Case, HOG_SCRIPT, check, container_id, parent_of, run, wait_rss};
use crate::{
    common::{Needs, marker, require, wait_for},
    docker::{TEST_IMAGE, docker, ensure_test_image},
};

const IMAGE: &str = "docker.io/library/guardian-test:busybox";
/// The sandbox image: busybox whose command sleeps (a pause image is not at hand offline).
const PAUSE_LOCAL: &str = "guardian-test:pause";
const PAUSE: &str = "docker.io/library/guardian-test:pause";

/// A containerd of the test's own with the CRI plugin, stopped and its directories
/// removed on drop (after the pods it ran).
struct CriContainerd {
    dir: tempfile::TempDir,
    child: Child,
    runtime: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
    pods: Vec<String>,
}

impl CriContainerd {
    fn start() -> CriContainerd {
        let dir = tempfile::Builder::new()
            .prefix("guardian-cri")
            .tempdir()
            .expect("temp dir");
        let path = dir.path();
        let config = format!(
            "version = 2\nroot = \"{root}/root\"\nstate = \"{root}/state\"\n\
             [grpc]\n  address = \"{root}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{root}/containerd.sock.ttrpc\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{PAUSE}\"\n\
             restrict_oom_score_adj = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{root}/cni-bin\"\n  \
             conf_dir = \"{root}/cni-conf\"\n",
            root = path.display()
        );
        std::fs::write(path.join("config.toml"), config).expect("write config");
        let log = std::fs::File::create(path.join("containerd.log")).expect("log file");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(path.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let socket = path.join("containerd.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let client = {
            // The channel spawns its connection task on the runtime.
            let _entered = runtime.enter();
            let connector = tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(socket).await?,
                    ))
                }
            });
            RuntimeServiceClient::new(
                Endpoint::from_static("http://cri.invalid").connect_with_connector_lazy(connector),
            )
        };
        let containerd = CriContainerd {
            client,
            dir,
            child,
            runtime,
            pods: Vec::new(),
        };
        let up = wait_for(Duration::from_secs(30), || {
            let mut client = containerd.client.clone();
            containerd
                .runtime
                .block_on(client.version(k8s_cri::v1::VersionRequest::default()))
                .ok()
        });
        assert!(
            up.is_some(),
            "containerd's CRI never answered\n{}",
            containerd.log()
        );
        containerd.import_images();
        containerd
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// busybox and the pause image, from Docker into the CRI's `k8s.io` namespace.
    fn import_images(&self) {
        ensure_test_image();
        if docker(&["image", "inspect", PAUSE_LOCAL]).is_err() {
            let source = format!("guardian-pause-source-{}", std::process::id());
            docker(&["create", "--name", &source, TEST_IMAGE, "/bin/true"])
                .unwrap_or_else(|error| panic!("{error}"));
            let committed = docker(&[
                "commit",
                "--change",
                r#"CMD ["/bin/sleep", "2147483647"]"#,
                &source,
                PAUSE_LOCAL,
            ]);
            let _ = docker(&["rm", &source]);
            committed.unwrap_or_else(|error| panic!("{error}"));
        }
        let mut save = Command::new("docker")
            .args(["save", TEST_IMAGE, PAUSE_LOCAL])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let status = Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(["--namespace", "k8s.io", "image", "import", "-"])
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

    /// Runs a host-network pod `namespace/name` (cgroup
    /// `/kubepods/besteffort/pod<uid>`) and in it container `container` running `sh -c
    /// HOG_SCRIPT marker`; returns the container's id.
    fn run_pod(
        &mut self,
        namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        marker: &str,
    ) -> String {
        let sandbox = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: uid.into(),
                namespace: namespace.into(),
                attempt: 0,
            }),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node.into(),
                        ..NamespaceOption::default()
                    }),
                    ..LinuxSandboxSecurityContext::default()
                }),
                ..LinuxPodSandboxConfig::default()
            }),
            ..PodSandboxConfig::default()
        };
        let mut client = self.client.clone();
        let pod = self
            .runtime
            .block_on(client.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(sandbox.clone()),
                runtime_handler: String::new(),
            }))
            .unwrap_or_else(|error| panic!("RunPodSandbox: {error}\n{}", self.log()))
            .into_inner()
            .pod_sandbox_id;
        self.pods.push(pod.clone());
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: container.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..ImageSpec::default()
            }),
            command: vec!["sh".into()],
            args: vec!["-c".into(), HOG_SCRIPT.into(), marker.into()],
            ..ContainerConfig::default()
        };
        let id = self
            .runtime
            .block_on(client.create_container(CreateContainerRequest {
                pod_sandbox_id: pod,
                config: Some(config),
                sandbox_config: Some(sandbox),
            }))
            .unwrap_or_else(|error| panic!("CreateContainer: {error}\n{}", self.log()))
            .into_inner()
            .container_id;
        self.runtime
            .block_on(client.start_container(StartContainerRequest {
                container_id: id.clone(),
            }))
            .unwrap_or_else(|error| panic!("StartContainer: {error}\n{}", self.log()));
        id
    }

    /// The host pid of container `id`'s first process, from its cgroup's procs.
    fn pid(&self, id: &str) -> i32 {
        let found = wait_for(Duration::from_secs(30), || {
            let status = self
                .runtime
                .block_on(self.client.clone().container_status(
                    k8s_cri::v1::ContainerStatusRequest {
                        container_id: id.into(),
                        verbose: true,
                    },
                ))
                .ok()?
                .into_inner();
            let info = status.info.get("info")?;
            let info: serde_json::Value = serde_json::from_str(info).ok()?;
            info["pid"].as_i64().filter(|pid| *pid > 0)
        });
        let pid = found.unwrap_or_else(|| panic!("container {id} has no pid\n{}", self.log()));
        i32::try_from(pid).expect("pid")
    }
}

impl Drop for CriContainerd {
    fn drop(&mut self) {
        for pod in std::mem::take(&mut self.pods) {
            let mut client = self.client.clone();
            let _ = self
                .runtime
                .block_on(client.stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: pod.clone(),
                }));
            let _ = self
                .runtime
                .block_on(client.remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: pod,
                }));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0)),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        // Snapshots containerd left mounted keep the directory from being removed.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().to_string_lossy().into_owned();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|line| line.split(' ').nth(1))
                .filter(|point| point.starts_with(&root))
                .collect();
            points.sort_by_key(|point| std::cmp::Reverse(point.len()));
            for point in points {
                let _ = run("umount", &["-l", point]);
            }
        }
    }
}

#[test]
fn cri_container_is_named_with_its_pod_and_spared_and_its_shim_protected() {
    if !require(&[Needs::Root, Needs::Containerd, Needs::Docker]) {
        return;
    }
    let m = marker("cri");
    let uid = {
        let hex = container_id(&m);
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    };
    let mut containerd = CriContainerd::start();
    let id = containerd.run_pod("shop", "web-7d9", &uid, "app", &m);
    let pid = containerd.pid(&id);
    wait_rss(pid, 50 * 1024 * 1024);
    let shim = parent_of(pid);
    assert!(
        Path::new(&format!("/proc/{shim}/exe")).exists(),
        "the shim is gone"
    );
    let containers_config = format!(
        "[containers]\nengine_sockets = []\nbundle_dirs = []\ncri_sockets = [\"{}\"]\n",
        containerd.socket().display()
    );
    check(&Case {
        marker: &m,
        runtime: "kubernetes",
        id: &id,
        name: Some("app"),
        pod: Some(("shop", "web-7d9")),
        pid,
        helper: shim,
        containers_config: &containers_config,
    });
}
