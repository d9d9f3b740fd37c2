//! Small tools every benchmark uses: kernel clocks, order statistics, a plain HTTP GET
//! on loopback, polling with a deadline, and a child process killed on drop.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    process::Child,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Turns SIGINT and SIGTERM into a flag the benchmarks check between steps, so they stop
/// by returning and every guard's `Drop` cleans up (the sleepers live in their own
/// process group and would not see a Ctrl-C).
pub fn catch_interrupts() -> anyhow::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("catching {signal}"))?;
    }
    Ok(())
}

/// Fails once SIGINT or SIGTERM arrived.
pub fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
        bail!("interrupted");
    }
    Ok(())
}

/// CLOCK_MONOTONIC in nanoseconds (bpftrace's `nsecs`, memhog's `crossing`).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_BOOTTIME in nanoseconds (`bpf_ktime_get_boot_ns` in guardian's events).
pub fn boottime_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec and both clocks exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut now) };
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

/// Order statistics of a sample (nearest-rank percentiles: with fewer than 100 values
/// p99 is the maximum).
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Stats {
    /// `None` for an empty sample.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |p: f64| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Stats {
            n,
            min: sorted[0],
            median,
            p99: rank(0.99),
            max: sorted[n - 1],
        })
    }
}

/// Plain HTTP/1.0 GET on loopback: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    http_get_accept(addr, path, None)
}

/// Like [`http_get`], with an `Accept` header when given.
pub fn http_get_accept(
    addr: SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let accept = accept
        .map(|accept| format!("Accept: {accept}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n"
    )
    .with_context(|| format!("sending GET {path}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .with_context(|| format!("reading GET {path}"))?;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `condition` every `every` until it yields `Some` or `timeout` passes.
pub fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut condition: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<Option<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        check_interrupted()?;
        if let Some(value) = condition()? {
            return Ok(Some(value));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(every);
    }
}

/// A pseudo-random wait in `[0, max)`, so a measurement does not lock onto the phase
/// of the guardian's scan ticks.
pub fn jitter(max: Duration) -> Duration {
    let mut x = monotonic_ns() | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    max.mul_f64((x % 1_000_000) as f64 / 1e6)
}

/// Makes `command` run at nice `nice` (set before exec, so every thread inherits it).
pub fn set_nice(command: &mut std::process::Command, nice: i32) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: setpriority is async-signal-safe and touches only the forked child.
    unsafe {
        command.pre_exec(move || {
            if libc::setpriority(libc::PRIO_PROCESS, 0, nice) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Starts memhog with `args` and `--wait-stdin`, stdin and stdout piped, and waits for its
/// `ready`: the latency benchmarks then let the guardian learn of it before it grows.
pub fn spawn_waiting_memhog(
    memhog: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<(Owned, std::io::BufReader<std::process::ChildStdout>)> {
    use std::io::BufRead as _;
    let mut hog = Owned(
        std::process::Command::new(memhog)
            .args(args)
            .arg("--wait-stdin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .context("starting memhog")?,
    );
    let pid = hog.pid();
    let mut stdout = std::io::BufReader::new(hog.0.stdout.take().context("memhog stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("memhog {pid} did not start: {line:?}");
    }
    Ok((hog, stdout))
}

/// Waits until the guardian's `/api/v1/processes` lists `pid`.
pub fn wait_listed(guardian: &super::daemon::Guardian, pid: i32) -> anyhow::Result<()> {
    let known = wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
        Ok(guardian
            .get_json("/api/v1/processes")?
            .is_some_and(|body| has_pid(&body, pid))
            .then_some(()))
    })?;
    if known.is_none() {
        bail!("the guardian did not list memhog {pid} in /api/v1/processes within 30 s");
    }
    Ok(())
}

/// True when some object in `value` has `"pid": pid` (directly or under `key`).
pub fn has_pid(value: &serde_json::Value, pid: i32) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            map.get("pid").and_then(serde_json::Value::as_i64) == Some(i64::from(pid))
                || map.values().any(|child| has_pid(child, pid))
        }
        serde_json::Value::Array(items) => items.iter().any(|item| has_pid(item, pid)),
        _ => false,
    }
}

/// A child this benchmark started: SIGKILLed and reaped on drop (a no-op once reaped).
pub struct Owned(pub Child);

impl Owned {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Waits up to `timeout` for the process behind `pid` (our own child, not yet reaped) to
/// exit, through a pidfd; returns CLOCK_MONOTONIC when it did, `None` on timeout.
pub fn wait_exit(pid: i32, timeout: Duration) -> anyhow::Result<Option<u64>> {
    use rustix::{
        event::{PollFd, PollFlags, Timespec, poll},
        process::{Pid, PidfdFlags, pidfd_open},
    };
    let fd = Pid::from_raw(pid)
        .ok_or_else(|| anyhow::anyhow!("pidfd_open({pid}): not a pid"))
        .and_then(|pid| Ok(pidfd_open(pid, PidfdFlags::empty())?))
        .with_context(|| format!("pidfd_open({pid})"))?;
    let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    let ready = poll(&mut [PollFd::new(&fd, PollFlags::IN)], Some(&timeout))
        .with_context(|| format!("poll on the pidfd of {pid}"))?;
    let now = monotonic_ns();
    Ok((ready == 1).then_some(now))
}

/// CPU time of process `pid` (all its threads, the exited ones too) in seconds, from its
/// CPU-time clock: exact to the nanosecond, where `/proc/PID/stat` counts 10 ms ticks.
pub fn cpu_seconds(pid: i32) -> anyhow::Result<f64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid out-pointer.
    let error = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if error != 0 {
        bail!(
            "no CPU clock for pid {pid}: {}",
            std::io::Error::from_raw_os_error(error)
        );
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        bail!(
            "reading the CPU clock of pid {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9)
}

/// A `VmXXX:` line of `/proc/PID/status` in bytes.
pub fn status_bytes(pid: i32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.split_whitespace().next()?.parse::<u64>().ok()
        })
        .map(|kib| kib * 1024)
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

/// The share of the last 10 s in which runnable tasks waited for a CPU
/// (`/proc/pressure/cpu` some avg10), to tell a quiet host from a busy one.
pub fn cpu_pressure() -> String {
    std::fs::read_to_string("/proc/pressure/cpu")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("some"))?;
            let avg10 = line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("avg10="))?;
            Some(format!("CPU pressure {avg10} %"))
        })
        .unwrap_or_else(|| "CPU pressure unknown".into())
}

/// Processes on the host right now (numeric entries of /proc).
pub fn process_count() -> usize {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|entry| {
                    entry
                        .file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_nearest_rank() {
        let stats = Stats::of(&[5.0, 1.0, 3.0, 2.0, 4.0]).expect("test value");
        assert_eq!(
            (stats.min, stats.median, stats.p99, stats.max),
            (1.0, 3.0, 5.0, 5.0)
        );
        let even = Stats::of(&[1.0, 2.0, 3.0, 4.0]).expect("test value");
        assert_eq!(even.median, 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(Stats::of(&hundred).expect("test value").p99, 99.0);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn own_cpu_and_rss_read_back() {
        let pid = std::process::id() as i32;
        assert!(cpu_seconds(pid).expect("test value") >= 0.0);
        assert!(status_bytes(pid, "VmRSS").expect("test value") > 0);
    }
}
