//! Leak rules end to end: a memhog the test started grows in steps inside a memory
//! cgroup with a limit; the trend detector (fast scans, no warm-up) sees it reach the
//! limit within the rule's horizon and the leak rule SIGTERMs it long before the limit,
//! the kill log naming the trigger. A Docker container growing the same way matches the
//! same pattern and is spared (leak rules never signal a container); a dry-run rule logs
//! its decision and kills nothing. `check-config` and `explain` know the rule. A pressure
//! rule with `victim = "fastest-growing"` takes a growing memhog over a larger steady one.

use std::{path::Path, process::Command, time::Duration};

use super::{SPARE_WAIT, config, records_for, wait_outcome};
use crate::{
    common::{
        Daemon, Needs, TestCgroup, assert_log_verifies, guardian_bin, marker, mem_available,
        require, spawn_hog_with, wait_for,
    },
    docker::TestContainer,
};

const MIB: u64 = 1 << 20;
/// The trend detector needs six 10 s minima before it calls a rise: allow for a loaded
/// machine. Tests wait, never time.
const TREND_TIMEOUT: Duration = Duration::from_secs(300);

/// A leak rule on processes whose command line ends a word with `marker`.
fn leak_rule(name: &str, marker: &str, extra: &str) -> String {
    format!(
        "[[leak_rule]]\nname = \"{name}\"\non = \"imminent\"\nwithin = \"24h\"\ngrace = \"2s\"\n\
         match = {{ cmdline = '{}( |$)' }}\n{extra}\n",
        regex::escape(marker)
    )
}

/// The first `/api/v1/trends` report on process `pid` that `holds`, waited for up to
/// [`TREND_TIMEOUT`].
fn wait_trend(
    daemon: &Daemon,
    pid: i32,
    holds: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    wait_for(TREND_TIMEOUT, || {
        daemon
            .get_json("/api/v1/trends?limit=100000")
            .as_array()?
            .iter()
            .find(|report| report["subject"]["pid"] == pid && holds(report))
            .cloned()
    })
}

#[test]
fn leak_rule_terms_a_growing_host_process_before_its_limit_and_spares_a_container() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("leak-rule");
    let dry_marker = format!("{m}-dry");
    // The container's shell keeps 2 MB more every second (one variable each); its argv
    // is `sh -c SCRIPT MARKER`, so the rule's pattern matches it too.
    let docker = Path::new("/var/run/docker.sock").exists();
    let container = docker.then(|| {
        TestContainer::run_sh(
            &m,
            r#"i=0; while :; do eval "v$i=\$(head -c 2000000 /dev/zero | tr '\0' a)"; i=$((i+1)); sleep 1; done"#,
        )
    });
    let memory = TestCgroup::new(&m, Some(1024 * MIB));
    let grow = ["--rss", "20", "--grow", "2", "--max", "600"];
    let mut hog = spawn_hog_with(&m, &grow, |command| memory.enter(command));
    let mut dry = spawn_hog_with(&dry_marker, &grow, |_| {});
    let text = config(&format!(
        "[trends]\nmin_rss = \"1MiB\"\nwarmup = \"0s\"\n\n\
         [safety]\nmax_kills = 100\nbackoff = \"0s\"\n\n{}{}",
        leak_rule("leak-term", &m, ""),
        leak_rule("leak-dry", &dry_marker, "dry_run = true"),
    ));
    let daemon = Daemon::start(&text, &["--source", "procfs"]);

    let exited = wait_for(TREND_TIMEOUT, || hog.has_exited().then_some(()));
    assert!(
        exited.is_some(),
        "the leak rule never acted\n{}",
        daemon.log()
    );
    assert_eq!(hog.exit_signal(), Some(libc::SIGTERM));
    let records = records_for(&daemon, hog.pid());
    let intent = records
        .iter()
        .find(|record| record["kind"] == "intent")
        .unwrap_or_else(|| panic!("no intent\n{}", daemon.log()));
    println!("intent: {intent}");
    assert_eq!(intent["rule"], "leak-term");
    assert_eq!(intent["signals"], serde_json::json!(["SIGTERM", "SIGKILL"]));
    let trigger = &intent["trigger"];
    assert_eq!(trigger["trigger"], "imminent", "{intent}");
    assert_eq!(trigger["source"], "trend");
    assert_eq!(trigger["threshold"].as_f64(), Some(86_400.0));
    let time_to_limit = trigger["trend"]["time_to_limit_s"]
        .as_f64()
        .expect("time to limit");
    assert!(time_to_limit > 0.0 && time_to_limit <= 86_400.0, "{intent}");
    assert_eq!(trigger["value"].as_f64(), Some(time_to_limit));
    assert_eq!(trigger["trend"]["limit_kind"], "cgroup", "{intent}");
    assert_eq!(trigger["trend"]["limit_bytes"].as_u64(), Some(1024 * MIB));
    assert!(trigger["trend"]["slope_bytes_per_second"].as_f64() > Some(0.0));
    // Acted before the limit: the process was still well below it.
    assert!(intent["rss_bytes"].as_u64() < Some(1024 * MIB), "{intent}");
    assert!(
        intent["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("reaches its cgroup limit 1.0 GiB in ")),
        "{intent}"
    );
    let outcome = wait_outcome(&daemon, hog.pid());
    assert_eq!(outcome["outcome"], "exited");
    assert_eq!(outcome["signals_sent"], serde_json::json!(["SIGTERM"]));

    // The dry-run rule decided on its process and left it running.
    let dry_outcome = wait_outcome(&daemon, dry.pid());
    assert_eq!(dry_outcome["outcome"], "dry-run");
    assert_eq!(dry_outcome["rule"], "leak-dry");
    assert!(!dry.has_exited(), "the dry-run rule killed its process");

    if let Some(container) = &container {
        // The detector sees the container grow toward a limit within the horizon (a
        // host process would be due), yet the rule never takes it.
        let pid = container.pid();
        let seen = wait_trend(&daemon, pid, |report| {
            report["time_to_limit_s"]
                .as_f64()
                .is_some_and(|seconds| seconds <= 86_400.0)
        });
        assert!(
            seen.is_some(),
            "the container's growth was never seen\n{}",
            daemon.log()
        );
        println!(
            "container trend: {}",
            seen.as_ref().map_or(serde_json::Value::Null, Clone::clone)
        );
        std::thread::sleep(SPARE_WAIT);
        assert!(
            container.is_running(),
            "the container was killed\n{}",
            daemon.log()
        );
        assert!(
            records_for(&daemon, pid).is_empty(),
            "the kill log names the container's process"
        );
    }

    // The hash chain holds over records carrying the trend trigger.
    assert_log_verifies(&daemon.kill_log_path(), "the kill log with trend triggers");

    // check-config counts the rules; explain shows the leak rule and its trend check.
    let config_path = daemon.config_path();
    let checked = Command::new(guardian_bin())
        .arg("check-config")
        .arg(&config_path)
        .output()
        .expect("run guardian check-config");
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success() && said.contains("2 leak rule(s)"),
        "{said}"
    );
    let explained = Command::new(guardian_bin())
        .args(["explain", &dry.pid().to_string(), "--json", "--config"])
        .arg(&config_path)
        .output()
        .expect("run guardian explain");
    let explained: serde_json::Value =
        serde_json::from_slice(&explained.stdout).expect("explain JSON");
    let rule = explained["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|rule| rule["rule"] == "leak-dry"))
        .unwrap_or_else(|| panic!("no leak-dry in {explained}"));
    assert_eq!(rule["kind"], "leak");
    assert!(
        rule["checks"]
            .as_array()
            .is_some_and(|checks| checks.iter().any(|check| check["check"] == "trend")),
        "{rule}"
    );
}

/// A pressure rule with `victim = "fastest-growing"` takes the growing memhog, not the
/// larger steady one. The rule is added by a reload once the detector has seen the rise
/// (before that it would fall back to the largest, as the reason would say).
#[test]
fn fastest_growing_victim_is_the_growing_process_not_the_largest() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("fastest");
    let mut large = spawn_hog_with(&m, &["--rss", "200"], |_| {});
    let mut growing = spawn_hog_with(&m, &["--rss", "20", "--grow", "2", "--max", "190"], |_| {});
    let base = "[trends]\nmin_rss = \"1MiB\"\nwarmup = \"0s\"\n\n\
                [safety]\nmax_kills = 100\nbackoff = \"0s\"\n";
    let daemon = Daemon::start(&config(base), &["--source", "procfs"]);
    let pid = growing.pid();
    let rising = wait_trend(&daemon, pid, |report| {
        report["rise_bytes_per_second"]
            .as_f64()
            .is_some_and(|rise| rise > 0.0)
    });
    assert!(rising.is_some(), "no rise seen\n{}", daemon.log());
    // Always true: MemAvailable now plus 1 GiB.
    let limit = mem_available() + (1 << 30);
    daemon.reload(
        &config(&format!(
            "{base}\n[[pressure_rule]]\nname = \"fastest\"\nmem_available_below = {limit}\n\
             victim = \"fastest-growing\"\ncooldown = \"10m\"\naction = \"kill\"\n\
             match = {{ cmdline = '{}( |$)' }}\n",
            regex::escape(&m)
        )),
        1,
    );
    let exited = wait_for(TREND_TIMEOUT, || growing.has_exited().then_some(()));
    assert!(
        exited.is_some(),
        "the growing memhog was not killed\n{}",
        daemon.log()
    );
    let intent = records_for(&daemon, pid)
        .into_iter()
        .find(|record| record["kind"] == "intent")
        .unwrap_or_else(|| panic!("no intent\n{}", daemon.log()));
    println!("intent: {intent}");
    assert!(
        intent["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("; fastest-growing matching process, rss ")),
        "{intent}"
    );
    assert!(!large.has_exited(), "the largest was killed");
    assert!(records_for(&daemon, large.pid()).is_empty());
}
