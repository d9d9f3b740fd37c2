use super::*;

#[test]
fn untrusted_text_is_escaped_in_both_formats() {
    let state = state(Config::default());
    state.change_model(|model| {
        let nasty = "we\"ird\\na\nme{}=,\u{FFFD}";
        model.upsert_process(process(10, nasty, &[nasty, "--x=\"}\""], 300));
        model.replace_cgroups(vec![cgroup("/docker/\"evil\"\n", 5, Limit::Max, false)]);
    });
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
fn own_process_stat_parses_with_awkward_comm() {
    let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 500 0 0 0 150 50 0 0 20 0 7 0 1000 123456789 2048 18446744073709551615 \
                4194304 4198400 140737488347136 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
    let stat = <procfs::process::Stat as procfs::FromRead>::from_read(stat.as_bytes())
        .expect("test value");
    let own = OwnProcess::from_stat(&stat, 100.0, 4096, 1_700_000_000.0);
    assert_eq!(own.cpu_seconds, 2.0);
    assert_eq!(own.threads, 7);
    assert_eq!(own.start_time_seconds, 1_700_000_010.0);
    assert_eq!(own.virtual_bytes, 123_456_789);
    assert_eq!(own.resident_bytes, 2048 * 4096);
    let live = OwnProcess::read().expect("/proc/self");
    assert!(live.resident_bytes > 0 && live.threads >= 1 && live.open_fds >= 3);
    assert!(live.max_fds.is_some_and(|max| max >= live.open_fds));
}

#[test]
fn escaping_and_truncation_helpers() {
    let mut out = String::new();
    write_escaped(&mut out, "a\\b\"c\nd").expect("test value");
    assert_eq!(out, "a\\\\b\\\"c\\nd");
    assert_eq!(truncate("héllo", 2), "h");
    assert_eq!(truncate("héllo", 3), "hé");
}
