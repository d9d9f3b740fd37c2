//! A diagnostic for `cargo xtask bench --bpf-stats`: the kernel's own accounting of BPF
//! program run time (`kernel.bpf_stats_enabled`, which adds a clock read or two to
//! every program run while on), read from the `run_time_ns`/`run_cnt` lines of a
//! program fd's `/proc/PID/fdinfo`. The sysctl is restored on drop.

use anyhow::Context as _;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// BPF run-time statistics switched on until dropped.
pub struct StatsEnabled {
    previous: String,
}

impl StatsEnabled {
    pub fn enable() -> anyhow::Result<StatsEnabled> {
        let previous =
            std::fs::read_to_string(SYSCTL).with_context(|| format!("reading {SYSCTL}"))?;
        std::fs::write(SYSCTL, "1").with_context(|| format!("writing 1 to {SYSCTL}"))?;
        Ok(StatsEnabled {
            previous: previous.trim().to_string(),
        })
    }
}

impl Drop for StatsEnabled {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.previous);
    }
}

/// (run time in ns, runs) of the most-run BPF program `pid` holds an fd of: in a
/// guardian, its `rss_stat` program; in this benchmark, the reference program.
pub fn busiest_program(pid: i32) -> Option<(u64, u64)> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fdinfo")).ok()?;
    dir.filter_map(Result::ok)
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            if !text.contains("prog_type:") {
                return None;
            }
            let field = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
            };
            Some((field("run_time_ns:")?, field("run_cnt:")?))
        })
        .max_by_key(|(_, runs)| *runs)
}
