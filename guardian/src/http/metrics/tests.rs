use std::sync::Arc;

use super::{
    exposition::{Format, to_classic},
    labels::{truncate, write_escaped},
    render,
    self_metrics::OwnProcess,
};
use crate::{
    audit::OutcomeKind,
    classify::{Classification, Runtime},
    config::Config,
    daemon::{AppState, SourceKind, SourceStatus},
    model::{Cgroup, CgroupStats, Limit, MemoryUsage, Pressure, Process, ProcessKey},
    policy::{KillReport, RuleKind},
    trends::{LimitKind, Subject, TrendReport, Verdict},
};

fn status() -> SourceStatus {
    SourceStatus {
        source: SourceKind::Procfs,
        requested: "auto".into(),
        fallback_reason: Some("BPF \"load\" failed:\nEPERM \\ denied".into()),
        cgroup_layout: "hybrid".into(),
        memory_hierarchy: "v1".into(),
    }
}

fn state(config: Config) -> Arc<AppState> {
    Arc::new(AppState::new(Arc::new(config), status(), Arc::default()))
}

fn process(pid: i32, comm: &str, cmdline: &[&str], rss_mib: u64) -> Process {
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
        cgroups: Vec::new(),
        memory_cgroup: Some("/user.slice".into()),
        class: Classification::Host {
            unit: Some("session-1.scope".into()),
        },
        started_secs: 1.0,
    }
}

fn cgroup(path: &str, usage_mib: u64, limit: Limit, pressure: bool) -> Cgroup {
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
fn assert_sample_line(line: &str) {
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

fn assert_well_formed(body: &str) {
    for line in body.lines() {
        if !line.starts_with('#') {
            assert_sample_line(line);
        }
    }
}

#[test]
fn untrusted_text_is_escaped_in_both_formats() {
    let state = state(Config::default());
    {
        let mut model = state.model.write().expect("model lock");
        let nasty = "we\"ird\\na\nme{}=,\u{FFFD}";
        model.upsert_process(process(10, nasty, &[nasty, "--x=\"}\""], 300));
        model.replace_cgroups(vec![cgroup("/docker/\"evil\"\n", 5, Limit::Max, false)]);
    }
    for format in [Format::OpenMetrics, Format::Text] {
        let body = render(&state, format).expect("render");
        assert_well_formed(&body);
        assert!(body.contains(r#"comm="we\"ird\\na\nme{}=,�""#), "{body}");
        assert!(body.contains(r#"cgroup="/docker/\"evil\"\n""#), "{body}");
        assert!(
            body.contains(r#"fallback_reason="BPF \"load\" failed:\nEPERM \\ denied""#),
            "{body}"
        );
    }
}

#[test]
fn classic_format_types_counters_and_infos_under_their_sample_names() {
    let state = state(Config::default());
    let body = render(&state, Format::Text).expect("render");
    assert!(
        body.contains("# TYPE guardian_oom_kills_total counter\n"),
        "{body}"
    );
    assert!(body.contains("# HELP guardian_oom_kills_total "), "{body}");
    assert!(
        body.contains("guardian_oom_kills_total{scope=\"host\"} 0\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE guardian_build_info gauge\n"),
        "{body}"
    );
    assert!(body.contains("# TYPE guardian_scan_duration_seconds histogram\n"));
    assert!(!body.contains("# EOF") && !body.contains("# UNIT"));
    let openmetrics = render(&state, Format::OpenMetrics).expect("render");
    assert!(openmetrics.ends_with("# EOF\n"));
    assert!(openmetrics.contains("# TYPE guardian_oom_kills counter\n"));
    assert!(openmetrics.contains("# UNIT guardian_host_memory_total_bytes bytes\n"));
}

#[test]
fn to_classic_rewrites_only_metadata() {
    let openmetrics = "# HELP a_seconds Help text.\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total{x=\"# TYPE y counter\"} 1\n# HELP b B.\n# TYPE b info\nb_info{v=\"1\"} 1\n# EOF\n";
    assert_eq!(
        to_classic(openmetrics),
        "# HELP a_seconds_total Help text.\n# TYPE a_seconds_total counter\na_seconds_total{x=\"# TYPE y counter\"} 1\n# HELP b_info B.\n# TYPE b_info gauge\nb_info{v=\"1\"} 1\n"
    );
}

#[test]
fn negotiation_follows_the_accept_header() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
    assert_eq!(
        Format::negotiate(Some("text/plain;version=0.0.4")),
        Format::Text
    );
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0.3, text/plain;q=0.9")),
        Format::Text
    );
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0")),
        Format::Text
    );
    assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
    assert_eq!(Format::negotiate(None), Format::Text);
}

#[test]
fn processes_are_bounded_and_exited_ones_disappear() {
    let mut config = Config::default();
    config.metrics.top_processes = 3;
    config.metrics.max_cgroups = 2;
    let state = state(config);
    {
        let mut model = state.model.write().expect("model lock");
        for pid in 1..=10 {
            model.upsert_process(process(pid, &format!("p{pid}"), &["x"], pid as u64));
        }
        model.replace_cgroups(vec![
            cgroup("/a", 1, Limit::Bytes(64 << 20), true),
            cgroup("/b", 3, Limit::Max, false),
            cgroup("/c", 2, Limit::Max, false),
        ]);
    }
    let body = render(&state, Format::Text).expect("render");
    let rss_lines: Vec<&str> = body
        .lines()
        .filter(|line| line.starts_with("guardian_process_rss_bytes{"))
        .collect();
    assert_eq!(rss_lines.len(), 3, "{body}");
    assert!(rss_lines[0].contains("pid=\"10\""), "largest first: {body}");
    assert!(body.contains("guardian_process_info{pid=\"10\",comm=\"p10\",cmdline=\"x\""));
    let usage: Vec<&str> = body
        .lines()
        .filter(|line| line.starts_with("guardian_cgroup_memory_usage_bytes{"))
        .collect();
    assert_eq!(usage.len(), 2, "{body}");
    assert!(usage[0].contains("cgroup=\"/b\""), "{body}");
    assert!(usage[0].contains("name=\"abababababab\""), "{body}");
    // Unlimited cgroups have no limit series; v1-style cgroups without PSI no pressure.
    assert!(!body.contains("guardian_cgroup_memory_limit_bytes{"));
    assert!(!body.contains("guardian_cgroup_memory_pressure"));

    state.model.write().expect("model lock").remove_pid(10);
    let body = render(&state, Format::Text).expect("render");
    assert!(!body.contains("pid=\"10\""), "{body}");
    assert_eq!(
        body.lines()
            .filter(|line| line.starts_with("guardian_process_rss_bytes{"))
            .count(),
        3
    );
}

#[test]
fn cgroup_limits_and_pressure_are_exported_when_known() {
    let state = state(Config::default());
    state
        .model
        .write()
        .expect("test value")
        .replace_cgroups(vec![cgroup("/a", 1, Limit::Bytes(64 << 20), true)]);
    let body = render(&state, Format::Text).expect("render");
    assert!(body.contains(
        "guardian_cgroup_memory_limit_bytes{cgroup=\"/a\",scope=\"container\",runtime=\"docker\""
    ));
    assert!(
        body.contains(",kind=\"some\",window=\"10s\"} 0.125\n"),
        "{body}"
    );
    assert!(body.contains(",kind=\"some\"} 1.5\n"), "{body}");
    assert!(body.contains("guardian_cgroup_oom_kills_total{cgroup=\"/a\""));
}

#[test]
fn own_process_stat_parses_with_awkward_comm() {
    let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 7 0 1000 123456789 2048 18446744073709551615";
    let own = OwnProcess::parse(stat, 100.0, 4096, 1_700_000_000.0).expect("test value");
    assert_eq!(own.cpu_seconds, 2.0);
    assert_eq!(own.threads, 7);
    assert_eq!(own.start_time_seconds, 1_700_000_010.0);
    assert_eq!(own.virtual_bytes, 123_456_789);
    assert_eq!(own.resident_bytes, 2048 * 4096);
    assert!(OwnProcess::read().is_some_and(|own| own.resident_bytes > 0));
}

#[test]
fn escaping_and_truncation_helpers() {
    let mut out = String::new();
    write_escaped(&mut out, "a\\b\"c\nd").expect("test value");
    assert_eq!(out, "a\\\\b\\\"c\\nd");
    assert_eq!(truncate("héllo", 2), "h");
    assert_eq!(truncate("héllo", 3), "hé");
}

#[test]
fn tracked_processes_are_exported_with_their_rule_threshold() {
    let text = "[metrics]\ntop_processes = 1\n\n[[rule]]\nname = \"big\"\nthreshold = \"2MiB\"\nsustain = \"1h\"\n\n[[orphan_rule]]\nname = \"orphans\"\nolder_than = \"10m\"\n";
    let config = Config::parse(std::path::Path::new("test.toml"), text).expect("config");
    let state = state(config);
    {
        let mut model = state.model.write().expect("model lock");
        model.upsert_process(process(1, "huge", &["huge"], 900));
        model.upsert_process(process(2, "small", &["small", "--password", "hunter2"], 3));
    }
    *state.tracked.write().expect("tracked lock") = vec![crate::daemon::Tracked {
        key: ProcessKey {
            pid: 2,
            start_ticks: 7,
        },
        rule: "big".into(),
    }];
    state
        .kills
        .lock()
        .expect("ledger lock")
        .record(&kill_report("big", OutcomeKind::Exited));
    let body = render(&state, Format::Text).expect("render");
    assert!(body.contains("guardian_kill_decisions_total{rule=\"big\",outcome=\"exited\"} 1\n"));
    assert!(body.contains("guardian_kill_log_write_failures_total{record=\"intent\"} 1\n"));
    assert!(
        body.contains("guardian_process_rss_bytes{pid=\"2\","),
        "{body}"
    );
    assert!(
        body.contains("guardian_process_rss_bytes{pid=\"1\","),
        "{body}"
    );
    assert!(
        body.contains("guardian_process_kill_threshold_bytes{pid=\"2\",comm=\"small\",scope=\"host\",runtime=\"\",container_id=\"\",unit=\"session-1.scope\",rule=\"big\"} 2097152\n"),
        "{body}"
    );
    assert!(!body.contains("hunter2"), "secret exported: {body}");
    assert!(body.contains("guardian_rule_threshold_bytes{rule=\"big\",scope=\"host\"} 2097152\n"));
    for rule in ["big", "orphans"] {
        for outcome in ["survived", "dry-run", "not-logged"] {
            let line = format!(
                "guardian_kill_decisions_total{{rule=\"{rule}\",outcome=\"{outcome}\"}} 0\n"
            );
            assert!(body.contains(&line), "{line} missing: {body}");
        }
    }
}

fn kill_report(rule: &str, outcome: OutcomeKind) -> KillReport {
    KillReport {
        time: String::new(),
        unix_time: 0.0,
        rule: rule.into(),
        kind: RuleKind::Threshold,
        dry_run: false,
        pid: 2,
        start_ticks: 7,
        comm: "small".into(),
        cmdline: "small".into(),
        uid: 0,
        cgroup: None,
        classification: Classification::Unknown,
        rss_bytes: 0,
        threshold_bytes: None,
        reason: String::new(),
        outcome,
        signals_sent: Vec::new(),
        time_to_exit_s: None,
        intent_seq: None,
        intent_logged: false,
        outcome_seq: None,
        outcome_write_failed: false,
        detail: None,
    }
}

fn report(subject: Subject, verdict: Verdict, time_to_limit_s: Option<f64>) -> TrendReport {
    TrendReport {
        subject,
        verdict,
        slope_bytes_per_second: 10_000.0,
        confidence: 0.99,
        level_bytes: 1 << 20,
        peak_bytes: 2 << 20,
        time_to_limit_s,
        limit_bytes: Some(512 << 20),
        limit_kind: Some(LimitKind::Cgroup),
        first_detected_s: None,
        series_start_s: 0.0,
    }
}

#[test]
fn growing_and_leaking_series_are_exported_and_leaking_processes_always() {
    let mut config = Config::default();
    config.metrics.top_processes = 1;
    let state = state(config);
    {
        let mut model = state.model.write().expect("model lock");
        model.upsert_process(process(1, "big", &["big"], 900));
        model.upsert_process(process(2, "node", &["node", "dist/main"], 150));
        model.replace_cgroups(vec![cgroup(
            "/docker/api",
            300,
            Limit::Bytes(512 << 20),
            false,
        )]);
    }
    *state.trends.write().expect("trends lock") = vec![
        report(
            Subject::Process {
                pid: 2,
                start_ticks: 7,
                comm: "node".into(),
            },
            Verdict::Leak,
            Some(600.0),
        ),
        report(
            Subject::Cgroup {
                path: "/docker/api".into(),
            },
            Verdict::Growing,
            None,
        ),
        report(
            Subject::Process {
                pid: 1,
                start_ticks: 7,
                comm: "big".into(),
            },
            Verdict::Stable,
            Some(10.0),
        ),
    ];
    let body = render(&state, Format::Text).expect("render");
    assert!(
        body.contains("guardian_process_rss_bytes{pid=\"2\","),
        "leaking process not exported: {body}"
    );
    assert!(body.contains("guardian_leak_time_to_limit_seconds{target=\"process\",pid=\"2\",comm=\"node\",cgroup=\"\",name=\"\",limit=\"cgroup\"} 600.0\n"), "{body}");
    assert!(body.contains("guardian_leak_verdict{target=\"process\",pid=\"2\",comm=\"node\",cgroup=\"\",name=\"\",verdict=\"leak\"} 1\n"), "{body}");
    assert!(body.contains("guardian_leak_verdict{target=\"cgroup\",pid=\"\",comm=\"\",cgroup=\"/docker/api\",name=\"abababababab\",verdict=\"growing\"} 1\n"), "{body}");
    assert!(
        body.contains("guardian_leak_slope_bytes_per_second{target=\"cgroup\""),
        "{body}"
    );
    assert!(
        !body.contains("verdict=\"stable\""),
        "stable series exported: {body}"
    );
    assert_eq!(
        body.lines()
            .filter(|line| line.starts_with("guardian_leak_time_to_limit_seconds{"))
            .count(),
        1
    );
}
