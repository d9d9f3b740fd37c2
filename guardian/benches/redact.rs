//! Redaction cost per command line (p50, p99) beside the cost of reading one from
//! `/proc/PID/cmdline`, measured in the same run. Command lines: every line of the
//! redaction corpus (secret forms and look-alikes) and every live process's own.
//! Informational.
//!
//! `cargo bench -p guardian --bench redact` (REDACT_BENCH_ROUNDS sets the rounds).

use std::time::{Duration, Instant};

use guardian::redact::redact_args;

#[path = "../src/redact/corpus/format.rs"]
mod format;

/// Percentile `p` (0..=100) of sorted durations, in microseconds.
fn percentile(sorted: &[Duration], p: usize) -> f64 {
    let at = (sorted.len().saturating_sub(1) * p) / 100;
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// The pids of the live processes.
fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn main() {
    let rounds: usize = std::env::var("REDACT_BENCH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let mut argvs: Vec<Vec<String>> =
        format::cases(include_str!("../src/redact/corpus/secrets.tsv"))
            .into_iter()
            .map(|case| case.argv)
            .collect();
    let corpus = argvs.len();
    argvs.extend(
        format::lookalikes(include_str!("../src/redact/corpus/lookalikes.tsv"))
            .into_iter()
            .map(|(_, line)| format::split(&line)),
    );
    let lookalikes = argvs.len() - corpus;
    let pids = pids();
    let mut read = Vec::new();
    for _ in 0..rounds {
        for pid in &pids {
            let start = Instant::now();
            let bytes = std::fs::read(format!("/proc/{pid}/cmdline"));
            read.push(start.elapsed());
            if let Ok(bytes) = bytes
                && !bytes.is_empty()
                && read.len() <= pids.len()
            {
                let text = String::from_utf8_lossy(&bytes);
                argvs.push(
                    text.trim_end_matches('\0')
                        .split('\0')
                        .map(str::to_string)
                        .collect(),
                );
            }
        }
    }
    let mut redact = Vec::new();
    let mut kept = 0usize;
    for _ in 0..rounds {
        for argv in &argvs {
            let start = Instant::now();
            let out = redact_args(argv);
            redact.push(start.elapsed());
            kept += out.len();
        }
    }
    read.sort_unstable();
    redact.sort_unstable();
    println!(
        "redact: {} command lines ({corpus} corpus secret forms, {lookalikes} look-alikes, {} live processes) x {rounds} rounds ({kept} args out)",
        argvs.len(),
        argvs.len() - corpus - lookalikes
    );
    println!(
        "  redact_args per command line: p50 {:.1} us, p99 {:.1} us",
        percentile(&redact, 50),
        percentile(&redact, 99)
    );
    println!(
        "  baseline, reading /proc/PID/cmdline: p50 {:.1} us, p99 {:.1} us",
        percentile(&read, 50),
        percentile(&read, 99)
    );
}
