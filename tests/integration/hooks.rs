//! Hooks end to end: `guardian run --source procfs` kills memhogs this test started
//! (the rule matches only the test's marker) and tells a real local HTTP receiver and a
//! command hook (a shell script writing its stdin and `GUARDIAN_*` variables to files);
//! every payload field is checked, the secret argument must not show. A second hook
//! hangs (a command that sleeps, a receiver that never answers): the kills still happen
//! and its timeouts are counted in `/metrics`.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::fs::PermissionsExt as _,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::{
    common::{Daemon, Needs, marker, require, spawn_hog_with, wait_for},
    killswitch::{config, rule, wait_exit, wait_outcome},
};

const TIMEOUT: Duration = Duration::from_secs(60);
/// An argument the redaction must hide from every payload.
const SECRET: &str = "hunter2-hook-secret-771";

/// A loopback HTTP receiver answering 200 to every POST and keeping the bodies; stopped
/// and joined on drop.
struct Receiver {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("receiver address");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (bodies, stop) = (Arc::clone(&bodies), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Some(body) = answer(stream) {
                                bodies.lock().expect("bodies").push(body);
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Receiver {
            addr,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("bodies").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request (headers, then Content-Length bytes) and answers 200.
fn answer(stream: TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = reader.into_inner();
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .ok()?;
    assert!(request_line.starts_with("POST /events "), "{request_line}");
    String::from_utf8(body).ok()
}

/// Writes an executable shell script.
fn script(path: &Path, text: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{text}\n")).expect("write hook script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The value of the first sample of `/metrics` starting with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Checks one kill payload against what the test knows of the process.
fn check_kill_payload(payload: &serde_json::Value, pid: i32, comm: &str, marker: &str) {
    let text = payload.to_string();
    assert!(!text.contains(SECRET), "the secret reached a hook: {text}");
    assert_eq!(payload["event"], "kill", "{text}");
    assert_eq!(payload["rule"], "hooks", "{text}");
    assert_eq!(payload["pid"], pid, "{text}");
    assert_eq!(payload["comm"], comm, "{text}");
    assert!(
        payload["time"]
            .as_str()
            .is_some_and(|time| time.contains('T')),
        "{text}"
    );
    assert!(
        payload["host"]
            .as_str()
            .is_some_and(|host| !host.is_empty()),
        "{text}"
    );
    let data = &payload["data"];
    assert_eq!(data["rule"], "hooks", "{text}");
    assert_eq!(data["pid"], pid, "{text}");
    assert_eq!(data["comm"], comm, "{text}");
    assert_eq!(data["kind"], "threshold", "{text}");
    assert_eq!(data["dry_run"], false, "{text}");
    assert!(
        data["rss_bytes"]
            .as_u64()
            .is_some_and(|rss| rss >= 100 << 20),
        "{text}"
    );
    assert_eq!(data["threshold_bytes"], 100u64 << 20, "{text}");
    let cmdline = data["cmdline"].as_str().expect("cmdline");
    assert!(cmdline.contains(marker), "{text}");
    assert!(cmdline.contains("--password="), "{text}");
    assert!(data["outcome"].as_str().is_some(), "{text}");
    assert!(data["intent_seq"].as_u64().is_some(), "{text}");
}

#[test]
fn hooks_receive_redacted_kill_events_and_a_hung_hook_does_not_delay_kills() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("hooks");
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("record.sh");
    script(
        &record,
        "set -e\nout=\"$(dirname \"$0\")/$GUARDIAN_EVENT-$GUARDIAN_PID\"\n\
         env | grep '^GUARDIAN_' > \"$out.env\"\ncat > \"$out.tmp\"\nmv \"$out.tmp\" \"$out.json\"",
    );
    let hang = dir.path().join("hang.sh");
    script(&hang, "exec sleep 3600");
    let receiver = Receiver::start();
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind silent receiver");
    let silent_addr = silent.local_addr().expect("silent address");
    let hooks = format!(
        "[[hook]]\nname = \"record\"\nevents = [\"kill\"]\ncommand = [\"{}\"]\n\
         url = \"http://{}/events\"\ntimeout = \"30s\"\n\n\
         [[hook]]\nname = \"hang\"\nevents = [\"kill\", \"oom\"]\ncommand = [\"{}\"]\n\
         url = \"http://{silent_addr}/events\"\ntimeout = \"1s\"\nretries = 0\n\
         max_concurrent = 1\n",
        record.display(),
        receiver.addr,
        hang.display()
    );
    let secret_arg = format!("--password={SECRET}");
    let spawn = || {
        spawn_hog_with(&m, &["--rss", "200"], |command| {
            command.arg(&secret_arg).env("MEMHOG_ANY_ARGS", "1");
        })
    };
    let mut hogs = [spawn(), spawn()];
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", hogs[0].pid()))
        .expect("memhog comm")
        .trim()
        .to_string();
    let daemon = Daemon::start(
        &config(&format!(
            "[safety]\nmax_kills = 100\nbackoff = \"0s\"\n\n{}\n{hooks}",
            rule("hooks", &m, "100MiB", "action = \"kill\"")
        )),
        &["--source", "procfs"],
    );

    // The kills happen, whatever the hung hook does.
    for hog in &mut hogs {
        wait_exit(hog, &daemon);
        let outcome = wait_outcome(&daemon, hog.pid());
        assert_eq!(outcome["outcome"], "exited", "{outcome}");
    }

    for hog in &hogs {
        let pid = hog.pid();
        let base = dir.path().join(format!("kill-{pid}"));
        let json = wait_for(TIMEOUT, || {
            std::fs::read_to_string(base.with_extension("json")).ok()
        })
        .unwrap_or_else(|| panic!("the command hook never got pid {pid}\n{}", daemon.log()));
        let payload: serde_json::Value = serde_json::from_str(&json).expect("command payload JSON");
        check_kill_payload(&payload, pid, &comm, &m);
        let env = std::fs::read_to_string(base.with_extension("env")).expect("hook env");
        for line in [
            "GUARDIAN_EVENT=kill".to_string(),
            format!("GUARDIAN_PID={pid}"),
            "GUARDIAN_RULE=hooks".to_string(),
            "GUARDIAN_HOOK=record".to_string(),
            format!("GUARDIAN_COMM={comm}"),
        ] {
            assert!(env.lines().any(|l| l == line), "{line} missing from\n{env}");
        }
        assert!(!env.contains(SECRET), "{env}");

        let posted = wait_for(TIMEOUT, || {
            receiver.bodies().into_iter().find_map(|body| {
                let payload: serde_json::Value = serde_json::from_str(&body).ok()?;
                (payload["pid"] == pid).then_some(payload)
            })
        })
        .unwrap_or_else(|| panic!("the webhook never got pid {pid}\n{}", daemon.log()));
        check_kill_payload(&posted, pid, &comm, &m);
    }

    // The hung hook: every attempt it made timed out (its command's process group was
    // killed), and events past its one slot were dropped, never queued.
    let counted = wait_for(TIMEOUT, || {
        let (_, metrics) = daemon.get("/metrics");
        let timeouts = |target: &str| {
            sample(
                &metrics,
                &format!("guardian_hook_failures_total{{hook=\"hang\",target=\"{target}\",reason=\"timeout\"}}"),
            )
            .unwrap_or(0.0)
        };
        let failed = |target: &str| {
            sample(
                &metrics,
                &format!("guardian_hook_deliveries_total{{hook=\"hang\",target=\"{target}\",event=\"kill\",result=\"failed\"}}"),
            )
            .unwrap_or(0.0)
        };
        let dropped = sample(
            &metrics,
            "guardian_hook_dropped_total{hook=\"hang\",event=\"kill\",reason=\"busy\"}",
        )
        .unwrap_or(0.0);
        let ok = sample(
            &metrics,
            "guardian_hook_deliveries_total{hook=\"record\",target=\"webhook\",event=\"kill\",result=\"ok\"}",
        )
        .unwrap_or(0.0);
        let settled = timeouts("command") >= 1.0
            && timeouts("webhook") >= 1.0
            && failed("command") + failed("webhook") + 2.0 * dropped >= 4.0
            && ok >= 2.0
            && metrics.contains(
                "guardian_hook_delivery_duration_seconds_count{hook=\"hang\",target=\"command\"}",
            );
        settled.then_some(metrics)
    });
    assert!(
        counted.is_some(),
        "the hung hook's timeouts were not counted\n{}\n{}",
        daemon.get("/metrics").1,
        daemon.log()
    );
    drop(silent);
}
