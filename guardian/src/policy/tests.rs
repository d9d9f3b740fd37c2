//! Policy logic on hand-built models: matching, sustain, protect list, brakes, orphans,
//! ordering.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use super::*;
use crate::{
    classify::{Classification, Runtime},
    config::Config,
    model::{MemoryUsage, Model, Process, ProcessKey},
    test_support::ExeRoot,
};

const MIB: u64 = 1024 * 1024;
const SELF_PID: i32 = 999_999;

fn config(text: &str) -> Config {
    Config::parse(Path::new("test.toml"), text).expect("config")
}

fn policy(text: &str) -> Policy {
    Policy::new(&config(text), SELF_PID).expect("policy")
}

fn host(unit: Option<&str>) -> Classification {
    Classification::Host {
        unit: unit.map(str::to_string),
    }
}

fn container() -> Classification {
    Classification::Container {
        runtime: Runtime::Docker,
        id: "0123abcd".into(),
        pod_uid: None,
        qos: None,
    }
}

fn process(pid: i32, comm: &str, cmdline: &str, rss_mib: u64) -> Process {
    Process {
        key: ProcessKey {
            pid,
            start_ticks: 1000 + pid as u64,
        },
        ppid: 500,
        uid: 1000,
        comm: comm.into(),
        cmdline: cmdline.split(' ').map(str::to_string).collect(),
        kernel_thread: false,
        oom_score_adj: 0,
        memory: MemoryUsage::from_parts(rss_mib * MIB, 0, 0, 0),
        cgroups: Vec::new().into(),
        memory_cgroup: Some("/user.slice/session-1.scope".into()),
        class: host(Some("session-1.scope")).into(),
        started_secs: 100.0,
    }
}

fn model(processes: Vec<Process>) -> Model {
    let mut model = Model::default();
    model.host.total = 16 * 1024 * MIB;
    model.replace_processes(processes);
    model
}

fn pids(decisions: &[Decision]) -> Vec<i32> {
    decisions.iter().map(|d| d.process.key.pid).collect()
}

const RULE_300: &str = r#"
[[rule]]
name = "big"
threshold = "300MiB"
"#;

#[test]
fn host_process_above_threshold_is_decided_and_below_is_not() {
    let mut policy = policy(RULE_300);
    let model = model(vec![
        process(10, "node", "node dist/main", 400),
        process(11, "node", "node other", 200),
    ]);
    let decisions = policy.evaluate_at(&model, Instant::now(), None);
    assert_eq!(pids(&decisions), [10]);
    let decision = &decisions[0];
    assert_eq!(decision.rule, "big");
    assert_eq!(decision.threshold, Some(300 * MIB));
    assert!(
        decision
            .reason
            .starts_with("rss 400.0 MiB above 300.0 MiB for 0.0s"),
        "{}",
        decision.reason
    );
}

#[test]
fn scope_host_skips_containers_and_unknown_layouts() {
    let mut in_container = process(10, "node", "node a", 400);
    in_container.class = container().into();
    let mut unknown = process(11, "node", "node b", 400);
    unknown.class = Classification::Unknown.into();
    let model = model(vec![
        in_container,
        unknown,
        process(12, "node", "node c", 400),
    ]);

    let mut host_rule = policy(RULE_300);
    assert_eq!(
        pids(&host_rule.evaluate_at(&model, Instant::now(), None)),
        [12]
    );

    let mut container_rule =
        policy("[[rule]]\nname = \"c\"\nthreshold = \"300MiB\"\nscope = \"container\"\n");
    assert_eq!(
        pids(&container_rule.evaluate_at(&model, Instant::now(), None)),
        [10]
    );

    let mut any_rule = policy("[[rule]]\nname = \"a\"\nthreshold = \"300MiB\"\nscope = \"any\"\n");
    let mut all = pids(&any_rule.evaluate_at(&model, Instant::now(), None));
    all.sort();
    assert_eq!(all, [10, 11, 12]);
}

#[test]
fn matchers_must_all_hold() {
    let rule = r#"
[[rule]]
name = "m"
threshold = "100MiB"
match = { comm = ["node"], cmdline = "dist/main", user = ["1000"], cgroup = "/user.slice/*", unit = "session-*.scope" }
"#;
    let mut wrong_user = process(13, "node", "node dist/main", 400);
    wrong_user.uid = 0;
    let mut no_unit = process(14, "node", "node dist/main", 400);
    no_unit.class = host(None).into();
    let mut other_cgroup = process(15, "node", "node dist/main", 400);
    other_cgroup.memory_cgroup = Some("/system.slice/x.service".into());
    let model = model(vec![
        process(10, "node", "node dist/main", 400),
        process(11, "python3", "node dist/main", 400),
        process(12, "node", "node other", 400),
        wrong_user,
        no_unit,
        other_cgroup,
    ]);
    let mut policy = policy(rule);
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [10]
    );
}

#[test]
fn user_names_resolve_and_unknown_names_match_nobody() {
    let rule = r#"
[[rule]]
name = "u"
threshold = "100MiB"
match = { user = ["root", "no-such-user-guardian-test"] }
"#;
    let mut root = process(10, "x", "x", 400);
    root.uid = 0;
    let model = model(vec![root, process(11, "x", "y", 400)]);
    let mut policy = policy(rule);
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [10]
    );
}

#[test]
fn percentage_thresholds_resolve_against_memtotal_and_never_against_zero() {
    let rule = "[[rule]]\nname = \"p\"\nthreshold = \"10%\"\n";
    let mut model = model(vec![process(10, "x", "x", 2000)]);
    let mut policy = policy(rule);
    assert_eq!(
        policy.threshold_for(&process(1, "x", "x", 0), 1000),
        Some(100)
    );
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [10]
    );

    let mut fresh = super::Policy::new(&config(rule), SELF_PID).expect("policy");
    model.host.total = 0;
    assert!(fresh.evaluate_at(&model, Instant::now(), None).is_empty());
    assert_eq!(fresh.threshold_for(&process(1, "x", "x", 0), 0), None);
    // Nothing to export or track either: no threshold rather than 0 bytes.
    assert!(fresh.thresholds(0).is_empty());
    assert!(fresh.tracked(0).is_empty());
    assert_eq!(fresh.lowest_threshold(0), None);
    assert_eq!(
        fresh.thresholds(1000),
        [RuleThreshold {
            rule: "p".into(),
            scope: Scope::Host,
            threshold_bytes: 100,
        }]
    );
}

#[test]
fn sustain_waits_and_resets_when_rss_drops() {
    let mut policy = policy("[[rule]]\nname = \"s\"\nthreshold = \"300MiB\"\nsustain = \"10s\"\n");
    let t0 = Instant::now();
    let high = model(vec![process(10, "x", "x", 400)]);
    let low = model(vec![process(10, "x", "x", 200)]);
    assert!(policy.evaluate_at(&high, t0, None).is_empty());
    assert_eq!(policy.pending().count(), 1);
    assert!(
        policy
            .evaluate_at(&high, t0 + Duration::from_secs(5), None)
            .is_empty()
    );
    // Dropping below resets the timer.
    assert!(
        policy
            .evaluate_at(&low, t0 + Duration::from_secs(6), None)
            .is_empty()
    );
    assert_eq!(policy.pending().count(), 0);
    assert!(
        policy
            .evaluate_at(&high, t0 + Duration::from_secs(7), None)
            .is_empty()
    );
    assert!(
        policy
            .evaluate_at(&high, t0 + Duration::from_secs(16), None)
            .is_empty()
    );
    let due = policy.evaluate_at(&high, t0 + Duration::from_secs(17), None);
    assert_eq!(pids(&due), [10]);
}

#[test]
fn processes_that_leave_the_model_are_forgotten() {
    let mut policy = policy("[[rule]]\nname = \"s\"\nthreshold = \"300MiB\"\nsustain = \"10s\"\n");
    let t0 = Instant::now();
    assert!(
        policy
            .evaluate_at(&model(vec![process(10, "x", "x", 400)]), t0, None)
            .is_empty()
    );
    assert!(
        policy
            .evaluate_at(&model(vec![]), t0 + Duration::from_secs(1), None)
            .is_empty()
    );
    assert_eq!(policy.pending().count(), 0);
    // The same pid with another start time is another process: its timer starts afresh.
    let mut reused = process(10, "x", "x", 400);
    reused.key.start_ticks += 1;
    let t1 = t0 + Duration::from_secs(11);
    assert!(
        policy
            .evaluate_at(&model(vec![reused]), t1, None)
            .is_empty()
    );
}

#[test]
fn biggest_rss_first() {
    let mut policy = policy(RULE_300);
    let model = model(vec![
        process(10, "a", "a", 400),
        process(11, "b", "b", 900),
        process(12, "c", "c", 600),
    ]);
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [11, 12, 10]
    );
}

#[test]
fn protect_list_holds() {
    let rule = r#"
[safety]
protect_comm = ["precious"]
protect_cmdline = ["--keep-me"]
protect_units = ["db*.service"]

[[rule]]
name = "any"
threshold = "1MiB"
scope = "any"
"#;
    let mut init = process(1, "init", "/sbin/init", 400);
    init.ppid = 0;
    let mut kthread = process(2, "kworker/0:1", "", 400);
    kthread.kernel_thread = true;
    let mut unkillable = process(3, "x", "x", 400);
    unkillable.oom_score_adj = -1000;
    let mut in_db_unit = process(4, "postgres", "postgres", 400);
    in_db_unit.class = host(Some("db-main.service")).into();
    let protected = vec![
        init,
        kthread,
        unkillable,
        in_db_unit,
        process(SELF_PID, "guardian", "guardian run", 400),
        process(5, "sshd", "sshd: root", 400),
        process(
            6,
            "containerd-shim",
            "/usr/bin/containerd-shim-runc-v2 -id x",
            400,
        ),
        process(7, "systemd-journal", "/lib/systemd/systemd-journald", 400),
        process(8, "dockerd", "/usr/bin/dockerd", 400),
        process(9, "precious", "precious", 400),
        process(10, "y", "y --keep-me", 400),
    ];
    let model = model(
        protected
            .into_iter()
            .chain([process(11, "victim", "victim", 400)])
            .collect(),
    );
    let exes = ExeRoot::new();
    exes.link(5, "sshd", true);
    exes.link(6, "containerd-shim-runc-v2", true);
    exes.link(7, "systemd-journald", true);
    exes.link(8, "dockerd", true);
    let mut policy = Policy::with_proc_root(&config(rule), SELF_PID, exes.path()).expect("policy");
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [11]
    );
    for pid in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, SELF_PID] {
        let process = model.process_by_pid(pid).expect("in model");
        let explanation = policy.explain(process, &model);
        assert!(explanation.protected.is_some(), "pid {pid} not protected");
    }
}

#[test]
fn global_rate_limit_caps_kills_per_window() {
    let rule = r#"
[safety]
max_kills = 2
rate_window = "60s"
backoff = "0s"

[[rule]]
name = "big"
threshold = "300MiB"
"#;
    let mut policy = policy(rule);
    let t0 = Instant::now();
    let hogs = |pids: std::ops::Range<i32>| {
        model(
            pids.map(|pid| process(pid, "x", &format!("x {pid}"), 400 + pid as u64))
                .collect(),
        )
    };
    // Biggest first get the budget.
    assert_eq!(pids(&policy.evaluate_at(&hogs(10..15), t0, None)), [14, 13]);
    // Those two are gone; the rest wait for the window.
    let rest = hogs(10..13);
    assert!(
        policy
            .evaluate_at(&rest, t0 + Duration::from_secs(30), None)
            .is_empty()
    );
    assert_eq!(
        policy.suppressed().rate_limit,
        3,
        "counted once per process"
    );
    assert_eq!(
        pids(&policy.evaluate_at(&rest, t0 + Duration::from_secs(61), None)),
        [12, 11]
    );
}

#[test]
fn dry_run_rules_never_use_up_the_budget_of_rules_that_kill() {
    let rule = r#"
[safety]
max_kills = 1

[[rule]]
name = "watch"
threshold = "300MiB"
match = { comm = ["watched"] }
dry_run = true

[[rule]]
name = "kill"
threshold = "300MiB"
match = { comm = ["killed"] }
"#;
    let mut policy = policy(rule);
    let model = model(vec![
        process(10, "watched", "watched", 900),
        process(11, "killed", "killed", 400),
    ]);
    let decisions = policy.evaluate_at(&model, Instant::now(), None);
    let rules: Vec<&str> = decisions.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(rules, ["watch", "kill"]);
    assert!(decisions[0].dry_run && !decisions[1].dry_run);
}

#[test]
fn backoff_doubles_for_a_crash_looping_program() {
    let rule = r#"
[safety]
max_kills = 100
backoff = "10s"
max_backoff = "25s"

[[rule]]
name = "big"
threshold = "300MiB"
"#;
    let mut policy = policy(rule);
    let t0 = Instant::now();
    // Each restart of the same program is a new process (new pid and start time).
    let incarnation = |n: i32| model(vec![process(100 + n, "leaky", "leaky --serve", 400)]);
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    assert_eq!(policy.evaluate_at(&incarnation(0), at(0), None).len(), 1);
    assert!(policy.evaluate_at(&incarnation(1), at(9), None).is_empty());
    assert_eq!(policy.suppressed().backoff, 1);
    assert_eq!(policy.evaluate_at(&incarnation(1), at(10), None).len(), 1);
    // Now 20 s.
    assert!(policy.evaluate_at(&incarnation(2), at(29), None).is_empty());
    assert_eq!(policy.evaluate_at(&incarnation(2), at(30), None).len(), 1);
    // Capped at 25 s.
    assert!(policy.evaluate_at(&incarnation(3), at(54), None).is_empty());
    assert_eq!(policy.evaluate_at(&incarnation(3), at(55), None).len(), 1);
    // Another program is not held back.
    let other = model(vec![process(200, "leaky", "leaky --other", 400)]);
    assert_eq!(policy.evaluate_at(&other, at(56), None).len(), 1);
    // Left alone long enough, the program starts afresh at 10 s.
    assert_eq!(policy.evaluate_at(&incarnation(4), at(200), None).len(), 1);
    assert!(
        policy
            .evaluate_at(&incarnation(5), at(209), None)
            .is_empty()
    );
    assert_eq!(policy.evaluate_at(&incarnation(5), at(210), None).len(), 1);
}

#[test]
fn a_decided_process_is_not_decided_again_while_the_kill_runs() {
    let rule = "[safety]\nbackoff = \"0s\"\n[[rule]]\nname = \"b\"\nthreshold = \"1MiB\"\ngrace = \"5s\"\n";
    let mut policy = policy(rule);
    let t0 = Instant::now();
    let model = model(vec![process(10, "x", "x", 400)]);
    assert_eq!(policy.evaluate_at(&model, t0, None).len(), 1);
    assert!(
        policy
            .evaluate_at(&model, t0 + Duration::from_secs(1), None)
            .is_empty()
    );
    let retry = t0 + Duration::from_secs(5) + KILL_CONFIRM;
    assert_eq!(policy.evaluate_at(&model, retry, None).len(), 1);
}

#[test]
fn a_reload_keeps_the_brakes_and_the_sustain_timers() {
    let safety = "[safety]\nmax_kills = 1\nrate_window = \"1h\"\n";
    let big = "[[rule]]\nname = \"big\"\nthreshold = \"300MiB\"\nsustain = \"10s\"\n";
    let new = "[[rule]]\nname = \"new\"\nthreshold = \"1GiB\"\n";
    let mut policy = policy(&format!("{safety}{big}"));
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let first = model(vec![process(10, "a", "a", 400)]);
    assert!(policy.evaluate_at(&first, at(0), None).is_empty());
    assert_eq!(pids(&policy.evaluate_at(&first, at(10), None)), [10]);
    let second = model(vec![process(11, "b", "b", 400)]);
    assert!(policy.evaluate_at(&second, at(11), None).is_empty());

    // "big" moves to the second place; its timer (started at 11 s) moves with it.
    policy
        .reload(&config(&format!("{safety}{new}{big}")))
        .expect("reload");
    assert_eq!(policy.pending().count(), 1);
    assert!(
        policy.evaluate_at(&second, at(21), None).is_empty(),
        "the reload reset the rate limit"
    );
    assert_eq!(policy.suppressed().rate_limit, 1);
}

const ORPHAN_RULE: &str = r#"
[[orphan_rule]]
name = "orphans"
older_than = "10m"
match = { cmdline = "leftover" }
"#;

#[test]
fn orphan_rule_takes_only_matching_orphans_past_their_age() {
    let uptime = 10_000.0;
    let orphan = |pid: i32, ppid: i32, cmdline: &str, age: f64| {
        let mut p = process(pid, "node", cmdline, 10);
        p.ppid = ppid;
        p.started_secs = uptime - age;
        p
    };
    let mut user_manager = process(50, "systemd", "/lib/systemd/systemd --user", 10);
    user_manager.ppid = 1;
    let mut shell = process(60, "bash", "bash", 10);
    shell.ppid = 1;
    let model = model(vec![
        user_manager,
        shell,
        orphan(10, 1, "node leftover.js", 700.0),
        orphan(11, 50, "node leftover.js --port 2", 700.0), // adopted by a subreaper
        orphan(12, 1, "node leftover.js", 300.0),           // too young
        orphan(13, 60, "node leftover.js", 700.0),          // parent alive
        orphan(14, 1, "node wanted.js", 700.0),             // no match
    ]);
    let mut policy = policy(ORPHAN_RULE);
    let mut decided = pids(&policy.evaluate_at(&model, Instant::now(), Some(uptime)));
    decided.sort();
    assert_eq!(decided, [10, 11]);

    // Without the clock, orphan rules wait.
    let mut blind = super::Policy::new(&config(ORPHAN_RULE), SELF_PID).expect("policy");
    assert!(blind.evaluate_at(&model, Instant::now(), None).is_empty());
}

#[test]
fn explain_says_why_each_rule_does_not_apply() {
    let text = format!(
        "{RULE_300}\n[[rule]]\nname = \"containers\"\nthreshold = \"1MiB\"\nscope = \"container\"\n{ORPHAN_RULE}"
    );
    let policy = policy(&text);
    let process = process(10, "node", "node dist/main --token=abc", 200);
    let model = model(vec![process.clone()]);
    let explanation = policy.explain(&process, &model);
    assert!(explanation.protected.is_none());
    assert_eq!(explanation.rules.len(), 3);
    assert!(explanation.rules.iter().all(|rule| !rule.applies));
    let text = explanation.to_string();
    assert!(text.contains("is not above 300.0 MiB"), "{text}");
    assert!(
        text.contains("scope container: the process is a host process"),
        "{text}"
    );
    assert!(
        text.contains("neither PID 1 nor a known subreaper"),
        "{text}"
    );
    assert!(
        !text.contains("--token=abc"),
        "cmdline not redacted: {text}"
    );
    let json = serde_json::to_value(&explanation).expect("json");
    assert_eq!(json["rules"][0]["rule"], "big");
    assert_eq!(json["rules"][0]["applies"], false);
}

/// A rule for node at 500 MiB, then one for everything at 2 GiB.
const NODE_THEN_REST: &str = r#"
[[rule]]
name = "node"
threshold = "500MiB"
match = { comm = ["node"] }

[[rule]]
name = "rest"
threshold = "2GiB"
"#;

#[test]
fn threshold_for_uses_the_first_matching_rule() {
    let policy = policy(NODE_THEN_REST);
    assert_eq!(
        policy.threshold_for(&process(1, "node", "node", 0), 0),
        Some(500 * MIB)
    );
    assert_eq!(
        policy.threshold_for(&process(1, "java", "java", 0), 0),
        Some(2048 * MIB)
    );
    let mut in_container = process(1, "node", "node", 0);
    in_container.class = container().into();
    assert_eq!(policy.threshold_for(&in_container, 0), None);
}

#[test]
fn only_a_matching_rule_above_its_threshold_makes_a_process_worth_a_look() {
    let policy = policy(NODE_THEN_REST);
    assert_eq!(policy.lowest_threshold(0), Some(500 * MIB));
    assert!(policy.might_be_due(&process(1, "node", "node", 600), 0));
    assert!(!policy.might_be_due(&process(1, "node", "node", 400), 0));
    // Above the lowest threshold, but that rule does not match java.
    assert!(!policy.might_be_due(&process(1, "java", "java", 600), 0));
    assert!(policy.might_be_due(&process(1, "java", "java", 3000), 0));
}

const HOST_RULE: &str = r#"
[[rule]]
name = "host"
threshold = "300MiB"
scope = "host"
"#;

#[test]
fn a_protected_name_counts_only_with_that_programs_system_executable() {
    let exes = ExeRoot::new();
    exes.link(20, "sshd", true);
    // Renamed with prctl: comm says sshd, the executable is another program.
    exes.link(21, "python3", true);
    // The right name, but a file an unprivileged user could have written.
    exes.link(22, "sshd", false);
    // No executable to read at all (pid 23 has no exe link).
    let model = model(vec![
        process(20, "sshd", "sshd: alice", 400),
        process(21, "sshd", "python3 hog.py", 400),
        process(22, "sshd", "/home/alice/sshd", 400),
        process(23, "sshd", "sshd", 400),
    ]);
    let mut policy =
        Policy::with_proc_root(&config(HOST_RULE), SELF_PID, exes.path()).expect("policy");
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [21, 22, 23]
    );
    let impostor = policy.explain(model.process_by_pid(21).expect("in model"), &model);
    assert_eq!(impostor.impostor.as_deref(), Some("sshd"));
    assert!(impostor.protected.is_none());
    let real = policy.explain(model.process_by_pid(20).expect("in model"), &model);
    assert_eq!(real.protected, Some(Protected::BuiltinComm("sshd".into())));
}

#[test]
fn a_container_needs_a_runtime_helper_among_its_ancestors() {
    let exes = ExeRoot::new();
    exes.link(30, "containerd-shim-runc-v2", true);
    // A process renamed to the shim's name is no shim.
    exes.link(40, "bash", true);
    let mut shim = process(30, "containerd-shim", "containerd-shim-runc-v2 -id x", 10);
    shim.ppid = 1;
    let mut real = process(31, "hog", "hog", 400);
    real.ppid = 30;
    real.class = container().into();
    let mut child = process(32, "hog", "hog child", 400);
    child.ppid = 31;
    child.class = container().into();
    // Made its own `/docker/<id>` cgroup; its parent is a login shell.
    let mut fake = process(33, "hog", "hog fake", 400);
    fake.ppid = 34;
    fake.class = container().into();
    let mut shell = process(34, "bash", "-bash", 10);
    shell.ppid = 1;
    let mut fake_shim = process(40, "containerd-shim", "bash", 10);
    fake_shim.ppid = 1;
    let mut under_fake_shim = process(41, "hog", "hog under fake shim", 400);
    under_fake_shim.ppid = 40;
    under_fake_shim.class = container().into();
    let model = model(vec![
        shim,
        real,
        child,
        fake,
        shell,
        fake_shim,
        under_fake_shim,
    ]);
    let mut policy =
        Policy::with_proc_root(&config(HOST_RULE), SELF_PID, exes.path()).expect("policy");
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [33, 41]
    );
    let explained = policy.explain(model.process_by_pid(32).expect("in model"), &model);
    assert_eq!(
        explained.vetted,
        Vetted::Confirmed(Confirmation {
            helper_pid: 30,
            helper_comm: "containerd-shim".into(),
            runtime: "containerd".into(),
        })
    );
    let explained = policy.explain(model.process_by_pid(33).expect("in model"), &model);
    assert_eq!(explained.vetted, Vetted::Unconfirmed);
}

#[test]
fn a_container_under_a_shim_whose_executable_is_unreadable_is_spared() {
    // No exe link for pid 60: as /proc answers a guardian without CAP_SYS_PTRACE for a
    // shim running with every capability.
    let exes = ExeRoot::new();
    let mut shim = process(60, "containerd-shim", "containerd-shim-runc-v2 -id y", 10);
    shim.ppid = 1;
    let mut twin = process(61, "hog", "hog", 400);
    twin.ppid = 60;
    twin.class = container().into();
    let model = model(vec![shim, twin]);
    let mut policy =
        Policy::with_proc_root(&config(HOST_RULE), SELF_PID, exes.path()).expect("policy");
    assert!(pids(&policy.evaluate_at(&model, Instant::now(), None)).is_empty());
    let explained = policy.explain(model.process_by_pid(61).expect("in model"), &model);
    assert_eq!(explained.vetted, Vetted::Incomplete);
    assert!(explained.to_string().contains("CAP_SYS_PTRACE"));
}

#[test]
fn a_container_under_the_first_process_its_runtime_reported_is_confirmed() {
    let mut init = process(50, "sh", "sh", 10);
    init.ppid = 1;
    init.class = container().into();
    let mut hog = process(51, "hog", "hog", 400);
    hog.ppid = 50;
    hog.class = container().into();
    let model = model(vec![init, hog]);
    let exes = ExeRoot::new();
    let mut policy =
        Policy::with_proc_root(&config(HOST_RULE), SELF_PID, exes.path()).expect("policy");
    policy.set_container_pids([("0123abcd".to_string(), 50)].into());
    assert!(policy.evaluate_at(&model, Instant::now(), None).is_empty());
    let explained = policy.explain(model.process_by_pid(51).expect("in model"), &model);
    assert_eq!(explained.vetted, Vetted::KnownToRuntime);
    // A known id alone confirms nothing: the runtime's first process must be an ancestor.
    policy.set_container_pids([("0123abcd".to_string(), 4_000_000)].into());
    assert_eq!(
        pids(&policy.evaluate_at(&model, Instant::now(), None)),
        [51]
    );
}

#[test]
fn a_container_with_an_ancestor_not_yet_seen_keeps_its_classification() {
    let mut orphaned = process(60, "hog", "hog", 400);
    orphaned.ppid = 61;
    orphaned.class = container().into();
    let model = model(vec![orphaned]);
    let exes = ExeRoot::new();
    let mut policy =
        Policy::with_proc_root(&config(HOST_RULE), SELF_PID, exes.path()).expect("policy");
    assert!(policy.evaluate_at(&model, Instant::now(), None).is_empty());
}

mod leak;
mod pressure;
