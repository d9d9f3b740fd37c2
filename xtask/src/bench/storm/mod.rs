//! Page-fault storm: `hogs` memhogs each touch `mib` MiB of fresh memory and exit (one
//! lane per CPU), timed with nothing attached (the baseline) and beside it with the
//! guardian in eBPF mode, in procfs mode, in eBPF mode with its userspace stopped during
//! the storm (the programs' own cost without wakeups and event handling), and with
//! hand-made reference programs on the same tracepoint (empty; + probe read; + per-CPU
//! lookup; BTF-typed with a direct load) that split the eBPF cost into attachment and
//! body. The guardian arms run the shipped cron rule (300 MB, dry-run), so the storm's
//! 256 MiB memhogs stay below every threshold as most processes on a host do; one more
//! eBPF arm runs a rule at 1 MiB that matches nothing, so every step is reported: the
//! worst case for events. Rounds alternate their order (A B .. B A) to cancel drift; each arm's figure is
//! the per-round ratio to the bare run, for wall time and for CPU time.

mod report;
mod workload;

use std::time::Duration;

use anyhow::Context as _;

use super::{
    Binaries,
    bpf_stats::{self, StatsEnabled},
    daemon::{Guardian, Source, base_config},
    harness,
    null_probe::{Body, NullProbe},
    report::{Row, ms},
};
use workload::{Timing, lanes, storm};

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
    /// Read each arm's rss_stat program run time from the kernel's BPF statistics.
    pub bpf_stats: bool,
}

/// What runs beside the storm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arm {
    Bare,
    Guardian(Source),
    /// The guardian in eBPF mode with a rule at 1 MiB (matching nothing): every RSS step
    /// of every memhog is above the report floor and reaches userspace.
    GuardianEveryStep,
    /// As [`Arm::GuardianEveryStep`], its process stopped (SIGSTOP) during the storm: the
    /// programs run and fill the ring buffer, but nothing is woken or consumed. Splits
    /// the programs' own cost from the wakeups and the userspace work.
    GuardianPaused,
    Reference(Body),
}

impl Arm {
    fn label(self) -> String {
        match self {
            Arm::Bare => "nothing attached".into(),
            Arm::Guardian(source) => format!("guardian {}", source.as_str()),
            Arm::GuardianEveryStep => "guardian ebpf, every step reported".into(),
            Arm::GuardianPaused => "guardian ebpf, every step, userspace stopped".into(),
            Arm::Reference(body) => body.label().into(),
        }
    }
}

const ARMS: [Arm; 9] = [
    Arm::Bare,
    Arm::Guardian(Source::Ebpf),
    Arm::Guardian(Source::Procfs),
    Arm::GuardianEveryStep,
    Arm::GuardianPaused,
    Arm::Reference(Body::Empty),
    Arm::Reference(Body::ProbeRead),
    Arm::Reference(Body::ProbeReadLookup),
    Arm::Reference(Body::BtfDirectLoadLookup),
];

/// Whatever an arm keeps alive while the storm runs.
enum Setup {
    Nothing,
    Guardian(Guardian),
    /// Stopped (SIGSTOP) just before the storm, continued just after.
    Paused(Guardian),
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
    let _stats = options.bpf_stats.then(StatsEnabled::enable).transpose()?;
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
            let runs_before = program_runs(&setup);
            pause(&setup, true)?;
            let timing = storm(&bins.memhog, options);
            pause(&setup, false)?;
            let mut timing = timing?;
            let after = guardian_counters(&setup)?;
            if let (Some(before), Some(after)) = (runs_before, program_runs(&setup)) {
                timing.program_ns = after.0.saturating_sub(before.0);
                timing.program_runs = after.1.saturating_sub(before.1);
            }
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
    report::print_guardian_costs(&times);
    report::print_program_costs(&times);
    report::rows(&times, &unavailable)
}

/// (run time ns, runs) of the arm's rss_stat program, with `--bpf-stats`.
fn program_runs(setup: &Setup) -> Option<(u64, u64)> {
    match setup {
        Setup::Nothing => None,
        Setup::Guardian(guardian) | Setup::Paused(guardian) => {
            bpf_stats::busiest_program(guardian.pid())
        }
        Setup::Probe { .. } => bpf_stats::busiest_program(std::process::id() as i32),
    }
}

/// SIGSTOP (`stop`) or SIGCONT to a paused arm's guardian; nothing for other arms.
fn pause(setup: &Setup, stop: bool) -> anyhow::Result<()> {
    let Setup::Paused(guardian) = setup else {
        return Ok(());
    };
    let signal = if stop {
        nix::sys::signal::Signal::SIGSTOP
    } else {
        nix::sys::signal::Signal::SIGCONT
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(guardian.pid()), signal)
        .with_context(|| format!("{signal} to our guardian"))
}

/// The guardian's CPU seconds and kernel events received so far (zeros without one).
fn guardian_counters(setup: &Setup) -> anyhow::Result<(f64, u64)> {
    let (Setup::Guardian(guardian) | Setup::Paused(guardian)) = setup else {
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

fn short(arm: Arm) -> &'static str {
    match arm {
        Arm::Bare => "bare",
        Arm::Guardian(Source::Ebpf) => "ebpf",
        Arm::Guardian(Source::Procfs) => "procfs",
        Arm::GuardianEveryStep => "ebpf-every-step",
        Arm::GuardianPaused => "ebpf-stopped",
        Arm::Reference(Body::Empty) => "empty",
        Arm::Reference(Body::ProbeRead) => "read",
        Arm::Reference(Body::ProbeReadLookup) => "read+lookup",
        Arm::Reference(Body::BtfDirectLoadLookup) => "btf+lookup",
    }
}

/// A 1 s scan interval and one dry-run host rule at `threshold` (plus `extra` keys).
fn rule_config(threshold: &str, extra: &str) -> String {
    format!(
        "{}[[rule]]\nname = \"storm\"\nthreshold = \"{threshold}\"\nscope = \"host\"\ndry_run = true\n{extra}",
        base_config("1s")
    )
}

/// A rule at 1 MiB that matches nothing: every RSS step is reported, nothing is due.
fn every_step_config() -> String {
    rule_config("1MiB", "match = { comm = [\"no-such-program\"] }\n")
}

fn set_up(bins: &Binaries, arm: Arm) -> anyhow::Result<Setup> {
    Ok(match arm {
        Arm::Bare => Setup::Nothing,
        Arm::Guardian(source) => Setup::Guardian(Guardian::start_niced(
            &bins.guardian,
            source,
            &rule_config("300MB", ""),
            STORM_NICE,
        )?),
        Arm::GuardianEveryStep => Setup::Guardian(Guardian::start_niced(
            &bins.guardian,
            Source::Ebpf,
            &every_step_config(),
            STORM_NICE,
        )?),
        Arm::GuardianPaused => Setup::Paused(Guardian::start_niced(
            &bins.guardian,
            Source::Ebpf,
            &every_step_config(),
            STORM_NICE,
        )?),
        Arm::Reference(body) => Setup::Probe {
            _probe: NullProbe::attach(body)?,
        },
    })
}
