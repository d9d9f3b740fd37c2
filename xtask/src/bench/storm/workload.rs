//! The storm itself: memhogs touching fresh memory and exiting, one lane per CPU, with
//! their wall and CPU time (CPU from `wait4`'s rusage: where a BPF program attached to
//! the page-fault path is charged too).

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};

use super::{STORM_NICE, StormOptions};
use crate::bench::harness;

pub(super) fn lanes() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// One storm's wall time, and the CPU time its memhogs used (user + system, where the
/// BPF program's cost lands too: it runs in the faulting task) plus, in the guardian
/// arms, the guardian's own CPU time during the storm. CPU time is what other load on
/// the host disturbs least.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Timing {
    pub wall: f64,
    pub hogs_cpu: f64,
    pub guardian_cpu: f64,
    /// Kernel events the guardian received during the storm.
    pub events: u64,
    /// With `--bpf-stats`: the rss_stat program's run time and runs during the storm.
    pub program_ns: u64,
    pub program_runs: u64,
}

impl Timing {
    pub(super) fn total_cpu(&self) -> f64 {
        self.hogs_cpu + self.guardian_cpu
    }
}

/// One storm.
pub(super) fn storm(memhog: &Path, options: StormOptions) -> anyhow::Result<Timing> {
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
