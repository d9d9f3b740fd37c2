//! `/metrics`, the alert rules and the dashboard against the real `guardian` binary and a
//! real Prometheus: promtool on a live scrape, hostile text in labels, every metric the
//! rules and the dashboard use is exported, and Prometheus sees a test process, a test
//! cgroup and an OOM kill in it.

pub mod prometheus;

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    io::Write as _,
    os::unix::{ffi::OsStrExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::common::{
    Daemon, Needs, TestCgroup, TestProcess, marker, memhog_bin, require, spawn_hog_with, wait_for,
    which,
};
use prometheus::Prometheus;

/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Fast scans; every process exported (so the test's own are, whatever their rank).
const EXPORT_ALL: &str =
    "[daemon]\nscan_interval = \"200ms\"\n\n[metrics]\ntop_processes = 100000\n";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A scrape in the classic text format (what promtool reads).
fn scrape_text(daemon: &Daemon) -> String {
    let (status, body) = crate::common::http_get_with(
        daemon.addr,
        "/metrics",
        &[("Accept", "text/plain;version=0.0.4")],
    )
    .expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// Escapes a label value the way both text formats require.
fn escaped(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Runs promtool with `args` and `stdin`; panics with its output unless it succeeds.
pub fn promtool(args: &[&str], stdin: &str) -> String {
    let binary = which("promtool").expect("promtool on PATH");
    let mut child = Command::new(binary)
        .args(args)
        .current_dir(repo_file("config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(stdin.as_bytes())
        .expect("write promtool stdin");
    let output = child.wait_with_output().expect("wait promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// `sleep` started through a symlink whose name (hence comm) and argv[0] (hence cmdline)
/// hold quotes, a backslash, a newline, braces and invalid UTF-8.
struct HostileProcess {
    process: TestProcess,
    _dir: tempfile::TempDir,
}

fn spawn_hostile(marker: &str) -> HostileProcess {
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join(OsStr::from_bytes(b"q\"b\\n\nl{}\xff\xfe="));
    let sleep = which("sleep").expect("sleep on PATH");
    std::os::unix::fs::symlink(&sleep, &link).expect("symlink sleep");
    let mut arg0 = b"w\"e\\i\nr{d}\xff ".to_vec();
    arg0.extend_from_slice(marker.as_bytes());
    let child = Command::new(&link)
        .arg0(OsStr::from_bytes(&arg0))
        .arg("3600")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn hostile sleep");
    HostileProcess {
        process: TestProcess { child },
        _dir: dir,
    }
}

/// The model's view of `pid`, once the guardian has it.
fn wait_process(daemon: &Daemon, pid: i32) -> serde_json::Value {
    wait_for(Duration::from_secs(30), || {
        daemon
            .get_json(&format!("/api/v1/processes?pid={pid}"))
            .as_array()
            .and_then(|list| list.first().cloned())
    })
    .unwrap_or_else(|| panic!("guardian never saw pid {pid}\n{}", daemon.log()))
}

#[test]
fn live_scrape_passes_promtool_and_hostile_labels_stay_escaped() {
    if !require(&[Needs::Root, Needs::Prometheus]) {
        return;
    }
    let daemon = Daemon::start(EXPORT_ALL, &["--source", "procfs"]);
    let marker = marker("metrics-hostile");
    let mut hostile = spawn_hostile(&marker);
    let pid = hostile.process.pid();
    let seen = wait_process(&daemon, pid);
    let comm = seen["comm"].as_str().expect("comm").to_string();
    assert!(comm.contains('"') && comm.contains('\n'), "comm {comm:?}");

    let body = scrape_text(&daemon);
    promtool(&["check", "metrics"], &body);
    let rss_line = body
        .lines()
        .find(|line| line.starts_with(&format!("guardian_process_rss_bytes{{pid=\"{pid}\",")))
        .unwrap_or_else(|| panic!("pid {pid} not exported:\n{body}"));
    assert!(
        rss_line.contains(&format!("comm=\"{}\"", escaped(&comm))),
        "{rss_line}"
    );
    let info_line = body
        .lines()
        .find(|line| line.starts_with(&format!("guardian_process_info{{pid=\"{pid}\",")))
        .unwrap_or_else(|| panic!("no info for pid {pid}:\n{body}"));
    assert!(
        info_line.contains(&escaped("w\"e\\i\nr{d}\u{FFFD} ")),
        "{info_line}"
    );
    assert!(info_line.contains(&marker), "{info_line}");

    // The same scrape as Prometheus asks for it: OpenMetrics.
    let (status, openmetrics) =
        crate::common::http_get_with(daemon.addr, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)])
            .expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(openmetrics.ends_with("# EOF\n"), "not OpenMetrics");
    assert!(openmetrics.contains("# TYPE guardian_oom_kills counter\n"));

    // A process that exits stops being exported.
    let _ = hostile.process.child.kill();
    let _ = hostile.process.child.wait();
    let gone = wait_for(Duration::from_secs(30), || {
        (!scrape_text(&daemon).contains(&format!("{{pid=\"{pid}\","))).then_some(())
    });
    assert!(gone.is_some(), "pid {pid} still exported after exit");
}

/// One answer comes from one published snapshot: when two `/api/v1/status` reads around
/// a scrape name the same tick, the scrape names that tick and the same process count.
#[test]
fn metrics_and_status_agree_on_the_snapshot_tick() {
    if !require(&[Needs::Root]) {
        return;
    }
    let daemon = Daemon::start(
        "[daemon]\nscan_interval = \"1s\"\n",
        &["--source", "procfs"],
    );
    let agreed = wait_for(Duration::from_secs(30), || {
        let before = daemon.get_json("/api/v1/status");
        let body = scrape_text(&daemon);
        let after = daemon.get_json("/api/v1/status");
        (before["tick"] == after["tick"]).then_some((after, body))
    });
    let (status, body) = agreed.expect("three reads within one tick in 30 s");
    let tick = status["tick"].as_u64().expect("tick in /api/v1/status");
    assert!(tick >= 1, "{status}");
    assert!(
        body.contains(&format!("\nguardian_snapshot_tick {tick}\n")),
        "tick {tick} not in the scrape:\n{body}"
    );
    let processes = status["processes"].as_u64().expect("processes");
    assert!(
        body.contains(&format!("\nguardian_model_processes {processes}\n")),
        "{processes} processes not in the scrape of tick {tick}:\n{body}"
    );
}

#[test]
fn shipped_alert_rules_pass_promtool() {
    if !require(&[Needs::Prometheus]) {
        return;
    }
    let checked = promtool(&["check", "rules", "alerts.yml", "recording.yml"], "");
    assert!(checked.contains("SUCCESS"), "{checked}");
    // One host's thresholds and timing, then three hosts sharing pids, cgroup paths and
    // container ids (and the fleet recording rules).
    let tested = promtool(
        &["test", "rules", "alerts.test.yml", "alerts.fleet.test.yml"],
        "",
    );
    assert!(!tested.contains("FAILED"), "{tested}");
    assert_eq!(tested.matches("SUCCESS").count(), 2, "{tested}");
}

/// Metric names the rules and the dashboard may use that a live guardian exports only
/// once something happened (documented in the README), with the condition.
fn only_after_event(name: &str) -> Option<&'static str> {
    let v1_memory = crate::common::memory_hierarchy().ends_with("memory");
    if name.starts_with("guardian_leak_") {
        Some("the leak detector reports a growing or leaking series")
    } else if name.starts_with("guardian_limit_imminent_") {
        Some("a series' memory rises toward its limit")
    } else if name.starts_with("guardian_cgroup_memory_pressure_") && v1_memory {
        Some("cgroup v2 (PSI per cgroup); this host's memory controller is on v1")
    } else if name.starts_with("guardian_host_memory_pressure_")
        && !Path::new("/proc/pressure/memory").exists()
    {
        Some("the kernel has PSI (/proc/pressure/memory)")
    } else {
        None
    }
}

#[test]
fn every_metric_the_rules_and_dashboard_use_is_exported() {
    if !require(&[Needs::Root]) {
        return;
    }
    let marker = marker("metrics-names");
    // A dry-run rule with a long sustain tracks the test's hog (and nothing else), so the
    // per-rule and per-tracked-process series exist; a limited cgroup gives a limit.
    let config = format!(
        "[daemon]\nscan_interval = \"200ms\"\n\n\
         [[rule]]\nname = \"names-test\"\nthreshold = \"1MiB\"\nsustain = \"1h\"\n\
         dry_run = true\nmatch = {{ cmdline = '--marker {}( |$)' }}\n",
        regex::escape(&marker)
    );
    let cgroup = TestCgroup::new(&marker, Some(256 << 20));
    let hog = spawn_hog_with(&marker, &["--rss", "8"], |command| cgroup.enter(command));
    let daemon = Daemon::start(&config, &["--source", "procfs"]);
    wait_process(&daemon, hog.pid());

    let mut used = BTreeSet::new();
    for file in [
        "config/alerts.yml",
        "config/recording.yml",
        "config/dashboard.json",
        "config/fleet-dashboard.json",
    ] {
        let text = std::fs::read_to_string(repo_file(file)).expect("read rules/dashboard");
        // Names start with `guardian_` or (the guardian's own process) `process_`;
        // `instance:guardian_...:ratio` is a recorded series, not an exported one (the
        // fleet tests check those against recording.yml).
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        for (at, _) in text.match_indices(is_name).filter(|(at, _)| {
            !text[..*at].ends_with(is_name)
                && !text[..*at].ends_with(':')
                && ["guardian_", "process_"]
                    .iter()
                    .any(|prefix| text[*at..].starts_with(prefix))
        }) {
            let name: String = text[at..].chars().take_while(|c| is_name(*c)).collect();
            used.insert(name);
        }
    }
    assert!(used.len() > 20, "too few names found: {used:?}");

    let missing = || {
        let body = scrape_text(&daemon);
        let exported: BTreeSet<&str> = body
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| line.split(['{', ' ']).next())
            .collect();
        used.iter()
            .filter(|name| !exported.contains(name.as_str()))
            .filter(|name| only_after_event(name).is_none())
            .cloned()
            .collect::<Vec<_>>()
    };
    // The pending rule and the cgroup show up within a few scans.
    let settled = wait_for(Duration::from_secs(30), || {
        missing().is_empty().then_some(())
    });
    assert!(
        settled.is_some(),
        "used by the rules or dashboards but not exported: {:?}\n{}",
        missing(),
        daemon.log()
    );
}

#[test]
fn prometheus_scrapes_a_test_process_a_test_cgroup_and_an_oom_kill() {
    if !require(&[Needs::Root, Needs::Prometheus]) {
        return;
    }
    let marker = marker("metrics-e2e");
    let cgroup = TestCgroup::new(&marker, Some(64 << 20));
    let hog = spawn_hog_with(&marker, &["--rss", "16"], |command| cgroup.enter(command));
    let hostile = spawn_hostile(&marker);
    let daemon = Daemon::start(EXPORT_ALL, &["--source", "procfs"]);
    wait_process(&daemon, hog.pid());
    let hostile_comm = wait_process(&daemon, hostile.process.pid())["comm"]
        .as_str()
        .expect("comm")
        .to_string();
    let prometheus = Prometheus::start(daemon.addr, &repo_file("config/alerts.yml"));

    prometheus.wait_value(r#"up{job="guardian"}"#, |up| up == 1.0);
    // Hostile text survives the OpenMetrics round trip through a real parser intact.
    let info = wait_for(Duration::from_secs(60), || {
        prometheus
            .query(&format!(
                r#"guardian_process_info{{pid="{}"}}"#,
                hostile.process.pid()
            ))
            .into_iter()
            .next()
    })
    .unwrap_or_else(|| panic!("hostile process not in Prometheus\n{}", prometheus.log()));
    assert_eq!(info.0["comm"], hostile_comm.as_str(), "{info:?}");
    assert!(
        info.0["cmdline"]
            .as_str()
            .is_some_and(|cmdline| cmdline.starts_with("w\"e\\i\nr{d}\u{FFFD} ")),
        "{info:?}"
    );
    let rss = prometheus.wait_value(
        &format!(r#"guardian_process_rss_bytes{{pid="{}"}}"#, hog.pid()),
        |rss| rss >= (16 << 20) as f64,
    );
    assert!(rss < (64 << 20) as f64, "hog RSS {rss}");
    let selector = format!(r#"{{cgroup="{}"}}"#, cgroup.path);
    prometheus.wait_value(
        &format!("guardian_cgroup_memory_usage_bytes{selector}"),
        |usage| usage >= (16 << 20) as f64,
    );
    let limit = prometheus.wait_value(
        &format!("guardian_cgroup_memory_limit_bytes{selector}"),
        |_| true,
    );
    assert_eq!(limit, (64 << 20) as f64);
    let before = prometheus.wait_value(r#"guardian_oom_kills_total{scope="cgroup"}"#, |_| true);

    // Outgrow the limit: the kernel kills the biggest process in the cgroup.
    let mut victim = Command::new(memhog_bin());
    victim
        .args(["--rss", "256", "--marker", &marker])
        .stdout(Stdio::null());
    cgroup.enter(&mut victim);
    let status = victim
        .spawn()
        .expect("spawn victim")
        .wait()
        .expect("wait victim");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "the victim was not OOM-killed: {status}"
    );

    prometheus.wait_value(
        &format!("guardian_cgroup_oom_kills_total{selector}"),
        |kills| kills >= 1.0,
    );
    prometheus.wait_value(r#"guardian_oom_kills_total{scope="cgroup"}"#, |kills| {
        kills > before
    });
    let alert = wait_for(Duration::from_secs(60), || {
        prometheus.firing_alerts().into_iter().find(|alert| {
            alert["labels"]["alertname"] == "GuardianCgroupOomKill"
                && alert["labels"]["cgroup"] == cgroup.path.as_str()
        })
    });
    assert!(
        alert.is_some(),
        "GuardianCgroupOomKill did not fire: {:?}",
        prometheus.firing_alerts()
    );
}
