//! Leak-trend families for the series the detector calls growing or leak (stable and
//! warming-up series are not exported: they are the many, and say nothing to alert on).

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{Labels, SECONDS, gauges},
    labels::{Lv, Placement},
};
use crate::{
    model::Model,
    trends::{LimitKind, Subject, TrendReport, Verdict},
};

/// True for the reports exported as metrics.
pub fn exported(report: &TrendReport) -> bool {
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

fn limit_name(kind: LimitKind) -> &'static str {
    match kind {
        LimitKind::Cgroup => "cgroup",
        LimitKind::Rule => "rule",
        LimitKind::Host => "host",
    }
}

/// Writes the trend families for the exported `reports`.
pub fn encode(
    reports: &[TrendReport],
    model: &Model,
    encoder: &mut DescriptorEncoder,
) -> fmt::Result {
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
            let kind = limit_name(report.limit_kind?);
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
