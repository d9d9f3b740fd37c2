//! A real Prometheus server (Debian's `prometheus`) for one test: its own loopback port,
//! its own TSDB in a temp dir, scraping one guardian every second and evaluating the
//! shipped alert rules; killed in `Drop`.

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
        let binary = which("prometheus").expect("prometheus on PATH");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: guardian\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
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
