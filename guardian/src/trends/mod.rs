//! Leak-slope trends: an online detector per process identity and per cgroup that sees
//! a leak coming long before the OOM killer does, without crying wolf on a garbage
//! collector's sawtooth or a warm-up (see [`detector`] for the statistics), the book of
//! every series the daemon tracks, and the replay of recorded traces (`guardian trend`).

mod book;
pub mod detector;
mod imminence;
mod params;
mod replay;
mod ring;
pub mod stats;
mod steps;
mod window;

pub use book::{ImminenceChange, LimitKind, Subject, TrendBook, TrendReport, VerdictChange};
pub use detector::{Detector, Params, Verdict};
pub use replay::{
    Change, HEADER, ImminentSpan, ReplayError, ReplayReport, Sample, parse_trace, read_trace,
    replay, replay_file,
};
pub use stats::Scratch;

use crate::config::TrendsConfig;

impl From<&TrendsConfig> for Params {
    fn from(config: &TrendsConfig) -> Self {
        Params {
            warmup_s: config.warmup.0.as_secs_f64(),
            min_growth_bytes: config.min_growth.0 as f64,
            warmup_rate: config.warmup_growth_per_minute.0 as f64 / 60.0,
            warmup_max_age_s: config.warmup_max_age.0.as_secs_f64(),
            slow_rate: config.slow_growth_per_minute.0 as f64 / 60.0,
            slow_window_s: config.slow_window.0.as_secs_f64(),
            imminence_horizon_s: config.imminence_horizon.0.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests;
