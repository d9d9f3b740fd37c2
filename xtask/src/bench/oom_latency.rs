//! OOM event latency, kernel to API: memhogs OOM-killed one after another in a small
//! memory cgroup of our own, with `bpftrace` on `oom:mark_victim` as the reference
//! (its print, read here, minus its `nsecs`). The guardian's latency is the moment its
//! `/api/v1/oom-events` first shows the event minus the kernel's timestamp of it when the
//! API gives one (`kernel_boot_ns`, CLOCK_BOOTTIME), else minus the moment the cgroup's
//! `oom_kill` counter moved (polled every 100 us).

use std::{
    collections::HashSet,
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};

use anyhow::{Context as _, bail};

use super::{
    Binaries,
    cgroup::MemCgroup,
    daemon::{Guardian, Source, base_config},
    harness::{self, Owned, Stats},
    report::{Row, Verdict, latency_text, ms},
    tracefs::Tracefs,
};

const BPFTRACE_PROGRAM: &str =
    r#"tracepoint:oom:mark_victim { printf("%d %lld\n", args->pid, nsecs); }"#;
const CGROUP_LIMIT: u64 = 64 << 20;
const API_POLL: Duration = Duration::from_millis(2);

/// One new entry of /api/v1/oom-events, when this benchmark first saw it.
struct Seen {
    event: serde_json::Value,
    mono_ns: u64,
    boot_ns: u64,
}

pub fn run(bins: &Binaries, runs: usize) -> Vec<Row> {
    println!(
        "\n== OOM event latency: {runs} OOM kills per mode in a {} MiB cgroup",
        CGROUP_LIMIT >> 20
    );
    match measure(bins, runs) {
        Ok(rows) => rows,
        Err(error) => vec![Row::failed("OOM event latency", &error)],
    }
}

fn measure(bins: &Binaries, runs: usize) -> anyhow::Result<Vec<Row>> {
    let _tracefs = Tracefs::ensure()?;
    let cgroup = MemCgroup::create(
        &format!("guardian-bench-oom-{}", std::process::id()),
        CGROUP_LIMIT,
    )?;
    let (bpftrace, bpftrace_lines, bpftrace_reader) = start_bpftrace()?;
    let mut rows = Vec::new();
    for source in [Source::Ebpf, Source::Procfs] {
        let mut reference = Vec::new();
        let guardian = Guardian::start(&bins.guardian, source, &base_config("1s"))?;
        match per_mode(
            bins,
            &guardian,
            &cgroup,
            &bpftrace_lines,
            runs,
            &mut reference,
        ) {
            Ok((stats, basis)) => {
                let reference = Stats::of(&reference).context("no bpftrace reference")?;
                rows.push(Row {
                    figure: format!("OOM event -> API ({})", source.as_str()),
                    measured: latency_text(&stats),
                    baseline: format!(
                        "bpftrace p50 {} p99 {}",
                        ms(reference.median),
                        ms(reference.p99)
                    ),
                    ratio: format!("{:.1} (p50/p50)", stats.median / reference.median),
                    target: format!("(report p50/p99; from {basis})"),
                    verdict: Verdict::Info,
                });
            }
            Err(error) => rows.push(Row::failed(
                &format!("OOM event -> API ({})", source.as_str()),
                &error,
            )),
        }
    }
    drop(bpftrace);
    let _ = bpftrace_reader.join();
    Ok(rows)
}

type BpftraceLine = (i32, u64, u64);

/// Starts bpftrace and waits until its probe is attached; lines go to the receiver as
/// (victim pid, bpftrace nsecs, CLOCK_MONOTONIC when read).
fn start_bpftrace() -> anyhow::Result<(
    Owned,
    mpsc::Receiver<BpftraceLine>,
    std::thread::JoinHandle<()>,
)> {
    let mut child = Owned(
        Command::new("bpftrace")
            .args(["-B", "none", "-e", BPFTRACE_PROGRAM])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It warns about RLIMIT_MEMLOCK on kernels that no longer use it.
            .stderr(Stdio::null())
            .spawn()
            .context("starting bpftrace (apt-get install bpftrace)")?,
    );
    let stdout = child.0.stdout.take().context("bpftrace stdout")?;
    let (attached_tx, attached_rx) = mpsc::channel();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let now = harness::monotonic_ns();
            let Ok(line) = line else { return };
            if line.starts_with("Attaching") {
                let _ = attached_tx.send(());
                continue;
            }
            let mut fields = line.split_whitespace();
            if let (Some(Ok(pid)), Some(Ok(nsecs))) = (
                fields.next().map(str::parse::<i32>),
                fields.next().map(str::parse::<u64>),
            ) {
                let _ = lines_tx.send((pid, nsecs, now));
            }
        }
    });
    if attached_rx.recv_timeout(Duration::from_secs(60)).is_err() {
        bail!(
            "bpftrace did not attach to oom:mark_victim within 60 s; try by hand: bpftrace -e '{BPFTRACE_PROGRAM}'"
        );
    }
    // bpftrace prints "Attaching" just before it attaches.
    std::thread::sleep(Duration::from_millis(500));
    Ok((child, lines_rx, reader))
}

/// OOM-kills `runs` memhogs with `guardian` running; returns the guardian's latencies
/// (seconds) and the basis they were measured from. bpftrace's go into `reference`.
fn per_mode(
    bins: &Binaries,
    guardian: &Guardian,
    cgroup: &MemCgroup,
    bpftrace: &mpsc::Receiver<BpftraceLine>,
    runs: usize,
    reference: &mut Vec<f64>,
) -> anyhow::Result<(Stats, &'static str)> {
    let stop = AtomicBool::new(false);
    let (counter_tx, counter_rx) = mpsc::channel::<u64>();
    let (api_tx, api_rx) = mpsc::channel::<Seen>();
    let mut latencies = Vec::new();
    let mut basis = "the cgroup's oom_kill counter";
    std::thread::scope(|scope| -> anyhow::Result<()> {
        scope.spawn(|| poll_counter(cgroup, &stop, counter_tx));
        scope.spawn(|| poll_api(guardian, &stop, api_tx));
        let result = (|| -> anyhow::Result<()> {
            // Events already in the API before we start are not ours.
            std::thread::sleep(Duration::from_millis(300));
            while api_rx.try_recv().is_ok() {}
            while counter_rx.try_recv().is_ok() {}
            for run in 0..runs {
                harness::check_interrupted()?;
                std::thread::sleep(harness::jitter(Duration::from_secs(1)));
                let victim = oom_kill_one(bins, cgroup, run)?;
                let counter_ns = counter_rx
                    .recv_timeout(Duration::from_secs(10))
                    .context("the cgroup's oom_kill counter did not move")?;
                let traced = loop {
                    let (pid, nsecs, read) = bpftrace
                        .recv_timeout(Duration::from_secs(10))
                        .context("bpftrace printed no line for the victim")?;
                    if pid == victim {
                        break read.saturating_sub(nsecs);
                    }
                };
                let seen = loop {
                    let seen = api_rx
                        .recv_timeout(Duration::from_secs(15))
                        .with_context(|| {
                            format!("/api/v1/oom-events did not show victim {victim} within 15 s")
                        })?;
                    if is_ours(&seen.event, victim, &cgroup.name()) {
                        break seen;
                    }
                };
                let latency = match kernel_boot_ns(&seen.event) {
                    Some(kernel) => {
                        basis = "the event's kernel timestamp";
                        seen.boot_ns.saturating_sub(kernel)
                    }
                    None => seen.mono_ns.saturating_sub(counter_ns),
                };
                println!(
                    "  run {}: victim {victim}: guardian {} (counter->API {}), bpftrace {}",
                    run + 1,
                    ms(latency as f64 / 1e9),
                    ms(seen.mono_ns.saturating_sub(counter_ns) as f64 / 1e9),
                    ms(traced as f64 / 1e9),
                );
                latencies.push(latency as f64 / 1e9);
                reference.push(traced as f64 / 1e9);
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        result
    })?;
    Ok((Stats::of(&latencies).context("no OOM measured")?, basis))
}

/// Starts a memhog in the cgroup that outgrows its limit; returns its pid once the OOM
/// killer has taken it.
fn oom_kill_one(bins: &Binaries, cgroup: &MemCgroup, run: usize) -> anyhow::Result<i32> {
    let mut command = Command::new(&bins.memhog);
    command
        .args(["--rss", "256", "--marker"])
        .arg(format!("guardian-bench-oom-{}-{run}", std::process::id()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cgroup.join_on_spawn(&mut command)?;
    let mut hog = Owned(
        command
            .spawn()
            .context("starting memhog in the OOM cgroup")?,
    );
    let pid = hog.pid();
    if harness::wait_exit(pid, Duration::from_secs(30))?.is_none() {
        bail!(
            "memhog {pid} was not OOM-killed within 30 s in a {} MiB cgroup",
            CGROUP_LIMIT >> 20
        );
    }
    let status = hog.0.wait()?;
    use std::os::unix::process::ExitStatusExt as _;
    if status.signal() != Some(libc::SIGKILL) {
        bail!("memhog {pid} ended with {status}, not the OOM killer's SIGKILL");
    }
    Ok(pid)
}

fn poll_counter(cgroup: &MemCgroup, stop: &AtomicBool, changes: mpsc::Sender<u64>) {
    let mut last = cgroup.oom_kills().unwrap_or(0);
    while !stop.load(Ordering::Relaxed) {
        if let Ok(now) = cgroup.oom_kills()
            && now != last
        {
            last = now;
            let _ = changes.send(harness::monotonic_ns());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

fn poll_api(guardian: &Guardian, stop: &AtomicBool, seen: mpsc::Sender<Seen>) {
    let mut known = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(Some(body)) = guardian.get_json("/api/v1/oom-events") {
            let (mono_ns, boot_ns) = (harness::monotonic_ns(), harness::boottime_ns());
            for event in events(&body) {
                if known.insert(event.to_string()) {
                    let _ = seen.send(Seen {
                        event: event.clone(),
                        mono_ns,
                        boot_ns,
                    });
                }
            }
        }
        std::thread::sleep(API_POLL);
    }
}

/// The events of an /api/v1/oom-events answer: a bare array, or the first array field.
fn events(body: &serde_json::Value) -> Vec<&serde_json::Value> {
    match body {
        serde_json::Value::Array(items) => items.iter().collect(),
        serde_json::Value::Object(map) => map
            .values()
            .find_map(|value| value.as_array())
            .map(|items| items.iter().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Our victim's event: its pid, or (counter-based events name no pid) our cgroup.
fn is_ours(event: &serde_json::Value, victim: i32, cgroup: &str) -> bool {
    match event.get("pid").and_then(serde_json::Value::as_i64) {
        Some(pid) => pid == i64::from(victim),
        None => event
            .get("cgroup")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|path| path.ends_with(cgroup)),
    }
}

/// The kernel's CLOCK_BOOTTIME stamp of the event, if the API gives it.
fn kernel_boot_ns(event: &serde_json::Value) -> Option<u64> {
    event
        .get("kernel_boot_ns")
        .and_then(serde_json::Value::as_u64)
}
