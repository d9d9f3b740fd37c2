//! Imminence, separate from cause: "this series reaches its limit within the horizon".
//!
//! The leak verdict says why memory grows (it is not coming back); imminence says when it
//! runs out, whatever the verdict: a young process leaking 30 MiB/min is "growing" (it
//! could be a warm-up) for minutes, yet its cgroup limit is minutes away. A series is
//! imminent while the time to its limit at its current rise is within the horizon; it
//! stops being imminent only after that has failed for [`CLEAR_S`] (no flapping in the
//! logs). The alert on top waits a few minutes more, so a warm-up that levels off below
//! its limit does not page.

/// Seconds the condition must fail before a series stops being imminent.
pub const CLEAR_S: f64 = 30.0;

/// Whether a series is imminent, and since when (same clock as the samples).
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    since: Option<f64>,
    failing_since: Option<f64>,
}

impl Watch {
    /// Updates the state at `now` with the time to the limit (None: not rising toward
    /// one); returns the new state when it changed.
    pub fn update(&mut self, now: f64, time_to_limit: Option<f64>, horizon: f64) -> Option<bool> {
        let close = time_to_limit.is_some_and(|seconds| seconds <= horizon);
        match (self.since, close) {
            (None, true) => {
                self.since = Some(now);
                self.failing_since = None;
                Some(true)
            }
            (Some(_), true) => {
                self.failing_since = None;
                None
            }
            (Some(_), false) => {
                let failing = *self.failing_since.get_or_insert(now);
                (now - failing >= CLEAR_S).then(|| {
                    self.since = None;
                    self.failing_since = None;
                    false
                })
            }
            (None, false) => None,
        }
    }

    /// When the series became imminent, if it is.
    pub fn since(&self) -> Option<f64> {
        self.since
    }

    pub fn is_imminent(&self) -> bool {
        self.since.is_some()
    }
}
