//! Page-fault storm: `hogs` memhogs each touch `mib` MiB of fresh memory and exit (one
//! lane per CPU), timed wall-clock with nothing attached (the baseline) and beside it
//! with the guardian in eBPF mode, in procfs mode, and with hand-made reference programs
//! on the same raw tracepoint (empty, + probe read, + per-CPU lookup) that split the
//! eBPF cost into attachment and body. Rounds alternate their order (A B .. B A) to
//! cancel drift; each arm's figure is the per-round ratio to the bare run.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::{
    Binaries,
    daemon::{Guardian, Source, base_config},
    harness::{self, Stats},
    null_probe::{Body, NullProbe},
    report::{Row, Verdict, ms, ratio_text},
};

/// The storm's memhogs and the guardian beside them run at this niceness, in every arm
/// alike, so other work on the host takes little of their CPUs and the wall time stays
/// readable; the guardian's userspace still competes with the storm on equal terms.
const STORM_NICE: i32 = -20;

/// Pair ratios spread wider than this (max / min) cannot judge a 3 % target: the host
/// was too busy.
const NOISY_SPREAD: f64 = 1.2;

/// Storm size and repetitions.
#[derive(Clone, Copy, Debug)]
pub struct StormOptions {
    pub hogs: usize,
    pub mib: usize,
    pub rounds: usize,
}

/// What runs beside the storm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arm {
    Bare,
    Guardian(Source),
    Reference(Body),
}

impl Arm {
    fn label(self) -> String {
        match self {
            Arm::Bare => "nothing attached".into(),
            Arm::Guardian(source) => format!("guardian {}", source.as_str()),
            Arm::Reference(body) => body.label().into(),
        }
    }
}

const ARMS: [Arm; 7] = [
    Arm::Bare,
    Arm::Guardian(Source::Ebpf),
    Arm::Guardian(Source::Procfs),
    Arm::Reference(Body::Empty),
    Arm::Reference(Body::ProbeRead),
    Arm::Reference(Body::ProbeReadLookup),
    Arm::Reference(Body::BtfDirectLoadLookup),
];

/// Whatever an arm keeps alive while the storm runs.
enum Setup {
    Nothing,
    Guardian(Guardian),
    /// Attached until dropped.
    Probe {
        _probe: NullProbe,
    },
}

pub fn run(bins: &Binaries, options: StormOptions) -> Vec<Row> {
    println!(
        "\n== page-fault storm: {} x {} MiB touched fresh, {} lanes at nice {STORM_NICE}, {} rounds (wall/CPU per arm)",
        options.hogs,
        options.mib,
        lanes(),
        options.rounds
    );
    match measure(bins, options) {
        Ok(rows) => rows,
        Err(error) => vec![Row::failed("page-fault storm", &error)],
    }
}

fn measure(bins: &Binaries, options: StormOptions) -> anyhow::Result<Vec<Row>> {
    // Warm-up: page cache, allocator, CPU frequency.
    storm(&bins.memhog, options)?;
    let mut times: Vec<Vec<Timing>> = vec![Vec::new(); ARMS.len()];
    let mut unavailable: Vec<Option<String>> = vec![None; ARMS.len()];
    for round in 0..options.rounds {
        let mut order: Vec<usize> = (0..ARMS.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut line = format!("round {}:", round + 1);
        for index in order {
            harness::check_interrupted()?;
            if unavailable[index].is_some() {
                continue;
            }
            let setup = match set_up(bins, ARMS[index]) {
                Ok(setup) => setup,
                Err(error) => {
                    println!("  {}: cannot set up: {error:#}", ARMS[index].label());
                    unavailable[index] = Some(format!("{error:#}"));
                    continue;
                }
            };
            // Let a fresh guardian finish its first scan before the clock starts.
            std::thread::sleep(Duration::from_millis(1500));
            let before = guardian_counters(&setup)?;
            let mut timing = storm(&bins.memhog, options)?;
            let after = guardian_counters(&setup)?;
            timing.guardian_cpu = after.0 - before.0;
            timing.events = after.1.saturating_sub(before.1);
            drop(setup);
            times[index].push(timing);
            line.push_str(&format!(
                "  {}={}/{}",
                short(ARMS[index]),
                ms(timing.wall),
                ms(timing.total_cpu())
            ));
        }
        println!("{line}");
    }
    print_guardian_costs(&times);
    rows(&times, &unavailable)
}

/// The guardian's CPU seconds and kernel events received so far (zeros without one).
fn guardian_counters(setup: &Setup) -> anyhow::Result<(f64, u64)> {
    let Setup::Guardian(guardian) = setup else {
        return Ok((0.0, 0));
    };
    let status = guardian
        .get_json("/api/v1/status")
        .context("the guardian stopped answering")?
        .context("the guardian has no /api/v1/status")?;
    let events = status
        .get("events_received")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    Ok((harness::cpu_seconds(guardian.pid())?, events))
}

/// What the guardian itself spent during a storm, per kernel event it received.
fn print_guardian_costs(times: &[Vec<Timing>]) {
    for (index, arm) in ARMS.iter().enumerate() {
        let Arm::Guardian(source) = arm else { continue };
        let cpu: Vec<f64> = times[index].iter().map(|t| t.guardian_cpu).collect();
        let events: Vec<f64> = times[index].iter().map(|t| t.events as f64).collect();
        if let (Some(cpu), Some(events)) = (Stats::of(&cpu), Stats::of(&events)) {
            let per_event = if events.median > 0.0 {
                format!(", {:.1} us per event", cpu.median / events.median * 1e6)
            } else {
                String::new()
            };
            println!(
                "guardian {} during a storm (median): {} CPU, {:.0} kernel events{per_event}",
                source.as_str(),
                ms(cpu.median),
                events.median
            );
        }
    }
}

/// Which figure of a [`Timing`] a row shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Figure {
    Wall,
    /// The memhogs' own CPU: where the BPF program's cost lands.
    HogsCpu,
    /// The memhogs' CPU plus the guardian's: everything the guardian costs.
    TotalCpu,
}

impl Figure {
    fn label(self) -> &'static str {
        match self {
            Figure::Wall => "wall",
            Figure::HogsCpu => "CPU of memhogs",
            Figure::TotalCpu => "CPU memhogs+guardian",
        }
    }

    fn pick(self, timing: &Timing) -> f64 {
        match self {
            Figure::Wall => timing.wall,
            Figure::HogsCpu => timing.hogs_cpu,
            Figure::TotalCpu => timing.total_cpu(),
        }
    }
}

fn rows(times: &[Vec<Timing>], unavailable: &[Option<String>]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for figure in [Figure::Wall, Figure::TotalCpu, Figure::HogsCpu] {
        let bare: Vec<f64> = times[0].iter().map(|t| figure.pick(t)).collect();
        let bare_stats = Stats::of(&bare).context("no bare storm measured")?;
        for (index, arm) in ARMS.iter().enumerate().skip(1) {
            let is_guardian = matches!(arm, Arm::Guardian(_));
            if figure == Figure::TotalCpu && !is_guardian {
                continue;
            }
            let name = format!("fault storm {}: {}", figure.label(), arm.label());
            if let Some(reason) = &unavailable[index] {
                if figure == Figure::Wall {
                    rows.push(Row::failed(&name, &anyhow::anyhow!("{reason}")));
                }
                continue;
            }
            let with: Vec<f64> = times[index].iter().map(|t| figure.pick(t)).collect();
            let ratios: Vec<f64> = with.iter().zip(&bare).map(|(a, b)| a / b).collect();
            let (Some(ratio), Some(arm_stats)) = (Stats::of(&ratios), Stats::of(&with)) else {
                continue;
            };
            let judged = *arm == Arm::Guardian(Source::Ebpf) && figure != Figure::HogsCpu;
            let (target, verdict) = if judged && ratio.max / ratio.min > NOISY_SPREAD {
                ("<= 1.03".to_string(), Verdict::Noisy)
            } else if judged {
                ("<= 1.03".to_string(), Verdict::at_most(ratio.median, 1.03))
            } else if *arm == Arm::Reference(Body::Empty) {
                ("(ref; 1.05 before)".into(), Verdict::Info)
            } else {
                ("(ref)".into(), Verdict::Info)
            };
            rows.push(Row {
                figure: name,
                measured: ms(arm_stats.median),
                baseline: format!("{} bare", ms(bare_stats.median)),
                ratio: ratio_text(&ratio),
                target,
                verdict,
            });
        }
    }
    Ok(rows)
}

fn short(arm: Arm) -> &'static str {
    match arm {
        Arm::Bare => "bare",
        Arm::Guardian(Source::Ebpf) => "ebpf",
        Arm::Guardian(Source::Procfs) => "procfs",
        Arm::Reference(Body::Empty) => "empty",
        Arm::Reference(Body::ProbeRead) => "read",
        Arm::Reference(Body::ProbeReadLookup) => "read+lookup",
        Arm::Reference(Body::BtfDirectLoadLookup) => "btf+lookup",
    }
}

fn set_up(bins: &Binaries, arm: Arm) -> anyhow::Result<Setup> {
    Ok(match arm {
        Arm::Bare => Setup::Nothing,
        Arm::Guardian(source) => Setup::Guardian(Guardian::start_niced(
            &bins.guardian,
            source,
            &base_config("1s"),
            STORM_NICE,
        )?),
        Arm::Reference(body) => Setup::Probe {
            _probe: NullProbe::attach(body)?,
        },
    })
}

fn lanes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// One storm's wall time, and the CPU time its memhogs used (user + system, where the
/// BPF program's cost lands too: it runs in the faulting task) plus, in the guardian
/// arms, the guardian's own CPU time during the storm. CPU time is what other load on
/// the host disturbs least.
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    wall: f64,
    hogs_cpu: f64,
    guardian_cpu: f64,
    /// Kernel events the guardian received during the storm.
    events: u64,
}

impl Timing {
    fn total_cpu(&self) -> f64 {
        self.hogs_cpu + self.guardian_cpu
    }
}

/// One storm.
fn storm(memhog: &Path, options: StormOptions) -> anyhow::Result<Timing> {
    let lanes = lanes();
    let mib = options.mib.to_string();
    let start = Instant::now();
    let results: Vec<anyhow::Result<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..lanes)
            .map(|lane| {
                let mib = mib.as_str();
                scope.spawn(move || -> anyhow::Result<f64> {
                    let mut cpu = 0.0;
                    for _ in (lane..options.hogs).step_by(lanes) {
                        cpu += run_hog(memhog, mib)?;
                    }
                    Ok(cpu)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| bail!("storm lane panicked"))
            })
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    let hogs_cpu = results.into_iter().sum::<anyhow::Result<f64>>()?;
    Ok(Timing {
        wall,
        hogs_cpu,
        ..Timing::default()
    })
}

/// Runs `memhog --rss MIB --exit` to its end; the CPU seconds it used.
fn run_hog(memhog: &Path, mib: &str) -> anyhow::Result<f64> {
    let mut command = Command::new(memhog);
    harness::set_nice(&mut command, STORM_NICE);
    let child = command
        .args(["--rss", mib, "--exit"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", memhog.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain integers, valid all-zero.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for (and reaps) our own child, writing into valid locals; `child` is
    // then dropped without a second wait.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    drop(child);
    if reaped != pid {
        bail!("wait4({pid}): {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("memhog --rss {mib} --exit failed (wait status {status:#x})");
    }
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Ok(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}
