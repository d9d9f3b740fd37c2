//! A real Prometheus server (Debian's `prometheus`) for one test: its own loopback port,
//! its own TSDB in a temp dir, scraping guardians (or federating another Prometheus)
//! every second and evaluating the shipped rules; killed in `Drop`.

use std::{
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::common::{free_port, http_get, wait_for, which};

pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` as job "guardian" every second, with
    /// `rules` loaded, and waits until it is ready.
    pub fn start(target: SocketAddr, rules: &Path) -> Prometheus {
        Prometheus::start_with(&guardian_job(&[target]), &[rules])
    }

    /// Starts Prometheus with `scrape_configs` (YAML list items) and `rules`, scraping and
    /// evaluating every second, and waits until it is ready.
    pub fn start_with(scrape_configs: &str, rules: &[&Path]) -> Prometheus {
        let binary = which("prometheus").expect("prometheus on PATH");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        let rule_files: String = rules
            .iter()
            .map(|rules| format!("  - {}\n", rules.display()))
            .collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n{rule_files}scrape_configs:\n{scrape_configs}"
            ),
        )
        .expect("write prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let mut prometheus = Prometheus { child, addr, dir };
        let ready = wait_for(Duration::from_secs(60), || {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                panic!("prometheus exited early ({status}):\n{}", prometheus.log());
            }
            matches!(http_get(addr, "/-/ready"), Ok((200, _))).then_some(())
        });
        assert!(
            ready.is_some(),
            "prometheus not ready:\n{}",
            prometheus.log()
        );
        prometheus
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: each result's labels and value.
    pub fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let (status, body) = http_get(self.addr, &path)
            .unwrap_or_else(|error| panic!("query {promql}: {error}\n{}", self.log()));
        assert_eq!(status, 200, "query {promql}: {body}");
        let value: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|error| panic!("{error}: {body}"));
        value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|sample| {
                let number = sample["value"][1].as_str()?.parse().ok()?;
                Some((sample["metric"].clone(), number))
            })
            .collect()
    }

    /// Waits (generously) until `promql` has a result whose value satisfies `accept`.
    pub fn wait_value(&self, promql: &str, accept: impl Fn(f64) -> bool) -> f64 {
        wait_for(Duration::from_secs(60), || {
            self.query(promql)
                .into_iter()
                .map(|(_, value)| value)
                .find(|value| accept(*value))
        })
        .unwrap_or_else(|| {
            panic!(
                "no acceptable result for {promql}: {:?}\n{}",
                self.query(promql),
                self.log()
            )
        })
    }

    /// Every alert, pending or firing.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        let (_, body) = http_get(self.addr, "/api/v1/alerts").expect("GET /api/v1/alerts");
        let value: serde_json::Value = serde_json::from_str(&body).expect("alerts JSON");
        value["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Rules whose last evaluation failed (e.g. many-to-many matching): name and error.
    pub fn failing_rules(&self) -> Vec<(String, String)> {
        let (_, body) = http_get(self.addr, "/api/v1/rules").expect("GET /api/v1/rules");
        let value: serde_json::Value = serde_json::from_str(&body).expect("rules JSON");
        value["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .filter(|rule| rule["health"] == "err")
            .map(|rule| (rule["name"].to_string(), rule["lastError"].to_string()))
            .collect()
    }

    /// When each rule group was last evaluated (changes with every evaluation).
    pub fn last_evaluations(&self) -> String {
        let (_, body) = http_get(self.addr, "/api/v1/rules").expect("GET /api/v1/rules");
        let value: serde_json::Value = serde_json::from_str(&body).expect("rules JSON");
        value["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|group| group["lastEvaluation"].to_string())
            .collect()
    }

    /// Names of the alerts currently firing.
    pub fn firing_alerts(&self) -> Vec<serde_json::Value> {
        let (_, body) = http_get(self.addr, "/api/v1/alerts").expect("GET /api/v1/alerts");
        let value: serde_json::Value = serde_json::from_str(&body).expect("alerts JSON");
        value["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|alert| alert["state"] == "firing")
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let stopped = wait_for(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_))).then_some(())
        });
        if stopped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The scrape config of job "guardian" over `targets`, every second.
pub fn guardian_job(targets: &[SocketAddr]) -> String {
    let targets: Vec<String> = targets.iter().map(|target| format!("'{target}'")).collect();
    format!(
        "  - job_name: guardian\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    \
         static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    )
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
