//! Replays a recorded trace (`t_s,rss_bytes`, any regular interval) through the same
//! detector the daemon runs: `guardian trend --csv FILE`, the trend tests and the eval.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::detector::{Detector, Params, Verdict};
use super::imminence::Watch;
use super::stats::Scratch;

/// The header a trace file starts with.
pub const HEADER: &str = "t_s,rss_bytes";

/// Why a trace cannot be replayed; each names the file and, for bad rows, the line.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The I/O error is part of the message, not a `source`, so it is printed once.
    #[error("cannot read trace {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: expected the header `{HEADER}`, found {found:?}")]
    Header {
        path: PathBuf,
        line: usize,
        found: String,
    },
    #[error("{path}:{line}: {reason} in {text:?}; rows are `seconds,bytes`, e.g. `12.5,104857600`")]
    Row {
        path: PathBuf,
        line: usize,
        reason: &'static str,
        text: String,
    },
    #[error(
        "{path}:{line}: time {t} is not after the previous row's {previous}; samples must be in time order"
    )]
    NotMonotonic {
        path: PathBuf,
        line: usize,
        t: f64,
        previous: f64,
    },
    #[error("{path}: no samples after the header")]
    Empty { path: PathBuf },
}

/// One row of a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: f64,
    pub bytes: u64,
}

/// A verdict change during the replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub t_s: f64,
    pub verdict: Verdict,
}

/// A stretch of the replay during which the limit was imminent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImminentSpan {
    pub from_s: f64,
    /// When it stopped being imminent; null if still imminent at the end.
    pub to_s: Option<f64>,
    /// The time to the limit when it became imminent.
    pub time_to_limit_s: f64,
}

/// What `guardian trend` prints: the detector's state at the end of the trace, and when
/// it first said "leak".
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    pub file: String,
    pub samples: usize,
    /// Time of the first row (the process's start) and the trace's length.
    pub trace_start_s: f64,
    pub duration_s: f64,
    pub verdict: Verdict,
    pub slope_bytes_per_second: f64,
    pub confidence: f64,
    /// Trace time at which the detector first said "leak" (any series), or null.
    pub first_detected_s: Option<f64>,
    /// Start of the last series: 0, or the last restart (RSS back to a start level).
    pub series_start_s: f64,
    pub restarts: u32,
    pub level_bytes: u64,
    pub peak_bytes: u64,
    pub limit_bytes: Option<u64>,
    /// Seconds until the peaks reach `limit_bytes` at the leak's slope or the current
    /// rise, whichever is faster; null when memory does not approach it.
    pub time_to_limit_s: Option<f64>,
    /// The rise of the memory floor over the last 4 minutes at the end (bytes/s).
    pub rise_bytes_per_second: f64,
    /// Trace time of the first sample at or above `limit_bytes`, if any.
    pub limit_reached_s: Option<f64>,
    /// When the limit was imminent (within the imminence horizon), in order.
    pub imminent: Vec<ImminentSpan>,
    pub changes: Vec<Change>,
}

/// Reads a trace file, checking its header, every row and the time order.
pub fn read_trace(path: &Path) -> Result<Vec<Sample>, ReplayError> {
    let text = std::fs::read_to_string(path).map_err(|error| ReplayError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    parse_trace(path, &text)
}

/// Parses trace text; `path` only names it in errors.
pub fn parse_trace(path: &Path, text: &str) -> Result<Vec<Sample>, ReplayError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    let header = lines
        .by_ref()
        .find(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| (number, line.trim_start_matches('\u{feff}')));
    match header {
        Some((_, line)) if line.replace(' ', "").trim() == HEADER => {}
        Some((number, line)) => {
            return Err(ReplayError::Header {
                path: path.to_path_buf(),
                line: number,
                found: line.to_string(),
            });
        }
        None => {
            return Err(ReplayError::Empty {
                path: path.to_path_buf(),
            });
        }
    }
    let mut samples: Vec<Sample> = Vec::new();
    for (number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason| ReplayError::Row {
            path: path.to_path_buf(),
            line: number,
            reason,
            text: line.to_string(),
        };
        let mut fields = line.split(',').map(str::trim);
        let (Some(t), Some(bytes), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad("expected two fields"));
        };
        let t: f64 = t.parse().map_err(|_| bad("t_s is not a number"))?;
        if !t.is_finite() {
            return Err(bad("t_s is not finite"));
        }
        let bytes: u64 = bytes
            .parse()
            .map_err(|_| bad("rss_bytes is not a whole number of bytes"))?;
        if let Some(previous) = samples.last()
            && t <= previous.t
        {
            return Err(ReplayError::NotMonotonic {
                path: path.to_path_buf(),
                line: number,
                t,
                previous: previous.t,
            });
        }
        samples.push(Sample { t, bytes });
    }
    if samples.is_empty() {
        return Err(ReplayError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(samples)
}

/// Feeds `samples` (from the process's start) through one detector, as the daemon would
/// at each tick; `limit` gives the time-to-limit.
pub fn replay(samples: &[Sample], params: &Params, limit: Option<u64>) -> ReplayReport {
    let start = samples.first().map_or(0.0, |sample| sample.t);
    let mut detector = Detector::new(start);
    let mut scratch = Scratch::default();
    let mut changes = Vec::new();
    let mut first_detected_s = None;
    let mut watch = Watch::default();
    let mut imminent: Vec<ImminentSpan> = Vec::new();
    let mut limit_reached_s = None;
    for sample in samples {
        let change = detector.push(sample.t, sample.bytes, params, &mut scratch);
        if let Some(limit) = limit {
            if sample.bytes >= limit && limit_reached_s.is_none() {
                limit_reached_s = Some(sample.t);
            }
            let time_to_limit = detector.time_to_limit(limit.saturating_sub(sample.bytes));
            match watch.update(sample.t, time_to_limit, params.imminence_horizon_s) {
                Some(true) => imminent.push(ImminentSpan {
                    from_s: sample.t,
                    to_s: None,
                    time_to_limit_s: time_to_limit.unwrap_or(0.0),
                }),
                Some(false) => {
                    if let Some(span) = imminent.last_mut() {
                        span.to_s = Some(sample.t);
                    }
                }
                None => {}
            }
        }
        if let Some((_, verdict)) = change {
            changes.push(Change {
                t_s: sample.t,
                verdict,
            });
            if verdict == Verdict::Leak && first_detected_s.is_none() {
                first_detected_s = Some(sample.t);
            }
        }
    }
    let duration_s = samples.last().map_or(0.0, |last| last.t - start);
    ReplayReport {
        file: String::new(),
        samples: samples.len(),
        trace_start_s: start,
        duration_s,
        verdict: detector.verdict(),
        slope_bytes_per_second: detector.slope(),
        confidence: detector.confidence(),
        first_detected_s,
        series_start_s: detector.start(),
        restarts: detector.restarts(),
        level_bytes: detector.level(),
        peak_bytes: detector.peak(),
        limit_bytes: limit,
        time_to_limit_s: limit
            .and_then(|limit| detector.time_to_limit(limit.saturating_sub(detector.level()))),
        rise_bytes_per_second: detector.rise(),
        limit_reached_s,
        imminent,
        changes,
    }
}

/// Reads and replays a trace file.
pub fn replay_file(
    path: &Path,
    params: &Params,
    limit: Option<u64>,
) -> Result<ReplayReport, ReplayError> {
    let samples = read_trace(path)?;
    let mut report = replay(&samples, params, limit);
    report.file = path.display().to_string();
    Ok(report)
}
