//! Tests of the exposition: formats and escaping in `format`, which series are exported
//! in `families`; fixtures here.

mod families;
mod format;

use std::sync::Arc;

use super::{
    exposition::{Format, to_classic},
    labels::{truncate, write_escaped},
    own_process::OwnProcess,
    render,
};
use crate::{
    audit::{Intent, OutcomeKind},
    classify::{Classification, Runtime},
    config::Config,
    model::{Cgroup, CgroupStats, Limit, MemoryUsage, Pressure, Process, ProcessKey},
    policy::{KillReport, KillResult, Policy, RuleKind},
    snapshot::{AppState, SourceKind, SourceStatus},
    trends::{LimitKind, Subject, TrendReport, Verdict},
};

pub(super) fn status() -> SourceStatus {
    SourceStatus {
        source: SourceKind::Procfs,
        requested: "auto".into(),
        fallback_reason: Some("BPF \"load\" failed:\nEPERM \\ denied".into()),
        cgroup_layout: "hybrid".into(),
        memory_hierarchy: "v1".into(),
        refresh: "procfs".into(),
    }
}

pub(super) fn state(config: Config) -> Arc<AppState> {
    Arc::new(AppState::new(Arc::new(config), status()))
}

pub(super) fn process(pid: i32, comm: &str, cmdline: &[&str], rss_mib: u64) -> Process {
    Process {
        key: ProcessKey {
            pid,
            start_ticks: 7,
        },
        ppid: 1,
        uid: 1000,
        comm: comm.into(),
        cmdline: cmdline.iter().map(|arg| arg.to_string()).collect(),
        kernel_thread: false,
        oom_score_adj: 0,
        memory: MemoryUsage::from_parts(rss_mib << 20, 1 << 20, 0, 0),
        cgroups: Vec::new().into(),
        memory_cgroup: Some("/user.slice".into()),
        class: Classification::Host {
            unit: Some("session-1.scope".into()),
        }
        .into(),
        started_secs: 1.0,
    }
}

pub(super) fn cgroup(path: &str, usage_mib: u64, limit: Limit, pressure: bool) -> Cgroup {
    Cgroup {
        path: path.into(),
        stats: CgroupStats {
            usage: usage_mib << 20,
            limit,
            oom_kill: 2,
            pressure: pressure.then(|| Pressure {
                some_avg10: 12.5,
                some_total_us: 1_500_000,
                ..Pressure::default()
            }),
            ..CgroupStats::default()
        },
        class: Classification::Container {
            runtime: Runtime::Docker,
            id: "ab".repeat(32),
            pod_uid: None,
            qos: None,
        },
    }
}

/// A sample line of the text formats: name, optional labels with properly escaped values,
/// a value.
pub(super) fn assert_sample_line(line: &str) {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    assert!(name_end > 0, "no metric name: {line:?}");
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        let mut chars = labels.char_indices();
        let mut in_value = false;
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match (in_value, c) {
                (true, '\\') => {
                    let (_, escaped) = chars.next().expect("escape at end");
                    assert!(
                        matches!(escaped, '\\' | '"' | 'n'),
                        "bad escape in {line:?}"
                    );
                }
                (true, '"') => in_value = false,
                (true, '\n') => panic!("raw newline in {line:?}"),
                (false, '"') => in_value = true,
                (false, '}') => {
                    end = Some(at);
                    break;
                }
                _ => {}
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated labels: {line:?}"));
        rest = &labels[end + 1..];
    }
    let value = rest.trim_start();
    assert!(
        value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
        "bad value in {line:?}"
    );
}

pub(super) fn assert_well_formed(body: &str) {
    for line in body.lines() {
        if !line.starts_with('#') {
            assert_sample_line(line);
        }
    }
}
