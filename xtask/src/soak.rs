//! `cargo xtask soak [--minutes N]` (not in CI: it loads the machine): the release
//! guardian under churn for N minutes: 10,000 live sleepers, about 1,000 process spawns a
//! second, about 100 cgroup creations and removals a second, and a marked hog every few
//! seconds that a kill rule must kill. Reports the guardian's RSS and open-file slopes,
//! every hog killed and logged, /healthz throughout, kernel- and user-side event drops and
//! CPU per 1,000 spawns. Everything it starts is its own and is gone when it returns.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::bench::{
    self,
    daemon::{Guardian, Source},
    harness::{self, Owned},
    sleepers::Sleepers,
};

/// Options of `cargo xtask soak`.
#[derive(clap::Args)]
pub struct Options {
    /// How long the churn runs.
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    /// Live sleepers held for the whole run.
    #[arg(long, default_value_t = 10_000)]
    pub processes: usize,
    /// Process spawns per second aimed at.
    #[arg(long, default_value_t = 1_000)]
    pub spawns: u64,
    /// Cgroup creations (each with a removal) per second aimed at.
    #[arg(long, default_value_t = 100)]
    pub cgroups: u64,
    /// Threads sharing the spawns (one thread of `posix_spawn` and reaping falls short of
    /// 1,000 a second on a loaded 2-core machine).
    #[arg(long, default_value_t = 4)]
    pub spawners: u64,
    /// Seconds between marked hogs.
    #[arg(long, default_value_t = 3)]
    pub hog_every: u64,
}

/// One sample of the guardian's own figures.
struct Sample {
    minutes: f64,
    rss: f64,
    fds: f64,
    /// The host's 1-minute load average.
    load: f64,
}

pub fn soak(root: &Path, options: &Options) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the soak loads eBPF programs, makes cgroups and kills its own hogs: run it as root");
    }
    harness::catch_interrupts()?;
    let bins = bench::build(root, false)?;
    let marker = format!("guardian-soak-hog-{}", std::process::id());
    let config = format!(
        "[daemon]\nscan_interval = \"1s\"\n\
         [safety]\nmax_kills = 1000\nrate_window = \"1m\"\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n\
         [[rule]]\nname = \"soak-hog\"\nthreshold = \"32MiB\"\ngrace = \"2s\"\n\
         match = {{ cmdline = '{marker}' }}\naction = \"kill\"\n"
    );
    println!("soak: starting {} sleepers", options.processes);
    let sleepers = Sleepers::spawn(options.processes)?;
    let guardian = Guardian::start(&bins.guardian, Source::Ebpf, &config).or_else(|error| {
        println!("soak: eBPF source unavailable ({error:#}); using procfs");
        Guardian::start(&bins.guardian, Source::Procfs, &config)
    })?;
    let pid = guardian.pid();
    // /api/v1/status answers as soon as the server is up; the churn starts once the first
    // scan of the 10,000 sleepers is done (/healthz 200), so every check after counts.
    let first_scan = Instant::now();
    let healthy = harness::wait_for(Duration::from_secs(90), Duration::from_millis(100), || {
        Ok(matches!(harness::http_get(guardian.addr, "/healthz"), Ok((200, _))).then_some(()))
    })?;
    if healthy.is_none() {
        bail!("the guardian's /healthz was not 200 within 90 s of its start");
    }
    println!(
        "soak: /healthz 200 {:.1} s after the server answered (first scan done)",
        first_scan.elapsed().as_secs_f64()
    );
    let cpu_start = harness::cpu_seconds(pid)?;

    let stop = Arc::new(AtomicBool::new(false));
    let spawned = Arc::new(AtomicU64::new(0));
    let churned = Arc::new(AtomicU64::new(0));
    let cgroup_root = PathBuf::from(format!(
        "/sys/fs/cgroup/memory/guardian-soak-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&cgroup_root)
        .with_context(|| format!("mkdir {}", cgroup_root.display()))?;
    let spawners = options.spawners.max(1);
    let program = SpawnedProgram::pick();
    println!(
        "soak: spawning {} at {}/s from {spawners} threads",
        program.describe(),
        options.spawns
    );
    let mut workers: Vec<_> = (0..spawners)
        .map(|index| {
            let (stop, spawned) = (stop.clone(), spawned.clone());
            // Each thread paces its share; the shares add up to the rate.
            let rate = options.spawns / spawners + u64::from(index < options.spawns % spawners);
            let program = program.clone();
            std::thread::spawn(move || spawn_churn(&stop, &spawned, rate, &program))
        })
        .collect();
    workers.push(std::thread::spawn({
        let (stop, churned, rate) = (stop.clone(), churned.clone(), options.cgroups);
        let root = cgroup_root.clone();
        move || cgroup_churn(&stop, &churned, rate, &root)
    }));

    let started = Instant::now();
    let run_for = Duration::from_secs(options.minutes * 60);
    let mut hogs: Vec<Owned> = Vec::new();
    let mut samples = Vec::new();
    let (mut health_checks, mut health_failures) = (0u64, 0u64);
    let mut failure_notes: Vec<String> = Vec::new();
    let mut last_hog = Instant::now() - Duration::from_secs(60);
    let mut last_sample = Instant::now() - Duration::from_secs(60);
    while started.elapsed() < run_for && harness::check_interrupted().is_ok() {
        health_checks += 1;
        match harness::http_get(guardian.addr, "/healthz") {
            Ok((200, _)) => {}
            answer => {
                health_failures += 1;
                if failure_notes.len() < 5 {
                    let what = match answer {
                        Ok((status, body)) => format!("{status} {}", body.trim()),
                        Err(error) => format!("{error:#}"),
                    };
                    failure_notes.push(format!(
                        "at {:.0} s: {what}",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
        }
        if last_hog.elapsed() >= Duration::from_secs(options.hog_every.max(1)) {
            last_hog = Instant::now();
            hogs.push(spawn_hog(&bins.memhog, &marker)?);
        }
        if last_sample.elapsed() >= Duration::from_secs(5) {
            last_sample = Instant::now();
            samples.push(Sample {
                minutes: started.elapsed().as_secs_f64() / 60.0,
                rss: harness::status_bytes(pid, "VmRSS")? as f64 / f64::from(1 << 20),
                fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as f64,
                load: load_average(),
            });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        if let Ok(Err(error)) = worker.join() {
            println!("soak: a churn worker stopped early: {error:#}");
        }
    }
    let cpu = harness::cpu_seconds(pid)? - cpu_start;
    // Hogs started last get their grace period.
    let killed = harness::wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
        Ok(hogs
            .iter_mut()
            .all(|hog| matches!(hog.0.try_wait(), Ok(Some(_))))
            .then_some(()))
    })?
    .is_some();
    let logged: std::collections::HashSet<i64> = guardian
        .kill_log()
        .iter()
        .filter(|record| record["kind"] == "intent")
        .filter_map(|record| record["pid"].as_i64())
        .collect();
    let unlogged = hogs
        .iter()
        .filter(|hog| !logged.contains(&i64::from(hog.pid())))
        .count();
    let metrics = guardian.get("/metrics")?;
    let lost = |side: &str| metric(&metrics, "guardian_events_lost_total", side);
    let received = metric(&metrics, "guardian_events_received_total", "");
    let spawned = spawned.load(Ordering::Relaxed);
    let churned = churned.load(Ordering::Relaxed);
    let warm: Vec<&Sample> = samples.iter().filter(|s| s.minutes >= 0.5).collect();

    println!("\n== soak: {:.1} min", elapsed / 60.0);
    println!(
        "live sleepers {}; spawns {spawned}: {:.0}/s achieved, {}/s aimed at; cgroups created and removed {churned}: {:.0}/s achieved, {}/s aimed at",
        sleepers.len(),
        spawned as f64 / elapsed,
        options.spawns,
        churned as f64 / elapsed,
        options.cgroups
    );
    if (spawned as f64) < 0.95 * options.spawns as f64 * elapsed {
        println!(
            "soak: spawns fell short of the aim ({:.0}% of it): the machine could not keep up",
            100.0 * spawned as f64 / (options.spawns as f64 * elapsed)
        );
    }
    let loads: Vec<f64> = samples.iter().map(|s| s.load).collect();
    if !loads.is_empty() {
        println!(
            "host load average (1 min) {:.1} to {:.1}, mean {:.1}",
            loads.iter().copied().fold(f64::INFINITY, f64::min),
            loads.iter().copied().fold(0.0, f64::max),
            loads.iter().sum::<f64>() / loads.len() as f64
        );
    }
    if let (Some(first), Some(last)) = (warm.first(), warm.last()) {
        println!(
            "guardian RSS {:.1} -> {:.1} MiB, slope {:+.3} MiB/min; open files {:.0} -> {:.0}, slope {:+.2}/min ({} samples after 30 s)",
            first.rss,
            last.rss,
            slope(&warm, |s| s.rss),
            first.fds,
            last.fds,
            slope(&warm, |s| s.fds),
            warm.len()
        );
    }
    // A leak grows as fast in the second half as in the first; a warm-up levels off.
    let half = elapsed / 120.0;
    let late: Vec<&Sample> = warm.iter().copied().filter(|s| s.minutes >= half).collect();
    println!(
        "guardian RSS slope over the second half {:+.3} MiB/min; RSS each minute (MiB): {}",
        slope(&late, |s| s.rss),
        samples
            .chunks(12)
            .filter_map(|minute| minute.last())
            .map(|s| format!("{:.1}", s.rss))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "hogs {}: all killed {killed}, without an intent record {unlogged}",
        hogs.len()
    );
    println!("/healthz: {health_failures} of {health_checks} checks not 200");
    for note in &failure_notes {
        println!("  /healthz {note}");
    }
    println!(
        "kernel events received {received:.0}, lost kernel-side {:.0}, user-side {:.0}",
        lost("kernel"),
        lost("user")
    );
    println!(
        "guardian CPU {cpu:.1} s: {:.3} s per 1,000 spawns",
        cpu / (spawned.max(1) as f64 / 1000.0)
    );
    drop(hogs);
    drop(guardian);
    drop(sleepers);
    let _ = harness::wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        Ok(std::fs::remove_dir(&cgroup_root).ok())
    });
    let left = marked_processes(&marker);
    println!(
        "left behind: {left} marked processes, cgroup dir exists {}",
        cgroup_root.exists()
    );
    if !killed || unlogged > 0 || health_failures > 0 || left > 0 {
        bail!("the soak failed (see above)");
    }
    Ok(())
}

fn spawn_hog(memhog: &Path, marker: &str) -> anyhow::Result<Owned> {
    let child = Command::new(memhog)
        .args(["--rss", "64", "--marker", marker])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("starting a soak hog")?;
    Ok(Owned(child))
}

/// What the churn runs: a statically linked busybox's `true` when there is one (no
/// dynamic loader: an exec costs a fraction of `/bin/true`'s), else `/bin/true`.
#[derive(Clone)]
struct SpawnedProgram {
    path: PathBuf,
    args: Vec<&'static str>,
}

impl SpawnedProgram {
    fn pick() -> SpawnedProgram {
        let busybox = Path::new("/bin/busybox");
        let is_static = std::fs::read(busybox).is_ok_and(|elf| is_static_elf(&elf));
        if is_static {
            SpawnedProgram {
                path: busybox.to_path_buf(),
                args: vec!["true"],
            }
        } else {
            SpawnedProgram {
                path: PathBuf::from("/bin/true"),
                args: Vec::new(),
            }
        }
    }

    fn describe(&self) -> String {
        std::iter::once(self.path.display().to_string())
            .chain(self.args.iter().map(|arg| (*arg).to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// An ELF without a `PT_INTERP` program header (no dynamic loader), 64-bit little-endian.
fn is_static_elf(elf: &[u8]) -> bool {
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..usize::from(phnum)).all(|index| {
        let at = phoff as usize + index * usize::from(phentsize);
        elf.get(at..at + 4)
            .is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != PT_INTERP)
    })
}

/// `program` at `rate` a second, reaped as they exit; adds to `spawned`.
fn spawn_churn(
    stop: &AtomicBool,
    spawned: &AtomicU64,
    rate: u64,
    program: &SpawnedProgram,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut running: VecDeque<Child> = VecDeque::new();
    let mut own = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        if own >= due {
            std::thread::sleep(Duration::from_millis(1));
        } else {
            let child = Command::new(&program.path)
                .args(&program.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("spawning {}", program.describe()))?;
            running.push_back(child);
            own += 1;
            spawned.fetch_add(1, Ordering::Relaxed);
        }
        while running.len() > 64 {
            if let Some(mut child) = running.pop_front() {
                child.wait()?;
            }
        }
    }
    for mut child in running {
        child.wait()?;
    }
    Ok(())
}

/// Memory cgroups under `root` created and removed at `rate` a second (16 alive at once).
fn cgroup_churn(
    stop: &AtomicBool,
    churned: &AtomicU64,
    rate: u64,
    root: &Path,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut alive: VecDeque<PathBuf> = VecDeque::new();
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        if churned.load(Ordering::Relaxed) >= due {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let dir = root.join(format!("c{next}"));
        next += 1;
        std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        alive.push_back(dir);
        if alive.len() > 16
            && let Some(old) = alive.pop_front()
        {
            std::fs::remove_dir(&old).with_context(|| format!("rmdir {}", old.display()))?;
        }
        churned.fetch_add(1, Ordering::Relaxed);
    }
    for dir in alive {
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// The value of `name` (with `side` in its labels when given) in a text scrape.
fn metric(text: &str, name: &str, side: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter(|line| side.is_empty() || line.contains(&format!("side=\"{side}\"")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The host's 1-minute load average (0 when /proc/loadavg cannot be read).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Least-squares slope of `value` over minutes.
fn slope(samples: &[&Sample], value: impl Fn(&Sample) -> f64) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean_t = samples.iter().map(|s| s.minutes).sum::<f64>() / n;
    let mean_v = samples.iter().map(|s| value(s)).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        num += (s.minutes - mean_t) * (value(s) - mean_v);
        den += (s.minutes - mean_t).powi(2);
    }
    if den == 0.0 { 0.0 } else { num / den }
}

/// Processes whose command line carries `marker` (the soak's hogs), still alive.
fn marked_processes(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| {
                    std::fs::read(entry.path().join("cmdline"))
                        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
                })
                .count()
        })
        .unwrap_or(0)
}
