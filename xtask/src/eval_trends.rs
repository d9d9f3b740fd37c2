//! `cargo xtask eval-trends DIR`: replays every trace of DIR through `guardian trend
//! --csv` and scores it against DIR/labels.csv: detections, false alarms, detection
//! delay (from the process's start) against the deadlines, and slope error.
//! Prints a table and a summary; fails when any trace misses the acceptance.

use std::path::Path;

use anyhow::{Context as _, bail};

/// One row of labels.csv: `file,runtime,leak,leak_bytes_per_second,description`.
struct Label {
    file: String,
    runtime: String,
    leak: bool,
    bytes_per_second: f64,
}

/// What `guardian trend` said about one trace.
struct Outcome {
    verdict: String,
    first_detected_s: Option<f64>,
    trace_start_s: f64,
    slope: f64,
    left_leak: bool,
}

/// Seconds from the process's start by which a leak of this rate must be found
/// (10 MB/min: 3 min, 5 MB/min: 6, 2 MB/min: 8, 50 MB/hour: 30).
fn deadline(bytes_per_second: f64) -> Option<f64> {
    let per_minute = bytes_per_second * 60.0 / 1e6;
    [(9.5, 180.0), (4.75, 360.0), (1.9, 480.0), (0.2, 1800.0)]
        .iter()
        .find(|(rate, _)| per_minute >= *rate)
        .map(|(_, seconds)| *seconds)
}

/// Allowed slope error: 15 % on steady real leaks (Node.js), 5 % on synthetic ones; Java
/// grows in steps, so there only the verdict and the delay count.
fn slope_tolerance(runtime: &str) -> Option<f64> {
    match runtime {
        "synthetic" => Some(0.05),
        "node" => Some(0.15),
        _ => None,
    }
}

fn read_labels(dir: &Path) -> anyhow::Result<Vec<Label>> {
    let path = dir.join("labels.csv");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut labels = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.splitn(5, ',').collect();
        let (Some(file), Some(runtime), Some(leak), Some(rate)) =
            (fields.first(), fields.get(1), fields.get(2), fields.get(3))
        else {
            bail!(
                "{}:{}: expected file,runtime,leak,leak_bytes_per_second",
                path.display(),
                index + 1
            );
        };
        labels.push(Label {
            file: file.to_string(),
            runtime: runtime.to_string(),
            leak: *leak == "1",
            bytes_per_second: rate.parse().with_context(|| {
                format!(
                    "{}:{}: leak_bytes_per_second {rate:?}",
                    path.display(),
                    index + 1
                )
            })?,
        });
    }
    Ok(labels)
}

fn replay(guardian_bin: &Path, trace: &Path) -> anyhow::Result<Outcome> {
    let bin = guardian_bin
        .to_str()
        .context("the guardian binary's path is not UTF-8")?;
    let csv = trace.to_str().context("the trace's path is not UTF-8")?;
    let root = trace.parent().unwrap_or(Path::new("."));
    let json = crate::cmd::output(root, "guardian trend", bin, &["trend", "--csv", csv])?;
    let report: serde_json::Value =
        serde_json::from_str(&json).with_context(|| format!("`guardian trend` printed {json}"))?;
    let number = |key: &str| report.get(key).and_then(serde_json::Value::as_f64);
    let verdicts: Vec<&str> = report
        .get("changes")
        .and_then(serde_json::Value::as_array)
        .map(|changes| {
            changes
                .iter()
                .filter_map(|change| change.get("verdict").and_then(serde_json::Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome {
        verdict: report
            .get("verdict")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string(),
        first_detected_s: number("first_detected_s"),
        trace_start_s: number("trace_start_s").unwrap_or(0.0),
        slope: number("slope_bytes_per_second").unwrap_or(0.0),
        // Once found, a leak may only end by a restart (a new series warming up).
        left_leak: verdicts
            .windows(2)
            .any(|pair| pair[0] == "leak" && pair[1] != "warming-up"),
    })
}

fn mb_per_minute(bytes_per_second: f64) -> f64 {
    bytes_per_second * 60.0 / 1e6
}

/// Runs `guardian trend --csv FILE` for each trace of `dir` against `dir/labels.csv`,
/// prints a table and a summary, and fails if any trace misses the acceptance.
pub fn eval_trends(dir: &Path, guardian_bin: &Path) -> anyhow::Result<()> {
    let labels = read_labels(dir)?;
    println!(
        "{:<38} {:>9} {:>10} {:>8} {:>8} {:>9} {:>7}  result",
        "trace", "label", "verdict", "found s", "deadline", "slope", "error"
    );
    let (mut leaks, mut found, mut healthy, mut false_alarms) = (0, 0, 0, 0);
    let mut delays = Vec::new();
    let mut errors = Vec::new();
    let mut failures = Vec::new();
    for label in &labels {
        let outcome = replay(guardian_bin, &dir.join(&label.file))?;
        let delay = outcome
            .first_detected_s
            .map(|at| at - outcome.trace_start_s);
        let error = (label.leak && label.bytes_per_second > 0.0)
            .then(|| outcome.slope / label.bytes_per_second - 1.0);
        let mut problems = Vec::new();
        if label.leak {
            leaks += 1;
            let limit = deadline(label.bytes_per_second);
            match (delay, limit) {
                (None, _) => problems.push("missed".to_string()),
                (Some(delay), Some(limit)) if delay > limit => {
                    problems.push(format!("late by {:.0} s", delay - limit));
                }
                _ => {}
            }
            if let Some(delay) = delay {
                found += 1;
                delays.push((label.file.as_str(), delay, limit));
            }
            if outcome.left_leak || outcome.verdict != "leak" {
                problems.push("verdict did not stay".into());
            }
            if let (Some(error), Some(tolerance)) = (error, slope_tolerance(&label.runtime)) {
                errors.push(error.abs());
                if error.abs() > tolerance {
                    problems.push(format!("slope off by more than {:.0} %", tolerance * 100.0));
                }
            }
        } else {
            healthy += 1;
            if delay.is_some() {
                false_alarms += 1;
                problems.push("false alarm".into());
            }
        }
        let label_text = if label.leak {
            format!("{:.2}MB/m", mb_per_minute(label.bytes_per_second))
        } else {
            "healthy".into()
        };
        println!(
            "{:<38} {:>9} {:>10} {:>8} {:>8} {:>9} {:>7}  {}",
            label.file,
            label_text,
            outcome.verdict,
            delay.map_or("-".into(), |delay| format!("{delay:.0}")),
            deadline(label.bytes_per_second)
                .filter(|_| label.leak)
                .map_or("-".into(), |limit| format!("{limit:.0}")),
            format!("{:.2}MB/m", mb_per_minute(outcome.slope)),
            error.map_or("-".into(), |error| format!("{:+.1}%", error * 100.0)),
            if problems.is_empty() {
                "ok".into()
            } else {
                problems.join(", ")
            }
        );
        if !problems.is_empty() {
            failures.push(format!("{}: {}", label.file, problems.join(", ")));
        }
    }
    println!();
    println!("leaks found:   {found}/{leaks}");
    println!("false alarms:  {false_alarms}/{healthy} healthy traces");
    for (file, delay, limit) in &delays {
        let limit = limit.map_or("none".into(), |limit| format!("{limit:.0} s"));
        println!("delay:         {file}: {delay:.0} s (deadline {limit})");
    }
    if !errors.is_empty() {
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        let max = errors.iter().copied().fold(0.0, f64::max);
        println!(
            "slope error:   mean {:.1} %, max {:.1} % over {} scored leaks",
            mean * 100.0,
            max * 100.0,
            errors.len()
        );
    }
    if failures.is_empty() {
        println!(
            "result:        all {} traces meet the acceptance",
            labels.len()
        );
        Ok(())
    } else {
        bail!(
            "{} trace(s) miss the acceptance:\n  {}",
            failures.len(),
            failures.join("\n  ")
        )
    }
}
