//! Secrets never leave the host: real processes carrying the redaction corpus's command
//! lines (a subset across every class) run under the daemon; every output is searched
//! for every secret: `/api/v1/processes`, `/metrics`, `guardian explain PID` (while they
//! run), then, after a reloaded rule killed them, the daemon's JSON log, the kill log
//! file and `guardian audit list`. Only the test's own processes carry its marker.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader},
    os::unix::process::CommandExt as _,
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    common::{Daemon, Needs, TestProcess, guardian_bin, marker, memhog_bin, require, wait_for},
    corpus_format::{self, Case},
    killswitch::marker_pattern,
};

/// Command lines run as processes, taken round-robin across the corpus's classes.
const PROCESSES: usize = 48;
const TIMEOUT: Duration = Duration::from_secs(120);

fn config(marker: &str, threshold: &str) -> String {
    format!(
        "[daemon]\nscan_interval = \"200ms\"\n\n[metrics]\ntop_processes = 100000\n\n\
         [safety]\nmax_kills = 1000\nrate_window = \"1m\"\nbackoff = \"0s\"\n\n\
         [[rule]]\nname = \"redaction\"\nthreshold = \"{threshold}\"\naction = \"kill\"\n\
         match = {{ cmdline = '{}' }}\n",
        marker_pattern(marker)
    )
}

/// Up to `n` cases, one class after another in turn.
fn subset(n: usize) -> Vec<Case> {
    let mut by_class: BTreeMap<String, Vec<Case>> = BTreeMap::new();
    for case in corpus_format::cases(include_str!("../../guardian/src/redact/corpus/secrets.tsv")) {
        by_class.entry(case.class.clone()).or_default().push(case);
    }
    let mut picked = Vec::new();
    while picked.len() < n && by_class.values().any(|cases| !cases.is_empty()) {
        for cases in by_class.values_mut() {
            if picked.len() < n && !cases.is_empty() {
                picked.push(cases.remove(0));
            }
        }
    }
    picked
}

/// A memhog whose argv is the case's (argv[0] included), plus 8 MiB and the marker.
fn spawn(case: &Case, marker: &str) -> TestProcess {
    let mut child = Command::new(memhog_bin())
        .arg0(&case.argv[0])
        .args(&case.argv[1..])
        .args(["--rss", "8", "--marker", marker])
        .env("MEMHOG_ANY_ARGS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn memhog");
    let stdout = child.stdout.take().expect("memhog stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read memhog stdout");
    assert_eq!(
        line.trim(),
        "ready",
        "memhog did not start for {:?}",
        case.input
    );
    TestProcess { child }
}

/// Every (output, case, secret) where a secret shows.
fn leaks(output: &str, text: &str, cases: &[Case]) -> Vec<String> {
    cases
        .iter()
        .flat_map(|case| case.secrets.iter().map(move |secret| (case, secret)))
        .filter(|(_, secret)| text.contains(secret.as_str()))
        .map(|(case, secret)| format!("{output}: {secret:?} of [{}] {:?}", case.class, case.input))
        .collect()
}

#[test]
fn no_secret_of_the_corpus_reaches_any_output() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("redaction");
    let cases = subset(PROCESSES);
    let mut daemon = Daemon::start(
        &config(&m, "100GiB"),
        &["--source", "procfs", "--log-format", "json"],
    );
    let mut processes: Vec<TestProcess> = cases.iter().map(|case| spawn(case, &m)).collect();
    let pids: Vec<i32> = processes.iter().map(TestProcess::pid).collect();

    // While they run: the API (once it lists them all), /metrics and explain.
    let api = wait_for(TIMEOUT, || {
        let (status, body) = daemon.get("/api/v1/processes?limit=100000&sort=pid");
        (status == 200
            && pids
                .iter()
                .all(|pid| body.contains(&format!("\"pid\":{pid},"))))
        .then_some(body)
    })
    .unwrap_or_else(|| panic!("the API never listed every test process\n{}", daemon.log()));
    let (_, metrics) = daemon.get("/metrics");
    for pid in &pids {
        assert!(
            metrics.contains(&format!("guardian_process_info{{pid=\"{pid}\"")),
            "/metrics does not export pid {pid}"
        );
    }
    let mut explained = String::new();
    for pid in &pids {
        let output = Command::new(guardian_bin())
            .args(["explain", &pid.to_string()])
            .output()
            .expect("run guardian explain");
        assert!(output.status.success(), "guardian explain {pid} failed");
        explained.push_str(&String::from_utf8_lossy(&output.stdout));
    }

    // A rule that kills them all, by reload.
    let config_path = daemon.dir.path().join("guardian.toml");
    std::fs::write(&config_path, config(&m, "4MiB")).expect("rewrite config");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP guardian");
    for process in &mut processes {
        let exited = wait_for(TIMEOUT, || process.has_exited().then_some(()));
        assert!(
            exited.is_some(),
            "pid {} was not killed\n{}",
            process.pid(),
            daemon.log()
        );
    }
    crate::common::assert_every_kill_has_an_intent(&daemon.kill_log_path(), &pids);
    daemon.stop();
    let log = daemon.log();
    let kill_log = std::fs::read_to_string(daemon.kill_log_path()).expect("read kill log");
    let list = Command::new(guardian_bin())
        // JSON: the table leaves the command line out; the records carry it.
        .args(["audit", "list", "--json", "--path"])
        .arg(daemon.kill_log_path())
        .output()
        .expect("run guardian audit list");
    assert!(list.status.success(), "guardian audit list failed");
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        pids.iter()
            .all(|pid| kill_log.contains(&format!("\"pid\":{pid}"))),
        "the kill log names every test process"
    );
    assert!(
        log.contains("kill decision"),
        "the daemon logged its decisions"
    );

    let mut found = Vec::new();
    for (output, text) in [
        ("/api/v1/processes", &api),
        ("/metrics", &metrics),
        ("guardian explain", &explained),
        ("daemon log", &log),
        ("kill log", &kill_log),
        ("guardian audit list", &list),
    ] {
        assert!(
            text.contains(&m),
            "{output} shows no command line of the test's processes"
        );
    }
    for (output, text) in [
        ("/api/v1/processes", &api),
        ("/metrics", &metrics),
        ("guardian explain", &explained),
        ("daemon log", &log),
        ("kill log", &kill_log),
        ("guardian audit list", &list),
    ] {
        found.extend(leaks(output, text, &cases));
    }
    let secrets: usize = cases.iter().map(|case| case.secrets.len()).sum();
    eprintln!(
        "{} processes, {secrets} secrets, 6 outputs searched: {} found",
        cases.len(),
        found.len()
    );
    assert!(
        found.is_empty(),
        "secrets in outputs:\n{}",
        found.join("\n")
    );
}
