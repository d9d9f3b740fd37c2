//! `cargo xtask eval-trends [DIR...]`: replays every trace of each DIR through `guardian
//! trend --csv` (with the trace's limit, if labelled) and scores it against DIR/labels.csv:
//! false leak verdicts, detection delay (from the process's start) against the deadline,
//! slope error, and the imminence signal's lead on traces that reach their limit. Prints a
//! table, then pass/fail per acceptance criterion; fails when any criterion fails.
//!
//! labels.csv columns, found by the header: `file,runtime,leak,leak_bytes_per_second`,
//! optionally `limit_bytes` (the memory limit the process ran under) and `deadline_s`
//! (when the rate's deadline does not apply), and `description` last (may hold commas).

use std::path::Path;

use anyhow::{Context as _, bail};

/// The shipped GuardianLimitImminent alert's `for:` (config/alerts.yml): an imminence
/// stretch this long on a trace that never reaches its limit would page.
const ALERT_FOR_S: f64 = 300.0;
/// Leaks this slow or slower (bytes/s, 16 MB/min) must be announced this long ahead.
const SLOW_LEAK: f64 = 16e6 / 60.0;
const SLOW_LEAD_S: f64 = 600.0;
/// Only limits reached within this long after the start are scored for imminence.
const SCORED_LIMIT_S: f64 = 3600.0;

/// One row of labels.csv.
struct Label {
    file: String,
    runtime: String,
    leak: bool,
    bytes_per_second: f64,
    limit: Option<u64>,
    deadline: Option<f64>,
}

impl Label {
    /// Seconds from the process's start by which the leak must be found: the labelled
    /// one, else by rate (10 MB/min: 3 min, 5 MB/min: 6, 2 MB/min: 8, 50 MB/hour: 30).
    fn deadline(&self) -> Option<f64> {
        if !self.leak {
            return None;
        }
        let per_minute = self.bytes_per_second * 60.0 / 1e6;
        self.deadline.or_else(|| {
            [(9.5, 180.0), (4.75, 360.0), (1.9, 480.0), (0.2, 1800.0)]
                .iter()
                .find(|(rate, _)| per_minute >= *rate)
                .map(|(_, seconds)| *seconds)
        })
    }

    /// Allowed slope error on steady leaks: 15 % on real Node.js and on synthetic
    /// step-shaped ones (the envelope's slope), 5 % on other synthetic ones; real Java
    /// grows in steps of minutes, so there only the verdict and the delay count.
    fn slope_tolerance(&self) -> Option<f64> {
        match self.runtime.as_str() {
            "synthetic" if self.file.contains("steps") => Some(0.15),
            "synthetic" => Some(0.05),
            "node" => Some(0.15),
            _ => None,
        }
    }
}

fn read_labels(dir: &Path) -> anyhow::Result<Vec<Label>> {
    let path = dir.join("labels.csv");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .map(|(_, line)| line.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let column = |name: &str| header.iter().position(|column| *column == name);
    let (Some(file), Some(runtime), Some(leak), Some(rate)) = (
        column("file"),
        column("runtime"),
        column("leak"),
        column("leak_bytes_per_second"),
    ) else {
        bail!(
            "{}:1: expected the columns file,runtime,leak,leak_bytes_per_second",
            path.display()
        );
    };
    let (limit, deadline) = (column("limit_bytes"), column("deadline_s"));
    let mut labels = Vec::new();
    for (index, line) in lines {
        let fields: Vec<&str> = line.splitn(header.len(), ',').map(str::trim).collect();
        let at = |what: &str| format!("{}:{}: {what}", path.display(), index + 1);
        let field = |column: usize| fields.get(column).copied().unwrap_or("");
        let optional = |column: Option<usize>| column.map(field).filter(|text| !text.is_empty());
        labels.push(Label {
            file: field(file).to_string(),
            runtime: field(runtime).to_string(),
            leak: field(leak) == "1",
            bytes_per_second: field(rate)
                .parse()
                .with_context(|| at("leak_bytes_per_second"))?,
            limit: optional(limit)
                .map(str::parse)
                .transpose()
                .with_context(|| at("limit_bytes"))?,
            deadline: optional(deadline)
                .map(str::parse)
                .transpose()
                .with_context(|| at("deadline_s"))?,
        });
    }
    Ok(labels)
}

/// What `guardian trend` said about one trace, times from the process's start.
struct Outcome {
    verdict: String,
    found: Option<f64>,
    slope: f64,
    left_leak: bool,
    limit_reached: Option<f64>,
    /// (from, to) of each imminent stretch; `to` is the trace's end if still imminent.
    imminent: Vec<(f64, f64)>,
}

fn replay(guardian_bin: &Path, trace: &Path, limit: Option<u64>) -> anyhow::Result<Outcome> {
    let bin = guardian_bin
        .to_str()
        .context("the guardian binary's path is not UTF-8")?;
    let csv = trace.to_str().context("the trace's path is not UTF-8")?;
    let root = trace.parent().unwrap_or(Path::new("."));
    let limit = limit.map(|bytes| bytes.to_string());
    let mut args = vec!["trend", "--csv", csv];
    if let Some(limit) = &limit {
        args.extend(["--limit", limit]);
    }
    let json = crate::cmd::output(root, "guardian trend", bin, &args)?;
    let report: serde_json::Value =
        serde_json::from_str(&json).with_context(|| format!("`guardian trend` printed {json}"))?;
    let number = |key: &str| report.get(key).and_then(serde_json::Value::as_f64);
    let start = number("trace_start_s").unwrap_or(0.0);
    let end = start + number("duration_s").unwrap_or(0.0);
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
    let imminent = report
        .get("imminent")
        .and_then(serde_json::Value::as_array)
        .map(|spans| {
            spans
                .iter()
                .filter_map(|span| {
                    let from = span.get("from_s")?.as_f64()?;
                    let to = span
                        .get("to_s")
                        .and_then(serde_json::Value::as_f64)
                        .unwrap_or(end);
                    Some((from - start, to - start))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome {
        verdict: report
            .get("verdict")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string(),
        found: number("first_detected_s").map(|at| at - start),
        slope: number("slope_bytes_per_second").unwrap_or(0.0),
        // Once found, a leak may only end by a restart (a new series warming up).
        left_leak: verdicts
            .windows(2)
            .any(|pair| pair[0] == "leak" && pair[1] != "warming-up"),
        limit_reached: number("limit_reached_s").map(|at| at - start),
        imminent,
    })
}

/// Pass counts of one acceptance criterion.
#[derive(Default)]
struct Tally {
    scored: usize,
    failed: Vec<String>,
}

impl Tally {
    fn score(&mut self, file: &str, ok: bool) -> bool {
        self.scored += 1;
        if !ok {
            self.failed.push(file.to_string());
        }
        ok
    }
}

/// The acceptance criteria, in the order printed.
#[derive(Default)]
struct Criteria {
    false_leaks: Tally,
    deadlines: Tally,
    slopes: Tally,
    verdict_stays: Tally,
    half_time: Tally,
    slow_lead: Tally,
    no_false_page: Tally,
}

fn mb_per_minute(bytes_per_second: f64) -> f64 {
    bytes_per_second * 60.0 / 1e6
}

fn seconds(value: Option<f64>) -> String {
    value.map_or("-".into(), |value| format!("{value:.0}"))
}

/// Scores the traces of one folder, printing a row each.
fn eval_dir(dir: &Path, guardian_bin: &Path, criteria: &mut Criteria) -> anyhow::Result<()> {
    println!("{}", dir.display());
    println!(
        "{:<40} {:>9} {:>8} {:>5} {:>5} {:>9} {:>7} {:>6} {:>6} {:>6} {:>6}  result",
        "trace",
        "label",
        "verdict",
        "found",
        "due",
        "slope",
        "error",
        "limit",
        "immin",
        "lead",
        "span"
    );
    for label in read_labels(dir)? {
        let outcome = replay(guardian_bin, &dir.join(&label.file), label.limit)?;
        let file = label.file.as_str();
        let mut problems = Vec::new();
        let error = (label.leak && label.bytes_per_second > 0.0)
            .then(|| outcome.slope / label.bytes_per_second - 1.0);
        if label.leak {
            let due = label.deadline();
            let on_time = outcome
                .found
                .is_some_and(|found| due.is_none_or(|due| found <= due));
            if !criteria.deadlines.score(file, on_time) {
                problems.push(match outcome.found {
                    None => "missed".to_string(),
                    Some(found) => format!("late by {:.0} s", found - due.unwrap_or(found)),
                });
            }
            if !criteria
                .verdict_stays
                .score(file, !outcome.left_leak && outcome.verdict == "leak")
            {
                problems.push("verdict did not stay".into());
            }
            if let (Some(error), Some(tolerance)) = (error, label.slope_tolerance())
                && !criteria.slopes.score(file, error.abs() <= tolerance)
            {
                problems.push(format!("slope off by more than {:.0} %", tolerance * 100.0));
            }
        } else if !criteria.false_leaks.score(file, outcome.found.is_none()) {
            problems.push("false leak verdict".into());
        }
        let first_imminent = outcome.imminent.first().map(|(from, _)| *from);
        let reached = outcome
            .limit_reached
            .filter(|reached| *reached <= SCORED_LIMIT_S);
        let lead = reached
            .zip(first_imminent)
            .map(|(reached, at)| reached - at);
        if let Some(reached) = reached {
            // Imminent while at least half the time from the start to the limit remains.
            if !criteria
                .half_time
                .score(file, first_imminent.is_some_and(|at| at <= reached / 2.0))
            {
                problems.push(format!("imminent later than {:.0} s", reached / 2.0));
            }
            if label.leak
                && label.bytes_per_second <= SLOW_LEAK
                && !criteria
                    .slow_lead
                    .score(file, lead.is_some_and(|lead| lead >= SLOW_LEAD_S))
            {
                problems.push("imminent less than 10 min ahead".into());
            }
        }
        let longest = outcome
            .imminent
            .iter()
            .map(|(from, to)| to - from)
            .fold(0.0, f64::max);
        if !label.leak
            && label.limit.is_some()
            && reached.is_none()
            && !criteria.no_false_page.score(file, longest < ALERT_FOR_S)
        {
            problems.push(format!(
                "imminent for {longest:.0} s without reaching the limit"
            ));
        }
        println!(
            "{:<40} {:>9} {:>8} {:>5} {:>5} {:>9} {:>7} {:>6} {:>6} {:>6} {:>6}  {}",
            file,
            if label.leak {
                format!("{:.2}MB/m", mb_per_minute(label.bytes_per_second))
            } else {
                "healthy".into()
            },
            outcome.verdict,
            seconds(outcome.found),
            seconds(label.deadline()),
            format!("{:.2}MB/m", mb_per_minute(outcome.slope)),
            error.map_or("-".into(), |error| format!("{:+.1}%", error * 100.0)),
            seconds(outcome.limit_reached),
            seconds(first_imminent),
            seconds(lead),
            seconds((!outcome.imminent.is_empty()).then_some(longest)),
            if problems.is_empty() {
                "ok".into()
            } else {
                problems.join(", ")
            }
        );
    }
    println!();
    Ok(())
}

/// Scores every folder and prints pass/fail per criterion; fails if any criterion fails.
pub fn eval_trends(dirs: &[std::path::PathBuf], guardian_bin: &Path) -> anyhow::Result<()> {
    println!(
        "found/due: leak verdict and its deadline; limit: limit reached; immin: first \
         imminence signal; lead: limit minus immin; span: longest imminent stretch (s, from \
         the process's start)\n"
    );
    let mut criteria = Criteria::default();
    for dir in dirs {
        eval_dir(dir, guardian_bin, &mut criteria)?;
    }
    let rows = [
        (
            "no false leak verdict on healthy traces",
            &criteria.false_leaks,
        ),
        ("every leak found by its deadline", &criteria.deadlines),
        ("the leak verdict stays", &criteria.verdict_stays),
        ("slope within tolerance on steady leaks", &criteria.slopes),
        (
            "imminent with half the time to the limit left",
            &criteria.half_time,
        ),
        (
            "imminent >= 10 min ahead (leaks <= 16 MB/min)",
            &criteria.slow_lead,
        ),
        (
            "healthy: no imminence >= the alert's 5 min",
            &criteria.no_false_page,
        ),
    ];
    let mut failed = Vec::new();
    for (name, tally) in rows {
        let passed = tally.scored - tally.failed.len();
        let verdict = if tally.failed.is_empty() {
            "PASS"
        } else {
            "FAIL"
        };
        println!(
            "{verdict}  {name:<52} {passed}/{}{}",
            tally.scored,
            if tally.failed.is_empty() {
                String::new()
            } else {
                format!("  ({})", tally.failed.join(", "))
            }
        );
        if !tally.failed.is_empty() {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("{} criteria fail: {}", failed.len(), failed.join("; "))
    }
}
