//! Robust trend statistics over window minima: the Mann-Kendall test (with the ties
//! correction, since a JVM's RSS sits on the same value for minutes), the Theil-Sen slope
//! and Sen's one-sided confidence bound on it. All of them are rank or median based, so a
//! window whose minimum missed a full garbage collection moves them little.

/// One point of a series: seconds since the series' origin and a value in KiB (4 TiB fits;
/// a KiB is far below any slope worth reporting).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Point {
    pub t: f32,
    pub kib: u32,
}

/// Reusable buffers, shared by every series of a book so a series carries none.
#[derive(Debug, Default)]
pub struct Scratch {
    slopes: Vec<f64>,
    values: Vec<u32>,
    /// Suffix sums of S; the detector takes it out while it tests the windows.
    pub(super) suffix: Vec<i64>,
}

/// The Mann-Kendall statistic S of a window and its variance under "no trend".
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannKendall {
    pub s: i64,
    pub var: f64,
}

impl MannKendall {
    /// The normal score of S, continuity-corrected; positive means rising.
    pub fn z(&self) -> f64 {
        if self.var <= 0.0 {
            return 0.0;
        }
        let s = self.s as f64;
        (s - s.signum()) / self.var.sqrt()
    }
}

/// Theil-Sen slope of a window with Sen's lower confidence bound, in KiB per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SenSlope {
    pub median: f64,
    pub lower: f64,
}

/// S of every suffix of `points` (`result[i]` is S over `points[i..]`), in one O(n^2)
/// pass: every window the detector tests ends now, so every window is a suffix.
pub fn suffix_s(points: &[Point], suffix: &mut Vec<i64>) {
    let n = points.len();
    suffix.clear();
    suffix.resize(n + 1, 0);
    for i in (0..n).rev() {
        let x = points[i].kib;
        let row: i64 = points[i + 1..]
            .iter()
            .map(|p| i64::from(p.kib > x) - i64::from(p.kib < x))
            .sum();
        suffix[i] = suffix[i + 1] + row;
    }
}

/// Variance of S for `points` under "no trend", corrected for tied values.
pub fn mk_variance(points: &[Point], scratch: &mut Scratch) -> f64 {
    let n = points.len() as f64;
    scratch.values.clear();
    scratch.values.extend(points.iter().map(|p| p.kib));
    scratch.values.sort_unstable();
    let mut ties = 0.0;
    for group in scratch.values.chunk_by(|a, b| a == b) {
        let t = group.len() as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
    }
    (n * (n - 1.0) * (2.0 * n + 5.0) - ties) / 18.0
}

/// Mann-Kendall over a whole window (tests and one-off checks; the detector uses
/// [`suffix_s`] to get every window at once).
pub fn mann_kendall(points: &[Point], scratch: &mut Scratch) -> MannKendall {
    let mut suffix = std::mem::take(&mut scratch.suffix);
    suffix_s(points, &mut suffix);
    let s = suffix.first().copied().unwrap_or(0);
    scratch.suffix = suffix;
    MannKendall {
        s,
        var: mk_variance(points, scratch),
    }
}

/// Theil-Sen slope (the median of all pairwise slopes) and Sen's lower bound at normal
/// score `z_bound` (1.28 is 90 % one-sided), given the window's S variance. `None` when
/// fewer than two distinct times.
pub fn theil_sen(
    points: &[Point],
    var_s: f64,
    z_bound: f64,
    scratch: &mut Scratch,
) -> Option<SenSlope> {
    let slopes = &mut scratch.slopes;
    slopes.clear();
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let dt = f64::from(b.t - a.t);
            if dt > 0.0 {
                slopes.push((f64::from(b.kib) - f64::from(a.kib)) / dt);
            }
        }
    }
    let n = slopes.len();
    if n == 0 {
        return None;
    }
    let median = median_f64(slopes);
    // Sen (1968): the lower limit is the M1-th smallest slope, M1 = (N - C) / 2,
    // C = z * sqrt(var S). Rounded down, so the bound errs low.
    let c = z_bound * var_s.max(0.0).sqrt();
    let m1 = ((n as f64 - c) / 2.0).floor();
    let lower = if m1 >= 1.0 {
        let k = (m1 as usize - 1).min(n - 1);
        *slopes.select_nth_unstable_by(k, f64::total_cmp).1
    } else {
        f64::NEG_INFINITY
    };
    Some(SenSlope { median, lower })
}

/// Median of `values` (reordered in place); 0 for an empty slice.
fn median_f64(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (left, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

/// Robust scatter (KiB) of `points` around a line of slope `slope` (KiB/s): 1.4826 times
/// the median absolute deviation of the residuals, a standard deviation for normal noise.
pub fn residual_scale_kib(points: &[Point], slope: f64, scratch: &mut Scratch) -> f64 {
    let residuals = &mut scratch.slopes;
    residuals.clear();
    residuals.extend(
        points
            .iter()
            .map(|p| f64::from(p.kib) - slope * f64::from(p.t)),
    );
    let center = median_f64(residuals);
    for residual in residuals.iter_mut() {
        *residual = (*residual - center).abs();
    }
    1.482_6 * median_f64(residuals)
}

/// The `q` quantile (0..1, nearest rank) of the values (KiB) of `points`; 0 when empty.
pub fn quantile_kib(points: &[Point], q: f64, scratch: &mut Scratch) -> f64 {
    let values = &mut scratch.values;
    values.clear();
    values.extend(points.iter().map(|p| p.kib));
    if values.is_empty() {
        return 0.0;
    }
    let rank = ((values.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    f64::from(*values.select_nth_unstable(rank).1)
}

/// One-sided confidence that a series rises, from a Mann-Kendall score: the standard
/// normal CDF (Abramowitz and Stegun 7.1.26, error below 2e-7).
pub fn confidence(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}
