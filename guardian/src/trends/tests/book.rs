//! The book: which series are tracked, restarts as new series, the bound, the limits.

use std::path::Path;

use super::super::book::{LimitKind, Subject, TrendBook};
use super::super::detector::{Params, Verdict};
use crate::classify::Classification;
use crate::config::{Bytes, Config, TrendsConfig};
use crate::model::{Cgroup, CgroupStats, HostMemory, Limit, Model, Process};
use crate::test_support::process;

const MIB: u64 = 1024 * 1024;

fn cgroup(path: &str, usage: u64, anon: u64, limit: Option<u64>) -> Cgroup {
    Cgroup {
        path: path.into(),
        stats: CgroupStats {
            usage,
            anon,
            limit: limit.map_or(Limit::Max, Limit::Bytes),
            ..CgroupStats::default()
        },
        class: Classification::default(),
    }
}

fn host(total: u64, available: u64) -> HostMemory {
    HostMemory {
        total,
        available,
        ..HostMemory::default()
    }
}

fn no_rule(_: &Process) -> Option<u64> {
    None
}

fn config(max_series: usize) -> TrendsConfig {
    TrendsConfig {
        max_series,
        ..TrendsConfig::default()
    }
}

#[test]
fn tracks_big_processes_and_cgroups_and_drops_what_is_gone() {
    let mut book = TrendBook::new(&config(100));
    let mut model = Model::default();
    let mut small = process(2, 20, 8 * MIB);
    small.started_secs = 5.0;
    let mut kthread = process(3, 30, 100 * MIB);
    kthread.kernel_thread = true;
    model.replace_processes(vec![process(1, 10, 64 * MIB), small, kthread]);
    model.replace_cgroups(vec![cgroup("/docker/a", 300 * MIB, 100 * MIB, None)]);
    book.observe(&model, 100.0, &no_rule);
    let reports = book.reports();
    assert_eq!(book.len(), 2);
    assert!(
        reports
            .iter()
            .any(|r| matches!(&r.subject, Subject::Process { pid: 1, .. }))
    );
    let cgroup_report = reports
        .iter()
        .find(|r| matches!(&r.subject, Subject::Cgroup { path } if path == "/docker/a"))
        .expect("cgroup tracked");
    assert_eq!(
        cgroup_report.level_bytes,
        100 * MIB,
        "anon, not usage with cache"
    );
    assert!(reports.iter().all(|r| r.verdict == Verdict::WarmingUp));
    // The process exits and the cgroup goes away.
    model.replace_processes(Vec::<Process>::new());
    model.replace_cgroups(Vec::new());
    book.observe(&model, 101.0, &no_rule);
    assert!(book.is_empty());
}

#[test]
fn a_restarted_process_is_a_new_series() {
    let mut book = TrendBook::new(&config(100));
    let mut model = Model::default();
    model.upsert_process(process(42, 100, 64 * MIB));
    book.observe(&model, 10.0, &no_rule);
    model.upsert_process(process(42, 900, 64 * MIB));
    book.observe(&model, 11.0, &no_rule);
    let reports = book.reports();
    assert_eq!(reports.len(), 1);
    assert!(matches!(
        reports[0].subject,
        Subject::Process {
            pid: 42,
            start_ticks: 900,
            ..
        }
    ));
}

#[test]
fn beyond_max_series_the_smallest_go_first() {
    let mut book = TrendBook::new(&config(2));
    let mut model = Model::default();
    model.replace_processes(vec![process(1, 1, 40 * MIB), process(2, 2, 50 * MIB)]);
    book.observe(&model, 1.0, &no_rule);
    // 100 MiB displaces the 40 MiB series; 70 MiB is not twice the smallest left (50).
    model.upsert_process(process(3, 3, 100 * MIB));
    model.upsert_process(process(4, 4, 70 * MIB));
    book.observe(&model, 2.0, &no_rule);
    let mut pids: Vec<i32> = book
        .reports()
        .iter()
        .filter_map(|r| match r.subject {
            Subject::Process { pid, .. } => Some(pid),
            Subject::Cgroup { .. } => None,
        })
        .collect();
    pids.sort();
    assert_eq!(pids, vec![2, 3]);
}

/// A process leaking 10 MB/min from its start, in a cgroup with a 1 GiB limit, on a host
/// with 8 GiB available: observed once a second for `seconds`.
fn leaking(book: &mut TrendBook, rule: &dyn Fn(&Process) -> Option<u64>, seconds: u32) -> Model {
    let mut model = Model::default();
    model.host = host(16 << 30, 8 << 30);
    for t in 0..=seconds {
        let rss = 100 * MIB + (10e6 / 60.0 * f64::from(t)) as u64;
        let mut p = process(7, 70, rss);
        p.memory_cgroup = Some("/app".into());
        model.replace_processes(vec![p]);
        model.replace_cgroups(vec![cgroup("/app", rss, rss, Some(1 << 30))]);
        book.observe(&model, f64::from(t), rule);
    }
    model
}

#[test]
fn a_leak_is_reported_with_the_nearest_limit_and_logged_once() {
    let mut book = TrendBook::new(&config(100));
    leaking(&mut book, &no_rule, 300);
    let reports = book.reports();
    let leak = &reports[0];
    assert_eq!(leak.verdict, Verdict::Leak);
    assert_eq!(leak.limit_kind, Some(LimitKind::Cgroup));
    assert_eq!(leak.limit_bytes, Some(1 << 30));
    let expected = ((1u64 << 30) - leak.level_bytes) as f64 / leak.slope_bytes_per_second;
    let ttl = leak.time_to_limit_s.expect("time to limit");
    assert!((ttl - expected).abs() < 5.0, "{ttl} vs {expected}");
    assert!(leak.first_detected_s.is_some_and(|at| at <= 180.0));
    let changes = book.take_changes();
    let to_leak: Vec<_> = changes.iter().filter(|c| c.to == Verdict::Leak).collect();
    assert_eq!(to_leak.len(), 2, "the process and its cgroup: {changes:#?}");
    assert!(book.take_changes().is_empty());

    // A kill rule at 512 MiB is nearer than the cgroup's 1 GiB.
    let mut book = TrendBook::new(&config(100));
    leaking(&mut book, &|_| Some(512 * MIB), 300);
    let process = book
        .reports()
        .into_iter()
        .find(|r| matches!(r.subject, Subject::Process { .. }))
        .expect("process");
    assert_eq!(process.limit_kind, Some(LimitKind::Rule));
    assert_eq!(process.limit_bytes, Some(512 * MIB));
}

#[test]
fn disabled_trends_track_nothing() {
    let mut book = TrendBook::new(&TrendsConfig {
        enabled: false,
        ..TrendsConfig::default()
    });
    leaking(&mut book, &no_rule, 10);
    assert!(book.is_empty());
}

#[test]
fn the_shipped_config_gives_the_default_detector() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/guardian.toml");
    let config = Config::load(&path).expect("shipped config");
    assert_eq!(Params::from(&config.trends), Params::default());
    assert_eq!(config.trends.min_growth, Bytes(8 * MIB));
}

#[test]
fn a_young_fast_riser_is_imminent_before_it_is_a_leak() {
    // The incident: 150 MiB at start, 30 MiB/min toward a 512 MiB cgroup limit.
    let mut book = TrendBook::new(&config(100));
    let mut model = Model::default();
    model.host = host(16 << 30, 8 << 30);
    for t in 0..=200u32 {
        let rss = 150 * MIB + (30.0 * MIB as f64 / 60.0 * f64::from(t)) as u64;
        let mut p = process(9, 90, rss);
        p.memory_cgroup = Some("/docker/api".into());
        model.replace_processes(vec![p]);
        model.replace_cgroups(vec![cgroup("/docker/api", rss, rss, Some(512 * MIB))]);
        book.observe(&model, f64::from(t), &no_rule);
    }
    let reports = book.reports();
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert!(report.imminent, "{report:?}");
        assert_ne!(
            report.verdict,
            Verdict::Leak,
            "cause and imminence are separate"
        );
        assert_eq!(report.limit_kind, Some(LimitKind::Cgroup));
        let ttl = report.time_to_limit_s.expect("time to limit");
        let left = (512 * MIB - report.level_bytes) as f64 / (30.0 * MIB as f64 / 60.0);
        assert!((ttl / left - 1.0).abs() < 0.1, "{ttl} vs {left}");
        assert!(report.imminent_since_s.is_some_and(|at| at <= 150.0));
    }
    let changes = book.take_imminence_changes();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert!(changes.iter().all(|change| change.imminent));
    assert!(book.take_imminence_changes().is_empty());
}
