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

const ARMS: [Arm; 6] = [
    Arm::Bare,
    Arm::Guardian(Source::Ebpf),
    Arm::Guardian(Source::Procfs),
    Arm::Reference(Body::Empty),
    Arm::Reference(Body::ProbeRead),
    Arm::Reference(Body::ProbeReadLookup),
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
            let timing = storm(&bins.memhog, options)?;
            if let Setup::Guardian(guardian) = &setup {
                guardian
                    .get("/api/v1/status")
                    .context("the guardian stopped answering during the storm")?;
            }
            drop(setup);
            times[index].push(timing);
            line.push_str(&format!(
                "  {}={}/{}",
                short(ARMS[index]),
                ms(timing.wall),
                ms(timing.cpu)
            ));
        }
        println!("{line}");
    }
    let mut rows = Vec::new();
    for (name, pick) in [
        ("wall", (|t: &Timing| t.wall) as fn(&Timing) -> f64),
        ("CPU", |t: &Timing| t.cpu),
    ] {
        let bare: Vec<f64> = times[0].iter().map(pick).collect();
        let bare_stats = Stats::of(&bare).context("no bare storm measured")?;
        for (index, arm) in ARMS.iter().enumerate().skip(1) {
            let figure = format!("fault storm {name}: {}", arm.label());
            if let Some(reason) = &unavailable[index] {
                if name == "wall" {
                    rows.push(Row::failed(&figure, &anyhow::anyhow!("{reason}")));
                }
                continue;
            }
            let with: Vec<f64> = times[index].iter().map(pick).collect();
            let ratios: Vec<f64> = with.iter().zip(&bare).map(|(a, b)| a / b).collect();
            let (Some(ratio), Some(arm_stats)) = (Stats::of(&ratios), Stats::of(&with)) else {
                continue;
            };
            let (target, verdict) = match (name, arm) {
                ("wall", Arm::Guardian(Source::Ebpf)) => {
                    ("<= 1.03".to_string(), Verdict::at_most(ratio.median, 1.03))
                }
                (_, Arm::Guardian(Source::Ebpf)) => ("(1.03 is for wall)".into(), Verdict::Info),
                (_, Arm::Reference(Body::Empty)) => ("(ref; 1.05 before)".into(), Verdict::Info),
                _ => ("(ref)".into(), Verdict::Info),
            };
            rows.push(Row {
                figure,
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
            _probe: NullProbe::attach("rss_stat", body)?,
        },
    })
}

fn lanes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// One storm's wall time, and the CPU time its memhogs used (user + system, where the
/// BPF program's cost lands too: it runs in the faulting task).
#[derive(Clone, Copy, Debug)]
struct Timing {
    wall: f64,
    cpu: f64,
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
    let cpu = results.into_iter().sum::<anyhow::Result<f64>>()?;
    Ok(Timing { wall, cpu })
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
