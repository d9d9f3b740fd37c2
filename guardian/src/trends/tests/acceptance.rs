//! The acceptance of the leak detector on every labelled trace: the real Node.js and Java
//! traces in `../shared/traces` and the synthetic ones in `tests/fixtures/traces`.
//!
//! No leak verdict on a healthy trace; every leak found, counting from the process's
//! start, within 3 minutes at 10 MB/min, 6 at 5 MB/min, 8 at 2 MB/min, 30 at 50 MB/hour;
//! once found the verdict stays (a restart starts a new series); the final slope within
//! 15 % of the label on the Node.js traces and 5 % on the synthetic ones (Java grows in
//! steps: verdict and delay only).

use std::path::{Path, PathBuf};

use super::super::detector::{Params, Verdict};
use super::super::replay::replay_file;

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
}

/// Reads a labels.csv (`file,runtime,leak,leak_bytes_per_second,description`; the
/// description may be quoted and hold commas).
pub fn labels(dir: &Path) -> Vec<Label> {
    let text = std::fs::read_to_string(dir.join("labels.csv")).expect("labels.csv");
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, ',').collect();
            assert!(fields.len() >= 4, "bad label row {line:?}");
            Label {
                file: fields[0].to_string(),
                runtime: fields[1].to_string(),
                leak: fields[2] == "1",
                bytes_per_second: fields[3].parse().expect("leak_bytes_per_second"),
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

/// Allowed relative slope error by runtime (None: not scored).
pub fn slope_tolerance(runtime: &str) -> Option<f64> {
    match runtime {
        "synthetic" => Some(0.05),
        "node" => Some(0.15),
        _ => None,
    }
}

fn check_all(dir: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    for label in labels(dir) {
        let report = replay_file(&dir.join(&label.file), &Params::default(), None)
            .unwrap_or_else(|error| panic!("{error}"));
        let mut fail = |what: String| failures.push(format!("{}: {what}", label.file));
        let error = (report.slope_bytes_per_second / label.bytes_per_second) - 1.0;
        println!(
            "{:40} leak={} found={:?} verdict={} slope={:.0} ({:+.1} %) restarts={}",
            label.file,
            label.leak,
            report.first_detected_s,
            report.verdict,
            report.slope_bytes_per_second,
            error * 100.0,
            report.restarts
        );
        if !label.leak {
            if let Some(at) = report.first_detected_s {
                fail(format!("false alarm at {at} s"));
            }
            continue;
        }
        match (report.first_detected_s, deadline(label.bytes_per_second)) {
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
        if let Some(tolerance) = slope_tolerance(&label.runtime)
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
    assert!(synthetic.iter().any(|label| label.file.contains("restart")));
    assert!(synthetic.iter().filter(|label| !label.leak).count() >= 4);
}
