//! The detector's settings (from `[trends]` in the config) and what it says.

use serde::Serialize;

/// Fewest minima a window needs.
pub const MIN_POINTS: usize = 6;

/// Detector settings (from `[trends]` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Seconds after a process starts during which its samples are ignored.
    pub warmup_s: f64,
    /// Smallest growth over a window (at Sen's lower bound) called a leak, in bytes.
    pub min_growth_bytes: f64,
    /// Growth at least this fast (bytes/s, Sen's lower bound) in a young process is warm-up.
    pub warmup_rate: f64,
    /// How long a process counts as young, in seconds.
    pub warmup_max_age_s: f64,
    /// Slopes that may be below this (bytes/s) are a leak only over `slow_window_s`.
    pub slow_rate: f64,
    pub slow_window_s: f64,
    /// A series whose limit is this close (seconds at its current rise) is imminent.
    pub imminence_horizon_s: f64,
}

impl Default for Params {
    fn default() -> Self {
        const MIB: f64 = 1024.0 * 1024.0;
        Params {
            warmup_s: 60.0,
            min_growth_bytes: 8.0 * MIB,
            warmup_rate: 25.0 * MIB / 60.0,
            warmup_max_age_s: 600.0,
            slow_rate: 1.5 * MIB / 60.0,
            slow_window_s: 1500.0,
            imminence_horizon_s: 2700.0,
        }
    }
}

/// What the detector says about a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// In its first minute, or not enough minima yet.
    WarmingUp,
    /// No significant rise.
    Stable,
    /// Rising, but not (yet) a leak: warm-up, too little, levelling off, or too slow so far.
    Growing,
    /// A sustained, material rise; stays until a restart or 30 minutes without a rise.
    Leak,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::WarmingUp => "warming-up",
            Verdict::Stable => "stable",
            Verdict::Growing => "growing",
            Verdict::Leak => "leak",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
