//! The storm's figures: per-round ratios of each arm to the bare run, for wall time, the
//! memhogs' CPU and, in the guardian arms, the memhogs' plus the guardian's CPU; and
//! what the guardian itself spent per kernel event.

use anyhow::Context as _;

use super::{ARMS, Arm, NOISY_SPREAD, workload::Timing};
use crate::bench::{
    daemon::Source,
    harness::Stats,
    null_probe::Body,
    report::{Row, Verdict, ms, ratio_text},
};

/// With `--bpf-stats`: each arm's rss_stat program, in ns per run (median of rounds).
pub(super) fn print_program_costs(times: &[Vec<Timing>]) {
    for (index, arm) in ARMS.iter().enumerate() {
        let per_run: Vec<f64> = times[index]
            .iter()
            .filter(|t| t.program_runs > 0)
            .map(|t| t.program_ns as f64 / t.program_runs as f64)
            .collect();
        let runs: Vec<f64> = times[index].iter().map(|t| t.program_runs as f64).collect();
        if let (Some(per_run), Some(runs)) = (Stats::of(&per_run), Stats::of(&runs)) {
            println!(
                "rss_stat program, {}: {:.1} ns per run ({:.1}..{:.1}), {:.0} runs per storm",
                arm.label(),
                per_run.median,
                per_run.min,
                per_run.max,
                runs.median
            );
        }
    }
}

/// What the guardian itself spent during a storm, per kernel event it received.
pub(super) fn print_guardian_costs(times: &[Vec<Timing>]) {
    for (index, arm) in ARMS.iter().enumerate() {
        let name = match arm {
            Arm::Guardian(source) => source.as_str(),
            Arm::GuardianEveryStep => "ebpf, every step reported",
            Arm::GuardianPaused => "ebpf, every step (stopped during the storm)",
            _ => continue,
        };
        let cpu: Vec<f64> = times[index].iter().map(|t| t.guardian_cpu).collect();
        let events: Vec<f64> = times[index].iter().map(|t| t.events as f64).collect();
        if let (Some(cpu), Some(events)) = (Stats::of(&cpu), Stats::of(&events)) {
            let per_event = if events.median > 0.0 {
                format!(", {:.1} us per event", cpu.median / events.median * 1e6)
            } else {
                String::new()
            };
            println!(
                "guardian {name} during a storm (median): {} CPU, {:.0} kernel events{per_event}",
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

pub(super) fn rows(
    times: &[Vec<Timing>],
    unavailable: &[Option<String>],
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for figure in [Figure::Wall, Figure::TotalCpu, Figure::HogsCpu] {
        let bare: Vec<f64> = times[0].iter().map(|t| figure.pick(t)).collect();
        let bare_stats = Stats::of(&bare).context("no bare storm measured")?;
        for (index, arm) in ARMS.iter().enumerate().skip(1) {
            let is_guardian = matches!(
                arm,
                Arm::Guardian(_) | Arm::GuardianEveryStep | Arm::GuardianPaused
            );
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
