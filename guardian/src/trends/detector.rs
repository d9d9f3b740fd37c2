//! The online leak detector of one series (a process identity or a cgroup).
//!
//! Garbage-collected runtimes saw their RSS up and down by hundreds of MiB; the troughs
//! right after a collection carry the leak. So the detector keeps window minima: 10 s
//! minima for the last 8 minutes and 60 s minima (with maxima, for the peak) for the last
//! 64 minutes, in fixed arrays. At every closed bucket it tests the windows ending now
//! (2 to 8 minutes on the fine minima, 10 to 64 minutes on the coarse ones, see
//! [`super::window`]): a leak is a significant (Mann-Kendall), material (Sen's lower
//! bound on the Theil-Sen slope), straight and still-going rise of the floor that is
//! neither a warm-up nor a slow creep.
//!
//! The first minute after the process starts (`warmup`) is ignored. A leak verdict stays
//! until the series restarts or a 30-minute window shows no rise at all, and its slope is
//! then measured from where the leak was first seen. A drop below a quarter of the last
//! minute's minima is a restart: the series starts over.

use super::params::MIN_POINTS;
pub use super::params::{Params, Verdict};
use super::ring::Ring;
use super::stats::{self, MannKendall, Point, Scratch};
use super::steps;
use super::window::{self, Context, Outcome, Rise};

/// 10 s minima over 8 minutes.
const FINE_S: f64 = 10.0;
const FINE_SLOTS: usize = 48;
/// 60 s minima and maxima over 64 minutes.
const COARSE_S: f64 = 60.0;
const COARSE_SLOTS: usize = 64;
/// Windows tested, ending now, in seconds: fine ones at every 10 s bucket, coarse ones at
/// every 60 s bucket.
const FINE_WINDOWS: [f64; 6] = [120.0, 180.0, 240.0, 300.0, 360.0, 480.0];
const COARSE_WINDOWS: [f64; 8] = [
    600.0,
    900.0,
    1200.0,
    1500.0,
    1800.0,
    2400.0,
    3000.0,
    LONGEST_WINDOW_S as f64,
];
/// The longest window tested (64 minutes; the config rejects a longer `slow_window`).
pub const LONGEST_WINDOW_S: u64 = crate::config::LONGEST_TREND_WINDOW_S;
/// A sample below this share of the last minute's minima is a restart.
const RESTART_FRACTION: f64 = 0.25;
/// A leak verdict is released only after this long, by a window this long with z below
/// `Z_RELEASE`.
const RELEASE_S: f64 = 1800.0;
const Z_RELEASE: f64 = 1.0;
/// "growing" is left only after this many quiet fine buckets (no flapping in the logs).
const GROWING_HOLD: u8 = 6;
/// Coarse buckets whose maxima make the recent peak (5 minutes).
const PEAK_BUCKETS: usize = 5;
/// The rise toward a limit is measured on the fine minima of this long, ending now.
const RISE_WINDOW_S: f64 = 240.0;
/// A rise whose last half is slower than this share of its first half levels off.
const DECELERATION: f64 = 0.6;

/// The minimum (and maximum) of the bucket being filled.
#[derive(Clone, Copy, Debug, Default)]
struct Open {
    index: u64,
    low: Point,
    high_kib: u32,
}

impl Open {
    fn new(index: u64, point: Point) -> Self {
        Open {
            index,
            low: point,
            high_kib: point.kib,
        }
    }

    fn add(&mut self, point: Point) {
        if point.kib < self.low.kib {
            self.low = point;
        }
        self.high_kib = self.high_kib.max(point.kib);
    }
}

/// The state of one series: about 1.3 KiB, no heap.
#[derive(Clone, Debug)]
pub struct Detector {
    /// When the process started (or the series restarted), on the caller's clock.
    start: f64,
    /// First sample past warm-up; points' times are relative to it.
    origin: Option<f64>,
    fine: Ring<Point, FINE_SLOTS>,
    coarse_low: Ring<Point, COARSE_SLOTS>,
    coarse_high: Ring<u32, COARSE_SLOTS>,
    open_fine: Open,
    open_coarse: Open,
    last: Option<(f64, u64)>,
    verdict: Verdict,
    slope: f64,
    confidence: f64,
    detected_at: Option<f64>,
    /// Where the window that found the leak began (relative time).
    anchor: f32,
    /// End of the last warm-up-fast rise while young (relative time), or -inf.
    fast_until: f32,
    quiet: u8,
    restarts: u32,
    /// The current rise of the floor (bytes/s, 0 when none): what a limit is approached at.
    rise: f64,
    /// How much more a slowing rise will add (bytes); None while it does not slow down.
    rise_left: Option<f64>,
}

impl Detector {
    /// A series of a process that started at `start` (same clock as the samples).
    pub fn new(start: f64) -> Self {
        Detector {
            start,
            origin: None,
            fine: Ring::default(),
            coarse_low: Ring::default(),
            coarse_high: Ring::default(),
            open_fine: Open::default(),
            open_coarse: Open::default(),
            last: None,
            verdict: Verdict::WarmingUp,
            slope: 0.0,
            confidence: 0.0,
            detected_at: None,
            anchor: 0.0,
            fast_until: f32::NEG_INFINITY,
            quiet: 0,
            restarts: 0,
            rise: 0.0,
            rise_left: None,
        }
    }

    /// Feeds one sample (time `t` in seconds, `bytes`); returns the verdict change it
    /// caused, if any. Samples not after the previous one are ignored.
    pub fn push(
        &mut self,
        t: f64,
        bytes: u64,
        params: &Params,
        scratch: &mut Scratch,
    ) -> Option<(Verdict, Verdict)> {
        if !t.is_finite() || self.last.is_some_and(|(last, _)| t <= last) {
            return None;
        }
        let before = self.verdict;
        if self.is_restart(bytes) {
            let restarts = self.restarts + 1;
            *self = Detector::new(t);
            self.restarts = restarts;
        }
        self.last = Some((t, bytes));
        if t - self.start >= params.warmup_s {
            self.add(t, bytes, params, scratch);
        }
        (self.verdict != before).then_some((before, self.verdict))
    }

    fn is_restart(&self, bytes: u64) -> bool {
        let recent = &self.fine.as_slice()[self.fine.len().saturating_sub(6)..];
        recent
            .iter()
            .map(|p| p.kib)
            .min()
            .is_some_and(|floor| (bytes as f64) < RESTART_FRACTION * f64::from(floor) * 1024.0)
    }

    /// Adds a sample past warm-up to the open buckets; closing a bucket tests the windows.
    fn add(&mut self, t: f64, bytes: u64, params: &Params, scratch: &mut Scratch) {
        let first = self.origin.is_none();
        let origin = *self.origin.get_or_insert(t);
        let rel = t - origin;
        let point = Point {
            t: rel as f32,
            kib: (bytes / 1024).min(u64::from(u32::MAX)) as u32,
        };
        let fine_index = (rel / FINE_S) as u64;
        let coarse_index = (rel / COARSE_S) as u64;
        if first {
            self.open_fine = Open::new(fine_index, point);
            self.open_coarse = Open::new(coarse_index, point);
            return;
        }
        let closed_coarse = coarse_index != self.open_coarse.index;
        if closed_coarse {
            self.coarse_low.push(self.open_coarse.low);
            self.coarse_high.push(self.open_coarse.high_kib);
            self.open_coarse = Open::new(coarse_index, point);
        } else {
            self.open_coarse.add(point);
        }
        if fine_index != self.open_fine.index {
            self.fine.push(self.open_fine.low);
            self.open_fine = Open::new(fine_index, point);
            self.evaluate(t, rel, closed_coarse, params, scratch);
        } else {
            self.open_fine.add(point);
        }
    }

    /// Tests the windows after a bucket closed at `now` (`rel` seconds after the origin).
    fn evaluate(
        &mut self,
        now: f64,
        rel: f64,
        closed_coarse: bool,
        params: &Params,
        scratch: &mut Scratch,
    ) {
        (self.rise, self.rise_left) = self.current_rise(rel, scratch);
        if self.verdict == Verdict::Leak {
            if closed_coarse {
                self.refresh_leak(now, rel, scratch);
            }
            return;
        }
        let young = now - self.start < params.warmup_max_age_s;
        if young && self.grew_fast(params, scratch) {
            self.fast_until = self.fine.last().map_or(self.fast_until, |p| p.t);
        }
        let mut growing = None;
        let mut found = self.scan(false, rel, young, params, scratch, &mut growing);
        if found.is_none() && closed_coarse {
            found = self.scan(true, rel, young, params, scratch, &mut growing);
        }
        if found.is_none() {
            found = self.stairs(young, params, scratch);
        }
        if let Some(rise) = found {
            self.verdict = Verdict::Leak;
            self.detected_at = Some(now);
            self.anchor = rise.from;
            self.set_rise(rise);
        } else if let Some(rise) = growing {
            self.verdict = Verdict::Growing;
            self.quiet = 0;
            self.set_rise(rise);
        } else {
            if self.verdict != Verdict::Growing || self.quiet >= GROWING_HOLD {
                self.verdict = Verdict::Stable;
            }
            self.quiet = self.quiet.saturating_add(1);
            if closed_coarse {
                self.long_run_slope(scratch);
            }
        }
    }

    /// The rise of the floor over the last [`RISE_WINDOW_S`] (bytes/s) and, when it slows
    /// down, how much more it will rise (bytes), whatever the verdict; `(0, None)` unless
    /// the window rises significantly (Mann-Kendall and Sen's lower bound). The rise is
    /// the lower of the whole window's and its last half's Theil-Sen slopes. A warm-up
    /// levels off like `1 - exp(-t/tau)`: when the last half rises at less than
    /// [`DECELERATION`] of the first half's slope, their ratio gives tau, and the rise
    /// left is the last half's slope times tau.
    fn current_rise(&self, rel: f64, scratch: &mut Scratch) -> (f64, Option<f64>) {
        let points = self.fine.as_slice();
        let window = &points[points.partition_point(|p| f64::from(p.t) < rel - RISE_WINDOW_S)..];
        if window.len() < MIN_POINTS {
            return (0.0, None);
        }
        let mk = stats::mann_kendall(window, scratch);
        if mk.z() < window::Z_MIN {
            return (0.0, None);
        }
        let Some(whole) = stats::theil_sen(window, mk.var, window::Z_BOUND, scratch)
            .filter(|sen| sen.lower > 0.0)
        else {
            return (0.0, None);
        };
        let half = (window.len() / 2).max(MIN_POINTS / 2);
        let mut slope_of = |part: &[Point]| {
            let mk = stats::mann_kendall(part, scratch);
            stats::theil_sen(part, mk.var, window::Z_BOUND, scratch).map_or(0.0, |sen| sen.median)
        };
        let (first, last) = (&window[..half], &window[window.len() - half..]);
        let (early, recent) = (slope_of(first), slope_of(last));
        let rise = whole.median.min(recent).max(0.0) * 1024.0;
        let centre =
            |part: &[Point]| part.iter().map(|p| f64::from(p.t)).sum::<f64>() / part.len() as f64;
        let gap = centre(last) - centre(first);
        let left = (early > 0.0 && recent < DECELERATION * early && gap > 0.0).then(|| {
            let tau = gap / (early / recent.max(early * 1e-3)).ln();
            recent.max(0.0) * 1024.0 * tau
        });
        (rise, left)
    }

    /// A staircase of the fine minima since the last warm-up-fast rise settled (see
    /// [`steps`]); a young process stepping up warm-up-fast is warming up instead.
    fn stairs(&mut self, young: bool, params: &Params, scratch: &mut Scratch) -> Option<Rise> {
        let points = self.fine.as_slice();
        let settled = self.fast_until + window::SETTLE_S;
        let since = &points[points.partition_point(|p| p.t < settled)..];
        let stairs = steps::staircase(since, FINE_S, params)?;
        if young && stairs.slope >= params.warmup_rate {
            self.fast_until = self.fast_until.max(stairs.last);
            return None;
        }
        let climb = &since[since.partition_point(|p| p.t < stairs.from)..];
        let z = stats::mann_kendall(climb, scratch).z();
        Some(Rise {
            slope: stairs.slope,
            z,
            from: stairs.from,
        })
    }

    /// Whether the whole fine history, however short, rose at least at `warmup_rate`
    /// (Sen's lower bound): a runtime sizing up right after start-up, before any window
    /// is full.
    fn grew_fast(&self, params: &Params, scratch: &mut Scratch) -> bool {
        let points = self.fine.as_slice();
        if points.len() < 4 {
            return false;
        }
        let mk = stats::mann_kendall(points, scratch);
        mk.z() >= window::Z_MIN
            && stats::theil_sen(points, mk.var, window::Z_BOUND, scratch)
                .is_some_and(|sen| sen.lower * 1024.0 >= params.warmup_rate)
    }

    fn set_rise(&mut self, rise: Rise) {
        self.slope = rise.slope;
        self.confidence = stats::confidence(rise.z);
    }

    /// Tests the windows of one history, shortest first; returns the first leak and
    /// leaves the longest merely growing window in `growing`.
    fn scan(
        &mut self,
        coarse: bool,
        rel: f64,
        young: bool,
        params: &Params,
        scratch: &mut Scratch,
        growing: &mut Option<Rise>,
    ) -> Option<Rise> {
        let (points, windows): (&[Point], &[f64]) = if coarse {
            (self.coarse_low.as_slice(), &COARSE_WINDOWS)
        } else {
            (self.fine.as_slice(), &FINE_WINDOWS)
        };
        if points.len() < MIN_POINTS {
            return None;
        }
        let mut suffix = std::mem::take(&mut scratch.suffix);
        stats::suffix_s(points, &mut suffix);
        let mut found = None;
        for &window in windows {
            if rel - window < -1e-6 {
                break;
            }
            let from = points.partition_point(|p| f64::from(p.t) < rel - window);
            let slice = &points[from..];
            if slice.len() < MIN_POINTS || suffix[from] <= 0 {
                continue;
            }
            let mk = MannKendall {
                s: suffix[from],
                var: stats::mk_variance(slice, scratch),
            };
            let context = Context {
                params,
                window,
                young,
                fast_until: self.fast_until,
            };
            let (outcome, fast) = window::classify(slice, mk, &context, scratch);
            if fast {
                self.fast_until = self.fast_until.max(slice[slice.len() - 1].t);
            }
            match outcome {
                Outcome::Leak(rise) => {
                    found = Some(rise);
                    break;
                }
                Outcome::Growing(rise) => *growing = Some(rise),
                Outcome::Flat => {}
            }
        }
        scratch.suffix = suffix;
        found
    }

    /// Once a leak: measures the slope from the start of the window that found it to now
    /// (a long window measures a steady leak best; a leak that began late is not diluted
    /// by the flat time before it), and releases the verdict after 30 minutes that show
    /// no rise at all.
    fn refresh_leak(&mut self, now: f64, rel: f64, scratch: &mut Scratch) {
        let fine = self.fine.as_slice();
        let points = if fine.first().is_some_and(|p| p.t <= self.anchor) {
            fine
        } else {
            self.coarse_low.as_slice()
        };
        let since = &points[points.partition_point(|p| p.t < self.anchor)..];
        if since.len() >= MIN_POINTS {
            let mk = stats::mann_kendall(since, scratch);
            if let Some(sen) = stats::theil_sen(since, mk.var, window::Z_BOUND, scratch)
                && sen.median > 0.0
            {
                self.slope = sen.median * 1024.0;
                self.confidence = stats::confidence(mk.z());
            }
        }
        let held_for = self.detected_at.map_or(0.0, |at| now - at);
        if held_for >= RELEASE_S && rel >= RELEASE_S {
            let points = self.coarse_low.as_slice();
            let recent = &points[points.partition_point(|p| f64::from(p.t) < rel - RELEASE_S)..];
            if recent.len() >= MIN_POINTS && stats::mann_kendall(recent, scratch).z() < Z_RELEASE {
                self.verdict = Verdict::Stable;
                self.detected_at = None;
                self.long_run_slope(scratch);
            }
        }
    }

    /// Slope and confidence of a stable series: Theil-Sen over its whole history.
    fn long_run_slope(&mut self, scratch: &mut Scratch) {
        let points = if self.coarse_low.len() >= MIN_POINTS {
            self.coarse_low.as_slice()
        } else {
            self.fine.as_slice()
        };
        let mk = stats::mann_kendall(points, scratch);
        if let Some(sen) = stats::theil_sen(points, mk.var, window::Z_BOUND, scratch) {
            self.slope = sen.median * 1024.0;
            self.confidence = stats::confidence(mk.z());
        }
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Bytes per second: the leak's or the rise's slope, else the long-run slope.
    pub fn slope(&self) -> f64 {
        self.slope
    }

    /// One-sided Mann-Kendall confidence (0..1) that the series rises, over the window
    /// behind the verdict.
    pub fn confidence(&self) -> f64 {
        self.confidence
    }

    /// When the current leak verdict was first reached (caller's clock).
    pub fn detected_at(&self) -> Option<f64> {
        self.detected_at
    }

    /// When the series started (the process start, or the restart).
    pub fn start(&self) -> f64 {
        self.start
    }

    /// Restarts seen (RSS dropping to a start level).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The last sample, bytes.
    pub fn level(&self) -> u64 {
        self.last.map_or(0, |(_, bytes)| bytes)
    }

    /// The highest sample of the last 5 minutes (the sawtooth's peaks reach a limit
    /// first), bytes.
    pub fn peak(&self) -> u64 {
        let highs = self.coarse_high.as_slice();
        let recent = highs[highs.len().saturating_sub(PEAK_BUCKETS)..].iter();
        let open = self.origin.map(|_| self.open_coarse.high_kib);
        let peak_kib = recent.copied().chain(open).max().unwrap_or(0);
        (u64::from(peak_kib) * 1024).max(self.level())
    }

    /// The current rise of the floor over the last 4 minutes (bytes/s), whatever the
    /// verdict; 0 when memory is not rising significantly.
    pub fn rise(&self) -> f64 {
        self.rise
    }

    /// What a limit is approached at (bytes/s): the leak's slope or the current rise,
    /// whichever is faster (0: not approaching).
    pub fn approach(&self) -> f64 {
        let leak = if self.verdict == Verdict::Leak {
            self.slope
        } else {
            0.0
        };
        leak.max(self.rise)
    }

    /// Seconds until the peaks reach a limit `headroom` bytes above the current level, at
    /// [`Detector::approach`]; None while memory does not approach it, or when a rise
    /// that levels off (and no leak) stops short of it.
    pub fn time_to_limit(&self, headroom: u64) -> Option<f64> {
        let approach = self.approach();
        if approach <= 0.0 {
            return None;
        }
        let swing = self.peak().saturating_sub(self.level());
        let room = headroom.saturating_sub(swing) as f64;
        let leak = self.verdict == Verdict::Leak && self.slope > 0.0;
        if !leak && self.rise_left.is_some_and(|left| left < room) {
            return None;
        }
        Some(room / approach)
    }
}
