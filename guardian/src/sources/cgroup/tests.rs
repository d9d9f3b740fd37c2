//! The reader and layout detection on the fixture trees in tests/fixtures/cgroup (pure
//! v2, hybrid, pure v1), then on this host.

use std::path::{Path, PathBuf};

use super::*;
use crate::{
    classify::{Classification, QosClass, Runtime},
    model::{Limit, OomScope},
};

const ID: &str = "3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f4031221304f5e6d7c8b9a";
const UID_: &str = "5c6d7e8f_1a2b_3c4d_9e0f_123456789abc";

fn fixture(layout: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/cgroup")
        .join(layout)
}

fn find<'a>(cgroups: &'a [Cgroup], path: &str) -> &'a Cgroup {
    cgroups
        .iter()
        .find(|cgroup| cgroup.path == path)
        .unwrap_or_else(|| panic!("{path} missing from {:?}", paths(cgroups)))
}

fn paths(cgroups: &[Cgroup]) -> Vec<&str> {
    cgroups.iter().map(|cgroup| cgroup.path.as_str()).collect()
}

fn line(hierarchy: u32, controllers: &[&str], path: &str) -> CgroupLine {
    CgroupLine {
        hierarchy,
        controllers: controllers.iter().map(|c| c.to_string()).collect(),
        path: path.into(),
    }
}

#[test]
fn detects_each_layout() {
    for (layout, expected, hierarchy, root) in [
        ("v2", Layout::V2, Hierarchy::V2, ""),
        ("hybrid", Layout::Hybrid, Hierarchy::V1, "memory"),
        ("v1", Layout::V1, Hierarchy::V1, "memory"),
    ] {
        let reader = CgroupReader::detect(&fixture(layout)).expect(layout);
        assert_eq!(reader.layout(), expected, "{layout}");
        assert_eq!(reader.hierarchy(), hierarchy, "{layout}");
        assert_eq!(reader.memory_root(), fixture(layout).join(root), "{layout}");
    }
}

#[test]
fn detection_fails_clearly_without_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = CgroupReader::detect(dir.path()).expect_err("empty");
    assert!(matches!(error, CgroupError::NoMemoryController { .. }));
    assert!(error.to_string().contains("cgroup.controllers"), "{error}");
    std::fs::write(dir.path().join("cgroup.controllers"), "cpu io pids\n").expect("write");
    assert!(
        CgroupReader::detect(dir.path()).is_err(),
        "v2 without memory"
    );
}

#[test]
fn hybrid_with_memory_on_unified() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("unified")).expect("mkdir");
    std::fs::write(
        dir.path().join("unified/cgroup.controllers"),
        "memory pids\n",
    )
    .expect("write");
    let reader = CgroupReader::detect(dir.path()).expect("detect");
    assert_eq!(
        (reader.layout(), reader.hierarchy()),
        (Layout::Hybrid, Hierarchy::V2)
    );
    assert_eq!(reader.memory_root(), dir.path().join("unified"));
}

#[test]
fn reads_a_v2_tree() {
    let reader = CgroupReader::detect(&fixture("v2")).expect("v2");
    let cgroups = reader.read_all().expect("read_all");
    assert_eq!(cgroups[0].path, "/");
    assert!(
        !paths(&cgroups)
            .iter()
            .any(|p| p.starts_with("/nomem.slice")),
        "no memory files"
    );
    assert_eq!(cgroups.len(), 9, "{:?}", paths(&cgroups));

    let root = &cgroups[0].stats;
    assert_eq!(root.usage, 1_000_000 + 2_000_000 + 300_000 + 4096);
    assert_eq!((root.limit, root.oom_kill), (Limit::Max, 0));
    assert_eq!(root.pressure.map(|p| p.some_total_us), Some(100));

    let docker = find(&cgroups, &format!("/system.slice/docker-{ID}.scope"));
    assert_eq!(docker.stats.usage, 500_000_000);
    assert_eq!(docker.stats.limit, Limit::Bytes(536_870_912));
    assert_eq!(docker.stats.high, Limit::Bytes(400_000_000));
    assert_eq!((docker.stats.oom, docker.stats.oom_kill), (2, 1));
    assert_eq!(
        (docker.stats.anon, docker.stats.file),
        (450_000_000, 40_000_000)
    );
    assert_eq!(docker.stats.pressure, None);
    assert_eq!(docker.stats.working_set(), 500_000_000 - 30_000_000);
    assert_eq!(docker.class.runtime(), Some(Runtime::Docker));

    let ssh = find(&cgroups, "/system.slice/ssh.service");
    assert_eq!((ssh.stats.limit, ssh.stats.high), (Limit::Max, Limit::Max));
    assert_eq!(ssh.class.unit(), Some("ssh.service"));
    assert_eq!(ssh.stats.pressure.map(|p| p.full_total_us), Some(5));

    let container = find(
        &cgroups,
        &format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope"
        ),
    );
    assert!(matches!(
        container.class,
        Classification::Container {
            runtime: Runtime::Containerd,
            qos: Some(QosClass::Burstable),
            ..
        }
    ));
    assert_eq!(
        find(&cgroups, "/kubepods.slice").class.kind(),
        "group",
        "kubepods parent"
    );
}

#[test]
fn reads_v1_trees_hybrid_and_pure() {
    for layout in ["hybrid", "v1"] {
        let reader = CgroupReader::detect(&fixture(layout)).expect(layout);
        let cgroups = reader.read_all().expect("read_all");
        assert_eq!(cgroups.len(), 5, "{layout}: {:?}", paths(&cgroups));
        let root = &cgroups[0];
        assert_eq!(root.path, "/");
        assert_eq!(
            root.stats.limit,
            Limit::Max,
            "page-rounded LONG_MAX is no limit"
        );
        assert_eq!(root.stats.high, Limit::Max);
        assert_eq!(
            (root.stats.anon, root.stats.file),
            (11_526_144, 1_224_650_752)
        );
        assert_eq!(root.stats.oom_kill, 1);

        let container = find(&cgroups, &format!("/docker/{ID}"));
        assert_eq!(container.stats.usage, 33_000_000);
        assert_eq!(container.stats.limit, Limit::Bytes(33_554_432));
        assert_eq!((container.stats.oom, container.stats.oom_kill), (0, 1));
        assert_eq!(container.stats.pressure, None);
        // The subtree's inactive page cache (total_inactive_file), not the cgroup's own.
        assert_eq!(container.stats.working_set(), 33_000_000 - 2_000_000);
        assert_eq!(container.class.runtime(), Some(Runtime::Docker));

        // An older kernel: no total_* in memory.stat, no oom_kill in memory.oom_control.
        let cron = find(&cgroups, "/system.slice/cron.service");
        assert_eq!((cron.stats.anon, cron.stats.file), (1_000_000, 1_500_000));
        assert_eq!(cron.stats.oom_kill, 0);
        assert_eq!(cron.stats.working_set(), 5_000_000 - 500_000);
        assert_eq!(cron.class.unit(), Some("cron.service"));
    }
}

#[test]
fn read_one_and_gone() {
    let reader = CgroupReader::detect(&fixture("v1")).expect("v1");
    let stats = reader
        .read(&format!("/docker/{ID}"))
        .expect("read")
        .expect("present");
    assert_eq!(stats.limit, Limit::Bytes(33_554_432));
    assert_eq!(reader.read("/gone").expect("read"), None);
    assert!(reader.read("/").expect("read").is_some());
    for bad in ["docker", "/docker/../..", "/./x"] {
        assert!(
            matches!(reader.read(bad), Err(CgroupError::InvalidPath { .. })),
            "{bad}"
        );
    }
}

#[test]
fn memory_path_per_hierarchy() {
    let lines = [
        line(9, &["name=systemd"], "/user.slice"),
        line(4, &["memory"], "/docker/x"),
        line(0, &[], "/user.slice"),
    ];
    let v1 = CgroupReader::detect(&fixture("hybrid")).expect("hybrid");
    assert_eq!(v1.memory_path(&lines).as_deref(), Some("/docker/x"));
    let v2 = CgroupReader::detect(&fixture("v2")).expect("v2");
    assert_eq!(v2.memory_path(&lines).as_deref(), Some("/user.slice"));
    assert_eq!(
        memory_line(&lines).map(|l| l.path.as_str()),
        Some("/docker/x")
    );
    assert_eq!(
        memory_line(&[line(0, &[], "/a.scope")]).map(|l| l.path.as_str()),
        Some("/a.scope")
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn oom_watch_on_a_v2_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("v2"), dir.path());
    let reader = CgroupReader::detect(dir.path()).expect("v2");
    let mut watch = OomWatch::new(reader.hierarchy());
    assert!(watch.update(&reader.read_all().expect("read")).is_empty());
    let scope = dir.path().join(format!("system.slice/docker-{ID}.scope"));
    std::fs::write(
        scope.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 3\noom_kill 2\noom_group_kill 0\n",
    )
    .expect("write");
    let changes = watch.update(&reader.read_all().expect("read"));
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, format!("/system.slice/docker-{ID}.scope"));
    assert_eq!((changes[0].kills, changes[0].scope), (1, OomScope::Cgroup));
}

#[test]
fn cgroups_removed_mid_walk_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("v2"), dir.path());
    let reader = CgroupReader::detect(dir.path()).expect("v2");
    // A cgroup directory whose files are gone (removed between listing and reading).
    let gone = dir.path().join("system.slice/gone.service");
    std::fs::create_dir_all(&gone).expect("mkdir");
    let cgroups = reader.read_all().expect("read_all");
    assert!(!paths(&cgroups).contains(&"/system.slice/gone.service"));
    assert_eq!(
        reader.read("/system.slice/gone.service").expect("read"),
        None
    );
}

#[test]
fn this_hosts_cgroups_read_back() {
    let reader = CgroupReader::detect(Path::new("/sys/fs/cgroup")).expect("detect");
    let cgroups = reader.read_all().expect("read_all");
    assert_eq!(cgroups[0].path, "/");
    assert!(cgroups[0].stats.usage > 0);
    let me = crate::sources::procfs::ProcReader::new("/proc")
        .expect("proc")
        .read_process(std::process::id() as i32)
        .expect("read")
        .expect("me");
    let mine = reader.memory_path(&me.cgroups).expect("memory path");
    assert!(reader.read(&mine).expect("read").is_some(), "{mine}");
}
