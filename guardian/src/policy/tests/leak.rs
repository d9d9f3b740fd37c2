//! Leak rules and the fastest-growing victim on hand-built models and trend reports:
//! triggers, scope (never a container), brakes, dry run and the kill log's record.

use super::*;
use crate::trends::{LimitKind, Subject, TrendReport, Verdict};

/// A trend report on `process`: `verdict`, rising `per_min` MiB/min, `ttl` seconds to its
/// cgroup limit of 512 MiB.
fn report(process: &Process, verdict: Verdict, per_min: f64, ttl: Option<f64>) -> TrendReport {
    let slope = per_min * MIB as f64 / 60.0;
    TrendReport {
        subject: Subject::Process {
            pid: process.key.pid,
            start_ticks: process.key.start_ticks,
            comm: process.comm.clone(),
        },
        verdict,
        slope_bytes_per_second: slope,
        confidence: 0.99,
        level_bytes: process.memory.rss,
        peak_bytes: process.memory.rss,
        rise_bytes_per_second: slope,
        time_to_limit_s: ttl,
        limit_bytes: ttl.map(|_| 512 * MIB),
        limit_kind: ttl.map(|_| LimitKind::Cgroup),
        imminent: false,
        imminent_since_s: None,
        first_detected_s: None,
        series_start_s: 100.0,
    }
}

const ON_LEAK: &str = r#"
[[leak_rule]]
name = "node-leak"
on = "leak"
match = { comm = ["node"] }
"#;

const IMMINENT: &str = r#"
[[leak_rule]]
name = "near-limit"
on = "imminent"
within = "10m"
match = { comm = ["node"] }
"#;

#[test]
fn a_leak_verdict_on_a_matching_host_process_decides_it_with_its_trigger() {
    let mut policy = policy(ON_LEAK);
    let leaking = process(10, "node", "node a", 300);
    let growing = process(11, "node", "node b", 300);
    let other = process(12, "java", "java c", 300);
    let mut in_container = process(13, "node", "node d", 300);
    in_container.class = container().into();
    let reports = vec![
        report(&leaking, Verdict::Leak, 10.0, Some(1200.0)),
        report(&growing, Verdict::Growing, 30.0, Some(400.0)),
        report(&other, Verdict::Leak, 10.0, None),
        report(&in_container, Verdict::Leak, 10.0, Some(60.0)),
    ];
    let model = model(vec![leaking, growing, other, in_container]);
    assert!(policy.evaluate_at(&model, Instant::now(), None).is_empty());
    policy.set_trends(&reports);
    let decisions = policy.evaluate_at(&model, Instant::now(), None);
    assert_eq!(pids(&decisions), [10]);
    let decision = &decisions[0];
    assert_eq!(decision.kind, RuleKind::Leak);
    assert_eq!(decision.action, KillAction::Term);
    let trigger = decision.trigger.as_ref().expect("trigger");
    assert_eq!(trigger.trigger, "leak");
    assert_eq!(trigger.source, "trend");
    assert!((trigger.value - 10.0 * MIB as f64 / 60.0).abs() < 1e-6);
    let trend = trigger.trend.as_ref().expect("trend");
    assert_eq!(trend.verdict, "leak");
    assert_eq!(trend.time_to_limit_s, Some(1200.0));
    assert_eq!(trend.limit_kind.as_deref(), Some("cgroup"));
    assert!(
        decision.reason.starts_with(
            "trend verdict leak, rising 10.0 MiB/min (confidence 0.99); reaches its cgroup \
             limit 512.0 MiB in 20m"
        ),
        "{}",
        decision.reason
    );
    // Decided once: not again while the kill runs.
    assert!(policy.evaluate_at(&model, Instant::now(), None).is_empty());
}

#[test]
fn imminence_fires_within_its_horizon_whatever_the_verdict() {
    let mut policy = policy(IMMINENT);
    let near = process(10, "node", "node a", 300);
    let far = process(11, "node", "node b", 300);
    let flat = process(12, "node", "node c", 300);
    policy.set_trends(&[
        report(&near, Verdict::Growing, 30.0, Some(400.0)),
        report(&far, Verdict::Leak, 1.0, Some(4000.0)),
        report(&flat, Verdict::Stable, 0.0, None),
    ]);
    let decisions = policy.evaluate_at(&model(vec![near, far, flat]), Instant::now(), None);
    assert_eq!(pids(&decisions), [10]);
    let trigger = decisions[0].trigger.as_ref().expect("trigger");
    assert_eq!(trigger.trigger, "imminent");
    assert_eq!(trigger.value, 400.0);
    assert_eq!(trigger.threshold, 600.0);
    assert!(
        decisions[0].reason.starts_with(
            "reaches its cgroup limit 512.0 MiB in 6m 40s (within 10m) at 30.0 MiB/min"
        ),
        "{}",
        decisions[0].reason
    );
}

#[test]
fn leak_rules_keep_the_protect_list_brakes_and_dry_run() {
    let mut policy = policy(&format!(
        "[safety]\nmax_kills = 1\nprotect_cmdline = [\"^node keep\"]\n{ON_LEAK}\n\
         [[leak_rule]]\nname = \"dry\"\non = \"leak\"\ndry_run = true\n\
         match = {{ comm = [\"python3\"] }}\n"
    ));
    let a = process(10, "node", "node a", 300);
    let b = process(11, "node", "node b", 200);
    let dry = process(12, "python3", "python3 x", 100);
    let kept = process(13, "node", "node keep", 900);
    policy.set_trends(&[
        report(&a, Verdict::Leak, 10.0, None),
        report(&b, Verdict::Leak, 10.0, None),
        report(&dry, Verdict::Leak, 10.0, None),
        report(&kept, Verdict::Leak, 10.0, None),
    ]);
    let decisions = policy.evaluate_at(&model(vec![a, b, dry, kept]), Instant::now(), None);
    // One real kill per window (the largest first); the dry run is paced on its own.
    assert_eq!(pids(&decisions), [10, 12]);
    assert!(decisions[1].dry_run);
    assert_eq!(policy.suppressed().rate_limit, 1);
}

#[test]
fn restart_unit_is_on_by_default_off_when_the_rule_says_so_and_never_for_other_rules() {
    let mut policy = policy(&format!(
        "{ON_LEAK}\n[[leak_rule]]\nname = \"signal\"\non = \"leak\"\nrestart_unit = false\n\
         match = {{ comm = [\"python3\"] }}\n\n\
         [[rule]]\nname = \"big\"\nthreshold = \"1GiB\"\nmatch = {{ comm = [\"java\"] }}\n"
    ));
    let node = process(10, "node", "node a", 300);
    let python = process(11, "python3", "python3 x", 300);
    let java = process(12, "java", "java y", 2048);
    policy.set_trends(&[
        report(&node, Verdict::Leak, 10.0, None),
        report(&python, Verdict::Leak, 10.0, None),
    ]);
    let decisions = policy.evaluate_at(&model(vec![node, python, java]), Instant::now(), None);
    let restart = |pid: i32| {
        decisions
            .iter()
            .find(|decision| decision.process.key.pid == pid)
            .map(|decision| decision.restart_unit)
    };
    assert_eq!(restart(10), Some(true), "the default restarts a unit");
    assert_eq!(restart(11), Some(false), "restart_unit = false signals");
    assert_eq!(restart(12), Some(false), "threshold rules always signal");
    // Only a boolean: a mistyped value is an error naming its line and column.
    let error = Config::parse(
        Path::new("test.toml"),
        "[[leak_rule]]\nname = \"x\"\non = \"leak\"\nrestart_unit = \"no\"\n",
    )
    .expect_err("a string is no boolean")
    .to_string();
    assert!(
        error.starts_with("test.toml:4:16:") && error.contains("expected a boolean"),
        "{error}"
    );
}

#[test]
fn leak_rules_reject_container_scope_and_imminence_without_a_horizon() {
    let parse = |text: &str| {
        Config::parse(Path::new("test.toml"), text)
            .expect_err("invalid")
            .to_string()
    };
    let scope = parse("[[leak_rule]]\nname = \"c\"\non = \"leak\"\nscope = \"container\"\n");
    assert!(scope.contains("scope must be \"host\""), "{scope}");
    let within = parse("[[leak_rule]]\nname = \"i\"\non = \"imminent\"\n");
    assert!(within.contains("needs within"), "{within}");
    let trends = parse("[trends]\nenabled = false\n\n[[leak_rule]]\nname = \"l\"\non = \"leak\"\n");
    assert!(trends.contains("needs the trend detector"), "{trends}");
    let unknown = parse("[[leak_rule]]\nname = \"u\"\non = \"oom\"\n");
    assert!(unknown.contains("unknown variant"), "{unknown}");
}

#[test]
fn explain_shows_the_trend_check() {
    let mut policy = policy(IMMINENT);
    let near = process(10, "node", "node a", 300);
    let model = model(vec![near.clone()]);
    let before = policy.explain(&near, &model);
    let check = |explanation: &Explanation| {
        let rule = &explanation.rules[0];
        assert_eq!(rule.kind, RuleKind::Leak);
        rule.checks
            .iter()
            .find(|check| check.check == "trend")
            .cloned()
            .expect("trend check")
    };
    let none = check(&before);
    assert!(
        !none.ok && none.detail.contains("no trend for this process"),
        "{}",
        none.detail
    );
    policy.set_trends(&[report(&near, Verdict::Growing, 30.0, Some(400.0))]);
    let after = policy.explain(&near, &model);
    assert!(after.rules[0].applies);
    assert!(check(&after).detail.contains("in 6m 40s"));
}

const FASTEST: &str = r#"
[[pressure_rule]]
name = "low-memory"
mem_available_below = "2GiB"
victim = "fastest-growing"
match = { comm = ["node"] }
"#;

#[test]
fn fastest_growing_victim_follows_the_slope_and_falls_back_to_the_largest() {
    let processes = || {
        vec![
            process(10, "node", "node big", 900),
            process(11, "node", "node fast", 200),
            process(12, "node", "node slow", 300),
        ]
    };
    let mut squeezed = model(processes());
    squeezed.host.available = 1024 * MIB;
    // No trend yet: the largest, and the reason says why.
    let mut policy = policy(FASTEST);
    let decisions = policy.evaluate_at(&squeezed, Instant::now(), None);
    assert_eq!(pids(&decisions), [10]);
    assert!(
        decisions[0]
            .reason
            .contains("no matching process has a rising trend yet"),
        "{}",
        decisions[0].reason
    );
    let mut policy = super::policy(FASTEST);
    let [big, fast, slow] = <[Process; 3]>::try_from(processes()).expect("three");
    policy.set_trends(&[
        report(&big, Verdict::Stable, 0.0, None),
        report(&fast, Verdict::Leak, 40.0, Some(300.0)),
        report(&slow, Verdict::Growing, 5.0, Some(3000.0)),
    ]);
    let decisions = policy.evaluate_at(&squeezed, Instant::now(), None);
    assert_eq!(pids(&decisions), [11]);
    assert!(
        decisions[0]
            .reason
            .contains("fastest-growing matching process, rss 200.0 MiB, growing 40.0 MiB/min"),
        "{}",
        decisions[0].reason
    );
}
