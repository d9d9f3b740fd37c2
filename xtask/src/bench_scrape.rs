//! Scrape cost at 1,000 processes and 200 cgroups: the guardian's `/metrics` p50/p99
//! latency and body size, beside Debian's `prometheus-process-exporter` (grouping by
//! comm) scraping the same host. The bench starts the sleeping processes and the cgroups
//! itself and removes them afterwards, even when a step fails.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::bench::harness::http_get_accept as get;

const PROCESSES: usize = 1_000;
const CGROUPS: usize = 200;
const SCRAPES: usize = 400;
/// The p99 target of issue 7.
const TARGET_P99_MS: f64 = 10.0;
/// What Prometheus 2.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Runs the scrape benchmark against `guardian_bin` and prints its figures.
pub fn bench_scrape(guardian_bin: &Path) -> anyhow::Result<()> {
    let exporter = ensure_process_exporter()?;
    let work = Workload::start()?;
    let dir = std::env::temp_dir().join(format!("guardian-bench-scrape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    // The workload lives until the measurements are done, then is removed.
    let result = measure(guardian_bin, &exporter, &dir);
    drop(work);
    let _ = std::fs::remove_dir_all(&dir);
    let rows = result?;
    print_rows(&rows);
    Ok(())
}

/// One measured configuration.
struct Row {
    name: String,
    p50_ms: f64,
    p99_ms: f64,
    body_bytes: usize,
    series: usize,
}

fn measure(guardian_bin: &Path, exporter: &Path, dir: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (name, top) in [
        ("guardian (top_processes = 50, default)", 50),
        (
            "guardian (top_processes = 1000: every process)",
            PROCESSES + 100,
        ),
    ] {
        let config = dir.join(format!("guardian-{top}.toml"));
        std::fs::write(
            &config,
            format!("[metrics]\ntop_processes = {top}\nmax_cgroups = 500\n"),
        )
        .with_context(|| format!("write {}", config.display()))?;
        let addr = free_addr()?;
        let mut command = Command::new(guardian_bin);
        command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args([
                "--source",
                "procfs",
                "--dry-run",
                "--listen",
                &addr.to_string(),
            ])
            .arg("--kill-log")
            .arg(dir.join("kills.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let guardian = Server::start(command, "guardian")?;
        wait_until(
            Duration::from_secs(60),
            "the guardian to see the workload",
            || {
                let (_, body) = get(addr, "/api/v1/status", None).ok()?;
                let processes = json_number(&body, "\"processes\":")?;
                let cgroups = json_number(&body, "\"cgroups\":")?;
                (processes >= PROCESSES as u64 && cgroups >= CGROUPS as u64).then_some(())
            },
        )?;
        rows.push(scrape_many(name, addr, Some(PROMETHEUS_ACCEPT))?);
        drop(guardian);
    }
    for (name, smaps) in [
        ("process-exporter (Debian defaults, smaps on)", "true"),
        ("process-exporter (-gather-smaps=false)", "false"),
    ] {
        let config = dir.join("process-exporter.yml");
        std::fs::write(
            &config,
            "process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n      - '.+'\n",
        )
        .with_context(|| format!("write {}", config.display()))?;
        let addr = free_addr()?;
        let mut command = Command::new(exporter);
        command
            .arg("-config.path")
            .arg(&config)
            .arg(format!("-gather-smaps={smaps}"))
            .args(["-web.listen-address", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let server = Server::start(command, "process-exporter")?;
        wait_until(
            Duration::from_secs(30),
            "process-exporter to answer",
            || {
                get(addr, "/metrics", None)
                    .ok()
                    .filter(|(status, _)| *status == 200)
            },
        )?;
        rows.push(scrape_many(name, addr, None)?);
        drop(server);
    }
    Ok(rows)
}

fn scrape_many(name: &str, addr: SocketAddr, accept: Option<&str>) -> anyhow::Result<Row> {
    // Warm up (first scrapes pay for lazy initialisation on both sides).
    for _ in 0..10 {
        get(addr, "/metrics", accept)?;
    }
    let mut latencies = Vec::with_capacity(SCRAPES);
    let mut body_bytes = 0;
    let mut series = 0;
    for _ in 0..SCRAPES {
        let start = Instant::now();
        let (status, body) = get(addr, "/metrics", accept)?;
        latencies.push(start.elapsed().as_secs_f64() * 1e3);
        if status != 200 {
            bail!("{name}: /metrics answered {status}");
        }
        body_bytes = body.len();
        series = body
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .count();
    }
    latencies.sort_by(f64::total_cmp);
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile).round() as usize];
    Ok(Row {
        name: name.to_string(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        body_bytes,
        series,
    })
}

fn print_rows(rows: &[Row]) {
    println!(
        "\nscrape cost at {PROCESSES} processes and {CGROUPS} cgroups ({SCRAPES} sequential scrapes each)"
    );
    println!(
        "{:<50} {:>9} {:>9} {:>10} {:>8} {:>13}",
        "exporter", "p50 ms", "p99 ms", "body KiB", "series", "p99 target"
    );
    for row in rows {
        let target = if row.name.starts_with("guardian") {
            format!(
                "<= {TARGET_P99_MS} {}",
                if row.p99_ms <= TARGET_P99_MS {
                    "ok"
                } else {
                    "MISSED"
                }
            )
        } else {
            "-".to_string()
        };
        println!(
            "{:<50} {:>9.2} {:>9.2} {:>10.1} {:>8} {:>13}",
            row.name,
            row.p50_ms,
            row.p99_ms,
            row.body_bytes as f64 / 1024.0,
            row.series,
            target
        );
    }
    let reference = rows
        .iter()
        .find(|row| row.name.starts_with("process-exporter"));
    if let Some(reference) = reference {
        println!("ratios vs {}:", reference.name);
        for row in rows.iter().filter(|row| row.name.starts_with("guardian")) {
            println!(
                "  {:<48} p99 x{:.4}  body x{:.2}",
                row.name,
                row.p99_ms / reference.p99_ms,
                row.body_bytes as f64 / reference.body_bytes as f64
            );
        }
    }
}

/// The sleeping processes and the cgroups the bench measures against.
struct Workload {
    sleepers: Vec<Child>,
    cgroups: Vec<PathBuf>,
}

impl Workload {
    fn start() -> anyhow::Result<Workload> {
        let mut work = Workload {
            sleepers: Vec::with_capacity(PROCESSES),
            cgroups: Vec::with_capacity(CGROUPS),
        };
        let root = memory_hierarchy();
        let tag = format!("guardian-bench-{}", std::process::id());
        for index in 0..CGROUPS {
            let dir = root.join(format!("{tag}-{index}"));
            std::fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
            work.cgroups.push(dir);
        }
        for index in 0..PROCESSES {
            let mut command = Command::new("sleep");
            command
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let child = command.spawn().context("spawn sleep")?;
            // One sleeper in each cgroup, so every cgroup has some usage.
            if let Some(cgroup) = work.cgroups.get(index) {
                std::fs::write(cgroup.join("cgroup.procs"), child.id().to_string())
                    .with_context(|| format!("move sleep into {}", cgroup.display()))?;
            }
            work.sleepers.push(child);
        }
        Ok(work)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for child in &mut self.sleepers {
            let _ = child.kill();
            let _ = child.wait();
        }
        for cgroup in &self.cgroups {
            // Empty once its sleeper is reaped; retry briefly while the kernel lets go.
            for _ in 0..50 {
                if std::fs::remove_dir(cgroup).is_ok() || !cgroup.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A server under test, killed on drop.
struct Server(Child);

impl Server {
    fn start(mut command: Command, name: &str) -> anyhow::Result<Server> {
        command
            .spawn()
            .map(Server)
            .with_context(|| format!("start {name}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ensure_process_exporter() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from("/usr/bin/prometheus-process-exporter");
    if !path.is_file() {
        println!("==> [bench scrape] apt-get install -y prometheus-process-exporter");
        let status = Command::new("apt-get")
            .args(["install", "-y", "prometheus-process-exporter"])
            .status()
            .context("run apt-get")?;
        if !status.success() || !path.is_file() {
            bail!(
                "cannot install prometheus-process-exporter; run `apt-get update && apt-get install -y prometheus-process-exporter`"
            );
        }
    }
    Ok(path)
}

/// Where the memory controller lives: v1 `/sys/fs/cgroup/memory`, else the v2 root.
fn memory_hierarchy() -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if v1.join("memory.limit_in_bytes").exists() {
        v1.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The unsigned number after `key` in a flat JSON text (enough for /api/v1/status).
fn json_number(json: &str, key: &str) -> Option<u64> {
    let start = json.find(key)? + key.len();
    let digits: String = json[start..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
