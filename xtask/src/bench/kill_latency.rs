//! Kill latency: a marked memhog the guardian already knows grows past a kill rule's
//! threshold (sustain 0, action kill); latency is from the moment its resident set
//! crosses the threshold (memhog's `crossing` line, CLOCK_MONOTONIC) to the moment it is
//! gone (pidfd readable). The rule matches only this run's marker, so nothing else on
//! the host can be killed. Printed beside the old cron script's worst case (120 s).

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    process::{ChildStdout, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

use super::{
    Binaries,
    daemon::{Guardian, Source},
    harness::{self, Owned, Stats, wait_for},
    report::{Row, Verdict, latency_text},
};

const THRESHOLD_MIB: u64 = 192;
const CRON_WORST_S: f64 = 120.0;
const SCAN_INTERVAL_S: f64 = 1.0;

pub fn run(bins: &Binaries, runs: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for source in [Source::Ebpf, Source::Procfs] {
        println!(
            "\n== kill latency ({}): {runs} marked memhogs crossing {THRESHOLD_MIB} MiB",
            source.as_str()
        );
        let figure = format!("kill latency ({})", source.as_str());
        match measure(bins, source, runs) {
            Ok(stats) => {
                let target_s = match source {
                    Source::Ebpf => 0.050,
                    Source::Procfs => SCAN_INTERVAL_S + 0.050,
                };
                rows.push(Row {
                    figure,
                    measured: latency_text(&stats),
                    baseline: format!("cron worst case {CRON_WORST_S:.0} s"),
                    ratio: format!("{:.5} (p99/120 s)", stats.p99 / CRON_WORST_S),
                    target: format!("p99 <= {:.0} ms", target_s * 1e3),
                    verdict: Verdict::at_most(stats.p99, target_s),
                });
            }
            Err(error) => rows.push(Row::failed(&figure, &error)),
        }
    }
    rows
}

fn config(marker: &str) -> String {
    format!(
        r#"[daemon]
scan_interval = "{SCAN_INTERVAL_S}s"

[safety]
max_kills = 1000
rate_window = "1s"
backoff = "1ms"
max_backoff = "1ms"

[[rule]]
name = "bench-kill-latency"
threshold = "{THRESHOLD_MIB}MiB"
sustain = "0s"
scope = "any"
action = "kill"
match = {{ cmdline = "{marker}" }}
"#
    )
}

fn measure(bins: &Binaries, source: Source, runs: usize) -> anyhow::Result<Stats> {
    let marker = format!(
        "guardian-bench-kill-{}-{}",
        std::process::id(),
        source.as_str()
    );
    let guardian = Guardian::start(&bins.guardian, source, &config(&marker))?;
    let mut latencies = Vec::new();
    for run in 0..runs {
        let latency = one_kill(bins, &guardian, &format!("{marker}-{run}"))
            .with_context(|| format!("run {}", run + 1))?;
        println!("  run {}: {:.1} ms", run + 1, latency * 1e3);
        latencies.push(latency);
    }
    Stats::of(&latencies).context("no kill measured")
}

/// One memhog from start to kill; the latency in seconds.
fn one_kill(bins: &Binaries, guardian: &Guardian, marker: &str) -> anyhow::Result<f64> {
    let mut hog = Owned(
        Command::new(&bins.memhog)
            .args([
                "--rss",
                "64",
                "--grow",
                "400",
                "--max",
                "512",
                "--wait-stdin",
            ])
            .args(["--mark", &THRESHOLD_MIB.to_string(), "--marker", marker])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting memhog")?,
    );
    let pid = hog.pid();
    let mut stdout = BufReader::new(hog.0.stdout.take().context("memhog stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("memhog {pid} did not start: {line:?}");
    }
    // The story is a known process growing past the line, not a new one appearing.
    let known = wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
        Ok(guardian
            .get_json("/api/v1/processes")?
            .is_some_and(|body| has_pid(&body, pid))
            .then_some(()))
    })?;
    if known.is_none() {
        bail!("the guardian did not list memhog {pid} in /api/v1/processes within 30 s");
    }
    let mut stdin = hog.0.stdin.take().context("memhog stdin")?;
    stdin.write_all(b"go\n")?;
    drop(stdin);
    let Some(gone_ns) = harness::wait_exit(pid, Duration::from_secs(30))? else {
        bail!("memhog {pid} above {THRESHOLD_MIB} MiB was not killed within 30 s");
    };
    let crossing_ns = crossing(&mut stdout)?;
    let status = hog.0.wait()?;
    use std::os::unix::process::ExitStatusExt as _;
    if status.signal() != Some(libc::SIGKILL) {
        bail!("memhog {pid} ended with {status}, not SIGKILL");
    }
    Ok(gone_ns.saturating_sub(crossing_ns) as f64 / 1e9)
}

/// memhog's `crossing <ns>` line (the rest of its stdout, read after it exited).
fn crossing(stdout: &mut BufReader<ChildStdout>) -> anyhow::Result<u64> {
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    rest.lines()
        .find_map(|line| line.strip_prefix("crossing ")?.trim().parse().ok())
        .with_context(|| format!("memhog printed no crossing line: {rest:?}"))
}

/// True when some object in `value` has `"pid": pid` (directly or under `key`).
fn has_pid(value: &serde_json::Value, pid: i32) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            map.get("pid").and_then(serde_json::Value::as_i64) == Some(i64::from(pid))
                || map.values().any(|child| has_pid(child, pid))
        }
        serde_json::Value::Array(items) => items.iter().any(|item| has_pid(item, pid)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_found_at_any_depth() {
        let body =
            serde_json::json!({"processes": [{"key": {"pid": 7, "start_ticks": 1}}, {"pid": 9}]});
        assert!(has_pid(&body, 7));
        assert!(has_pid(&body, 9));
        assert!(!has_pid(&body, 8));
    }
}
