use super::*;

#[test]
fn processes_are_bounded_and_exited_ones_disappear() {
    let mut config = Config::default();
    config.metrics.top_processes = 3;
    config.metrics.max_cgroups = 2;
    let state = state(config);
    state.change_model(|model| {
        for pid in 1..=10 {
            model.upsert_process(process(pid, &format!("p{pid}"), &["x"], pid as u64));
        }
        model.replace_cgroups(vec![
            cgroup("/a", 1, Limit::Bytes(64 << 20), true),
            cgroup("/b", 3, Limit::Max, false),
            cgroup("/c", 2, Limit::Max, false),
        ]);
    });
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

    state.change_model(|model| {
        model.remove_pid(10);
    });
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
    state.change_model(|model| {
        model.replace_cgroups(vec![cgroup("/a", 1, Limit::Bytes(64 << 20), true)]);
    });
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
fn a_percentage_threshold_is_not_exported_while_memtotal_is_unknown() {
    let text = "[[rule]]\nname = \"pct\"\nthreshold = \"10%\"\n\n[[rule]]\nname = \"abs\"\nthreshold = \"2MiB\"\n";
    let config = Config::parse(std::path::Path::new("test.toml"), text).expect("config");
    let policy = Policy::new(&config, 1).expect("policy");
    let state = state(config);
    state.modify(|snapshot| snapshot.thresholds = policy.thresholds(0).into());
    let body = render(&state, Format::Text).expect("render");
    assert!(!body.contains("rule=\"pct\",scope"), "{body}");
    assert!(body.contains("guardian_rule_threshold_bytes{rule=\"abs\",scope=\"host\"} 2097152\n"));
    state.modify(|snapshot| snapshot.thresholds = policy.thresholds(8 << 30).into());
    let body = render(&state, Format::Text).expect("render");
    assert!(
        body.contains("guardian_rule_threshold_bytes{rule=\"pct\",scope=\"host\"} 858993459\n"),
        "{body}"
    );
}

#[test]
fn tracked_processes_are_exported_with_their_rule_threshold() {
    let text = "[metrics]\ntop_processes = 1\n\n[[rule]]\nname = \"big\"\nthreshold = \"2MiB\"\nsustain = \"1h\"\n\n[[orphan_rule]]\nname = \"orphans\"\nolder_than = \"10m\"\n";
    let config = Config::parse(std::path::Path::new("test.toml"), text).expect("config");
    let state = state(config);
    state.change_model(|model| {
        model.upsert_process(process(1, "huge", &["huge"], 900));
        model.upsert_process(process(2, "small", &["small", "--password", "hunter2"], 3));
    });
    let policy = Policy::new(&state.config(), 1).expect("policy");
    state.modify(|snapshot| {
        snapshot.thresholds = policy.thresholds(0).into();
        snapshot.tracked = Arc::from([crate::policy::Tracked {
            key: ProcessKey {
                pid: 2,
                start_ticks: 7,
            },
            rule: "big".into(),
            threshold_bytes: 2 << 20,
        }]);
        Arc::make_mut(&mut snapshot.ledger).record(&kill_report("big", OutcomeKind::Exited));
    });
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
        kind: RuleKind::Threshold,
        intent: Intent {
            rule: rule.into(),
            dry_run: false,
            pid: 2,
            start_ticks: 7,
            comm: "small".into(),
            cmdline: "small".into(),
            uid: 0,
            user: None,
            cgroup: None,
            classification: serde_json::json!({"class": "unknown"}),
            rss_bytes: 0,
            threshold_bytes: None,
            reason: String::new(),
            signals: Vec::new(),
            trigger: None,
        },
        result: KillResult {
            outcome,
            signals_sent: Vec::new(),
            time_to_exit: None,
            detail: None,
        },
        intent_seq: None,
        intent_logged: false,
        outcome_seq: None,
        outcome_write_failed: false,
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
        rise_bytes_per_second: 0.0,
        time_to_limit_s,
        limit_bytes: Some(512 << 20),
        limit_kind: Some(LimitKind::Cgroup),
        imminent: false,
        imminent_since_s: None,
        first_detected_s: None,
        series_start_s: 0.0,
    }
}

#[test]
fn growing_and_leaking_series_are_exported_and_leaking_processes_always() {
    let mut config = Config::default();
    config.metrics.top_processes = 1;
    let state = state(config);
    state.change_model(|model| {
        model.upsert_process(process(1, "big", &["big"], 900));
        model.upsert_process(process(2, "node", &["node", "dist/main"], 150));
        model.replace_cgroups(vec![cgroup(
            "/docker/api",
            300,
            Limit::Bytes(512 << 20),
            false,
        )]);
    });
    let reports = vec![
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
    state.modify(|snapshot| snapshot.trends = reports.into());
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

#[test]
fn imminent_series_are_exported_whatever_their_verdict() {
    let mut config = Config::default();
    config.metrics.top_processes = 1;
    let state = state(config);
    state.change_model(|model| {
        model.upsert_process(process(1, "big", &["big"], 900));
        model.upsert_process(process(3, "java", &["java", "-jar", "app.jar"], 150));
        model.replace_cgroups(vec![cgroup(
            "/docker/api",
            300,
            Limit::Bytes(512 << 20),
            false,
        )]);
    });
    let imminent = |subject, verdict| TrendReport {
        imminent: true,
        imminent_since_s: Some(100.0),
        rise_bytes_per_second: 500_000.0,
        ..report(subject, verdict, Some(420.0))
    };
    let reports = vec![
        imminent(
            Subject::Process {
                pid: 3,
                start_ticks: 7,
                comm: "java".into(),
            },
            Verdict::Growing,
        ),
        imminent(
            Subject::Cgroup {
                path: "/docker/api".into(),
            },
            Verdict::Stable,
        ),
    ];
    state.modify(|snapshot| snapshot.trends = reports.into());
    let body = render(&state, Format::Text).expect("render");
    assert!(body.contains("guardian_limit_imminent_seconds{target=\"process\",pid=\"3\",comm=\"java\",cgroup=\"\",name=\"\",limit=\"cgroup\"} 420.0\n"), "{body}");
    assert!(body.contains("guardian_limit_imminent_seconds{target=\"cgroup\",pid=\"\",comm=\"\",cgroup=\"/docker/api\",name=\"abababababab\",limit=\"cgroup\"} 420.0\n"), "{body}");
    assert!(
        body.contains("guardian_process_rss_bytes{pid=\"3\","),
        "an imminent process is always exported: {body}"
    );
    // The leak families keep their meaning: the stable container is imminent, not leaking.
    assert!(!body.contains("verdict=\"stable\""), "{body}");
    assert!(body.contains("verdict=\"growing\""), "{body}");
}
