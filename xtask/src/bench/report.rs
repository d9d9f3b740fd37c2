//! The summary table every benchmark adds rows to: figure, what was measured, the
//! baseline measured beside it, their ratio, and the target.

use super::harness::Stats;

/// Whether a figure meets its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// A reference row with no target of its own.
    Info,
    /// The benchmark could not run.
    Failed,
    /// Measured, but too scattered (a busy host) to hold against the target.
    Noisy,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::Info => "ref",
            Verdict::Failed => "FAILED",
            Verdict::Noisy => "noisy",
        }
    }

    /// Met when `value <= target`.
    pub fn at_most(value: f64, target: f64) -> Verdict {
        if value <= target {
            Verdict::Met
        } else {
            Verdict::Missed
        }
    }
}

/// One line of the summary.
#[derive(Clone, Debug)]
pub struct Row {
    pub figure: String,
    pub measured: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    /// A benchmark that could not run, with why.
    pub fn failed(figure: &str, error: &anyhow::Error) -> Row {
        Row {
            figure: figure.to_string(),
            measured: format!("{error:#}")
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(90)
                .collect(),
            baseline: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: Verdict::Failed,
        }
    }
}

/// `median (min..max)` of per-pair ratios.
pub fn ratio_text(stats: &Stats) -> String {
    format!(
        "{:.3} ({:.3}..{:.3}, n={})",
        stats.median, stats.min, stats.max, stats.n
    )
}

/// Milliseconds with p50/p99.
pub fn latency_text(stats: &Stats) -> String {
    format!(
        "p50 {} p99 {} (n={})",
        ms(stats.median),
        ms(stats.p99),
        stats.n
    )
}

/// Seconds as milliseconds, with sensible precision.
pub fn ms(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Prints the table, columns padded to their widest cell.
pub fn print_table(rows: &[Row]) {
    let header = ["figure", "measured", "baseline", "ratio", "target", ""];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.figure.clone(),
                row.measured.clone(),
                row.baseline.clone(),
                row.ratio.clone(),
                row.target.clone(),
                row.verdict.label().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&header.map(String::from));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for row in &cells {
        line(row);
    }
}
