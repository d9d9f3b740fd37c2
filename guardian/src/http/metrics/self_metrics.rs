//! The guardian's own families: build and source info, pipeline telemetry, and its own
//! process (RSS, CPU, fds, threads, start time from `/proc/self`).

use std::{fmt, sync::atomic::Ordering};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::MetricType,
};

use super::{
    families::{BYTES, SECONDS, counter, counters, gauge, infos},
    labels::Lv,
};
use crate::{model::Model, snapshot::AppState};

/// Writes the guardian's own families.
pub fn encode(state: &AppState, model: &Model, encoder: &mut DescriptorEncoder) -> fmt::Result {
    infos(
        encoder,
        "guardian_build",
        "The guardian's version and whether it was built with the eBPF source",
        [[
            ("version", Lv::Text(env!("CARGO_PKG_VERSION"))),
            (
                "ebpf",
                Lv::Text(if cfg!(feature = "ebpf") {
                    "true"
                } else {
                    "false"
                }),
            ),
        ]],
    )?;
    let status = state
        .status
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    infos(
        encoder,
        "guardian_source",
        "The memory source in use, what was asked for, why auto fell back to procfs (empty when it did not), and the cgroup layout",
        [[
            ("source", Lv::Text(status.source.as_str())),
            ("requested", Lv::Text(&status.requested)),
            (
                "fallback_reason",
                Lv::Long(status.fallback_reason.as_deref().unwrap_or("")),
            ),
            ("cgroup_layout", Lv::Text(&status.cgroup_layout)),
            ("memory_hierarchy", Lv::Text(&status.memory_hierarchy)),
        ]],
    )?;
    gauge(
        encoder,
        "guardian_dry_run",
        "1 when the guardian runs in global dry-run mode (decides and logs, never signals)",
        None,
        u64::from(state.config().daemon.dry_run),
    )?;
    gauge(
        encoder,
        "guardian_data_age",
        "Time since the model last took fresh data (/healthz fails past twice the scan interval)",
        Some(&SECONDS),
        state.staleness().as_secs_f64(),
    )?;
    gauge(
        encoder,
        "guardian_model_processes",
        "Processes in the model (all of them, not only the exported ones)",
        None,
        model.process_count() as u64,
    )?;
    gauge(
        encoder,
        "guardian_model_cgroups",
        "Memory cgroups in the model (all of them, not only the exported ones)",
        None,
        model.cgroups().count() as u64,
    )?;
    telemetry(state, encoder)?;
    own_process(encoder)
}

fn telemetry(state: &AppState, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let telemetry = &state.telemetry;
    counter(
        encoder,
        "guardian_events_received",
        "Kernel events read from the eBPF ring buffer",
        None,
        telemetry.events_received_total.get(),
    )?;
    counters(
        encoder,
        "guardian_events_lost",
        "Kernel events lost, by side (kernel: ring buffer full; user: queue full or undecodable)",
        None,
        [
            (
                [("side", Lv::Text("kernel"))],
                telemetry.events_lost_kernel.load(Ordering::Relaxed),
            ),
            (
                [("side", Lv::Text("user"))],
                telemetry.events_lost_user.load(Ordering::Relaxed),
            ),
        ],
    )?;
    counter(
        encoder,
        "guardian_scans",
        "Full /proc and cgroup scans done",
        None,
        telemetry.scans_total.get(),
    )?;
    telemetry
        .scan_duration_seconds
        .encode(encoder.encode_descriptor(
            "guardian_scan_duration",
            "Time a full /proc and cgroup scan took",
            Some(&SECONDS),
            MetricType::Histogram,
        )?)?;
    counter(
        encoder,
        "guardian_scan_vanished_processes",
        "Processes that exited while a scan read them (normal churn)",
        None,
        telemetry.vanished_total.get(),
    )?;
    counters(
        encoder,
        "guardian_config_reloads",
        "Config reloads (SIGHUP) by result",
        None,
        ["ok", "error"].map(|result| {
            let key = vec![("result".to_string(), result.to_string())];
            let count = telemetry
                .reloads_total
                .get(&key)
                .map_or(0, |counter| counter.get());
            ([("result", Lv::Text(result))], count)
        }),
    )
}

/// Figures of the guardian's own process from `/proc/self`.
#[derive(Debug, Default, PartialEq)]
pub struct OwnProcess {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub virtual_bytes: u64,
    pub resident_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
}

impl OwnProcess {
    /// Parses `/proc/self/stat` (fields after the command, which may hold spaces and
    /// parentheses), with the clock tick rate, page size and boot time (`btime`).
    pub fn parse(
        stat: &str,
        ticks_per_second: f64,
        page_size: u64,
        boot_time: f64,
    ) -> Option<Self> {
        let after_comm = &stat[stat.rfind(')')? + 1..];
        // Field 3 (state) is the first here; field N is at index N - 3.
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
        Some(OwnProcess {
            cpu_seconds: (number(14)? + number(15)?) as f64 / ticks_per_second,
            start_time_seconds: boot_time + number(22)? as f64 / ticks_per_second,
            virtual_bytes: number(23)?,
            resident_bytes: number(24)? * page_size,
            threads: number(20)?,
            open_fds: 0,
        })
    }

    /// Reads the running process.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()?;
        let mut own = OwnProcess::parse(
            &stat,
            sysconf(libc::_SC_CLK_TCK)? as f64,
            sysconf(libc::_SC_PAGESIZE)?,
            boot_time,
        )?;
        own.open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Some(own)
    }
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a system constant; it has no memory-safety preconditions.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|value| *value > 0)
}

fn own_process(encoder: &mut DescriptorEncoder) -> fmt::Result {
    let Some(own) = OwnProcess::read() else {
        return Ok(());
    };
    counter(
        encoder,
        "guardian_self_cpu",
        "CPU time the guardian used (user + system)",
        Some(&SECONDS),
        own.cpu_seconds,
    )?;
    gauge(
        encoder,
        "guardian_self_resident_memory",
        "The guardian's own resident memory",
        Some(&BYTES),
        own.resident_bytes,
    )?;
    gauge(
        encoder,
        "guardian_self_virtual_memory",
        "The guardian's own virtual memory size",
        Some(&BYTES),
        own.virtual_bytes,
    )?;
    gauge(
        encoder,
        "guardian_self_start_time",
        "When the guardian started (Unix time)",
        Some(&SECONDS),
        own.start_time_seconds,
    )?;
    gauge(
        encoder,
        "guardian_self_threads",
        "The guardian's threads",
        None,
        own.threads,
    )?;
    gauge(
        encoder,
        "guardian_self_open_fds",
        "File descriptors the guardian has open",
        None,
        own.open_fds,
    )
}
