//! Host-wide families: memory, swap, memory pressure (PSI) and OOM kills seen.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{BYTES, SECONDS, counters, gauge, gauges},
    labels::Lv,
};
use crate::model::{Model, OomScope, Pressure};

/// Writes the host families.
pub fn encode(model: &Model, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let host = &model.host;
    gauge(
        encoder,
        "guardian_host_memory_total",
        "Memory the host has (MemTotal)",
        Some(&BYTES),
        host.total,
    )?;
    gauge(
        encoder,
        "guardian_host_memory_available",
        "Memory available for new work without swapping (MemAvailable)",
        Some(&BYTES),
        host.available,
    )?;
    gauge(
        encoder,
        "guardian_host_swap_total",
        "Swap the host has (SwapTotal)",
        Some(&BYTES),
        host.swap_total,
    )?;
    gauge(
        encoder,
        "guardian_host_swap_free",
        "Swap unused (SwapFree)",
        Some(&BYTES),
        host.swap_free,
    )?;
    if let Some(pressure) = &host.pressure {
        counters(
            encoder,
            "guardian_host_memory_pressure_stalled",
            "Time tasks stalled on memory, host-wide (/proc/pressure/memory total; kind some: at least one task, full: all non-idle tasks)",
            Some(&SECONDS),
            stall_seconds(pressure).map(|(kind, seconds)| ([("kind", Lv::Text(kind))], seconds)),
        )?;
        gauges(
            encoder,
            "guardian_host_memory_pressure_ratio",
            "Share of time tasks stalled on memory over the kernel's 10s and 60s windows (PSI avg10, avg60 divided by 100)",
            None,
            stall_ratios(pressure).map(|(kind, window, ratio)| {
                (
                    [("kind", Lv::Text(kind)), ("window", Lv::Text(window))],
                    ratio,
                )
            }),
        )?;
    }
    counters(
        encoder,
        "guardian_oom_kills",
        "OOM kills the guardian saw since it started, by scope (cgroup: a cgroup hit its limit; host: the host ran out)",
        None,
        [OomScope::Cgroup, OomScope::Host].map(|scope| {
            let count = model.oom_totals().get(scope.as_str()).copied().unwrap_or(0);
            ([("scope", Lv::Text(scope.as_str()))], count)
        }),
    )
}

/// PSI stall totals in seconds by kind (some, full).
pub fn stall_seconds(pressure: &Pressure) -> [(&'static str, f64); 2] {
    [
        ("some", pressure.some_total_us as f64 / 1e6),
        ("full", pressure.full_total_us as f64 / 1e6),
    ]
}

/// PSI averages as ratios by kind (some, full) and window (10s, 60s).
pub fn stall_ratios(pressure: &Pressure) -> [(&'static str, &'static str, f64); 4] {
    [
        ("some", "10s", pressure.some_avg10 / 100.0),
        ("some", "60s", pressure.some_avg60 / 100.0),
        ("full", "10s", pressure.full_avg10 / 100.0),
        ("full", "60s", pressure.full_avg60 / 100.0),
    ]
}
