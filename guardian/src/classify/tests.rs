//! Rules across lines and the serialized form; the layouts themselves are the corpus
//! (`tests/fixtures/cgroup-paths`, classify/corpus.rs).

use super::*;

const ID: &str = "3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f4031221304f5e6d7c8b9a";
const UID: &str = "5c6d7e8f-1a2b-3c4d-9e0f-123456789abc";

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
