//! Step-shaped growth: a JVM commits heap, an allocator maps an arena, a cache doubles,
//! and RSS jumps up and then sits flat for minutes. Window tests want a floor that rises
//! in a straight line and still rises in the window's last half, so a staircase passes
//! them only over many steps. Here the floor's jumps are found directly: a leak is a
//! staircase of at least [`MIN_STEPS`] jumps with no fall between them, whose steps keep
//! coming (the last one no older than its usual spacing allows) and whose envelope (the
//! level after each jump) rose by at least `min_growth`. Its slope is the envelope's.

use super::detector::Params;
use super::stats::Point;

/// Fewest jumps that make a staircase (two spacings to compare).
const MIN_STEPS: usize = 3;
/// A jump is at least this many times the floor's usual change between buckets...
const JUMP_NOISE: f64 = 8.0;
/// ...and at least this much (KiB): page-level noise is no step.
const MIN_JUMP_KIB: f64 = 1024.0;
/// The steps keep coming while the last is no older than this many times their mean
/// spacing (plus one bucket of slack).
const SPACING_SLACK: f64 = 1.5;

/// A staircase found in the fine minima.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Staircase {
    /// The envelope's slope, bytes/s.
    pub slope: f64,
    /// Time of the first jump (relative, like the points').
    pub from: f32,
    /// Time of the last jump.
    pub last: f32,
    pub jumps: usize,
}

/// Finds a still-climbing staircase in `points` (minima at a fixed spacing of
/// `bucket_s`, oldest first) that has grown by at least `params.min_growth_bytes`.
pub fn staircase(points: &[Point], bucket_s: f64, params: &Params) -> Option<Staircase> {
    if points.len() < MIN_STEPS + 2 {
        return None;
    }
    let diffs: Vec<f64> = points
        .windows(2)
        .map(|pair| f64::from(pair[1].kib) - f64::from(pair[0].kib))
        .collect();
    let mut magnitudes: Vec<f64> = diffs.iter().map(|diff| diff.abs()).collect();
    let middle = magnitudes.len() / 2;
    let usual = *magnitudes.select_nth_unstable_by(middle, f64::total_cmp).1;
    let jump = (JUMP_NOISE * usual).max(MIN_JUMP_KIB);
    // Only the climb since the last fall counts: a staircase never steps down.
    let start = diffs
        .iter()
        .rposition(|diff| *diff <= -jump)
        .map_or(0, |index| index + 1);
    let climb = &points[start..];
    let corners: Vec<Point> = climb
        .windows(2)
        .filter(|pair| f64::from(pair[1].kib) - f64::from(pair[0].kib) >= jump)
        .map(|pair| pair[1])
        .collect();
    let (first, last) = (corners.first()?, corners.last()?);
    if corners.len() < MIN_STEPS || last.t <= first.t {
        return None;
    }
    let spacing = f64::from(last.t - first.t) / (corners.len() - 1) as f64;
    let now = f64::from(points[points.len() - 1].t);
    if now - f64::from(last.t) > SPACING_SLACK * spacing + bucket_s {
        return None;
    }
    // The rise from before the first jump to after the last one: the first jump counts.
    let before = f64::from(climb[0].kib).min(f64::from(first.kib));
    let grown = (f64::from(last.kib) - before) * 1024.0;
    if grown < params.min_growth_bytes {
        return None;
    }
    let slope = (f64::from(last.kib) - f64::from(first.kib)) * 1024.0 / f64::from(last.t - first.t);
    if slope <= 0.0 {
        return None;
    }
    Some(Staircase {
        slope,
        from: first.t,
        last: last.t,
        jumps: corners.len(),
    })
}
