//! The guardian's own process under the standard `process_*` names every Prometheus
//! client library exports (CPU, resident and virtual memory, start time, open and maximum
//! file descriptors, threads), so stock dashboards and alerts work on it unchanged.
//!
//! Read at scrape time from `/proc/self` through the `procfs` crate; the descriptor limit
//! (`RLIMIT_NOFILE`, what the held stat files count against) through `getrlimit`.

use std::fmt;

use procfs::process::Stat;
use prometheus_client::{collector::Collector, encoding::DescriptorEncoder};

use super::families::{BYTES, SECONDS, counter, gauge};
use crate::sources::kernfs::system;

/// Figures of one process, as the `process_*` families show them.
#[derive(Debug, Default, PartialEq)]
pub struct OwnProcess {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub virtual_bytes: u64,
    pub resident_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    /// The soft `RLIMIT_NOFILE`; `None` when unlimited.
    pub max_fds: Option<u64>,
}

impl OwnProcess {
    /// Reads the running process; `None` when `/proc/self` cannot be read.
    pub fn read() -> Option<OwnProcess> {
        let myself = procfs::process::Process::myself().ok()?;
        let boot_time = procfs::boot_time_secs().ok()? as f64;
        let mut own = OwnProcess::from_stat(
            &myself.stat().ok()?,
            system::clock_ticks() as f64,
            system::page_size(),
            boot_time,
        );
        own.open_fds = myself.fd_count().ok()? as u64;
        own.max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        Some(own)
    }

    /// The figures `/proc/PID/stat` holds, with the clock tick rate, page size and boot
    /// time (`btime`) that turn them into seconds and bytes.
    pub fn from_stat(stat: &Stat, ticks_per_second: f64, page_size: u64, boot_time: f64) -> Self {
        OwnProcess {
            cpu_seconds: (stat.utime + stat.stime) as f64 / ticks_per_second,
            start_time_seconds: boot_time + stat.starttime as f64 / ticks_per_second,
            virtual_bytes: stat.vsize,
            resident_bytes: stat.rss * page_size,
            threads: u64::try_from(stat.num_threads).unwrap_or(0),
            open_fds: 0,
            max_fds: None,
        }
    }
}

/// The `process_*` families of the guardian itself, read on every scrape.
#[derive(Debug)]
pub struct OwnProcessCollector;

impl Collector for OwnProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        match OwnProcess::read() {
            Some(own) => encode(&own, &mut encoder),
            None => Ok(()),
        }
    }
}

fn encode(own: &OwnProcess, encoder: &mut DescriptorEncoder) -> fmt::Result {
    counter(
        encoder,
        "process_cpu",
        "Total user and system CPU time spent in seconds",
        Some(&SECONDS),
        own.cpu_seconds,
    )?;
    gauge(
        encoder,
        "process_resident_memory",
        "Resident memory size in bytes",
        Some(&BYTES),
        own.resident_bytes,
    )?;
    gauge(
        encoder,
        "process_virtual_memory",
        "Virtual memory size in bytes",
        Some(&BYTES),
        own.virtual_bytes,
    )?;
    gauge(
        encoder,
        "process_start_time",
        "Start time of the process since unix epoch in seconds",
        Some(&SECONDS),
        own.start_time_seconds,
    )?;
    gauge(
        encoder,
        "process_open_fds",
        "Number of open file descriptors",
        None,
        own.open_fds,
    )?;
    if let Some(max_fds) = own.max_fds {
        gauge(
            encoder,
            "process_max_fds",
            "Maximum number of open file descriptors",
            None,
            max_fds,
        )?;
    }
    gauge(
        encoder,
        "process_threads",
        "Number of OS threads in the process",
        None,
        own.threads,
    )
}
