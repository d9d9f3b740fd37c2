use super::*;

const ID: &str = "3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f4031221304f5e6d7c8b9a";
const ID2: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const UID: &str = "5c6d7e8f-1a2b-3c4d-9e0f-123456789abc";
const UID_: &str = "5c6d7e8f_1a2b_3c4d_9e0f_123456789abc";

fn host(unit: Option<&str>) -> Classification {
    Classification::Host {
        unit: unit.map(str::to_string),
    }
}

fn ctr(runtime: Runtime, id: &str) -> Classification {
    Classification::Container {
        runtime,
        id: id.to_string(),
        pod_uid: None,
        qos: None,
    }
}

fn pod_ctr(runtime: Runtime, id: &str, qos: QosClass) -> Classification {
    Classification::Container {
        runtime,
        id: id.to_string(),
        pod_uid: Some(UID.to_string()),
        qos: Some(qos),
    }
}

fn grp(runtime: Runtime, pod: bool, qos: Option<QosClass>) -> Classification {
    Classification::Group {
        runtime,
        pod_uid: pod.then(|| UID.to_string()),
        qos,
    }
}

/// Every layout the classifier knows, as (path, expected).
fn table() -> Vec<(String, Classification)> {
    use QosClass::*;
    use Runtime::*;
    vec![
        // Host paths.
        ("/".into(), host(None)),
        ("/init.scope".into(), host(Some("init.scope"))),
        ("/system.slice".into(), host(None)),
        (
            "/system.slice/sshd.service".into(),
            host(Some("sshd.service")),
        ),
        (
            "/system.slice/docker.service".into(),
            host(Some("docker.service")),
        ),
        (
            "/system.slice/containerd.service".into(),
            host(Some("containerd.service")),
        ),
        (
            "/user.slice/user-1000.slice/session-4.scope".into(),
            host(Some("session-4.scope")),
        ),
        (
            "/user.slice/user-1000.slice/user@1000.service".into(),
            host(Some("user@1000.service")),
        ),
        (
            "/user.slice/user-1000.slice/user@1000.service/app.slice/app-code.scope".into(),
            host(Some("app-code.scope")),
        ),
        ("/user.slice".into(), host(None)),
        ("/machine.slice".into(), host(None)),
        // This project's own hosts put commands in a 32-hex cgroup: not a container id.
        (
            "/process_api/5045d41d77cae254b4da2142719d6c6f".into(),
            host(None),
        ),
        ("/guardian-test-x".into(), host(None)),
        // Docker.
        (format!("/docker/{ID}"), ctr(Docker, ID)),
        (format!("/docker/{ID}/docker/{ID2}"), ctr(Docker, ID)),
        ("/docker".into(), grp(Docker, false, None)),
        (format!("/system.slice/docker-{ID}.scope"), ctr(Docker, ID)),
        (
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{ID}.scope"),
            ctr(Docker, ID),
        ),
        // containerd / Kubernetes, systemd driver.
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
            ),
            pod_ctr(Containerd, ID, Burstable),
        ),
        (
            format!(
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
            ),
            pod_ctr(Containerd, ID, BestEffort),
        ),
        (
            format!("/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope"),
            pod_ctr(Containerd, ID, Guaranteed),
        ),
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/docker-{ID}.scope"
            ),
            pod_ctr(Docker, ID, Burstable),
        ),
        (
            format!(
                "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
            ),
            pod_ctr(Containerd, ID, BestEffort),
        ),
        ("/kubepods.slice".into(), grp(Kubernetes, false, None)),
        (
            "/kubepods.slice/kubepods-burstable.slice".into(),
            grp(Kubernetes, false, Some(Burstable)),
        ),
        (
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice"),
            grp(Kubernetes, true, Some(Burstable)),
        ),
        // Kubernetes, cgroupfs driver.
        (
            format!("/kubepods/burstable/pod{UID}/{ID}"),
            pod_ctr(Kubernetes, ID, Burstable),
        ),
        (
            format!("/kubepods/besteffort/pod{UID}/{ID}"),
            pod_ctr(Kubernetes, ID, BestEffort),
        ),
        (
            format!("/kubepods/pod{UID}/{ID}"),
            pod_ctr(Kubernetes, ID, Guaranteed),
        ),
        (
            format!("/kubepods/burstable/pod{UID}/crio-{ID}"),
            pod_ctr(Crio, ID, Burstable),
        ),
        ("/kubepods".into(), grp(Kubernetes, false, None)),
        (
            "/kubepods/besteffort".into(),
            grp(Kubernetes, false, Some(BestEffort)),
        ),
        (
            format!("/kubepods/pod{UID}"),
            grp(Kubernetes, true, Some(Guaranteed)),
        ),
        // CRI-O.
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{ID}.scope"
            ),
            pod_ctr(Crio, ID, Burstable),
        ),
        (
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{ID}.scope"
            ),
            grp(Crio, true, Some(Burstable)),
        ),
        (format!("/system.slice/crio-{ID}.scope"), ctr(Crio, ID)),
        // Podman, rootful and rootless.
        (format!("/machine.slice/libpod-{ID}.scope"), ctr(Podman, ID)),
        (
            format!("/machine.slice/libpod-{ID}.scope/container"),
            ctr(Podman, ID),
        ),
        (
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            grp(Podman, false, None),
        ),
        (
            format!("/machine.slice/machine-libpod_pod_{ID2}.slice/libpod-{ID}.scope"),
            ctr(Podman, ID),
        ),
        (
            format!("/machine.slice/machine-libpod_pod_{ID2}.slice"),
            grp(Podman, false, None),
        ),
        (
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            ctr(Podman, ID),
        ),
        (
            format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
            ),
            ctr(Podman, ID),
        ),
        (format!("/libpod_parent/libpod-{ID}"), ctr(Podman, ID)),
        // LXC / LXD.
        ("/lxc/web1".into(), ctr(Lxc, "web1")),
        ("/lxc/web1/init.scope".into(), ctr(Lxc, "web1")),
        ("/lxc.payload.web1".into(), ctr(Lxc, "web1")),
        (
            "/lxc.payload.web1/system.slice/nginx.service".into(),
            ctr(Lxc, "web1"),
        ),
        ("/lxc.payload/web1".into(), ctr(Lxc, "web1")),
        ("/lxc.monitor.web1".into(), grp(Lxc, false, None)),
        ("/lxc".into(), grp(Lxc, false, None)),
        // systemd-nspawn.
        (
            "/machine.slice/machine-build.scope".into(),
            ctr(Nspawn, "build"),
        ),
        (
            "/machine.slice/machine-my\\x2dbox.scope/payload/system.slice/x.service".into(),
            ctr(Nspawn, "my-box"),
        ),
        // Unknown layouts: container-like, matching nothing.
        (
            "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope".into(),
            Classification::Unknown,
        ),
        (format!("/actions_job/{ID}"), Classification::Unknown),
        (
            format!("/system.slice/nerdctl-{ID}.scope"),
            Classification::Unknown,
        ),
        (format!("/ecs/abc/{ID}"), Classification::Unknown),
        ("/docker/buildkit".into(), Classification::Unknown),
        (
            "/system.slice/docker-notanid.scope".into(),
            Classification::Unknown,
        ),
        ("/kubepods/burstable/weird".into(), Classification::Unknown),
        (
            "/kubepods.slice/kubepods-burstable.slice/other.slice".into(),
            Classification::Unknown,
        ),
        (
            format!("/kubepods.slice/kubepods-pod{UID_}.slice/something.scope"),
            Classification::Unknown,
        ),
        (
            format!("/kubepods/pod{UID}/not-an-id"),
            Classification::Unknown,
        ),
    ]
}

#[test]
fn every_layout_classifies_as_expected_from_its_path() {
    for (path, expected) in table() {
        assert_eq!(classify_path(&path), expected, "path {path}");
    }
}

fn line(hierarchy: u32, controllers: &str, path: &str) -> CgroupLine {
    CgroupLine {
        hierarchy,
        controllers: controllers
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        path: path.to_string(),
    }
}

#[test]
fn every_layout_classifies_the_same_from_v2_lines() {
    for (path, expected) in table() {
        assert_eq!(classify(&[line(0, "", &path)]), expected, "v2 {path}");
    }
}

#[test]
fn every_layout_classifies_the_same_from_v1_and_hybrid_lines() {
    for (path, expected) in table() {
        // Pure v1: every controller in the same place, as runtimes do it.
        let v1 = [
            line(12, "pids", &path),
            line(4, "memory", &path),
            line(2, "cpu,cpuacct", &path),
            line(1, "name=systemd", &path),
        ];
        assert_eq!(classify(&v1), expected, "v1 {path}");
        // Hybrid: the unified line shows the same path.
        let mut hybrid = v1.to_vec();
        hybrid.push(line(0, "", &path));
        assert_eq!(classify(&hybrid), expected, "hybrid {path}");
    }
}

#[test]
fn memory_line_container_wins_over_host_lines() {
    let lines = [
        line(9, "name=systemd", "/"),
        line(4, "memory", &format!("/docker/{ID}")),
        line(0, "", "/"),
    ];
    assert_eq!(classify(&lines), ctr(Runtime::Docker, ID));
}

#[test]
fn container_on_another_line_is_still_a_container() {
    let lines = [
        line(4, "memory", "/"),
        line(
            1,
            "name=systemd",
            &format!("/system.slice/docker-{ID}.scope"),
        ),
    ];
    assert_eq!(classify(&lines), ctr(Runtime::Docker, ID));
}

#[test]
fn host_unit_comes_from_the_systemd_line_when_memory_is_at_the_root() {
    let lines = [
        line(4, "memory", "/"),
        line(1, "name=systemd", "/system.slice/cron.service"),
        line(0, "", "/system.slice/cron.service"),
    ];
    assert_eq!(classify(&lines), host(Some("cron.service")));
}

#[test]
fn memory_line_unit_is_preferred() {
    let lines = [
        line(1, "name=systemd", "/system.slice/a.service"),
        line(4, "memory", "/system.slice/b.service"),
    ];
    assert_eq!(classify(&lines), host(Some("b.service")));
}

#[test]
fn unknown_on_any_line_is_never_guessed_as_host() {
    let lines = [
        line(4, "memory", "/"),
        line(2, "cpu", &format!("/actions_job/{ID}")),
    ];
    assert_eq!(classify(&lines), Classification::Unknown);
    assert_eq!(classify(&[]), Classification::Unknown);
}

#[test]
fn this_hosts_hybrid_lines_are_host() {
    let lines = [
        line(9, "name=systemd", "/"),
        line(4, "memory", "/process_api/5045d41d77cae254b4da2142719d6c6f"),
        line(1, "cpu", "/"),
        line(0, "", "/"),
    ];
    assert_eq!(classify(&lines), host(None));
}

#[test]
fn serializes_with_kind_and_runtime_names() {
    let json =
        serde_json::to_value(pod_ctr(Runtime::Crio, ID, QosClass::BestEffort)).expect("serialize");
    assert_eq!(json["kind"], "container");
    assert_eq!(json["runtime"], "cri-o");
    assert_eq!(json["qos"], "besteffort");
    assert_eq!(json["pod_uid"], UID);
    let json = serde_json::to_value(host(Some("sshd.service"))).expect("serialize");
    assert_eq!(json["kind"], "host");
    assert_eq!(json["unit"], "sshd.service");
}

#[test]
fn helpers_name_kind_runtime_and_unit() {
    assert_eq!(ctr(Runtime::Nspawn, "x").kind(), "container");
    assert_eq!(ctr(Runtime::Nspawn, "x").runtime(), Some(Runtime::Nspawn));
    assert_eq!(grp(Runtime::Lxc, false, None).kind(), "group");
    assert_eq!(Classification::Unknown.runtime(), None);
    assert_eq!(host(Some("a.service")).unit(), Some("a.service"));
    assert_eq!(Runtime::Nspawn.to_string(), "systemd-nspawn");
    assert_eq!(QosClass::BestEffort.as_str(), "besteffort");
}
