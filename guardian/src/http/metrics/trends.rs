//! Leak-trend families for the series the detector calls growing or leak, or whose limit
//! is imminent (stable and warming-up series far from their limit are not exported: they
//! are the many, and say nothing to alert on).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{Labels, SECONDS, gauges},
    labels::{Lv, Placement},
};
use crate::{
    model::Model,
    trends::{Subject, TrendReport, Verdict},
};

/// True for the reports exported as metrics: growing, leaking or imminent.
pub fn exported(report: &TrendReport) -> bool {
    flagged(report) || report.imminent
}

/// True for the reports the leak families show (the detector's cause verdicts).
fn flagged(report: &TrendReport) -> bool {
    matches!(report.verdict, Verdict::Growing | Verdict::Leak)
}

/// The identifying labels of one series: what it is about (`target` process or cgroup),
/// `pid` and `comm` for processes, `cgroup` and `name` for cgroups (the others empty).
fn labels<'a>(report: &'a TrendReport, model: &'a Model) -> Labels<'a, 5> {
    match &report.subject {
        Subject::Process { pid, comm, .. } => [
            ("target", Lv::Text("process")),
            ("pid", Lv::Int(i64::from(*pid))),
            ("comm", Lv::Text(comm)),
            ("cgroup", Lv::Text("")),
            ("name", Lv::Text("")),
        ],
        Subject::Cgroup { path } => {
            let name = model.cgroup(path).map_or_else(
                || {
                    path.rsplit('/')
                        .find(|part| !part.is_empty())
                        .unwrap_or("/")
                },
                |cgroup| Placement::of(&cgroup.class).name(&cgroup.path),
            );
            [
                ("target", Lv::Text("cgroup")),
                ("pid", Lv::Text("")),
                ("comm", Lv::Text("")),
                ("cgroup", Lv::Text(path)),
                ("name", Lv::Text(name)),
            ]
        }
    }
}

/// Writes the trend families for the exported `reports`: the leak families for growing
/// and leaking series, `guardian_limit_imminent_seconds` for imminent ones.
pub fn encode(
    reports: &[&TrendReport],
    model: &Model,
    encoder: &mut DescriptorEncoder,
) -> fmt::Result {
    let imminent: Vec<&TrendReport> = reports
        .iter()
        .copied()
        .filter(|report| report.imminent)
        .collect();
    let reports: Vec<&TrendReport> = reports
        .iter()
        .copied()
        .filter(|report| flagged(report))
        .collect();
    gauges(
        encoder,
        "guardian_leak_slope_bytes_per_second",
        "Robust slope of resident memory (Theil-Sen over window minima) of a growing or leaking series",
        None,
        reports
            .iter()
            .map(|report| (labels(report, model), report.slope_bytes_per_second)),
    )?;
    gauges(
        encoder,
        "guardian_leak_confidence_ratio",
        "Mann-Kendall confidence (0..1) that the series rises",
        None,
        reports
            .iter()
            .map(|report| (labels(report, model), report.confidence)),
    )?;
    gauges(
        encoder,
        "guardian_leak_time_to_limit",
        "Time until the series reaches its nearest limit at the current slope, by limit (cgroup limit, kill rule threshold, host available memory)",
        Some(&SECONDS),
        reports.iter().filter_map(|report| {
            let seconds = report
                .time_to_limit_s
                .filter(|seconds| seconds.is_finite())?;
            let kind = report.limit_kind?.as_str();
            let [target, pid, comm, cgroup, name] = labels(report, model);
            Some((
                [target, pid, comm, cgroup, name, ("limit", Lv::Text(kind))],
                seconds,
            ))
        }),
    )?;
    gauges(
        encoder,
        "guardian_limit_imminent",
        "Time until a series whose limit is imminent (within the imminence horizon at its current rise, whatever its verdict) reaches it; exported only while imminent",
        Some(&SECONDS),
        imminent.iter().filter_map(|report| {
            let seconds = report
                .time_to_limit_s
                .filter(|seconds| seconds.is_finite())
                .unwrap_or(0.0);
            let kind = report.limit_kind?.as_str();
            let [target, pid, comm, cgroup, name] = labels(report, model);
            Some((
                [target, pid, comm, cgroup, name, ("limit", Lv::Text(kind))],
                seconds,
            ))
        }),
    )?;
    gauges(
        encoder,
        "guardian_leak_verdict",
        "The detector's current verdict of a growing or leaking series (1; the verdict is the label)",
        None,
        reports.iter().map(|report| {
            let [target, pid, comm, cgroup, name] = labels(report, model);
            (
                [
                    target,
                    pid,
                    comm,
                    cgroup,
                    name,
                    ("verdict", Lv::Text(report.verdict.as_str())),
                ],
                1u64,
            )
        }),
    )
}
