//! The memory sources end to end: the real daemon in eBPF and procfs modes against real
//! processes and real memory cgroups (issue: memory sources).

use std::time::Duration;

use serde_json::Value;

use crate::common::{
    Daemon, Needs, TestCgroup, marker, require, spawn_hog, spawn_hog_with, wait_for,
};

const MIB: u64 = 1024 * 1024;

/// VmRSS of `pid` in bytes, from its own /proc status.
fn vm_rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The process `pid` as the daemon's API shows it.
fn api_process(daemon: &Daemon, pid: i32) -> Option<Value> {
    let list = daemon.get_json(&format!("/api/v1/processes?pid={pid}"));
    list.as_array()?.first().cloned()
}

fn start(source: &str, config: &str) -> Daemon {
    let daemon = Daemon::start(config, &["--source", source]);
    let status = daemon.get_json("/api/v1/status");
    assert_eq!(status["source"]["source"], source, "status: {status}");
    let refresh = if source == "ebpf" {
        "task-iterator"
    } else {
        "procfs"
    };
    assert_eq!(status["source"]["refresh"], refresh, "status: {status}");
    daemon
}

/// A process that grows to ~120 MiB shows in the API within max(1 MiB, 2 %) of its
/// own VmRSS.
fn tracks_a_growing_process(source: &str) {
    let daemon = start(source, "[daemon]\nscan_interval = \"500ms\"\n");
    let hog = spawn_hog(
        &marker("rss"),
        &["--rss", "16", "--grow", "60", "--max", "120"],
    );
    api_matches_vm_rss_once_grown(&daemon, hog.pid(), source);
}

/// Waits for `pid` to reach 120 MiB, then for the API to show its RSS within
/// max(1 MiB, 2 %) of its VmRSS; fails naming `label` otherwise.
fn api_matches_vm_rss_once_grown(daemon: &Daemon, pid: i32, label: &str) {
    let grown = wait_for(Duration::from_secs(30), || {
        vm_rss(pid).filter(|rss| *rss >= 120 * MIB)
    });
    assert!(grown.is_some(), "memhog did not reach 120 MiB");
    let mut last_seen = None;
    let matched = wait_for(Duration::from_secs(10), || {
        let truth = vm_rss(pid)?;
        let seen = api_process(daemon, pid)?["memory"]["rss"].as_u64()?;
        last_seen = Some((seen, truth));
        (seen.abs_diff(truth) <= MIB.max(truth / 50)).then_some(seen)
    });
    assert!(
        matched.is_some(),
        "{label}: API rss vs VmRSS (bytes): {last_seen:?}\n{}",
        daemon.log()
    );
}

#[test]
fn ebpf_mode_tracks_rss_of_a_growing_process() {
    if require(&[Needs::Root, Needs::Bpf]) {
        tracks_a_growing_process("ebpf");
    }
}

#[test]
fn procfs_mode_tracks_rss_of_a_growing_process() {
    if require(&[Needs::Root]) {
        tracks_a_growing_process("procfs");
    }
}

/// In eBPF mode a process at or above the lowest rule threshold is followed between
/// refreshes: with the task-iterator refresh a minute away, its growth still reaches the
/// API, from the kernel's RSS steps alone.
#[test]
fn ebpf_mode_follows_a_process_above_a_rule_threshold_between_refreshes() {
    if !require(&[Needs::Root, Needs::Bpf]) {
        return;
    }
    let name = marker("floor");
    let config = format!(
        "[daemon]\nscan_interval = \"60s\"\n[[rule]]\nname = \"watch\"\nthreshold = \"48MiB\"\n\
         scope = \"host\"\ndry_run = true\nmatch = {{ cmdline = \"{name}\" }}\n"
    );
    let daemon = start("ebpf", &config);
    let hog = spawn_hog(&name, &["--rss", "8", "--grow", "60", "--max", "120"]);
    api_matches_vm_rss_once_grown(&daemon, hog.pid(), "ebpf, refresh 60 s away");
}

/// A real OOM kill in a memory-limited cgroup is reported once, with its cgroup, scope
/// and the victim's pid, comm and RSS (from the tracepoint, or in procfs mode from the
/// kernel log).
fn reports_a_cgroup_oom_kill(source: &str) {
    let daemon = start(source, "[daemon]\nscan_interval = \"500ms\"\n");
    let cgroup = TestCgroup::new(&marker(&format!("oom-{source}")), Some(48 * MIB));
    // Let the daemon see the cgroup (and seed its counters) before the kill.
    let seen = wait_for(Duration::from_secs(10), || {
        let list = daemon.get_json("/api/v1/cgroups?limit=100000");
        list.as_array()?
            .iter()
            .any(|entry| entry["path"] == cgroup.path.as_str())
            .then_some(())
    });
    assert!(seen.is_some(), "daemon never listed {}", cgroup.path);
    std::thread::sleep(Duration::from_millis(1200));
    let mut hog = spawn_hog_with(
        &marker("oom-victim"),
        &["--rss", "8", "--grow", "200"],
        |command| cgroup.enter(command),
    );
    let pid = hog.pid();
    let died = wait_for(Duration::from_secs(30), || hog.has_exited().then_some(()));
    assert!(died.is_some(), "the hog was not OOM-killed");
    let event = wait_for(Duration::from_secs(10), || {
        let events = daemon.get_json("/api/v1/oom-events");
        events
            .as_array()?
            .iter()
            .find(|event| event["cgroup"] == cgroup.path.as_str())
            .cloned()
    });
    let event = event.unwrap_or_else(|| {
        panic!(
            "{source}: no OOM event for {}\n{}",
            cgroup.path,
            daemon.log()
        )
    });
    assert_eq!(event["scope"], "cgroup", "{event}");
    // The victim is named in both modes: by the tracepoint, or by the kernel log.
    let origin = if source == "ebpf" {
        "tracepoint"
    } else {
        "kernel-log"
    };
    assert_eq!(event["origin"], origin, "{event}");
    assert_eq!(event["pid"], pid, "{event}");
    assert_eq!(event["comm"], "memhog", "{event}");
    assert!(
        event["anon_rss_bytes"]
            .as_u64()
            .is_some_and(|rss| rss > 8 * MIB),
        "{event}"
    );
    // Reported once: the counter and the log line are one event, also a few ticks on.
    std::thread::sleep(Duration::from_secs(2));
    let events = daemon.get_json("/api/v1/oom-events");
    let count = events.as_array().map_or(0, |events| {
        events
            .iter()
            .filter(|event| event["cgroup"] == cgroup.path.as_str())
            .count()
    });
    assert_eq!(count, 1, "{events}");
}

#[test]
fn ebpf_mode_reports_a_cgroup_oom_kill() {
    if require(&[Needs::Root, Needs::Bpf]) {
        reports_a_cgroup_oom_kill("ebpf");
    }
}

#[test]
fn procfs_mode_reports_a_cgroup_oom_kill() {
    if require(&[Needs::Root]) {
        reports_a_cgroup_oom_kill("procfs");
    }
}

/// Processes exiting and cgroups vanishing between and during scans never stop the
/// daemon or make it unhealthy.
#[test]
fn survives_process_and_cgroup_churn() {
    if !require(&[Needs::Root]) {
        return;
    }
    let daemon = start("procfs", "[daemon]\nscan_interval = \"200ms\"\n");
    for round in 0..20 {
        let cgroups: Vec<TestCgroup> = (0..5)
            .map(|i| TestCgroup::new(&marker(&format!("churn-{round}-{i}")), None))
            .collect();
        let children: Vec<std::process::Child> = (0..20)
            .filter_map(|_| std::process::Command::new("true").spawn().ok())
            .collect();
        for mut child in children {
            let _ = child.wait();
        }
        drop(cgroups);
    }
    // Scans keep going: the pipeline is (again) fresh, and the daemon still runs.
    let healthy = wait_for(Duration::from_secs(20), || {
        (daemon.get("/healthz").0 == 200).then_some(())
    });
    assert!(healthy.is_some(), "{}", daemon.log());
    let status = daemon.get_json("/api/v1/status");
    assert!(
        status["processes"].as_u64().is_some_and(|n| n > 0),
        "{status}"
    );
}
