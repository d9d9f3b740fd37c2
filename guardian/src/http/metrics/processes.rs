//! Per-process families for a bounded set: the `top_processes` largest by RSS, plus every
//! process a kill rule is tracking and every process with a leak verdict. The set is
//! chosen from the model at scrape time, so a process that exits is gone from the next
//! scrape.

use std::{collections::HashSet, fmt};

use prometheus_client::encoding::DescriptorEncoder;

use super::{
    families::{BYTES, Labels, gauges, infos},
    labels::{Lv, MAX_TEXT_LABEL, Placement, truncate},
};
use crate::{
    model::{Model, Process, ProcessKey},
    redact::redact_argv,
};

/// The processes exported: the `top` largest by RSS, then those in `always` (rule-tracked
/// or leaking) that are still in the model; largest first. Kernel threads never.
pub fn select<'m>(model: &'m Model, top: usize, always: &HashSet<ProcessKey>) -> Vec<&'m Process> {
    let by_rss = |a: &&Process, b: &&Process| {
        b.memory
            .rss
            .cmp(&a.memory.rss)
            .then_with(|| a.key.cmp(&b.key))
    };
    let mut chosen: Vec<&Process> = model
        .processes()
        .filter(|process| !process.kernel_thread)
        .collect();
    if chosen.len() > top {
        if top == 0 {
            chosen.clear();
        } else {
            chosen.select_nth_unstable_by(top - 1, by_rss);
            chosen.truncate(top);
        }
        let in_top: HashSet<ProcessKey> = chosen.iter().map(|process| process.key).collect();
        chosen.extend(
            always
                .iter()
                .filter(|key| !in_top.contains(key))
                .filter_map(|key| model.process(key))
                .filter(|process| !process.kernel_thread),
        );
    }
    chosen.sort_unstable_by(by_rss);
    chosen
}

/// The identifying labels of one process.
fn labels(process: &Process) -> Labels<'_, 6> {
    let place = Placement::of(&process.class);
    [
        ("pid", Lv::Int(i64::from(process.key.pid))),
        ("comm", Lv::Text(&process.comm)),
        ("scope", Lv::Text(place.scope)),
        ("runtime", Lv::Text(place.runtime)),
        ("container_id", Lv::Text(place.container_id)),
        ("unit", Lv::Text(place.unit)),
    ]
}

/// A process a kill rule tracks, with the rule and its threshold in bytes.
pub struct TrackedRow<'a> {
    pub process: &'a Process,
    pub rule: &'a str,
    pub threshold: u64,
}

/// Writes the threshold of every rule tracking a process, with the process's labels.
pub fn encode_tracked(rows: &[TrackedRow<'_>], encoder: &mut DescriptorEncoder) -> fmt::Result {
    gauges(
        encoder,
        "guardian_process_kill_threshold",
        "Threshold of a kill rule that has seen the process above it and waits out its sustain time (only while it does)",
        Some(&BYTES),
        rows.iter().map(|row| {
            let [pid, comm, scope, runtime, container_id, unit] = labels(row.process);
            (
                [
                    pid,
                    comm,
                    scope,
                    runtime,
                    container_id,
                    unit,
                    ("rule", Lv::Text(row.rule)),
                ],
                row.threshold,
            )
        }),
    )
}

/// Writes the process families for `processes`.
pub fn encode(processes: &[&Process], encoder: &mut DescriptorEncoder) -> fmt::Result {
    let each = |value: fn(&Process) -> u64| {
        processes
            .iter()
            .map(move |process| (labels(process), value(process)))
    };
    gauges(
        encoder,
        "guardian_process_rss",
        "Resident memory of the process (VmRSS = anon + file + shmem)",
        Some(&BYTES),
        each(|process| process.memory.rss),
    )?;
    gauges(
        encoder,
        "guardian_process_rss_anon",
        "Anonymous resident memory of the process (RssAnon)",
        Some(&BYTES),
        each(|process| process.memory.anon),
    )?;
    gauges(
        encoder,
        "guardian_process_rss_file",
        "File-backed resident memory of the process (RssFile)",
        Some(&BYTES),
        each(|process| process.memory.file),
    )?;
    gauges(
        encoder,
        "guardian_process_rss_shmem",
        "Shared-memory resident pages of the process (RssShmem)",
        Some(&BYTES),
        each(|process| process.memory.shmem),
    )?;
    gauges(
        encoder,
        "guardian_process_swap",
        "Swapped-out memory of the process (VmSwap)",
        Some(&BYTES),
        each(|process| process.memory.swap),
    )?;
    let cmdlines: Vec<String> = processes.iter().map(|process| cmdline(process)).collect();
    // Command lines leave the host in metrics: secrets in them are redacted first.
    infos(
        encoder,
        "guardian_process",
        "What an exported process is: command line (secrets redacted, first 256 bytes), user, parent and memory cgroup",
        processes.iter().zip(&cmdlines).map(|(process, cmdline)| {
            [
                ("pid", Lv::Int(i64::from(process.key.pid))),
                ("comm", Lv::Text(&process.comm)),
                ("cmdline", Lv::Text(cmdline)),
                ("uid", Lv::Int(i64::from(process.uid))),
                ("ppid", Lv::Int(i64::from(process.ppid))),
                (
                    "cgroup",
                    Lv::Text(process.memory_cgroup.as_deref().unwrap_or("")),
                ),
            ]
        }),
    )
}

/// The command line as `ps` shows it, secrets redacted as in the kill log, cut to
/// [`MAX_TEXT_LABEL`] bytes (only the arguments within a few times that are redacted).
fn cmdline(process: &Process) -> String {
    if process.cmdline.is_empty() {
        return truncate(&format!("[{}]", process.comm), MAX_TEXT_LABEL).to_string();
    }
    // Redaction needs the arguments around a secret, so keep a margin past the cut.
    let budget = 4 * MAX_TEXT_LABEL;
    let mut used = 0;
    let args: Vec<&str> = process
        .cmdline
        .args()
        .take_while(|arg| {
            let within = used < budget;
            used += arg.len() + 1;
            within
        })
        .map(|arg| truncate(arg, budget))
        .collect();
    truncate(&redact_argv(&args), MAX_TEXT_LABEL).to_string()
}
