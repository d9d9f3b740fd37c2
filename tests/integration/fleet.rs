//! Many hosts, one Prometheus: three guardians on this machine (one eBPF, one procfs, one
//! the DaemonSet's container image under Docker; each with its own port, config and kill
//! log) scraped by one real Prometheus, whose
//! alert names exactly the guardian that tracks the test's process, and a second real
//! Prometheus that federates the first and evaluates the fleet recording rules. Also the
//! shipped files around them: one runbook per alert, dashboards that ask for their data
//! source and read only recorded series that exist, and the package shipping them all.

use std::{collections::BTreeSet, net::SocketAddr, path::PathBuf, time::Duration};

use crate::{
    common::{Daemon, Needs, marker, require, spawn_hog, wait_for},
    daemonset::DaemonSetGuardian,
    metrics::prometheus::{Prometheus, guardian_job},
};

/// Fast scans; the default export (the 50 largest processes and what rules track): the
/// three guardians share this machine, so they export the same large processes under the
/// same pids (as hosts share pids), and a join on `pid` alone meets them three times.
const FAST: &str = "[daemon]\nscan_interval = \"200ms\"\n";

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The alert names of config/alerts.yml, in order.
fn alert_names() -> Vec<String> {
    read("config/alerts.yml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(str::to_string)
        .collect()
}

/// The series config/recording.yml records.
fn recorded_names() -> BTreeSet<String> {
    read("config/recording.yml")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- record: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_alert_has_its_runbook_and_the_package_ships_rules_dashboards_and_runbooks() {
    let alerts = alert_names();
    assert!(alerts.len() >= 14, "{alerts:?}");
    let rules = read("config/alerts.yml");
    for (index, alert) in alerts.iter().enumerate() {
        // This alert's text: from its `- alert:` line to the next one.
        let start = rules
            .find(&format!("- alert: {alert}\n"))
            .expect("alert line");
        let end = alerts
            .get(index + 1)
            .and_then(|next| rules.find(&format!("- alert: {next}\n")))
            .unwrap_or(rules.len());
        let url = format!("docs/runbooks/{alert}.md");
        assert!(
            rules[start..end].contains(&format!("runbook_url: {url}\n")),
            "{alert} has no `runbook_url: {url}` annotation"
        );
        let page = read(&url);
        assert!(
            page.starts_with(&format!("# {alert}\n")),
            "{url} is not {alert}'s page"
        );
        for section in ["## Meaning", "## Impact", "## Diagnosis", "## Mitigation"] {
            assert!(page.contains(section), "{url} lacks {section}");
        }
    }
    // No page for an alert that no longer exists.
    let pages: BTreeSet<String> = std::fs::read_dir(repo_file("docs/runbooks"))
        .expect("docs/runbooks")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix(".md").map(str::to_string))
        .filter(|name| name != "README")
        .collect();
    assert_eq!(pages, alerts.iter().cloned().collect(), "runbook pages");

    // The package installs what the README and the rules say it does.
    let manifest = read("guardian/Cargo.toml");
    for asset in [
        r#"["../config/alerts.yml", "usr/share/guardian/alerts.yml", "644"]"#,
        r#"["../config/recording.yml", "usr/share/guardian/recording.yml", "644"]"#,
        r#"["../config/dashboard.json", "usr/share/guardian/dashboard.json", "644"]"#,
        r#"["../config/fleet-dashboard.json", "usr/share/guardian/fleet-dashboard.json", "644"]"#,
        r#"["../docs/runbooks/*.md", "usr/share/doc/guardian/runbooks/", "644"]"#,
    ] {
        assert!(manifest.contains(asset), "the .deb lacks {asset}");
    }
    for (file, text) in [
        ("README.md", read("README.md")),
        ("config/alerts.yml", rules.clone()),
    ] {
        assert!(
            text.contains("/usr/share/guardian/alerts.yml"),
            "{file} does not name the installed rules"
        );
        assert!(
            !text.contains("/etc/guardian/alerts.yml"),
            "{file} names a path the package does not install"
        );
    }
}

#[test]
fn dashboards_ask_for_their_data_source_and_read_recorded_series() {
    let recorded = recorded_names();
    for file in ["config/dashboard.json", "config/fleet-dashboard.json"] {
        let dashboard: serde_json::Value =
            serde_json::from_str(&read(file)).unwrap_or_else(|error| panic!("{file}: {error}"));
        // Grafana's import asks for each input and substitutes ${DS_PROMETHEUS}.
        let inputs = dashboard["__inputs"].as_array().expect("__inputs");
        assert!(
            inputs.iter().any(|input| input["name"] == "DS_PROMETHEUS"
                && input["type"] == "datasource"
                && input["pluginId"] == "prometheus"),
            "{file}: no DS_PROMETHEUS input"
        );
        let variables = dashboard["templating"]["list"]
            .as_array()
            .expect("variables");
        let source = variables
            .iter()
            .find(|variable| variable["type"] == "datasource")
            .expect("a data source variable");
        assert_eq!(source["current"]["value"], "${DS_PROMETHEUS}", "{file}");

        // Every panel, query and annotation reads the chosen data source; ids are unique.
        let panels: Vec<&serde_json::Value> = dashboard["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .flat_map(|panel| {
                std::iter::once(panel).chain(panel["panels"].as_array().into_iter().flatten())
            })
            .collect();
        let ids: BTreeSet<i64> = panels.iter().filter_map(|p| p["id"].as_i64()).collect();
        assert_eq!(
            ids.len(),
            panels.len(),
            "{file}: duplicate or missing panel ids"
        );
        let mut expressions = Vec::new();
        for panel in panels.iter().filter(|panel| panel["type"] != "row") {
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: {panel}"
            );
            for target in panel["targets"].as_array().expect("targets") {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{file}");
                expressions.push(target["expr"].as_str().expect("expr").to_string());
            }
        }
        for annotation in dashboard["annotations"]["list"].as_array().expect("list") {
            assert_eq!(annotation["datasource"]["uid"], "${datasource}", "{file}");
            expressions.push(annotation["expr"].as_str().expect("expr").to_string());
        }
        // Recorded series (level:metric:operations) must be recorded by recording.yml.
        for expression in &expressions {
            for word in expression.split(|c: char| !(c.is_ascii_alphanumeric() || "_:".contains(c)))
            {
                if word.matches(':').count() == 2 {
                    assert!(
                        recorded.contains(word),
                        "{file} reads {word}, which config/recording.yml does not record"
                    );
                }
            }
        }
    }
}

/// A copy of config/alerts.yml with every `for:` cut to 1 s, so a test sees alerts fire
/// within seconds; the expressions, labels and annotations are the shipped ones.
fn alerts_without_waiting(dir: &std::path::Path) -> PathBuf {
    let text: String = read("config/alerts.yml")
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 1s\n", &line[..line.len() - line.trim_start().len()]),
            None => format!("{line}\n"),
        })
        .collect();
    let path = dir.join("alerts.yml");
    std::fs::write(&path, text).expect("write alerts copy");
    path
}

/// The alerts of `name` about `pid`, pending or firing.
fn alerts_about(prometheus: &Prometheus, name: &str, pid: i32) -> Vec<serde_json::Value> {
    prometheus
        .alerts()
        .into_iter()
        .filter(|alert| {
            alert["labels"]["alertname"] == name
                && alert["labels"]["pid"].as_str().and_then(|p| p.parse().ok()) == Some(pid)
        })
        .collect()
}

#[test]
fn three_guardians_one_prometheus_one_alert_for_one_host_and_a_federation_records_the_fleet() {
    if !require(&[Needs::Root, Needs::Bpf, Needs::Docker, Needs::Prometheus]) {
        return;
    }
    let marker = marker("fleet");
    let hog = spawn_hog(&marker, &["--rss", "16"]);
    // Only the eBPF guardian has a rule for the hog: dry-run with a long sustain, so it
    // tracks the hog (threshold series) and never decides. The other two (procfs, and
    // the containerised one, which sees the host's pids) have no rule.
    let tracking = format!(
        "{FAST}\n[[rule]]\nname = \"fleet-test\"\nthreshold = \"1MiB\"\nsustain = \"1h\"\n\
         dry_run = true\nmatch = {{ cmdline = '--marker {}( |$)' }}\n",
        regex::escape(&marker)
    );
    let ebpf = Daemon::start(&tracking, &["--source", "ebpf"]);
    let procfs = Daemon::start(FAST, &["--source", "procfs"]);
    let third = DaemonSetGuardian::start(FAST);
    let targets = [ebpf.addr, procfs.addr, third.addr];
    let instances: BTreeSet<String> = targets.iter().map(SocketAddr::to_string).collect();

    let rules_dir = tempfile::tempdir().expect("temp dir");
    let alerts = alerts_without_waiting(rules_dir.path());
    let recording = repo_file("config/recording.yml");
    let central = Prometheus::start_with(&guardian_job(&targets), &[&alerts, &recording]);

    // All three export host processes under the same pids (the joins meet each pid
    // three times), and the eBPF guardian the hog its rule tracks.
    let shared =
        || central.query(r#"count by (pid) (guardian_process_rss_bytes{scope="host"}) == 3"#);
    let seen = wait_for(Duration::from_secs(60), || {
        let hog = central.query(&format!(
            r#"guardian_process_kill_threshold_bytes{{pid="{}"}}"#,
            hog.pid()
        ));
        (!shared().is_empty() && !hog.is_empty()).then_some(())
    });
    assert!(
        seen.is_some(),
        "no pid exported by all three guardians ({:?}) or hog {} not tracked\n{}",
        shared(),
        hog.pid(),
        central.log()
    );

    let alert = "GuardianHostProcessOverKillThreshold";
    let firing = wait_for(Duration::from_secs(60), || {
        alerts_about(&central, alert, hog.pid())
            .into_iter()
            .find(|alert| alert["state"] == "firing")
    })
    .unwrap_or_else(|| {
        panic!(
            "{alert} never fired for pid {}: {:?}\nfailing rules: {:?}\n{}\n{}",
            hog.pid(),
            central.alerts(),
            central.failing_rules(),
            central.log(),
            ebpf.log()
        )
    });
    assert_eq!(
        firing["labels"]["instance"],
        ebpf.addr.to_string(),
        "{firing}"
    );
    assert_eq!(firing["labels"]["rule"], "fleet-test", "{firing}");
    assert_eq!(firing["labels"]["scope"], "host", "{firing}");
    // Three more evaluations: the other two hosts stay quiet about the same pid.
    let mut evaluations = BTreeSet::new();
    let evaluated = wait_for(Duration::from_secs(60), || {
        evaluations.insert(central.last_evaluations());
        (evaluations.len() > 3).then_some(())
    });
    assert!(
        evaluated.is_some(),
        "rules not evaluated:\n{}",
        central.log()
    );
    let about_hog = alerts_about(&central, alert, hog.pid());
    assert_eq!(about_hog.len(), 1, "{about_hog:?}");
    assert_eq!(
        central.failing_rules(),
        Vec::<(String, String)>::new(),
        "rules that failed with three hosts"
    );

    // A second Prometheus federates the first and records the fleet.
    let federate = format!(
        "  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    \
         params:\n      'match[]': ['{{job=\"guardian\"}}']\n    scrape_interval: 1s\n    \
         scrape_timeout: 1s\n    static_configs:\n      - targets: ['{}']\n",
        central.addr
    );
    let global = Prometheus::start_with(&federate, &[&recording]);
    global.wait_value(r#"job:guardian_hosts:count{job="guardian"}"#, |hosts| {
        hosts == 3.0
    });
    global.wait_value(r#"job:guardian_hosts_down:count{job="guardian"}"#, |down| {
        down == 0.0
    });
    let used_by_host = wait_for(Duration::from_secs(60), || {
        let samples = global.query("instance:guardian_host_memory_used:ratio");
        let hosts: BTreeSet<String> = samples
            .iter()
            .filter(|(_, used)| *used > 0.0 && *used < 1.0)
            .filter_map(|(labels, _)| labels["instance"].as_str().map(str::to_string))
            .collect();
        (hosts == instances).then_some(samples)
    })
    .unwrap_or_else(|| {
        panic!(
            "no memory ratio per host in the federation: {:?}\n{}",
            global.query("instance:guardian_host_memory_used:ratio"),
            global.log()
        )
    });
    assert_eq!(used_by_host.len(), 3, "{used_by_host:?}");
    let fallback = global.wait_value(
        r#"count(instance:guardian_fallback:bool{job="guardian"} == 0)"#,
        |hosts| hosts == 3.0,
    );
    assert_eq!(fallback, 3.0);
    // One series per scraped host, even without an imminent limit (0 there).
    global.wait_value(
        r#"count(instance:guardian_limits_imminent:count{job="guardian"})"#,
        |hosts| hosts == 3.0,
    );
    assert_eq!(
        global.failing_rules(),
        Vec::<(String, String)>::new(),
        "recording rules that failed in the federation"
    );
}
