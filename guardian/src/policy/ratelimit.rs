//! Brakes on killing: a global limit of `max_kills` per `rate_window`, so a bad rule
//! cannot empty a host, and a per-program backoff so a crash-looping service that comes
//! back with the same footprint is not killed every few seconds forever.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use crate::{config::SafetyConfig, model::Process};

/// At most `max` decisions in any window of `window`.
#[derive(Clone, Debug)]
pub(crate) struct RateLimiter {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(safety: &SafetyConfig) -> Self {
        RateLimiter {
            max: safety.max_kills as usize,
            window: safety.rate_window.0,
            recent: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: Instant) {
        while self
            .recent
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= self.window)
        {
            self.recent.pop_front();
        }
    }

    /// `Ok` when one more decision fits the window now, else how long until one does.
    pub(crate) fn check(&mut self, now: Instant) -> Result<(), Duration> {
        self.prune(now);
        if self.recent.len() < self.max {
            return Ok(());
        }
        let oldest = self.recent.front().copied().unwrap_or(now);
        Err((oldest + self.window).saturating_duration_since(now))
    }

    pub(crate) fn record(&mut self, now: Instant) {
        self.recent.push_back(now);
    }

    /// Takes over the decisions `old` counted (after a config reload).
    pub(crate) fn inherit(&mut self, old: &RateLimiter) {
        self.recent.clone_from(&old.recent);
    }

    /// Decisions made in the current window.
    pub(crate) fn used(&self, now: Instant) -> usize {
        self.recent
            .iter()
            .filter(|at| now.saturating_duration_since(**at) < self.window)
            .count()
    }
}

/// Most programs the backoff remembers; the stalest are dropped beyond it.
const MAX_PROGRAMS: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Entry {
    last: Instant,
    wait: Duration,
}

/// Per-program backoff, keyed by comm and command line (a restarted process has a new
/// pid and start time, but the same program). After a kill, the same program waits
/// `backoff` before it may be killed again; every further kill doubles the wait, up to
/// `max_backoff`. A program left alone for its wait plus `max_backoff` starts afresh.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    programs: HashMap<String, Entry>,
}

impl Backoff {
    pub(crate) fn new(safety: &SafetyConfig) -> Self {
        Backoff {
            base: safety.backoff.0,
            max: safety.max_backoff.0.max(safety.backoff.0),
            programs: HashMap::new(),
        }
    }

    /// The program identity of a process.
    pub(crate) fn key(process: &Process) -> String {
        format!("{}\0{}", process.comm, process.cmdline.join(" "))
    }

    fn is_stale(&self, entry: &Entry, now: Instant) -> bool {
        now >= entry.last + entry.wait + self.max
    }

    /// `Ok` when the program may be killed now, else how long it still waits.
    pub(crate) fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.programs.get(key) {
            Some(entry) if now < entry.last + entry.wait => {
                Err((entry.last + entry.wait).saturating_duration_since(now))
            }
            _ => Ok(()),
        }
    }

    /// Takes over the programs `old` remembers (after a config reload).
    pub(crate) fn inherit(&mut self, old: &Backoff) {
        self.programs.clone_from(&old.programs);
    }

    /// Notes a kill of the program now.
    pub(crate) fn record(&mut self, key: &str, now: Instant) {
        let wait = match self.programs.get(key) {
            Some(entry) if !self.is_stale(entry, now) => (entry.wait * 2).min(self.max),
            _ => self.base,
        };
        self.programs
            .insert(key.to_string(), Entry { last: now, wait });
        self.prune(now);
    }

    /// Forgets programs that would start afresh anyway, and the stalest beyond the bound.
    fn prune(&mut self, now: Instant) {
        let max = self.max;
        self.programs
            .retain(|_, entry| now < entry.last + entry.wait + max);
        if self.programs.len() > MAX_PROGRAMS {
            let mut by_age: Vec<_> = self
                .programs
                .iter()
                .map(|(key, entry)| (entry.last, key.clone()))
                .collect();
            by_age.sort();
            for (_, key) in by_age.iter().take(self.programs.len() - MAX_PROGRAMS) {
                self.programs.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod proptests;
