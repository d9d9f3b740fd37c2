//! Unit tests of the trend statistics, the detector and the trace reader; the acceptance
//! on every recorded and synthetic trace is in `acceptance`, the book in `book`.

mod acceptance;
mod book;

use std::path::Path;

use super::detector::{Detector, Params, Verdict};
use super::replay::{ReplayError, parse_trace, replay};
use super::ring::Ring;
use super::stats::{self, Point, Scratch};

const MIB: f64 = 1024.0 * 1024.0;

fn points(values: &[u32]) -> Vec<Point> {
    values
        .iter()
        .enumerate()
        .map(|(i, &kib)| Point {
            t: i as f32 * 10.0,
            kib,
        })
        .collect()
}

#[test]
fn mann_kendall_counts_pairs_and_corrects_for_ties() {
    let mut scratch = Scratch::default();
    let rising = stats::mann_kendall(&points(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), &mut scratch);
    assert_eq!(rising.s, 45);
    assert!((rising.var - 125.0).abs() < 1e-9);
    assert!((rising.z() - 44.0 / 125f64.sqrt()).abs() < 1e-9);
    let tied = stats::mann_kendall(&points(&[1, 1, 2, 2]), &mut scratch);
    assert_eq!(tied.s, 4);
    assert!((tied.var - 120.0 / 18.0).abs() < 1e-9);
    let falling = stats::mann_kendall(&points(&[5, 4, 3, 2, 1]), &mut scratch);
    assert!(falling.z() < 0.0);
    assert_eq!(stats::mann_kendall(&points(&[7; 8]), &mut scratch).z(), 0.0);
}

#[test]
fn suffix_s_gives_every_window_ending_now() {
    let series = points(&[3, 1, 4, 1, 5, 9, 2, 6]);
    let mut suffix = Vec::new();
    stats::suffix_s(&series, &mut suffix);
    let mut scratch = Scratch::default();
    for from in 0..series.len() {
        assert_eq!(
            suffix[from],
            stats::mann_kendall(&series[from..], &mut scratch).s,
            "window from {from}"
        );
    }
}

#[test]
fn theil_sen_shrugs_off_a_missed_collection() {
    let mut scratch = Scratch::default();
    // 2 KiB/s, with one minimum that missed a full collection (far above the line).
    let mut line: Vec<u32> = (0..12).map(|i| 1000 + 20 * i).collect();
    line[7] += 5000;
    let series = points(&line);
    let mk = stats::mann_kendall(&series, &mut scratch);
    let sen = stats::theil_sen(&series, mk.var, 1.28, &mut scratch).expect("slope");
    assert!((sen.median - 2.0).abs() < 1e-9, "{sen:?}");
    assert!(sen.lower <= sen.median && sen.lower > 1.5, "{sen:?}");
    assert!(stats::theil_sen(&series[..1], 0.0, 1.28, &mut scratch).is_none());
}

#[test]
fn helpers_quantile_scatter_and_confidence() {
    let mut scratch = Scratch::default();
    let series = points(&[50, 10, 40, 20, 30]);
    assert_eq!(stats::quantile_kib(&series, 0.0, &mut scratch), 10.0);
    assert_eq!(stats::quantile_kib(&series, 0.5, &mut scratch), 30.0);
    assert_eq!(stats::quantile_kib(&series, 1.0, &mut scratch), 50.0);
    let line = points(&[100, 110, 120, 130]);
    assert_eq!(stats::residual_scale_kib(&line, 1.0, &mut scratch), 0.0);
    assert!((stats::confidence(0.0) - 0.5).abs() < 1e-7);
    assert!((stats::confidence(1.96) - 0.975).abs() < 1e-4);
    assert!((stats::confidence(-1.96) - 0.025).abs() < 1e-4);
}

#[test]
fn ring_keeps_the_newest_in_order() {
    let mut ring: Ring<u32, 3> = Ring::default();
    for i in 0..5 {
        ring.push(i);
    }
    assert_eq!(ring.as_slice(), &[2, 3, 4]);
    assert_eq!(ring.last(), Some(&4));
    assert_eq!(ring.len(), 3);
}

/// Feeds `rss(t)` every `step` seconds from 0 to `until`; returns the detector and when
/// it first said "leak".
fn run(rss: impl Fn(f64) -> f64, step: f64, until: f64) -> (Detector, Option<f64>) {
    let params = Params::default();
    let mut scratch = Scratch::default();
    let mut detector = Detector::new(0.0);
    let mut first = None;
    let mut t = 0.0;
    while t <= until {
        if let Some((_, Verdict::Leak)) = detector.push(t, rss(t) as u64, &params, &mut scratch) {
            first.get_or_insert(t);
        }
        t += step;
    }
    (detector, first)
}

/// A small sawtooth: 30 MiB of garbage collected every 7 s.
fn sawtooth(t: f64) -> f64 {
    (t % 7.0) / 7.0 * 30.0 * MIB
}

#[test]
fn warm_up_is_ignored_and_a_flat_heap_is_stable() {
    let (detector, first) = run(|t| 200.0 * MIB + sawtooth(t), 1.0, 50.0);
    assert_eq!(detector.verdict(), Verdict::WarmingUp);
    assert_eq!(first, None);
    let (detector, first) = run(|t| 200.0 * MIB + sawtooth(t), 1.0, 3600.0);
    assert_eq!(detector.verdict(), Verdict::Stable);
    assert_eq!(first, None);
    assert!(detector.slope().abs() < 1000.0, "{}", detector.slope());
    assert_eq!(detector.time_to_limit(1 << 30), None);
}

#[test]
fn a_clean_10mb_per_minute_leak_is_flagged_within_three_minutes() {
    let rate = 10e6 / 60.0;
    let (detector, first) = run(|t| 150e6 + rate * t + sawtooth(t), 1.0, 900.0);
    let first = first.expect("leak found");
    assert!(first <= 180.0, "found at {first}");
    assert_eq!(detector.verdict(), Verdict::Leak);
    assert!(
        (detector.slope() / rate - 1.0).abs() < 0.02,
        "{}",
        detector.slope()
    );
    // Time-to-limit counts from the peaks: 100 MiB of room less the sawtooth's swing.
    let ttl = detector.time_to_limit(100 << 20).expect("time to limit");
    let swing = (detector.peak() - detector.level()) as f64;
    assert!((ttl - (100.0 * MIB - swing) / detector.slope()).abs() < 1e-6);
}

#[test]
fn any_regular_interval_works() {
    let rate = 10e6 / 60.0;
    for step in [5.0, 30.0] {
        let (detector, first) = run(|t| 150e6 + rate * t, step, 1800.0);
        assert!(first.is_some_and(|t| t <= 600.0), "step {step}: {first:?}");
        assert!((detector.slope() / rate - 1.0).abs() < 0.02, "step {step}");
    }
}

#[test]
fn fast_warm_up_and_slow_creep_are_growing_not_leaks() {
    // 200 MiB cached in 4 minutes after start-up, then flat.
    let plateau = |t: f64| 100.0 * MIB + 200.0 * MIB * ((t - 60.0).clamp(0.0, 240.0) / 240.0);
    let (_, first) = run(|t| plateau(t) + sawtooth(t), 1.0, 3600.0);
    assert_eq!(first, None);
    // 1 MB/min for 15 minutes, then flat.
    let creep = |t: f64| 100e6 + 1e6 / 60.0 * (t - 60.0).clamp(0.0, 840.0);
    let (detector, first) = run(|t| creep(t) + sawtooth(t), 1.0, 3600.0);
    assert_eq!(first, None);
    assert_ne!(detector.verdict(), Verdict::Leak);
}

#[test]
fn the_verdict_stays_through_a_pause_and_is_released_after_30_quiet_minutes() {
    // Leaks 10 MB/min for 10 minutes, then stops.
    let rss = |t: f64| 150e6 + 10e6 / 60.0 * t.min(600.0) + sawtooth(t);
    let (detector, first) = run(rss, 1.0, 1800.0);
    assert!(first.is_some());
    assert_eq!(
        detector.verdict(),
        Verdict::Leak,
        "stays while the pause is short"
    );
    let (detector, _) = run(rss, 1.0, 3000.0);
    assert_eq!(
        detector.verdict(),
        Verdict::Stable,
        "released after 30 quiet minutes"
    );
}

#[test]
fn a_drop_to_the_start_level_is_a_restart() {
    let params = Params::default();
    let mut scratch = Scratch::default();
    let mut detector = Detector::new(0.0);
    let leak = |t: f64| 150e6 + 10e6 / 60.0 * t;
    for t in 0..=400 {
        detector.push(
            f64::from(t),
            leak(f64::from(t)) as u64,
            &params,
            &mut scratch,
        );
    }
    assert_eq!(detector.verdict(), Verdict::Leak);
    let change = detector.push(401.0, 10 << 20, &params, &mut scratch);
    assert_eq!(change, Some((Verdict::Leak, Verdict::WarmingUp)));
    assert_eq!((detector.restarts(), detector.start()), (1, 401.0));
    assert_eq!(detector.detected_at(), None);
    // Out of order or repeated times are ignored.
    assert_eq!(detector.push(401.0, 1, &params, &mut scratch), None);
    assert_eq!(detector.push(f64::NAN, 1, &params, &mut scratch), None);
    assert_eq!(detector.level(), 10 << 20);
}

#[test]
fn trace_rows_are_checked_and_errors_name_file_and_line() {
    let path = Path::new("trace.csv");
    let ok = parse_trace(path, "\u{feff}t_s, rss_bytes\r\n0,100\r\n\r\n1.5,200\r\n").expect("ok");
    assert_eq!(ok.len(), 2);
    assert_eq!((ok[1].t, ok[1].bytes), (1.5, 200));
    let error = |text: &str| parse_trace(path, text).expect_err(text).to_string();
    assert!(error("time,rss\n0,1\n").starts_with("trace.csv:1: expected the header"));
    assert!(error("t_s,rss_bytes\n0,1\nx,2\n").starts_with("trace.csv:3: t_s is not a number"));
    assert!(error("t_s,rss_bytes\n0,1\n1,2.5\n").contains(":3: rss_bytes is not a whole"));
    assert!(error("t_s,rss_bytes\n0,1\n1,2,3\n").contains(":3: expected two fields"));
    assert!(error("t_s,rss_bytes\n0,1\n0,2\n").contains(":3: time 0 is not after"));
    assert!(error("t_s,rss_bytes\n").contains("no samples"));
    assert!(matches!(
        parse_trace(path, "").expect_err("empty"),
        ReplayError::Empty { .. }
    ));
}

#[test]
fn replay_reports_time_to_limit_against_a_given_limit() {
    let samples: Vec<_> = (0..=900)
        .map(|t| super::Sample {
            t: f64::from(t),
            bytes: (150e6 + 10e6 / 60.0 * f64::from(t)) as u64,
        })
        .collect();
    let report = replay(&samples, &Params::default(), Some(512 << 20));
    assert_eq!(report.verdict, Verdict::Leak);
    let expected = ((512u64 << 20) - report.level_bytes) as f64 / report.slope_bytes_per_second;
    let ttl = report.time_to_limit_s.expect("time to limit");
    assert!((ttl - expected).abs() < 1.0, "{ttl} vs {expected}");
    assert!(
        replay(&samples, &Params::default(), None)
            .time_to_limit_s
            .is_none()
    );
}

#[test]
fn a_staircase_that_keeps_stepping_is_a_leak_and_one_that_stopped_is_not() {
    use super::steps::staircase;
    let params = Params::default();
    // 10 s minima of a heap committing 8 MiB every 90 s (about 5.3 MiB/min).
    let stairs: Vec<u32> = (0..40)
        .map(|i| 200 * 1024 + (i / 9) * 8 * 1024 + (i % 3) * 4)
        .collect();
    let found = staircase(&points(&stairs), 10.0, &params).expect("a staircase");
    assert_eq!(found.jumps, 4);
    let slope = found.slope * 60.0 / MIB;
    assert!((slope - 8.0 * 60.0 / 90.0).abs() < 0.3, "{slope} MiB/min");
    // The same steps, then 6 flat minutes: the steps stopped coming.
    let stopped: Vec<u32> = stairs.iter().copied().chain([stairs[39]; 36]).collect();
    assert_eq!(staircase(&points(&stopped), 10.0, &params), None);
    // A sawtooth's minima jump both ways: no staircase.
    let sawtooth: Vec<u32> = (0..40)
        .map(|i| 200 * 1024 + if i % 4 == 0 { 30 * 1024 } else { (i % 3) * 512 })
        .collect();
    assert_eq!(staircase(&points(&sawtooth), 10.0, &params), None);
}

#[test]
fn imminence_starts_at_once_and_ends_after_30_quiet_seconds() {
    use super::imminence::Watch;
    let mut watch = Watch::default();
    assert_eq!(watch.update(0.0, Some(4000.0), 2700.0), None);
    assert_eq!(watch.update(1.0, Some(900.0), 2700.0), Some(true));
    assert_eq!(watch.since(), Some(1.0));
    // A blip (no rise for 20 s) does not end it.
    assert_eq!(watch.update(10.0, None, 2700.0), None);
    assert_eq!(watch.update(30.0, Some(800.0), 2700.0), None);
    assert_eq!(watch.update(40.0, None, 2700.0), None);
    assert_eq!(watch.update(70.0, Some(5000.0), 2700.0), Some(false));
    assert!(!watch.is_imminent());
}

#[test]
fn a_warm_up_that_levels_off_stops_short_of_its_limit() {
    // 150 MiB, +120 MiB with a 60 s time constant after start-up, then flat; the limit
    // is 512 MiB: imminent at most while it rises fast, never at the end.
    let samples: Vec<_> = (0..900)
        .map(|t| {
            let t = f64::from(t);
            let warm = 120.0 * (1.0 - (-(t - 60.0).max(0.0) / 60.0).exp());
            super::replay::Sample {
                t,
                bytes: ((150.0 + warm) * MIB) as u64,
            }
        })
        .collect();
    let report = replay(&samples, &Params::default(), Some(512 << 20));
    assert_ne!(report.verdict, Verdict::Leak, "{report:?}");
    assert_eq!(report.time_to_limit_s, None, "{report:?}");
    assert!(
        report
            .imminent
            .iter()
            .all(|span| span.to_s.is_some_and(|to| to - span.from_s < 300.0)),
        "{:?}",
        report.imminent
    );
}
