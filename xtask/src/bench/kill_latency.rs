//! Kill latency: a marked memhog the guardian already knows grows past a kill rule's
//! threshold (sustain 0, action kill); latency is from the moment its resident set
//! crosses the threshold (memhog's `crossing` line, CLOCK_MONOTONIC) to the moment it is
//! gone (pidfd readable). The rule matches only this run's marker, so nothing else on
//! the host can be killed.
//!
//! Beside it, alternating run by run: the floor any external killer has, the benchmark
//! itself sending SIGKILL the moment it reads the `crossing` line (the same exit and
//! teardown of a ~200 MiB process), and the old cron script's worst case (120 s).

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    process::ChildStdout,
    time::Duration,
};

use anyhow::{Context as _, bail};

use super::{
    Binaries,
    daemon::{Guardian, Source},
    harness::{self, Stats, wait_for},
    report::{Row, Verdict, latency_text, ms},
};

const THRESHOLD_MIB: u64 = 192;
const CRON_WORST_S: f64 = 120.0;
const SCAN_INTERVAL_S: f64 = 1.0;

/// Who kills the memhog once it crosses the threshold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Killer {
    Guardian,
    /// The benchmark itself, at the crossing line: the floor.
    Bench,
}

pub fn run(bins: &Binaries, runs: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for source in [Source::Ebpf, Source::Procfs] {
        println!(
            "\n== kill latency ({}): {runs} marked memhogs crossing {THRESHOLD_MIB} MiB, each beside one the bench kills itself",
            source.as_str()
        );
        let figure = format!("kill latency ({})", source.as_str());
        match measure(bins, source, runs) {
            Ok((guardian, floor)) => {
                let target_s = match source {
                    Source::Ebpf => 0.050,
                    Source::Procfs => SCAN_INTERVAL_S + 0.050,
                };
                rows.push(Row {
                    figure,
                    measured: latency_text(&guardian),
                    baseline: format!(
                        "self-kill p50 {}; cron worst {CRON_WORST_S:.0} s",
                        ms(floor.median)
                    ),
                    ratio: format!(
                        "{:.1} x floor; {:.5} x cron",
                        guardian.median / floor.median,
                        guardian.p99 / CRON_WORST_S
                    ),
                    target: format!("p99 <= {:.0} ms", target_s * 1e3),
                    verdict: Verdict::at_most(guardian.p99, target_s),
                });
            }
            Err(error) => rows.push(Row::failed(&figure, &error)),
        }
    }
    rows
}

/// The kill rule on `marker` (sustain 0, action kill), fast brakes.
pub(super) fn config(marker: &str) -> String {
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

/// The guardian's latencies and the bench's own, in seconds.
fn measure(bins: &Binaries, source: Source, runs: usize) -> anyhow::Result<(Stats, Stats)> {
    let id = std::process::id();
    let marker = format!("guardian-bench-kill-{id}-{}", source.as_str());
    let guardian = Guardian::start(&bins.guardian, source, &config(&marker))?;
    let mut latencies = Vec::new();
    let mut floors = Vec::new();
    for run in 0..runs {
        harness::check_interrupted()?;
        let order = if run % 2 == 0 {
            [Killer::Guardian, Killer::Bench]
        } else {
            [Killer::Bench, Killer::Guardian]
        };
        let mut parts = Vec::new();
        for killer in order {
            let context = || format!("run {}", run + 1);
            match killer {
                Killer::Guardian => {
                    let (latency, pid) =
                        one_kill(bins, &guardian, &format!("{marker}-{run}"), killer)
                            .with_context(context)?;
                    let mut part = format!("guardian {}", ms(latency));
                    if let Some(exit) = time_to_exit(&guardian, pid) {
                        part.push_str(&format!(
                            " (to signal {} + signal to exit {})",
                            ms((latency - exit).max(0.0)),
                            ms(exit)
                        ));
                    }
                    parts.push(part);
                    latencies.push(latency);
                }
                Killer::Bench => {
                    let unmatched = format!("guardian-bench-selfkill-{id}-{run}");
                    let (latency, _) =
                        one_kill(bins, &guardian, &unmatched, killer).with_context(context)?;
                    parts.push(format!("self-kill {}", ms(latency)));
                    floors.push(latency);
                }
            }
        }
        println!("  run {}: {}", run + 1, parts.join("; "));
    }
    Ok((
        Stats::of(&latencies).context("no kill measured")?,
        Stats::of(&floors).context("no self-kill measured")?,
    ))
}

/// One memhog from start to kill: (latency in seconds, its pid).
pub(super) fn one_kill(
    bins: &Binaries,
    guardian: &Guardian,
    marker: &str,
    killer: Killer,
) -> anyhow::Result<(f64, i32)> {
    let mark = THRESHOLD_MIB.to_string();
    let (mut hog, mut stdout) = harness::spawn_waiting_memhog(
        &bins.memhog,
        &[
            "--rss", "64", "--grow", "400", "--max", "512", "--mark", &mark, "--marker", marker,
        ],
    )?;
    let pid = hog.pid();
    // The story is a known process growing past the line, not a new one appearing; the
    // self-killed ones wait the same way so both grow under the same conditions.
    harness::wait_listed(guardian, pid)?;
    std::thread::sleep(harness::jitter(Duration::from_secs_f64(SCAN_INTERVAL_S)));
    let mut stdin = hog.0.stdin.take().context("memhog stdin")?;
    stdin.write_all(b"go\n")?;
    drop(stdin);
    let crossing_ns = match killer {
        Killer::Guardian => None,
        Killer::Bench => {
            let crossing = crossing(&mut stdout, true)?;
            hog.0.kill().context("SIGKILL to our own memhog")?;
            Some(crossing)
        }
    };
    let Some(gone_ns) = harness::wait_exit(pid, Duration::from_secs(30))? else {
        bail!("memhog {pid} above {THRESHOLD_MIB} MiB was not killed within 30 s");
    };
    let crossing_ns = match crossing_ns {
        Some(crossing) => crossing,
        None => crossing(&mut stdout, false)?,
    };
    let status = hog.0.wait()?;
    use std::os::unix::process::ExitStatusExt as _;
    if status.signal() != Some(libc::SIGKILL) {
        bail!("memhog {pid} ended with {status}, not SIGKILL");
    }
    Ok((gone_ns.saturating_sub(crossing_ns) as f64 / 1e9, pid))
}

/// memhog's `crossing <ns>` line: the next one (`live`), or from the rest of its stdout
/// once it exited.
fn crossing(stdout: &mut BufReader<ChildStdout>, live: bool) -> anyhow::Result<u64> {
    let parse = |line: &str| line.strip_prefix("crossing ")?.trim().parse().ok();
    if live {
        let mut line = String::new();
        while stdout.read_line(&mut line)? > 0 {
            if let Some(ns) = parse(&line) {
                return Ok(ns);
            }
            line.clear();
        }
        bail!("memhog closed stdout before its crossing line");
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    rest.lines()
        .find_map(parse)
        .with_context(|| format!("memhog printed no crossing line: {rest:?}"))
}

/// The guardian's own signal-to-exit time for `pid`, from its kill log's outcome record
/// (written just after the exit; waited for briefly).
fn time_to_exit(guardian: &Guardian, pid: i32) -> Option<f64> {
    let found = wait_for(Duration::from_secs(2), Duration::from_millis(20), || {
        Ok(guardian.kill_log().iter().find_map(|record| {
            (find_key(record, "pid").and_then(serde_json::Value::as_i64) == Some(i64::from(pid)))
                .then(|| find_key(record, "time_to_exit_s")?.as_f64())
                .flatten()
        }))
    });
    found.ok().flatten()
}

/// The first value under `key` anywhere in `value`.
fn find_key<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|child| find_key(child, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|item| find_key(item, key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_and_keys_are_found_at_any_depth() {
        let body =
            serde_json::json!({"processes": [{"key": {"pid": 7, "start_ticks": 1}}, {"pid": 9}]});
        assert!(harness::has_pid(&body, 7));
        assert!(harness::has_pid(&body, 9));
        assert!(!harness::has_pid(&body, 8));
        let record =
            serde_json::json!({"kind": "outcome", "record": {"pid": 7, "time_to_exit_s": 0.25}});
        assert_eq!(
            find_key(&record, "time_to_exit_s").and_then(|v| v.as_f64()),
            Some(0.25)
        );
    }
}
