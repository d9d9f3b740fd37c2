//! System settings and the boot clock, each read one way for the whole guardian.

/// Bytes per page (`sysconf(PAGESIZE)`): the unit of `/proc/PID/stat`'s RSS and of the
/// kernel's RSS counters.
pub fn page_size() -> u64 {
    procfs::page_size()
}

/// Clock ticks per second (`sysconf(CLK_TCK)`): the unit of /proc start times.
pub fn clock_ticks() -> u64 {
    procfs::ticks_per_second()
}

/// Seconds since boot on `CLOCK_BOOTTIME`, the clock process start times count on (and
/// the one `/proc/uptime` shows).
pub fn seconds_since_boot() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map_or(0.0, |now| now.tv_sec() as f64 + now.tv_nsec() as f64 / 1e9)
}

/// /proc's starttime for a kernel `start_boottime` (`nsec_to_clock_t`): clock ticks.
pub fn start_ticks_from_ns(ns: u64, clock_ticks: u64) -> u64 {
    ns / (1_000_000_000 / clock_ticks.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_the_usual_ones_and_the_boot_clock_runs() {
        assert_eq!(page_size() % 4096, 0);
        assert!(clock_ticks() >= 100);
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .expect("uptime")
            .split_whitespace()
            .next()
            .and_then(|field| field.parse().ok())
            .expect("uptime field");
        let now = seconds_since_boot();
        assert!((now - uptime).abs() < 5.0, "{now} vs /proc/uptime {uptime}");
        assert_eq!(start_ticks_from_ns(2_500_000_000, 100), 250);
    }
}
