//! Leak trends end to end: `guardian trend --csv` replays the real Node.js and Java
//! traces (and the synthetic ones) through the leak detector, bad input fails naming file
//! and line; under the daemon, real Node.js, Java and Python programs in memory-limited
//! cgroups leak at real rates or warm up under GC churn, and `/api/v1/trends` says which
//! leak and which are about to reach their limit (see `live`).

mod live;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::common::guardian_bin;

/// The shared traces: `shared/` beside the repository clone (CI puts it there too).
fn shared_traces() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces");
    assert!(
        dir.join("labels.csv").is_file(),
        "the shared traces are missing: expected {} (shared/ beside the repository clone)",
        dir.display()
    );
    dir
}

fn fixture_traces() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/traces")
}

fn trend(args: &[&str]) -> Output {
    Command::new(guardian_bin())
        .arg("trend")
        .args(args)
        .output()
        .expect("run guardian trend")
}

fn trend_json(csv: &Path, extra: &[&str]) -> serde_json::Value {
    let csv = csv.to_str().expect("UTF-8 path");
    let output = trend(&[&["--csv", csv], extra].concat());
    assert!(
        output.status.success(),
        "guardian trend --csv {csv} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// `(file, leak, bytes/s, deadline s)` from a labels.csv, by its header (the synthetic
/// labels add `limit_bytes` and `deadline_s`; the description comes last).
fn labels(dir: &Path) -> Vec<(String, bool, f64, f64)> {
    let text = std::fs::read_to_string(dir.join("labels.csv")).expect("labels.csv");
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let deadline_column = header.iter().position(|column| *column == "deadline_s");
    lines
        .map(|line| {
            let fields: Vec<&str> = line.splitn(header.len(), ',').collect();
            let rate: f64 = fields[3].parse().expect("rate");
            let deadline = deadline_column
                .and_then(|index| fields.get(index)?.parse().ok())
                .unwrap_or_else(|| deadline(rate));
            (fields[0].to_string(), fields[2] == "1", rate, deadline)
        })
        .collect()
}

/// Seconds from the start by which a leak of this rate must be found.
fn deadline(bytes_per_second: f64) -> f64 {
    match bytes_per_second * 60.0 / 1e6 {
        rate if rate >= 9.5 => 180.0,
        rate if rate >= 4.75 => 360.0,
        rate if rate >= 1.9 => 480.0,
        _ => 1800.0,
    }
}

fn check_dir(dir: &Path, slope_tolerance: impl Fn(&str) -> Option<f64>) {
    for (file, leak, rate, due) in labels(dir) {
        let report = trend_json(&dir.join(&file), &[]);
        let found = report["first_detected_s"].as_f64();
        if !leak {
            assert_eq!(found, None, "{file}: false alarm");
            continue;
        }
        let found = found.unwrap_or_else(|| panic!("{file}: leak never found"));
        assert!(found <= due, "{file}: found at {found} s");
        assert_eq!(report["verdict"], "leak", "{file}: the verdict stays");
        let slope = report["slope_bytes_per_second"].as_f64().expect("slope");
        if let Some(tolerance) = slope_tolerance(&file) {
            assert!(
                (slope / rate - 1.0).abs() <= tolerance,
                "{file}: slope {slope:.0} vs {rate:.0}"
            );
        }
        let confidence = report["confidence"].as_f64().expect("confidence");
        assert!((0.95..=1.0).contains(&confidence), "{file}: {confidence}");
    }
}

#[test]
fn real_traces_replay_to_the_labelled_verdicts() {
    // Node.js leaks are steady (slope within 15 %); Java's grows in steps.
    check_dir(&shared_traces(), |file| {
        file.starts_with("node").then_some(0.15)
    });
}

#[test]
fn synthetic_traces_replay_to_the_labelled_verdicts() {
    // Step-shaped leaks: the envelope's slope, within 15 %.
    check_dir(&fixture_traces(), |file| {
        Some(if file.contains("steps") { 0.15 } else { 0.05 })
    });
}

#[test]
fn a_limit_gives_a_time_to_limit() {
    let csv = shared_traces().join("node_leak5mb_churn30.csv");
    let report = trend_json(&csv, &["--limit", "1GiB"]);
    assert_eq!(report["limit_bytes"], 1u64 << 30);
    let ttl = report["time_to_limit_s"].as_f64().expect("time to limit");
    let level = report["peak_bytes"].as_f64().expect("peak");
    let slope = report["slope_bytes_per_second"].as_f64().expect("slope");
    assert!(
        (ttl - ((1u64 << 30) as f64 - level) / slope).abs() < 1.0,
        "{report}"
    );
    let without = trend_json(&csv, &[]);
    assert!(without["time_to_limit_s"].is_null());
}

#[test]
fn bad_input_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            "header.csv",
            "time,rss\n0,1\n",
            ":1: expected the header `t_s,rss_bytes`",
        ),
        (
            "number.csv",
            "t_s,rss_bytes\n0,1\n1,lots\n",
            ":3: rss_bytes is not a whole number",
        ),
        (
            "order.csv",
            "t_s,rss_bytes\n0,1\n5,1\n4,1\n",
            ":4: time 4 is not after",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write trace");
        let output = trend(&["--csv", path.to_str().expect("UTF-8")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} should fail");
        assert!(
            stderr.contains(&format!("{}{expected}", path.display())),
            "{name}: {stderr}"
        );
    }
    let missing = dir.path().join("missing.csv");
    let output = trend(&["--csv", missing.to_str().expect("UTF-8")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read trace") && stderr.contains("missing.csv"),
        "{stderr}"
    );
    let output = trend(&["--csv", missing.to_str().expect("UTF-8"), "--limit", "lots"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("lots"));
}
