//! /proc scan at 1,000 and 10,000 processes of our own: the guardian's cost per process
//! (its scan-duration histogram over the host's process count), its own RSS and its CPU
//! at a 1 s interval. Beside it, alternating with the guardian's scan windows: `ps -eo
//! pid,rss,comm` over the same process set, and the floor of any /proc scanner on this
//! host (list /proc, read each `stat`, nothing else). The RSS is also taken with
//! `lock_memory = false`, to tell what `mlockall` adds from what the model holds.
//! A second guardian in eBPF mode runs beside it: its periodic refresh reads the BPF task
//! iterator (one read for every process) instead of /proc, and is measured the same way.

use std::{
    io::Read as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::{
    Binaries,
    daemon::{Guardian, Source, base_config},
    harness::{self, Stats, wait_for},
    report::{Row, Verdict, ratio_text},
    sleepers::Sleepers,
};

/// Name fragment of the scan-duration histogram in /metrics.
const SCAN_HISTOGRAM: &str = "scan_duration_seconds";
/// CPU is averaged over this window.
const CPU_WINDOW: Duration = Duration::from_secs(10);

pub fn run(bins: &Binaries, counts: &[usize], pairs: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for &count in counts {
        println!("\n== procfs scan with {count} extra sleeping processes, {pairs} pairs");
        match measure(bins, count, pairs) {
            Ok(mut measured) => rows.append(&mut measured),
            Err(error) => rows.push(Row::failed(&format!("procfs scan @{count}"), &error)),
        }
    }
    rows
}

fn measure(bins: &Binaries, count: usize, pairs: usize) -> anyhow::Result<Vec<Row>> {
    let started = Instant::now();
    let sleepers = Sleepers::spawn(count)?;
    println!(
        "  {} sleepers started in {:.1} s; {} processes on the host",
        sleepers.len(),
        started.elapsed().as_secs_f64(),
        harness::process_count()
    );
    let guardian = Guardian::start(&bins.guardian, Source::Procfs, &base_config("1s"))?;
    let iterator = Guardian::start(&bins.guardian, Source::Ebpf, &base_config("1s"))?;
    // Two full scans before measuring: the model holds every process.
    wait_scans(&guardian, 2)?;
    wait_scans(&iterator, 2)?;

    let (mut guardian_us, mut ps_us, mut floor_us, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut iterator_us, mut iterator_ratios) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        harness::check_interrupted()?;
        let scan = scan_seconds(&guardian)?;
        let processes = harness::process_count().max(1) as f64;
        let g = scan / processes * 1e6;
        let snapshot = scan_seconds(&iterator)?;
        let i = snapshot / processes * 1e6;
        let (ps, ps_lines) = ps_seconds()?;
        let p = ps / ps_lines.max(1) as f64 * 1e6;
        let (floor, floor_count) = floor_seconds();
        let f = floor / floor_count.max(1) as f64 * 1e6;
        println!(
            "  pair {}: guardian {g:.2} us/process ({:.1} ms per scan of {processes}); task iterator {i:.2} us ({:.1} ms); ps {p:.2} us ({:.1} ms); floor {f:.2} us",
            pair + 1,
            scan * 1e3,
            snapshot * 1e3,
            ps * 1e3,
        );
        guardian_us.push(g);
        iterator_us.push(i);
        iterator_ratios.push(i / g);
        ps_us.push(p);
        floor_us.push(f);
        ratios.push(g / p);
    }
    let floor_ratio: Vec<f64> = guardian_us
        .iter()
        .zip(&floor_us)
        .map(|(g, f)| g / f)
        .collect();

    let cpu_before = harness::cpu_seconds(guardian.pid())?;
    let iterator_cpu_before = harness::cpu_seconds(iterator.pid())?;
    std::thread::sleep(CPU_WINDOW);
    let cpu = (harness::cpu_seconds(guardian.pid())? - cpu_before) / CPU_WINDOW.as_secs_f64();
    let iterator_cpu =
        (harness::cpu_seconds(iterator.pid())? - iterator_cpu_before) / CPU_WINDOW.as_secs_f64();
    let (rss, hwm) = rss_mib(&guardian)?;
    let (iterator_rss, _) = rss_mib(&iterator)?;
    println!(
        "  guardian CPU {:.1} % of one core at a 1 s interval; VmRSS {rss:.1} MiB (peak {hwm:.1} MiB)",
        cpu * 100.0
    );
    println!(
        "  eBPF-mode guardian (task iterator every 1 s): CPU {:.1} % of one core; VmRSS {iterator_rss:.1} MiB",
        iterator_cpu * 100.0
    );
    drop(guardian);
    drop(iterator);
    let unlocked = Guardian::start(
        &bins.guardian,
        Source::Procfs,
        &format!("{}lock_memory = false\n", base_config("1s")),
    )?;
    wait_scans(&unlocked, 3)?;
    let (unlocked_rss, _) = rss_mib(&unlocked)?;
    println!("  with lock_memory = false: VmRSS {unlocked_rss:.1} MiB");
    drop(unlocked);
    drop(sleepers);

    let guardian_stats = Stats::of(&guardian_us).context("no scan measured")?;
    let ps_stats = Stats::of(&ps_us).context("no ps run measured")?;
    let floor_stats = Stats::of(&floor_us).context("no floor measured")?;
    let ratio = Stats::of(&ratios).context("no pair")?;
    let floor_ratio = Stats::of(&floor_ratio).context("no pair")?;
    let iterator_stats = Stats::of(&iterator_us).context("no snapshot measured")?;
    let iterator_ratio = Stats::of(&iterator_ratios).context("no pair")?;
    let label = format!("@{count}");
    let judged = count >= 10_000;
    Ok(vec![
        Row {
            figure: format!("procfs scan cost/process {label}"),
            measured: format!("{:.2} us", guardian_stats.median),
            baseline: format!("ps -eo pid,rss,comm {:.2} us", ps_stats.median),
            ratio: ratio_text(&ratio),
            target: "<= 10 us".into(),
            verdict: Verdict::at_most(guardian_stats.median, 10.0),
        },
        Row {
            figure: format!("procfs scan vs floor {label}"),
            measured: format!("{:.2} us", guardian_stats.median),
            baseline: format!("readdir + stat only {:.2} us", floor_stats.median),
            ratio: ratio_text(&floor_ratio),
            target: "(ref)".into(),
            verdict: Verdict::Info,
        },
        Row {
            figure: format!("task iterator refresh/process {label}"),
            measured: format!("{:.2} us", iterator_stats.median),
            baseline: format!("procfs scan {:.2} us", guardian_stats.median),
            ratio: ratio_text(&iterator_ratio),
            target: "(choice: lower wins)".into(),
            verdict: Verdict::Info,
        },
        Row {
            figure: format!("eBPF-mode CPU, 1 s refresh {label}"),
            measured: format!("{:.1} % of a core", iterator_cpu * 100.0),
            baseline: format!("procfs mode {:.1} %", cpu * 100.0),
            ratio: format!("{:.2}", iterator_cpu / cpu.max(1e-9)),
            target: "(ref)".into(),
            verdict: Verdict::Info,
        },
        Row {
            figure: format!("guardian VmRSS {label}"),
            measured: format!("{rss:.1} MiB (peak {hwm:.1})"),
            baseline: format!("lock_memory=false {unlocked_rss:.1} MiB"),
            ratio: format!("{:.2}", rss / unlocked_rss),
            target: if judged { "<= 32 MiB" } else { "(ref)" }.into(),
            verdict: if judged {
                Verdict::at_most(rss, 32.0)
            } else {
                Verdict::Info
            },
        },
        Row {
            figure: format!("guardian CPU, 1 s scans {label}"),
            measured: format!("{:.1} % of a core", cpu * 100.0),
            baseline: String::new(),
            ratio: String::new(),
            target: "(ref)".into(),
            verdict: Verdict::Info,
        },
    ])
}

/// VmRSS and VmHWM of the guardian, in MiB.
fn rss_mib(guardian: &Guardian) -> anyhow::Result<(f64, f64)> {
    let mib = |key| -> anyhow::Result<f64> {
        Ok(harness::status_bytes(guardian.pid(), key)? as f64 / f64::from(1 << 20))
    };
    Ok((mib("VmRSS")?, mib("VmHWM")?))
}

/// Waits until the guardian has finished `n` more scans: (their summed seconds, count).
fn wait_scans(guardian: &Guardian, n: u32) -> anyhow::Result<(f64, f64)> {
    let (sum0, count0) = guardian.histogram(SCAN_HISTOGRAM)?;
    let done = wait_for(Duration::from_secs(60), Duration::from_millis(100), || {
        let (sum, count) = guardian.histogram(SCAN_HISTOGRAM)?;
        Ok((count >= count0 + f64::from(n)).then_some((sum - sum0, count - count0)))
    })?;
    done.context("the guardian finished no scan within 60 s")
}

/// Mean duration of the guardian's next two scans, in seconds.
fn scan_seconds(guardian: &Guardian) -> anyhow::Result<f64> {
    let (sum, count) = wait_scans(guardian, 2)?;
    if count <= 0.0 {
        bail!("no scan counted");
    }
    Ok(sum / count)
}

/// One `ps -eo pid,rss,comm`: (wall seconds, process lines printed).
fn ps_seconds() -> anyhow::Result<(f64, usize)> {
    let start = Instant::now();
    let out = Command::new("ps")
        .args(["-eo", "pid,rss,comm"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running ps -eo pid,rss,comm (package procps)")?;
    let seconds = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("ps -eo pid,rss,comm failed: {}", out.status);
    }
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .count()
        .saturating_sub(1);
    Ok((seconds, lines))
}

/// The floor: list /proc and read each process's `stat` (open, one read, close; nothing
/// parsed or kept). (seconds, processes read).
fn floor_seconds() -> (f64, usize) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let mut read = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.filter_map(Result::ok) {
            let name = entry.file_name();
            if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
                continue;
            }
            let mut path = std::path::PathBuf::from("/proc");
            path.push(&name);
            path.push("stat");
            if std::fs::File::open(&path)
                .and_then(|mut file| file.read(&mut buf))
                .is_ok()
            {
                read += 1;
            }
        }
    }
    (start.elapsed().as_secs_f64(), read)
}
