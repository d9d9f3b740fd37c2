//! The guardian's own memory in its default mode (eBPF source, `lock_memory = true`) with
//! 1,000 and 10,000 sleeping processes of our own, beside node-exporter's on the same host
//! (Debian's prometheus-node-exporter, installed by the bench setup when missing) and the
//! guardian with `lock_memory = false` (what `mlockall` adds). Each is read after a few
//! refreshes and one scrape of its `/metrics`, so the model holds every process and the
//! exposition buffers have been used once. Where the default mode's resident memory
//! sits comes beside it, from `/proc/PID/smaps`: heap, the guardian's own code and data,
//! shared libraries, BPF maps (the ring buffer, mapped twice to wrap around), other
//! anonymous memory (thread stacks, the allocator's large blocks).

use std::{
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::{
    Binaries,
    daemon::{Guardian, Source, base_config},
    harness::{self, wait_for},
    report::{Row, Verdict},
    sleepers::Sleepers,
};

/// The ceiling for the default mode, in MiB.
const TARGET_MIB: f64 = 24.0;
/// node-exporter as Debian installs it.
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
/// Refreshes (1 s apart) before reading VmRSS.
const SETTLE_SCANS: u32 = 3;

pub fn run(bins: &Binaries, counts: &[usize]) -> Vec<Row> {
    let mut rows = Vec::new();
    for &count in counts {
        println!("\n== own memory, default mode, with {count} extra sleeping processes");
        match measure(bins, count) {
            Ok(mut measured) => rows.append(&mut measured),
            Err(error) => rows.push(Row::failed(&format!("default-mode VmRSS @{count}"), &error)),
        }
    }
    rows
}

fn measure(bins: &Binaries, count: usize) -> anyhow::Result<Vec<Row>> {
    let sleepers = Sleepers::spawn(count)?;
    println!(
        "  {} sleepers; {} processes on the host",
        sleepers.len(),
        harness::process_count()
    );
    // The default config but for the interval: eBPF source, lock_memory = true.
    let (locked, parts) = settled_rss(bins, &base_config("1s"))?;
    let (unlocked, _) = settled_rss(bins, &format!("{}lock_memory = false\n", base_config("1s")))?;
    let node = node_exporter_rss()?;
    println!(
        "  guardian VmRSS {:.1} MiB (peak {:.1}); lock_memory = false {:.1} MiB; node-exporter {}",
        locked.0,
        locked.1,
        unlocked.0,
        node.map_or("not installed".to_string(), |mib| format!("{mib:.1} MiB")),
    );
    println!("  resident: {}", parts.text());
    drop(sleepers);
    let label = format!("@{count}");
    Ok(vec![
        Row {
            figure: format!("default-mode VmRSS (eBPF, mlock) {label}"),
            measured: format!("{:.1} MiB (peak {:.1})", locked.0, locked.1),
            baseline: match node {
                Some(mib) => format!("node-exporter {mib:.1} MiB; no mlock {:.1}", unlocked.0),
                None => format!("no node-exporter; no mlock {:.1} MiB", unlocked.0),
            },
            ratio: node.map_or(String::new(), |mib| format!("{:.2}", locked.0 / mib)),
            target: format!("<= {TARGET_MIB} MiB"),
            verdict: Verdict::at_most(locked.0, TARGET_MIB),
        },
        Row {
            figure: format!("  of which (MiB) {label}"),
            measured: parts.text(),
            baseline: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: Verdict::Info,
        },
    ])
}

/// Resident KiB of a process by kind of mapping.
#[derive(Debug, Default)]
struct Parts {
    heap: u64,
    code: u64,
    libraries: u64,
    bpf_maps: u64,
    other: u64,
}

impl Parts {
    /// Sums `Rss:` of `/proc/PID/smaps` by mapping: `[heap]`, the executable, other
    /// files, BPF maps, the rest (anonymous, stacks).
    fn of(pid: i32) -> anyhow::Result<Parts> {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .with_context(|| format!("reading /proc/{pid}/exe"))?;
        let exe = exe.to_string_lossy().into_owned();
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
            .with_context(|| format!("reading /proc/{pid}/smaps"))?;
        let mut parts = Parts::default();
        let mut name = String::new();
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let Some(first) = fields.next() else { continue };
            if let Some(kib) = first.strip_prefix("Rss:").and_then(|_| fields.next()) {
                let kib: u64 = kib.parse().unwrap_or(0);
                let slot = match name.as_str() {
                    "[heap]" => &mut parts.heap,
                    path if path == exe => &mut parts.code,
                    path if path.starts_with('/') => &mut parts.libraries,
                    path if path.contains("bpf") => &mut parts.bpf_maps,
                    _ => &mut parts.other,
                };
                *slot += kib;
            } else if first.contains('-') && !first.ends_with(':') {
                // A mapping's header: range perms offset dev inode [name].
                name = fields.nth(4).unwrap_or("").to_string();
            }
        }
        Ok(parts)
    }

    fn text(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        format!(
            "heap {:.1}, code+data {:.1}, libraries {:.1}, BPF maps {:.1}, other {:.1}",
            mib(self.heap),
            mib(self.code),
            mib(self.libraries),
            mib(self.bpf_maps),
            mib(self.other)
        )
    }
}

/// (VmRSS, VmHWM) in MiB of an eBPF-mode guardian with `config`, after a few refreshes
/// and one scrape, and where the resident memory sits.
fn settled_rss(bins: &Binaries, config: &str) -> anyhow::Result<((f64, f64), Parts)> {
    let guardian = Guardian::start(&bins.guardian, Source::Ebpf, config)?;
    let scans = |guardian: &Guardian| -> anyhow::Result<f64> {
        Ok(guardian.histogram("scan_duration_seconds")?.1)
    };
    let first = scans(&guardian)?;
    let settled = wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
        Ok((scans(&guardian)? >= first + f64::from(SETTLE_SCANS)).then_some(()))
    })?;
    settled.context("the guardian finished no refresh within 60 s")?;
    guardian.get("/metrics")?;
    let mib = |key| -> anyhow::Result<f64> {
        Ok(harness::status_bytes(guardian.pid(), key)? as f64 / f64::from(1 << 20))
    };
    Ok(((mib("VmRSS")?, mib("VmHWM")?), Parts::of(guardian.pid())?))
}

/// node-exporter's VmRSS in MiB after one scrape, or `None` when it is not installed.
fn node_exporter_rss() -> anyhow::Result<Option<f64>> {
    if !Path::new(NODE_EXPORTER).is_file() {
        return Ok(None);
    }
    let addr = free_addr()?;
    let child = Command::new(NODE_EXPORTER)
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {NODE_EXPORTER}"))?;
    let exporter = Exporter(child);
    let started = Instant::now();
    let scraped = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        Ok(matches!(harness::http_get(addr, "/metrics"), Ok((200, _))).then_some(()))
    })?;
    if scraped.is_none() {
        bail!(
            "node-exporter did not answer /metrics within {:?}",
            started.elapsed()
        );
    }
    let pid = exporter.0.id() as i32;
    Ok(Some(
        harness::status_bytes(pid, "VmRSS")? as f64 / f64::from(1 << 20),
    ))
}

/// node-exporter, killed and reaped on drop.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}
