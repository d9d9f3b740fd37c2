//! sd_notify: tells systemd (a `Type=notify` unit) when the guardian is ready, alive,
//! reloading or stopping, and what it is doing (`STATUS=`), so a hung guardian is
//! restarted by the watchdog instead of looking alive while deaf.
//!
//! The datagrams go through the `sd-notify` crate to the path in `$NOTIFY_SOCKET`.
//! Everything is a no-op when `NOTIFY_SOCKET` is unset (run by hand, in a test, under
//! another supervisor). A failed send is logged, never fatal: the guardian keeps
//! guarding even when systemd cannot hear it.

use std::{future::Future, time::Duration};

use sd_notify::NotifyState;

/// `STATUS=` text on one line: systemd shows it in `systemctl status`.
fn status_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn send_logged(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        let socket = std::env::var_os("NOTIFY_SOCKET").unwrap_or_default();
        tracing::warn!(
            %error,
            socket = %socket.to_string_lossy(),
            "sd_notify failed; systemd may consider the guardian hung"
        );
    }
}

/// READY=1 with a status line: the sources are attached and the first scan is done (also
/// sent after a reload, which ends the RELOADING=1 state).
pub fn ready(status: &str) {
    let status = status_line(status);
    send_logged(&[
        NotifyState::Ready,
        NotifyState::MainPid(std::process::id()),
        NotifyState::Status(&status),
    ]);
}

/// STATUS=: what the guardian is doing (source, processes tracked, kills).
pub fn status(text: &str) {
    send_logged(&[NotifyState::Status(&status_line(text))]);
}

/// RELOADING=1 with the monotonic time systemd (v253+) requires beside it: a SIGHUP
/// reload started; follow with [`ready`] when it is done, whether the new config was
/// applied or rejected.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    match NotifyState::monotonic_usec_now() {
        Ok(now) => states.push(now),
        Err(error) => {
            tracing::warn!(%error, "CLOCK_MONOTONIC unreadable; RELOADING=1 without MONOTONIC_USEC")
        }
    }
    states.push(NotifyState::Status("reloading config"));
    send_logged(&states);
}

/// STOPPING=1: shutdown began (programs are being detached, the kill log flushed).
pub fn stopping() {
    send_logged(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Starts pinging WATCHDOG=1 every half `WatchdogSec=` while `is_fresh` says the pipeline
/// took data recently; `None` when systemd does not watch this process.
///
/// The pings run on their own timer, not on the scan tick: a scan interval longer than
/// half the watchdog period must not look like a hang. A hung pipeline stops being
/// fresh (no data within twice the scan interval), the pings stop, systemd restarts it.
pub fn spawn_watchdog(
    is_fresh: impl Fn() -> bool + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled().filter(|period| !period.is_zero())?;
    tracing::info!(
        watchdog_sec = period.as_secs_f64(),
        "systemd watchdog enabled; pinging at half its period while the pipeline is fresh"
    );
    Some(tokio::spawn(watchdog_loop(period / 2, is_fresh, || {
        send_logged(&[NotifyState::Watchdog]);
        std::future::ready(())
    })))
}

/// Every `every`, calls `ping` if `is_fresh` (the first check one period after start).
async fn watchdog_loop<F: Future<Output = ()>>(
    every: Duration,
    is_fresh: impl Fn() -> bool,
    ping: impl Fn() -> F,
) {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if is_fresh() {
            ping().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    };

    use super::*;

    #[test]
    fn status_stays_on_one_line() {
        assert_eq!(status_line("a\nb\r\nc"), "a b  c");
    }

    /// Pings follow the timer while fresh, stop while stale, resume when fresh again.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_pings_only_while_fresh() {
        let fresh = Arc::new(AtomicBool::new(true));
        let pings = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(watchdog_loop(
            Duration::from_secs(10),
            {
                let fresh = fresh.clone();
                move || fresh.load(Ordering::SeqCst)
            },
            {
                let pings = pings.clone();
                move || {
                    pings.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(())
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(pings.load(Ordering::SeqCst), 3, "pings at 10, 20, 30 s");
        fresh.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(pings.load(Ordering::SeqCst), 3, "no ping while stale");
        fresh.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(pings.load(Ordering::SeqCst), 4, "pings again once fresh");
        task.abort();
    }
}
