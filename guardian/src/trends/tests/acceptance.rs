//! The acceptance of the leak detector on every labelled trace: the real Node.js and Java
//! traces in `../shared/traces` and the synthetic ones in `tests/fixtures/traces` (the
//! same criteria `cargo xtask eval-trends` prints).
//!
//! No leak verdict on a healthy trace; every leak found, counting from the process's
//! start, by its labelled deadline or by its rate's (3 minutes at 10 MB/min, 6 at 5 MB/min,
//! 8 at 2 MB/min, 30 at 50 MB/hour); once found the verdict stays (a restart starts a new
//! series); the final slope within 15 % of the label on the Node.js traces and the
//! synthetic step-shaped ones, 5 % on the other synthetic ones (real Java grows in steps
//! minutes apart: verdict and delay only). A trace that reaches its labelled limit within
//! an hour is imminent while at least half the time from its start to the limit remains,
//! and at least 10 minutes ahead for leaks of 16 MB/min or slower; a healthy trace under a
//! limit is never imminent for as long as the alert's `for:` (5 minutes).

use std::path::{Path, PathBuf};

use super::super::detector::{Params, Verdict};
use super::super::replay::replay_file;

/// GuardianLimitImminent's `for:` in config/alerts.yml.
const ALERT_FOR_S: f64 = 300.0;

/// Where the shared traces sit: `shared/` beside the clone (so in CI too).
pub fn shared_traces() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces");
    assert!(
        dir.join("labels.csv").is_file(),
        "the shared traces are missing: expected {} (shared/ beside the repository clone)",
        dir.display()
    );
    dir
}

pub fn fixture_traces() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/traces")
}

/// One row of a labels.csv.
pub struct Label {
    pub file: String,
    pub runtime: String,
    pub leak: bool,
    pub bytes_per_second: f64,
    pub limit: Option<u64>,
    pub deadline: Option<f64>,
}

/// Reads a labels.csv by its header: `file,runtime,leak,leak_bytes_per_second`, optional
/// `limit_bytes` and `deadline_s`, and `description` last (may be quoted, hold commas).
pub fn labels(dir: &Path) -> Vec<Label> {
    let text = std::fs::read_to_string(dir.join("labels.csv")).expect("labels.csv");
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|column| *column == name);
    lines
        .map(|line| {
            let fields: Vec<&str> = line.splitn(header.len(), ',').collect();
            let field = |name: &str| {
                column(name)
                    .and_then(|index| fields.get(index).copied())
                    .filter(|text| !text.is_empty())
            };
            Label {
                file: field("file").expect("file").to_string(),
                runtime: field("runtime").expect("runtime").to_string(),
                leak: field("leak") == Some("1"),
                bytes_per_second: field("leak_bytes_per_second")
                    .and_then(|rate| rate.parse().ok())
                    .expect("leak_bytes_per_second"),
                limit: field("limit_bytes").map(|limit| limit.parse().expect("limit_bytes")),
                deadline: field("deadline_s").map(|at| at.parse().expect("deadline_s")),
            }
        })
        .collect()
}

/// Seconds from the process's start by which a leak of this rate must be found.
pub fn deadline(bytes_per_second: f64) -> Option<f64> {
    let per_minute = bytes_per_second * 60.0 / 1e6;
    [(9.5, 180.0), (4.75, 360.0), (1.9, 480.0), (0.2, 1800.0)]
        .iter()
        .find(|(rate, _)| per_minute >= *rate)
        .map(|(_, seconds)| *seconds)
}

/// Allowed relative slope error (None: not scored).
pub fn slope_tolerance(label: &Label) -> Option<f64> {
    match label.runtime.as_str() {
        "synthetic" if label.file.contains("steps") => Some(0.15),
        "synthetic" => Some(0.05),
        "node" => Some(0.15),
        _ => None,
    }
}

fn check_all(dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    for label in labels(dir) {
        let report = replay_file(&dir.join(&label.file), &Params::default(), label.limit)
            .unwrap_or_else(|error| panic!("{error}"));
        let mut fail = |what: String| failures.push(format!("{}: {what}", label.file));
        let error = (report.slope_bytes_per_second / label.bytes_per_second) - 1.0;
        let first_imminent = report.imminent.first().map(|span| span.from_s);
        println!(
            "{:40} leak={} found={:?} verdict={} slope={:.0} ({:+.1} %) restarts={} limit at {:?} imminent at {:?}",
            label.file,
            label.leak,
            report.first_detected_s,
            report.verdict,
            report.slope_bytes_per_second,
            error * 100.0,
            report.restarts,
            report.limit_reached_s,
            first_imminent,
        );
        if let Some(reached) = report.limit_reached_s.filter(|at| *at <= 3600.0) {
            if !first_imminent.is_some_and(|at| at <= reached / 2.0) {
                fail(format!(
                    "limit at {reached} s, imminent only at {first_imminent:?}"
                ));
            }
            if label.leak
                && label.bytes_per_second <= 16e6 / 60.0
                && !first_imminent.is_some_and(|at| reached - at >= 600.0)
            {
                fail(format!(
                    "imminent less than 10 min before the limit at {reached} s"
                ));
            }
        } else if !label.leak && label.limit.is_some() {
            let end = report.trace_start_s + report.duration_s;
            for span in &report.imminent {
                let length = span.to_s.unwrap_or(end) - span.from_s;
                if length >= ALERT_FOR_S {
                    fail(format!("imminent for {length} s from {} s", span.from_s));
                }
            }
        }
        if !label.leak {
            if let Some(at) = report.first_detected_s {
                fail(format!("false alarm at {at} s"));
            }
            continue;
        }
        match (
            report.first_detected_s,
            label.deadline.or(deadline(label.bytes_per_second)),
        ) {
            (None, _) => fail("leak never found".into()),
            (Some(at), Some(limit)) if at > limit => fail(format!("found at {at} s > {limit} s")),
            _ => {}
        }
        // Once found the verdict stays: a leak only ends by a restart.
        for pair in report.changes.windows(2) {
            if pair[0].verdict == Verdict::Leak && pair[1].verdict != Verdict::WarmingUp {
                fail(format!(
                    "left leak for {} at {} s",
                    pair[1].verdict, pair[1].t_s
                ));
            }
        }
        if report.verdict != Verdict::Leak {
            fail(format!("ends {}", report.verdict));
        }
        if let Some(tolerance) = slope_tolerance(&label)
            && error.abs() > tolerance
        {
            fail(format!("slope off by {:+.1} %", error * 100.0));
        }
    }
    failures
}

#[test]
fn every_shared_trace_meets_the_acceptance() {
    let failures = check_all(&shared_traces());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_synthetic_trace_meets_the_acceptance() {
    let failures = check_all(&fixture_traces());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_labels_cover_what_the_issue_names() {
    let synthetic = labels(&fixture_traces());
    let shared = labels(&shared_traces());
    let all: Vec<&Label> = synthetic.iter().chain(&shared).collect();
    for rate_class in [180.0, 360.0, 480.0, 1800.0] {
        assert!(
            all.iter()
                .any(|label| label.leak && deadline(label.bytes_per_second) == Some(rate_class)),
            "no leak trace with a {rate_class} s deadline"
        );
    }
    let has = |part: &str| synthetic.iter().any(|label| label.file.contains(part));
    for part in ["restart", "jvmsteps", "young_clean", "warmup", "sawtooth"] {
        assert!(has(part), "no synthetic trace named *{part}*");
    }
    assert!(synthetic.iter().filter(|label| !label.leak).count() >= 4);
    // Leaks that reach their limit within the hour, some slower than 16 MB/min.
    assert!(
        synthetic
            .iter()
            .filter(|label| label.leak
                && label.limit.is_some()
                && label.bytes_per_second <= 16e6 / 60.0)
            .count()
            >= 2
    );
}
