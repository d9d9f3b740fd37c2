//! Per-cgroup families, for the `max_cgroups` largest cgroups by usage.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{BYTES, Labels, SECONDS, counters, gauges},
    host::{stall_ratios, stall_seconds},
    labels::{Lv, Placement},
};
use crate::model::{Cgroup, Model};

/// The cgroups exported: at most `max`, largest usage first (ties by path, so the set is
/// stable between scrapes).
pub fn select(model: &Model, max: usize) -> Vec<&Cgroup> {
    let mut cgroups: Vec<&Cgroup> = model.cgroups().collect();
    let by_usage = |a: &&Cgroup, b: &&Cgroup| {
        b.stats
            .usage
            .cmp(&a.stats.usage)
            .then_with(|| a.path.cmp(&b.path))
    };
    if cgroups.len() > max {
        if max == 0 {
            return Vec::new();
        }
        cgroups.select_nth_unstable_by(max - 1, by_usage);
        cgroups.truncate(max);
    }
    cgroups.sort_unstable_by(by_usage);
    cgroups
}

/// The identifying labels of one cgroup.
fn labels(cgroup: &Cgroup) -> Labels<'_, 5> {
    let place = Placement::of(&cgroup.class);
    [
        ("cgroup", Lv::Text(&cgroup.path)),
        ("scope", Lv::Text(place.scope)),
        ("runtime", Lv::Text(place.runtime)),
        ("container_id", Lv::Text(place.container_id)),
        ("name", Lv::Text(place.name(&cgroup.path))),
    ]
}

/// Writes the cgroup families for `cgroups`.
pub fn encode(cgroups: &[&Cgroup], encoder: &mut DescriptorEncoder) -> fmt::Result {
    let each = |value: fn(&Cgroup) -> u64| {
        cgroups
            .iter()
            .map(move |cgroup| (labels(cgroup), value(cgroup)))
    };
    gauges(
        encoder,
        "guardian_cgroup_memory_usage",
        "Memory the cgroup uses (v2 memory.current, v1 memory.usage_in_bytes)",
        Some(&BYTES),
        each(|cgroup| cgroup.stats.usage),
    )?;
    gauges(
        encoder,
        "guardian_cgroup_memory_working_set",
        "Usage minus inactive page cache (v2 inactive_file, v1 total_inactive_file), as cAdvisor and the kubelet count it",
        Some(&BYTES),
        each(|cgroup| cgroup.stats.working_set()),
    )?;
    gauges(
        encoder,
        "guardian_cgroup_memory_limit",
        "The cgroup's memory limit (v2 memory.max, v1 memory.limit_in_bytes); absent when unlimited",
        Some(&BYTES),
        cgroups.iter().filter_map(|cgroup| {
            cgroup
                .stats
                .limit
                .bytes()
                .map(|limit| (labels(cgroup), limit))
        }),
    )?;
    gauges(
        encoder,
        "guardian_cgroup_memory_anon",
        "Anonymous memory of the cgroup (memory.stat anon, v1 rss)",
        Some(&BYTES),
        each(|cgroup| cgroup.stats.anon),
    )?;
    gauges(
        encoder,
        "guardian_cgroup_memory_file",
        "Page cache of the cgroup (memory.stat file, v1 cache)",
        Some(&BYTES),
        each(|cgroup| cgroup.stats.file),
    )?;
    counters(
        encoder,
        "guardian_cgroup_oom",
        "Times the cgroup hit its limit and the OOM killer ran (v2 memory.events oom; always 0 on v1, which has no such count)",
        None,
        each(|cgroup| cgroup.stats.oom),
    )?;
    counters(
        encoder,
        "guardian_cgroup_oom_kills",
        "Processes the OOM killer killed in the cgroup (memory.events oom_kill, v1 memory.oom_control oom_kill)",
        None,
        each(|cgroup| cgroup.stats.oom_kill),
    )?;
    counters(
        encoder,
        "guardian_cgroup_memory_pressure_stalled",
        "Time the cgroup's tasks stalled on memory (memory.pressure total; v2 only)",
        Some(&SECONDS),
        cgroups.iter().flat_map(|cgroup| {
            let base = labels(cgroup);
            cgroup
                .stats
                .pressure
                .as_ref()
                .map(stall_seconds)
                .into_iter()
                .flatten()
                .map(move |(kind, seconds)| {
                    (with::<1, 6>(base, [("kind", Lv::Text(kind))]), seconds)
                })
        }),
    )?;
    gauges(
        encoder,
        "guardian_cgroup_memory_pressure_ratio",
        "Share of time the cgroup's tasks stalled on memory over 10s and 60s (PSI avg10, avg60 divided by 100; v2 only)",
        None,
        cgroups.iter().flat_map(|cgroup| {
            let base = labels(cgroup);
            cgroup
                .stats
                .pressure
                .as_ref()
                .map(stall_ratios)
                .into_iter()
                .flatten()
                .map(move |(kind, window, ratio)| {
                    (
                        with::<2, 7>(
                            base,
                            [("kind", Lv::Text(kind)), ("window", Lv::Text(window))],
                        ),
                        ratio,
                    )
                })
        }),
    )
}

/// The five cgroup labels followed by `more` (M = 5 + K, checked at compile time).
fn with<'a, const K: usize, const M: usize>(
    base: Labels<'a, 5>,
    more: Labels<'a, K>,
) -> Labels<'a, M> {
    const { assert!(M == 5 + K, "label array length must be 5 + K") };
    std::array::from_fn(|index| {
        if index < 5 {
            base[index]
        } else {
            more[index - 5]
        }
    })
}
