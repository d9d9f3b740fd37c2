//! The guardian under measurement: `guardian run` with a config written to its own temp
//! dir, ready once `/api/v1/status` answers; SIGTERM (then SIGKILL) and reaped on drop,
//! its temp dir removed with it.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

use super::harness::{self, wait_for};

/// Which source the guardian runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Ebpf,
    Procfs,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ebpf => "ebpf",
            Source::Procfs => "procfs",
        }
    }
}

/// A running `guardian run`.
pub struct Guardian {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Guardian {
    /// Starts `bin run --source SOURCE` with `config` (TOML) and waits until
    /// `/api/v1/status` answers 200.
    pub fn start(bin: &Path, source: Source, config: &str) -> anyhow::Result<Guardian> {
        Guardian::start_niced(bin, source, config, 0)
    }

    /// Like [`Guardian::start`], at nice `nice`.
    pub fn start_niced(
        bin: &Path,
        source: Source,
        config: &str,
        nice: i32,
    ) -> anyhow::Result<Guardian> {
        let dir = tempfile::Builder::new()
            .prefix("guardian-bench-")
            .tempdir()
            .context("creating a temp dir for the guardian")?;
        let config_path = dir.path().join("guardian.toml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let addr = free_addr()?;
        let log_path = dir.path().join("guardian.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(bin);
        harness::set_nice(&mut command, nice);
        let child = command
            .arg("run")
            .arg("--source")
            .arg(source.as_str())
            .arg("--config")
            .arg(&config_path)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--kill-log")
            .arg(dir.path().join("kills.jsonl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} run", bin.display()))?;
        let mut guardian = Guardian { child, addr, dir };
        let ready = wait_for(Duration::from_secs(90), Duration::from_millis(100), || {
            if let Some(status) = guardian.child.try_wait()? {
                bail!(
                    "guardian ({source:?}) exited before serving /api/v1/status ({status}); log:\n{}",
                    guardian.log_tail()
                );
            }
            Ok(matches!(harness::http_get(addr, "/api/v1/status"), Ok((200, _))).then_some(()))
        })?;
        if ready.is_none() {
            bail!(
                "guardian ({source:?}) did not serve /api/v1/status within 90 s; log:\n{}",
                guardian.log_tail()
            );
        }
        Ok(guardian)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// GET `path`, failing on anything but 200.
    pub fn get(&self, path: &str) -> anyhow::Result<String> {
        let (status, body) = harness::http_get(self.addr, path)?;
        if status != 200 {
            bail!("GET {path} answered {status}: {}", body.trim());
        }
        Ok(body)
    }

    /// GET `path` as JSON; `None` when the route answers 404 (not wired yet).
    pub fn get_json(&self, path: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let (status, body) = harness::http_get(self.addr, path)?;
        match status {
            200 => serde_json::from_str(&body)
                .map(Some)
                .with_context(|| format!("GET {path}: not JSON")),
            404 => Ok(None),
            _ => bail!("GET {path} answered {status}: {}", body.trim()),
        }
    }

    /// The sum and count of a histogram in `/metrics` whose name contains `name`.
    pub fn histogram(&self, name: &str) -> anyhow::Result<(f64, f64)> {
        let text = self.get("/metrics")?;
        let sample = |suffix: &str| {
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .find_map(|line| {
                    let (series, value) = line.rsplit_once(' ')?;
                    let metric = series.split('{').next()?;
                    (metric.contains(name) && metric.ends_with(suffix))
                        .then(|| value.parse::<f64>().ok())
                        .flatten()
                })
        };
        match (sample("_sum"), sample("_count")) {
            (Some(sum), Some(count)) => Ok((sum, count)),
            _ => bail!("no histogram named like {name:?} in /metrics"),
        }
    }

    /// The kill log's records so far (lines that are not JSON are skipped).
    pub fn kill_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("kills.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The last lines of the guardian's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("guardian.log")
    }
}

impl Drop for Guardian {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = nix::unistd::Pid::from_raw(self.pid());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let exited = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
                Ok(self.child.try_wait()?.map(|_| ()))
            });
            if !matches!(exited, Ok(Some(()))) {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// A free loopback address (bound, then released for the guardian).
fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// The config every benchmark starts from: defaults, no rules, its own kill log.
pub fn base_config(scan_interval: &str) -> String {
    format!("[daemon]\nscan_interval = \"{scan_interval}\"\n")
}
