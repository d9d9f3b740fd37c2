//! The guardian's own families: build and source info, pipeline telemetry (its process
//! figures are the standard `process_*` ones, see [`super::own_process`]).

use std::{fmt, sync::atomic::Ordering};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::MetricType,
};

use super::{
    families::{SECONDS, counter, counters, gauge, infos},
    labels::Lv,
};
use crate::snapshot::{AppState, Snapshot};

/// Writes the guardian's own families: `snapshot` for what describes the tick, `state`
/// for the counters since start.
pub fn encode(
    state: &AppState,
    snapshot: &Snapshot,
    encoder: &mut DescriptorEncoder,
) -> fmt::Result {
    let model = &snapshot.model;
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
    let status = &snapshot.status;
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
        u64::from(snapshot.config.daemon.dry_run),
    )?;
    gauge(
        encoder,
        "guardian_data_age",
        "Time since the model last took fresh data (/healthz fails past twice the scan interval)",
        Some(&SECONDS),
        snapshot.staleness().as_secs_f64(),
    )?;
    gauge(
        encoder,
        "guardian_snapshot_tick",
        "Number of the published snapshot this scrape was built from (/api/v1/status says the same)",
        None,
        snapshot.tick,
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
    telemetry(state, encoder)
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
