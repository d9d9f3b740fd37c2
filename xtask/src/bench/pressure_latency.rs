//! Pressure-to-kill latency: a pressure rule (`mem_available_below`, sustain 0, action
//! kill) whose limit sits 160 MiB below the host's MemAvailable when a marked memhog the
//! guardian already knows starts growing at 400 MiB/s. Latency is from the moment the
//! benchmark, reading /proc/meminfo every millisecond, sees MemAvailable cross the limit
//! to the moment the memhog is gone (pidfd readable). The rule matches only this run's
//! marker, so nothing else on the host can be killed.
//!
//! Beside it, alternating run by run: the floor, the benchmark itself sending SIGKILL the
//! moment it sees the crossing (the same exit and teardown). Pressure rules are measured
//! at each scan (`scan_interval`, 1 s here as by default), so the guardian's figure is
//! about half a scan at the median. earlyoom is not run beside it: it would kill the
//! host's largest process, not only this benchmark's. A run where other processes on
//! the host move MemAvailable across the limit before the memhog does is dropped.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::{
    Binaries,
    daemon::{Guardian, Source},
    harness::{self, Stats},
    report::{Row, Verdict, latency_text, ms},
};

const MIB: u64 = 1 << 20;
/// How far below MemAvailable (at the start of growth) the rule's limit sits.
const HEADROOM_MIB: u64 = 160;
const SCAN_INTERVAL_S: f64 = 1.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Killer {
    Guardian,
    /// The benchmark itself, at the crossing it sees: the floor.
    Bench,
}

pub fn run(bins: &Binaries, runs: usize) -> Vec<Row> {
    println!(
        "\n== pressure-to-kill latency (procfs, scan {SCAN_INTERVAL_S} s): {runs} marked memhogs pushing MemAvailable {HEADROOM_MIB} MiB down past a pressure rule's limit, each beside one the bench kills itself"
    );
    let figure = "pressure-to-kill latency".to_string();
    match measure(bins, runs) {
        Ok((guardian, floor)) => {
            let target_s = SCAN_INTERVAL_S + 0.100;
            vec![Row {
                figure,
                measured: latency_text(&guardian),
                baseline: format!("self-kill p50 {} p99 {}", ms(floor.median), ms(floor.p99)),
                ratio: format!(
                    "p50 {:.1} x floor; p99 {:.1} x floor",
                    guardian.median / floor.median,
                    guardian.p99 / floor.p99
                ),
                target: format!("p99 <= {:.0} ms (one scan + 100 ms)", target_s * 1e3),
                verdict: Verdict::at_most(guardian.p99, target_s),
            }]
        }
        Err(error) => vec![Row::failed(&figure, &error)],
    }
}

fn config(marker: &str, limit_bytes: u64) -> String {
    format!(
        r#"[daemon]
scan_interval = "{SCAN_INTERVAL_S}s"

[safety]
max_kills = 1000
rate_window = "1s"
backoff = "1ms"
max_backoff = "1ms"

[[pressure_rule]]
name = "bench-pressure-latency"
mem_available_below = {limit_bytes}
sustain = "0s"
cooldown = "1ms"
scope = "any"
action = "kill"
match = {{ cmdline = "{marker}( |$)" }}
"#
    )
}

/// The guardian's latencies and the bench's own, in seconds.
fn measure(bins: &Binaries, runs: usize) -> anyhow::Result<(Stats, Stats)> {
    let id = std::process::id();
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
            let marker = format!("guardian-bench-pressure-{id}-{run}");
            let measured =
                one_kill(bins, &marker, killer).with_context(|| format!("run {}", run + 1))?;
            let name = match killer {
                Killer::Guardian => "guardian",
                Killer::Bench => "self-kill",
            };
            match measured {
                Some(latency) => {
                    parts.push(format!("{name} {}", ms(latency)));
                    match killer {
                        Killer::Guardian => latencies.push(latency),
                        Killer::Bench => floors.push(latency),
                    }
                }
                None => parts.push(format!("{name} dropped (the host crossed first)")),
            }
        }
        println!("  run {}: {}", run + 1, parts.join("; "));
    }
    Ok((
        Stats::of(&latencies).context("no pressure kill measured")?,
        Stats::of(&floors).context("no self-kill measured")?,
    ))
}

/// MemAvailable now, bytes.
fn mem_available() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    text.lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .context("no MemAvailable in /proc/meminfo")
}

/// One memhog from start to kill: the latency in seconds, or none when the host's
/// MemAvailable crossed the limit before the memhog grew.
fn one_kill(bins: &Binaries, marker: &str, killer: Killer) -> anyhow::Result<Option<f64>> {
    let (mut hog, _stdout) = harness::spawn_waiting_memhog(
        &bins.memhog,
        &[
            "--rss", "64", "--grow", "400", "--max", "1024", "--marker", marker,
        ],
    )?;
    let pid = hog.pid();
    let limit = mem_available()?.saturating_sub(HEADROOM_MIB * MIB);
    let guardian = match killer {
        Killer::Guardian => {
            let guardian = Guardian::start(&bins.guardian, Source::Procfs, &config(marker, limit))?;
            harness::wait_listed(&guardian, pid)?;
            Some(guardian)
        }
        Killer::Bench => None,
    };
    // Start between two scans, at a random point.
    std::thread::sleep(harness::jitter(Duration::from_secs_f64(SCAN_INTERVAL_S)));
    if mem_available()? < limit {
        return Ok(None);
    }
    let mut stdin = hog.0.stdin.take().context("memhog stdin")?;
    stdin.write_all(b"go\n")?;
    drop(stdin);
    let started = Instant::now();
    let crossing_ns = loop {
        if hog.0.try_wait()?.is_some() {
            // Killed before the bench saw the crossing: the host moved first.
            return Ok(None);
        }
        if mem_available()? < limit {
            break harness::monotonic_ns();
        }
        if started.elapsed() > Duration::from_secs(30) {
            // Memory freed elsewhere on the host (a VM or build ending) as fast as the
            // memhog took it: no crossing to time, like a host that moved first.
            println!(
                "  run dropped: MemAvailable never fell below the limit while memhog {pid} grew"
            );
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if killer == Killer::Bench {
        hog.0.kill().context("SIGKILL to our own memhog")?;
    }
    let Some(gone_ns) = harness::wait_exit(pid, Duration::from_secs(30))? else {
        bail!(
            "memhog {pid} was not killed within 30 s of the crossing{}",
            guardian
                .as_ref()
                .map(|guardian| format!("; log:\n{}", guardian.log_tail()))
                .unwrap_or_default()
        );
    };
    let status = hog.0.wait()?;
    use std::os::unix::process::ExitStatusExt as _;
    if status.signal() != Some(libc::SIGKILL) {
        bail!("memhog {pid} ended with {status}, not SIGKILL");
    }
    drop(guardian);
    Ok(Some(gone_ns.saturating_sub(crossing_ns) as f64 / 1e9))
}
