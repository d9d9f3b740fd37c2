//! Live, not replayed: real Node.js, Java and Python programs (`workload.js`,
//! `Workload.java`, `workload.py` beside this file) run at once under the daemon, each in
//! its own memory-limited cgroup made by the test. Three leak at real rates: Node.js
//! 10 MiB/min under GC churn, Java 10 MiB/min of heap (RSS grows as the JVM commits heap),
//! and the incident: a young Python process at 150 MiB leaking a clean 30 MiB/min toward
//! its 512 MiB limit. Three are healthy: a warm-up that fills a cache and levels off, or
//! steady GC churn, one per runtime. Everything is read from `/api/v1/trends`: the leaks
//! get a leak verdict (Node.js, Java) or the imminence signal with their cgroup's limit
//! (Python, process and cgroup series alike); no healthy program is ever called a leak,
//! and none is imminent at the end. No timing is asserted: the test waits up to 8 minutes
//! for what it expects (about 6 minutes when the machine keeps up).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{Daemon, Needs, TestCgroup, marker, require, which};

const MIB: u64 = 1 << 20;
/// The longest the test waits for every expectation.
const BUDGET: Duration = Duration::from_secs(480);
/// Healthy programs are watched at least this long: past their warm-up and past the
/// imminence a fast warm-up may raise while it fills its cache.
const HEALTHY_WATCH: Duration = Duration::from_secs(330);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Runtime {
    Node,
    Java,
    Python,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// A leak verdict on the process (for Node.js, its slope within 30 % of the rate).
    Leak,
    /// The imminence signal against its cgroup's limit, on the process and the cgroup.
    Imminent,
    /// Never a leak verdict; not imminent at the end.
    Healthy,
}

/// One program of the test: what it runs, in a cgroup with which limit, and what the
/// daemon should say about it.
struct Case {
    name: &'static str,
    runtime: Runtime,
    /// `--base MiB --leak MiB/min --warm MiB --warm-s s --churn MiB/s`.
    args: [f64; 5],
    limit: u64,
    expect: Expect,
}

const CASES: [Case; 6] = [
    Case {
        name: "node-leak",
        runtime: Runtime::Node,
        args: [40.0, 10.0, 0.0, 1.0, 20.0],
        limit: 384 * MIB,
        expect: Expect::Leak,
    },
    Case {
        name: "java-leak",
        runtime: Runtime::Java,
        args: [0.0, 10.0, 0.0, 1.0, 20.0],
        limit: 1024 * MIB,
        expect: Expect::Leak,
    },
    Case {
        name: "python-incident",
        runtime: Runtime::Python,
        args: [150.0, 30.0, 0.0, 1.0, 2.0],
        limit: 512 * MIB,
        expect: Expect::Imminent,
    },
    Case {
        name: "node-warmup",
        runtime: Runtime::Node,
        args: [40.0, 0.0, 120.0, 120.0, 20.0],
        limit: 512 * MIB,
        expect: Expect::Healthy,
    },
    Case {
        name: "java-churn",
        runtime: Runtime::Java,
        args: [0.0, 0.0, 60.0, 60.0, 30.0],
        limit: 1024 * MIB,
        expect: Expect::Healthy,
    },
    Case {
        name: "python-warmup",
        runtime: Runtime::Python,
        args: [40.0, 0.0, 100.0, 90.0, 10.0],
        limit: 512 * MIB,
        expect: Expect::Healthy,
    },
];

/// A running program of a case, killed (it and its cgroup) on drop.
struct Running<'a> {
    case: &'a Case,
    child: Child,
    cgroup: TestCgroup,
    pid: i32,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workload(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/integration/trends")
        .join(file)
}

fn program(runtime: Runtime) -> (&'static str, Vec<String>) {
    let path = |file: &str| workload(file).display().to_string();
    match runtime {
        Runtime::Node => ("node", vec![path("workload.js")]),
        // The serial collector: one GC thread on a busy 2-core CI machine.
        Runtime::Java => (
            "java",
            vec![
                "-XX:+UseSerialGC".into(),
                "-XX:TieredStopAtLevel=1".into(),
                "-Xmx768m".into(),
                path("Workload.java"),
            ],
        ),
        Runtime::Python => ("python3", vec![path("workload.py")]),
    }
}

fn start<'a>(case: &'a Case, marker: &str) -> Running<'a> {
    let cgroup = TestCgroup::new(&format!("{marker}-{}", case.name), Some(case.limit));
    let (binary, mut args) = program(case.runtime);
    let [base, leak, warm, warm_s, churn] = case.args;
    for (flag, value) in [
        ("--base", base),
        ("--leak", leak),
        ("--warm", warm),
        ("--warm-s", warm_s),
        ("--churn", churn),
    ] {
        args.extend([flag.to_string(), value.to_string()]);
    }
    args.extend(["--marker".to_string(), marker.to_string()]);
    let mut command = Command::new(which(binary).unwrap_or_else(|| panic!("{binary} on PATH")));
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cgroup.enter(&mut command);
    let child = command
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {binary}: {error}"));
    let pid = child.id() as i32;
    Running {
        case,
        child,
        cgroup,
        pid,
    }
}

/// What the test saw of one case so far.
#[derive(Default, Debug)]
struct Seen {
    process: Option<serde_json::Value>,
    cgroup: Option<serde_json::Value>,
    leak_verdicts: Vec<String>,
    imminent_process: Option<serde_json::Value>,
    imminent_cgroup: Option<serde_json::Value>,
}

impl Seen {
    fn done(&self, case: &Case, watched: Duration) -> bool {
        match case.expect {
            Expect::Leak => self
                .process
                .as_ref()
                .is_some_and(|report| report["verdict"] == "leak"),
            Expect::Imminent => self.imminent_process.is_some() && self.imminent_cgroup.is_some(),
            Expect::Healthy => {
                watched >= HEALTHY_WATCH
                    && self
                        .process
                        .as_ref()
                        .is_some_and(|report| report["imminent"] == false)
            }
        }
    }
}

fn observe(daemon: &Daemon, running: &[Running<'_>], seen: &mut HashMap<&str, Seen>) {
    let reports = daemon.get_json("/api/v1/trends?limit=100000");
    let reports = reports.as_array().cloned().unwrap_or_default();
    for program in running {
        let entry = seen.entry(program.case.name).or_default();
        let process = reports
            .iter()
            .find(|report| report["subject"]["pid"] == program.pid)
            .cloned();
        let cgroup = reports
            .iter()
            .find(|report| report["subject"]["path"] == program.cgroup.path.as_str())
            .cloned();
        for report in process.iter().chain(&cgroup) {
            if report["verdict"] == "leak" {
                entry.leak_verdicts.push(format!("{}", report["subject"]));
            }
        }
        if let Some(report) = process.as_ref().filter(|report| report["imminent"] == true) {
            entry.imminent_process.get_or_insert_with(|| report.clone());
        }
        if let Some(report) = cgroup.as_ref().filter(|report| report["imminent"] == true) {
            entry.imminent_cgroup.get_or_insert_with(|| report.clone());
        }
        // Once a leak is found its report is kept as it was then (the slope of the find).
        if entry
            .process
            .as_ref()
            .is_none_or(|old| old["verdict"] != "leak")
        {
            entry.process = process.or(entry.process.take());
        }
        entry.cgroup = cgroup.or(entry.cgroup.take());
    }
}

fn check_limit(case: &Case, report: &serde_json::Value) {
    assert_eq!(report["limit_kind"], "cgroup", "{}: {report}", case.name);
    assert_eq!(report["limit_bytes"], case.limit, "{}: {report}", case.name);
}

#[test]
fn real_runtimes_leak_warm_up_and_near_their_limits_under_the_daemon() {
    if !require(&[Needs::Root]) {
        return;
    }
    for binary in ["node", "java", "python3"] {
        assert!(
            which(binary).is_some(),
            "{binary} is not installed: the live trend tests run real Node.js, Java and Python"
        );
    }
    let marker = marker("trend-live");
    let daemon = Daemon::start("", &["--dry-run"]);
    let running: Vec<Running<'_>> = CASES.iter().map(|case| start(case, &marker)).collect();
    let started = Instant::now();
    let mut seen: HashMap<&str, Seen> = HashMap::new();
    loop {
        observe(&daemon, &running, &mut seen);
        let watched = started.elapsed();
        let done = CASES.iter().all(|case| {
            seen.get(case.name)
                .is_some_and(|seen| seen.done(case, watched))
        });
        if done || watched >= BUDGET {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let report = |name: &str| {
        format!(
            "{name}: {:#?}\n/api/v1/trends: {}\n{}",
            seen.get(name),
            daemon.get("/api/v1/trends?limit=100000").1,
            daemon.log()
        )
    };
    for case in &CASES {
        let seen = seen
            .get(case.name)
            .unwrap_or_else(|| panic!("{}", report(case.name)));
        match case.expect {
            Expect::Leak => {
                let process = seen
                    .process
                    .as_ref()
                    .filter(|process| process["verdict"] == "leak")
                    .unwrap_or_else(|| panic!("no leak verdict: {}", report(case.name)));
                // Node.js RSS follows its Buffers; a JVM's RSS grows faster than the heap
                // it keeps early on (it commits and touches heap ahead of use): there only
                // the verdict counts, as for the recorded Java traces.
                let rate = case.args[1] * MIB as f64 / 60.0;
                let slope = process["slope_bytes_per_second"].as_f64().unwrap_or(0.0);
                assert!(
                    case.runtime != Runtime::Node || (slope / rate - 1.0).abs() <= 0.3,
                    "slope {slope:.0} B/s vs {rate:.0}: {}",
                    report(case.name)
                );
                check_limit(case, process);
            }
            Expect::Imminent => {
                for imminent in [&seen.imminent_process, &seen.imminent_cgroup] {
                    let imminent = imminent
                        .as_ref()
                        .unwrap_or_else(|| panic!("never imminent: {}", report(case.name)));
                    check_limit(case, imminent);
                    let time_to_limit = imminent["time_to_limit_s"].as_f64().unwrap_or(-1.0);
                    assert!(time_to_limit > 0.0 && time_to_limit <= 2700.0, "{imminent}");
                    assert!(
                        imminent["imminent_since_s"].as_f64().is_some(),
                        "{imminent}"
                    );
                }
                // Imminence is separate from cause: the young process need not be a leak yet.
                assert!(
                    daemon.log().contains("memory limit imminent"),
                    "the imminence is logged: {}",
                    report(case.name)
                );
            }
            Expect::Healthy => {
                assert!(
                    seen.leak_verdicts.is_empty(),
                    "a healthy program was called a leak: {}",
                    report(case.name)
                );
                let process = seen
                    .process
                    .as_ref()
                    .unwrap_or_else(|| panic!("not tracked: {}", report(case.name)));
                assert_eq!(process["imminent"], false, "{}", report(case.name));
            }
        }
    }
}
