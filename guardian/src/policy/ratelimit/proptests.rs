//! Properties of the brakes over arbitrary schedules: the rate limit is never exceeded
//! in any window and always reopens when it says; the backoff doubles, is capped, and
//! never lets a program through before its wait.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Backoff, RateLimiter};
use crate::config::{Interval, SafetyConfig};

fn safety(max_kills: u32, window_ms: u64, backoff_ms: u64, max_backoff_ms: u64) -> SafetyConfig {
    SafetyConfig {
        max_kills,
        rate_window: Interval(Duration::from_millis(window_ms)),
        backoff: Interval(Duration::from_millis(backoff_ms)),
        max_backoff: Interval(Duration::from_millis(max_backoff_ms)),
        ..SafetyConfig::default()
    }
}

/// Moments as increasing offsets from a start (steps of 0 to 3 s, ties included).
fn schedule() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0u64..3_000, 1..200).prop_map(|steps| {
        steps
            .into_iter()
            .scan(0u64, |at, step| {
                *at += step;
                Some(*at)
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn no_window_holds_more_than_max_kills(
        max_kills in 1u32..8,
        window_ms in 1u64..20_000,
        attempts in schedule(),
    ) {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(&safety(max_kills, window_ms, 1, 1));
        let mut allowed = Vec::new();
        for at in attempts {
            let now = start + Duration::from_millis(at);
            match limiter.check(now) {
                Ok(()) => {
                    limiter.record(now);
                    allowed.push(at);
                }
                Err(wait) => {
                    // Refused only when full, and it reopens exactly when it says.
                    prop_assert!(limiter.used(now) >= max_kills as usize);
                    prop_assert!(wait <= Duration::from_millis(window_ms));
                    prop_assert!(limiter.clone().check(now + wait).is_ok());
                }
            }
        }
        for (index, first) in allowed.iter().enumerate() {
            let in_window = allowed[index..]
                .iter()
                .take_while(|at| **at < first + window_ms)
                .count();
            prop_assert!(in_window <= max_kills as usize, "{in_window} kills within {window_ms} ms from {first}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_is_never_cut_short(
        backoff_ms in 1u64..10_000,
        max_backoff_ms in 1u64..100_000,
        attempts in schedule(),
    ) {
        let start = Instant::now();
        let mut backoff = Backoff::new(&safety(1, 1, backoff_ms, max_backoff_ms));
        let cap = Duration::from_millis(max_backoff_ms.max(backoff_ms));
        let mut last_kill: Option<(u64, Duration)> = None;
        for at in attempts {
            let now = start + Duration::from_millis(at);
            match backoff.check("prog", now) {
                Ok(()) => {
                    if let Some((killed_at, wait)) = last_kill {
                        prop_assert!(at >= killed_at + wait.as_millis() as u64, "let through {at} ms, before {killed_at} + {wait:?}");
                    }
                    backoff.record("prog", now);
                    let wait = match backoff.check("prog", now) {
                        Err(wait) => wait,
                        Ok(()) => Duration::ZERO,
                    };
                    prop_assert!(wait <= cap);
                    prop_assert!(wait >= Duration::from_millis(backoff_ms).min(cap));
                    if let Some((killed_at, previous)) = last_kill {
                        let stale = at >= killed_at + previous.as_millis() as u64 + cap.as_millis() as u64;
                        if !stale {
                            prop_assert_eq!(wait, (previous * 2).min(cap));
                        }
                    }
                    last_kill = Some((at, wait));
                }
                Err(wait) => {
                    prop_assert!(wait <= cap);
                    prop_assert!(backoff.check("prog", now + wait).is_ok());
                }
            }
            // Another program is never held back by this one.
            prop_assert!(backoff.check("other", now).is_ok());
        }
    }
}
