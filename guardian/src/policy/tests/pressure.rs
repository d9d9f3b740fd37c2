//! Pressure rules on hand-built models: triggers, sustain, victim choice, cooldown,
//! scope and the kill log's trigger record.

use std::collections::HashMap;

use super::*;
use crate::model::Pressure;

const GIB: u64 = 1024 * MIB;

fn squeezed(available_gib: u64, processes: Vec<Process>) -> Model {
    let mut model = model(processes);
    model.host.available = available_gib * GIB;
    model
}

const LOW_MEMORY: &str = r#"
[[pressure_rule]]
name = "low-memory"
mem_available_below = "2GiB"
sustain = "5s"
cooldown = "30s"
match = { comm = ["node"] }
"#;

#[test]
fn mem_available_below_kills_the_largest_matching_host_process_after_sustain() {
    let mut policy = policy(LOW_MEMORY);
    let mut in_container = process(13, "node", "node c", 900);
    in_container.class = container().into();
    let model = squeezed(
        1,
        vec![
            process(10, "node", "node a", 400),
            process(11, "node", "node b", 600),
            process(12, "postgres", "postgres", 800),
            in_container,
        ],
    );
    let start = Instant::now();
    assert!(policy.evaluate_at(&model, start, None).is_empty());
    let status = policy.pressure_status(start);
    assert!(status[0].firing);
    assert_eq!(status[0].trigger, "mem_available");
    assert_eq!(status[0].value, Some(GIB as f64));

    let decisions = policy.evaluate_at(&model, start + Duration::from_secs(5), None);
    assert_eq!(pids(&decisions), [11]);
    let decision = &decisions[0];
    assert_eq!(decision.kind, RuleKind::Pressure);
    let trigger = decision.trigger.as_ref().expect("trigger recorded");
    assert_eq!(trigger.trigger, "mem_available");
    assert_eq!(trigger.source, "host");
    assert_eq!(trigger.value, GIB as f64);
    assert_eq!(trigger.threshold, (2 * GIB) as f64);
    assert!(
        decision
            .reason
            .starts_with("MemAvailable 1.0 GiB below 2.0 GiB for 5.0s"),
        "{}",
        decision.reason
    );

    // Cooldown: still squeezed, but no second victim for 30s; then the next largest.
    assert!(
        policy
            .evaluate_at(&model, start + Duration::from_secs(20), None)
            .is_empty()
    );
    let later = policy.evaluate_at(&model, start + Duration::from_secs(36), None);
    assert_eq!(pids(&later), [10]);
}

#[test]
fn a_trigger_that_stops_holding_resets_its_sustain() {
    let mut policy = policy(LOW_MEMORY);
    let processes = || vec![process(10, "node", "node a", 400)];
    let start = Instant::now();
    assert!(
        policy
            .evaluate_at(&squeezed(1, processes()), start, None)
            .is_empty()
    );
    let relieved = squeezed(4, processes());
    assert!(
        policy
            .evaluate_at(&relieved, start + Duration::from_secs(3), None)
            .is_empty()
    );
    assert!(!policy.pressure_status(start)[0].firing);
    let again = squeezed(1, processes());
    assert!(
        policy
            .evaluate_at(&again, start + Duration::from_secs(6), None)
            .is_empty()
    );
    assert_eq!(
        pids(&policy.evaluate_at(&again, start + Duration::from_secs(11), None)),
        [10]
    );
}

#[test]
fn percentages_resolve_against_memtotal_and_never_against_zero() {
    let mut policy = policy("[[pressure_rule]]\nname = \"p\"\nmem_available_below = \"10%\"\n");
    let mut unknown = squeezed(0, vec![process(10, "node", "node a", 400)]);
    unknown.host.total = 0;
    assert!(
        policy
            .evaluate_at(&unknown, Instant::now(), None)
            .is_empty()
    );
    assert_eq!(policy.pressure_status(Instant::now())[0].value, None);
    // 16 GiB host: 10% is 1.6 GiB; 1 GiB available is below it.
    let model = squeezed(1, vec![process(10, "node", "node a", 400)]);
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [10]
    );
}

#[test]
fn free_swap_never_fires_without_swap() {
    let mut policy = policy("[[pressure_rule]]\nname = \"s\"\nswap_free_below = \"50%\"\n");
    let mut model = squeezed(8, vec![process(10, "node", "node a", 400)]);
    assert!(policy.evaluate_at(&model, Instant::now(), None).is_empty());
    model.host.swap_total = 4 * GIB;
    model.host.swap_free = GIB;
    let decisions = policy.evaluate_at(&model, Instant::now(), None);
    assert_eq!(pids(&decisions), [10]);
    let trigger = decisions[0].trigger.as_ref().expect("trigger");
    assert_eq!(
        (trigger.trigger.as_str(), trigger.threshold),
        ("swap_free", (2 * GIB) as f64)
    );
}

fn psi(some_avg10: f64, full_avg10: f64) -> Pressure {
    Pressure {
        some_avg10,
        full_avg10,
        ..Pressure::default()
    }
}

#[test]
fn host_psi_some_and_full_compare_their_own_average() {
    let mut some = policy("[[pressure_rule]]\nname = \"s\"\npsi_some_above = 20\n");
    let mut full =
        policy("[[pressure_rule]]\nname = \"f\"\npsi_full_above = 20.0\npsi_window = \"10s\"\n");
    let mut model = squeezed(8, vec![process(10, "node", "node a", 400)]);
    assert!(some.evaluate_at(&model, Instant::now(), None).is_empty());
    model.host.pressure = Some(psi(35.0, 5.0));
    let decisions = some.evaluate_at(&model, Instant::now(), None);
    assert_eq!(pids(&decisions), [10]);
    assert!(
        decisions[0]
            .reason
            .starts_with("PSI memory some avg10 35.00% above 20.00%"),
        "{}",
        decisions[0].reason
    );
    assert!(full.evaluate_at(&model, Instant::now(), None).is_empty());
    assert_eq!(full.pressure_status(Instant::now())[0].value, Some(5.0));
}

#[test]
fn cgroup_psi_reads_the_named_v2_cgroup_only() {
    let mut policy = policy(
        "[[pressure_rule]]\nname = \"c\"\npsi_full_above = 10\npsi_cgroup = \"/app\"\n\
         match = { cmdline = \"marker-7\" }\n",
    );
    let model = squeezed(
        8,
        vec![
            process(10, "memhog", "memhog marker-7", 300),
            process(11, "memhog", "memhog marker-7", 500),
            process(12, "memhog", "memhog other", 900),
        ],
    );
    let none = HashMap::new();
    assert!(
        policy
            .evaluate_with(&model, Instant::now(), None, &none)
            .is_empty()
    );
    let mut readings = HashMap::new();
    readings.insert("/app".to_string(), psi(90.0, 40.0));
    let decisions = policy.evaluate_with(&model, Instant::now(), None, &readings);
    assert_eq!(pids(&decisions), [11]);
    assert_eq!(
        decisions[0].trigger.as_ref().map(|t| t.source.as_str()),
        Some("/app")
    );
}

#[test]
fn rate_limit_holds_pressure_rules_like_the_others() {
    let mut policy = policy(
        "[safety]\nmax_kills = 1\n[[pressure_rule]]\nname = \"p\"\n\
         mem_available_below = \"2GiB\"\ncooldown = \"0s\"\n",
    );
    let model = squeezed(
        1,
        vec![
            process(10, "node", "node a", 400),
            process(11, "java", "java b", 600),
        ],
    );
    let now = Instant::now();
    assert_eq!(pids(&policy.evaluate_at(&model, now, None)), [11]);
    assert!(
        policy
            .evaluate_at(&model, now + Duration::from_secs(1), None)
            .is_empty()
    );
    assert_eq!(policy.suppressed().rate_limit, 1);
}

#[test]
fn explain_shows_the_trigger_and_the_victim_rule() {
    let policy = policy(LOW_MEMORY);
    let target = process(10, "node", "node a", 400);
    let model = squeezed(1, vec![target.clone()]);
    let explanation = policy.explain(&target, &model);
    let verdict = explanation
        .rules
        .iter()
        .find(|rule| rule.kind == RuleKind::Pressure)
        .expect("pressure verdict");
    assert!(verdict.applies);
    let trigger = verdict
        .checks
        .iter()
        .find(|check| check.check == "trigger")
        .expect("trigger check");
    assert!(
        trigger
            .detail
            .contains("MemAvailable 1.0 GiB below 2.0 GiB")
    );
    assert!(
        explanation
            .to_string()
            .contains("pressure rule \"low-memory\": APPLIES")
    );
}
