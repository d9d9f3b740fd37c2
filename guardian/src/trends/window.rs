//! The leak test of one window of minima ending now. Every threshold here was set against
//! the real Node.js and Java traces and synthetic GC sawtooth traces (hundreds of
//! series-hours of healthy ones, see the trends tests and `tests/fixtures/traces`).

use super::params::{MIN_POINTS, Params};
use super::stats::{self, MannKendall, Point, Scratch};

/// Mann-Kendall z for a likely rise (one-sided p < 0.023), for a significant one
/// (p < 0.0014) and for an overwhelming one (p < 3e-5).
pub const Z_MIN: f64 = 2.0;
const Z_SIGNIFICANT: f64 = 3.0;
const Z_STRONG: f64 = 4.0;
/// Normal score of Sen's lower bound on the slope (90 % one-sided).
pub const Z_BOUND: f64 = 1.28;
/// A clean window (minima close to their line) needs a growth this many times their
/// scatter; clean windows only up to this length (longer ones have enough minima for z).
const CLEAN_SCATTER: f64 = 4.5;
const CLEAN_MAX_WINDOW: f64 = 480.0;
/// Each third of a window is summed up by this quantile of its minima: low, because a
/// minimum that missed a full collection sits high, yet not the lowest, which may be a dip.
const THIRDS_QUANTILE: f64 = 0.1;
/// The floor's rise from the first third to the last must be at least this share of the
/// fitted rise between them...
const FLOOR_SHARE: f64 = 0.5;
/// ...and each third-to-third rise at least this share of the other.
const LAMBDA: f64 = 0.4;
/// The last half's own slope must be at least this share of the window's; when the last
/// half holds this many minima over this long, it must also rise significantly by itself.
const KAPPA: f64 = 0.5;
const RECENT_TESTABLE_POINTS: usize = 10;
const RECENT_TESTABLE_S: f32 = 300.0;
/// After warm-up-fast growth, leak windows begin this long after it (the tail of a cache
/// filling up still rises for a while).
pub const SETTLE_S: f32 = 120.0;
/// A warm-up levels off within minutes (real Node.js and Java caches fill in about 4):
/// a window this long that rose warm-up-fast all along, straight and still rising at its
/// end, is a leak however young (the incident: 30 MiB/min from 150 MiB toward a 512 MiB limit).
const WARMUP_MAX_RISE_S: f64 = 360.0;

/// A window that rose significantly: its slope (bytes/s), score and first minimum's time.
#[derive(Clone, Copy, Debug)]
pub struct Rise {
    pub slope: f64,
    pub z: f64,
    pub from: f32,
}

/// What a window shows.
pub enum Outcome {
    /// No significant rise.
    Flat,
    /// A significant rise that is not a leak (yet).
    Growing(Rise),
    Leak(Rise),
}

/// What the series knows beyond the window.
pub struct Context<'a> {
    pub params: &'a Params,
    /// The window's length, seconds.
    pub window: f64,
    /// Whether the process is younger than `warmup_max_age`.
    pub young: bool,
    /// End of the last warm-up-fast rise (relative time), or -inf.
    pub fast_until: f32,
}

/// Tests one window (`points` in time order, `mk` its Mann-Kendall statistic). Also says
/// whether the window rose warm-up-fast, which the caller remembers.
pub fn classify(
    points: &[Point],
    mk: MannKendall,
    context: &Context<'_>,
    scratch: &mut Scratch,
) -> (Outcome, bool) {
    let params = context.params;
    let z = mk.z();
    if z < Z_MIN || points.len() < 2 {
        return (Outcome::Flat, false);
    }
    let Some(sen) = stats::theil_sen(points, mk.var, Z_BOUND, scratch) else {
        return (Outcome::Flat, false);
    };
    let (slope, lower) = (sen.median * 1024.0, sen.lower * 1024.0);
    if slope <= 0.0 {
        return (Outcome::Flat, false);
    }
    let fast = context.young && lower >= params.warmup_rate;
    let n = points.len();
    let span = f64::from(points[n - 1].t - points[0].t);
    let rise = Rise {
        slope,
        z,
        from: points[0].t,
    };
    if !is_material(points, z, sen, span, context, scratch) {
        return (Outcome::Growing(rise), fast);
    }
    // The floor (a low quantile of each third's minima) must rise with the fitted slope
    // and in a straight line: neither levelling off (concave: warm-up) nor jumping at the
    // end (convex: a few minima in a row that missed a full collection).
    let k = n / 3;
    let m1 = stats::quantile_kib(&points[..k], THIRDS_QUANTILE, scratch) * 1024.0;
    let m2 = stats::quantile_kib(&points[k..n - k], THIRDS_QUANTILE, scratch) * 1024.0;
    let m3 = stats::quantile_kib(&points[n - k..], THIRDS_QUANTILE, scratch) * 1024.0;
    let floor_follows = m3 - m1 >= FLOOR_SHARE * slope * span * 2.0 / 3.0;
    let straight = m3 - m2 >= LAMBDA * (m2 - m1) && m2 - m1 >= LAMBDA * (m3 - m2);
    let sustained = fast && context.window >= WARMUP_MAX_RISE_S;
    let warm_up = !sustained && (fast || points[0].t < context.fast_until + SETTLE_S);
    // A heap creeping to its working size looks like a slow leak for a while: a slope
    // that may be below `slow_rate` (by Sen's bound or by the floor) needs a long window.
    let floor_slope = (m3 - m1) / (span * 2.0 / 3.0);
    let slow = lower.min(floor_slope) < params.slow_rate && context.window < params.slow_window_s;
    if !floor_follows || !straight || warm_up || slow || !still_rising(points, slope, scratch) {
        return (Outcome::Growing(rise), fast);
    }
    (Outcome::Leak(rise), fast)
}

/// Whether the growth (Sen's lower bound times the span) is worth a leak: at least
/// `min_growth` with overwhelming evidence, or with significant evidence in a window
/// whose minima hug their line, or twice `min_growth` on likely evidence.
fn is_material(
    points: &[Point],
    z: f64,
    sen: stats::SenSlope,
    span: f64,
    context: &Context<'_>,
    scratch: &mut Scratch,
) -> bool {
    let min_growth = context.params.min_growth_bytes;
    let growth = sen.lower * 1024.0 * span;
    if growth >= 2.0 * min_growth {
        return true;
    }
    if growth < min_growth || z < Z_SIGNIFICANT {
        return false;
    }
    z >= Z_STRONG
        || (context.window <= CLEAN_MAX_WINDOW
            && growth
                >= CLEAN_SCATTER * stats::residual_scale_kib(points, sen.median, scratch) * 1024.0)
}

/// Whether the last half of the window still rises at a good share of the whole's slope.
fn still_rising(points: &[Point], slope: f64, scratch: &mut Scratch) -> bool {
    let n = points.len();
    let recent = &points[n - (n / 2).max(MIN_POINTS).min(n)..];
    let mk = stats::mann_kendall(recent, scratch);
    let recent_slope =
        stats::theil_sen(recent, mk.var, Z_BOUND, scratch).map_or(0.0, |sen| sen.median * 1024.0);
    let recent_span = recent[recent.len() - 1].t - recent[0].t;
    let testable = recent.len() >= RECENT_TESTABLE_POINTS && recent_span >= RECENT_TESTABLE_S;
    recent_slope >= KAPPA * slope && (!testable || mk.z() >= Z_MIN)
}
