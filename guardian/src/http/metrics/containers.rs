//! What the runtimes call the containers among the exported cgroups (one info series
//! per container, joinable on `container_id`), and how their name lookups fared.

use std::{collections::BTreeSet, fmt, sync::atomic::Ordering};

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{counters, infos},
    labels::Lv,
};
use crate::{
    classify::Classification,
    model::Cgroup,
    names::{NameTable, Names},
};

/// Writes `guardian_container_info` for the containers of `cgroups` (so bounded by
/// `[metrics] max_cgroups`) and `guardian_container_lookups_total`.
pub fn encode(cgroups: &[&Cgroup], names: &Names, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let table = names.current();
    let containers: BTreeSet<(&str, &str, Option<&str>)> = cgroups
        .iter()
        .filter_map(|cgroup| match &cgroup.class {
            Classification::Container {
                runtime,
                id,
                pod_uid,
                ..
            } => Some((runtime.as_str(), id.as_str(), pod_uid.as_deref())),
            _ => None,
        })
        .collect();
    infos(
        encoder,
        "guardian_container",
        "A container among the exported cgroups, with the name, image and pod its runtime \
         gives (empty until looked up, or when no runtime could say)",
        containers
            .iter()
            .map(|(runtime, id, pod_uid)| info_labels(&table, runtime, id, *pod_uid)),
    )?;
    let lookups = &names.lookups;
    counters(
        encoder,
        "guardian_container_lookups",
        "Container name lookups by result: found, unknown (no runtime knew the id), error \
         (timeout, refused, bad answer)",
        None,
        [
            ("found", &lookups.found),
            ("unknown", &lookups.unknown),
            ("error", &lookups.error),
        ]
        .map(|(result, count)| {
            (
                [("result", Lv::Text(result))],
                count.load(Ordering::Relaxed),
            )
        }),
    )
}

fn info_labels<'a>(
    table: &'a NameTable,
    runtime: &'a str,
    id: &'a str,
    pod_uid: Option<&'a str>,
) -> [(&'static str, Lv<'a>); 7] {
    let name = table.get(id);
    let text = |value: Option<&'a str>| Lv::Text(value.unwrap_or(""));
    [
        ("runtime", Lv::Text(runtime)),
        ("container_id", Lv::Text(id)),
        ("container_name", text(name.map(|name| name.name.as_str()))),
        ("image", text(name.and_then(|name| name.image.as_deref()))),
        (
            "pod_uid",
            text(pod_uid.or_else(|| name.and_then(|name| name.pod_uid.as_deref()))),
        ),
        (
            "pod_name",
            text(name.and_then(|name| name.pod_name.as_deref())),
        ),
        (
            "pod_namespace",
            text(name.and_then(|name| name.pod_namespace.as_deref())),
        ),
    ]
}
