//! Hook families: deliveries by hook, target, event and result; failed attempts by
//! reason (timeouts among them); events dropped (queue full, hook busy); attempt
//! durations. Zeros are exported from start for every configured hook.

use std::fmt;

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeMetric as _},
    metrics::MetricType,
};

use super::{
    families::{SECONDS, counters},
    labels::Lv,
};
use crate::hooks::HookStats;

/// Writes the `guardian_hook_*` families.
pub fn encode(stats: &HookStats, encoder: &mut DescriptorEncoder) -> fmt::Result {
    let deliveries = stats.deliveries();
    counters(
        encoder,
        "guardian_hook_deliveries",
        "Events delivered to a hook's command or webhook, by result (ok: an attempt succeeded; failed: every attempt and retry failed)",
        None,
        deliveries
            .iter()
            .map(|((hook, target, event, outcome), count)| {
                (
                    [
                        ("hook", Lv::Text(hook)),
                        ("target", Lv::Text(target.as_str())),
                        ("event", Lv::Text(event.as_str())),
                        ("result", Lv::Text(outcome.as_str())),
                    ],
                    *count,
                )
            }),
    )?;
    let failures = stats.failures();
    counters(
        encoder,
        "guardian_hook_failures",
        "Hook attempts that failed, by reason (timeout: cut off by the hook's timeout, the command's process group killed; error: could not run or connect, non-zero exit, non-2xx answer); each may be retried",
        None,
        failures.iter().map(|((hook, target, reason), count)| {
            (
                [
                    ("hook", Lv::Text(hook)),
                    ("target", Lv::Text(target.as_str())),
                    ("reason", Lv::Text(reason.as_str())),
                ],
                *count,
            )
        }),
    )?;
    let drops = stats.drops();
    counters(
        encoder,
        "guardian_hook_dropped",
        "Events a hook never got, by reason (queue_full: the pipeline's queue to the delivery task was full; busy: the hook had max_concurrent deliveries running)",
        None,
        drops.iter().map(|((hook, event, reason), count)| {
            (
                [
                    ("hook", Lv::Text(hook)),
                    ("event", Lv::Text(event.as_str())),
                    ("reason", Lv::Text(reason.as_str())),
                ],
                *count,
            )
        }),
    )?;
    let durations = stats.durations();
    if durations.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(
        "guardian_hook_delivery_duration",
        "Time one hook attempt took (run to exit, or POST to answer), timeouts included",
        Some(&SECONDS),
        MetricType::Histogram,
    )?;
    for ((hook, target), histogram) in &durations {
        let labels = [
            ("hook", Lv::Text(hook)),
            ("target", Lv::Text(target.as_str())),
        ];
        histogram.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}
