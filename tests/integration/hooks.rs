//! Hooks end to end, one real event of every type a hook can receive, each told to a
//! real local HTTP receiver and a command hook (a shell script writing its stdin and
//! `GUARDIAN_*` variables to files), every payload checked field by field and the secret
//! argument of every process involved absent from all of them:
//! - "kill": `guardian run --source procfs` kills memhogs this test started (the rule
//!   matches only the test's marker). A second hook hangs (a command that sleeps, a
//!   receiver that never answers): the kills still happen and its timeouts are counted
//!   in `/metrics` (`cargo xtask bench` measures the kill latency beside it);
//! - "oom": a memhog OOM-killed by the kernel in a memory cgroup the test made with a
//!   48 MiB limit;
//! - "leak" and "imminent": a memhog growing 2 MB/s in a cgroup with a 1 GiB limit, under
//!   a short `[trends]` config (no warm-up, never young);
//! - "pressure": a dry-run `[[pressure_rule]]` on MemAvailable below a value above the
//!   current one (true at once, matching no process).

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
    common::{Daemon, Needs, TestCgroup, marker, mem_available, require, spawn_hog_with, wait_for},
    killswitch::{config, rule, wait_exit, wait_outcome},
};

const TIMEOUT: Duration = Duration::from_secs(60);
/// The trend detector needs six 10 s minima before it calls a rise: allow for a loaded
/// machine. Tests wait, never time.
const TREND_TIMEOUT: Duration = Duration::from_secs(300);
const MIB: u64 = 1 << 20;
/// The growing memhog's cgroup limit.
const GROW_LIMIT: u64 = 1024 * MIB;
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

/// The command hook: writes the event's `GUARDIAN_*` variables to `EVENT-PID.env` and its
/// JSON to `EVENT-PID.json` beside itself (`EVENT-.json` for events without a process).
const RECORD: &str = "set -e\nout=\"$(dirname \"$0\")/$GUARDIAN_EVENT-$GUARDIAN_PID\"\n\
     env | grep '^GUARDIAN_' > \"$out.env\"\ncat > \"$out.$$.tmp\"\nmv \"$out.$$.tmp\" \"$out.json\"";

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

/// Checks the fields every payload has: the event, its rule, process and comm (JSON
/// null where the event has none), an RFC 3339 time and the host; and that the secret
/// is nowhere in it.
fn check_envelope(
    payload: &serde_json::Value,
    event: &str,
    rule: Option<&str>,
    pid: Option<i32>,
    comm: Option<&str>,
) {
    let text = payload.to_string();
    assert!(!text.contains(SECRET), "the secret reached a hook: {text}");
    let mut fields: Vec<&str> = payload
        .as_object()
        .map(|fields| fields.keys().map(String::as_str).collect())
        .unwrap_or_default();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["comm", "data", "event", "host", "pid", "rule", "time"],
        "{text}"
    );
    assert_eq!(payload["event"], event, "{text}");
    assert_eq!(payload["rule"], serde_json::json!(rule), "{text}");
    assert_eq!(payload["pid"], serde_json::json!(pid), "{text}");
    assert_eq!(payload["comm"], serde_json::json!(comm), "{text}");
    assert!(
        payload["time"]
            .as_str()
            .is_some_and(|time| time.contains('T') && time.ends_with('Z')),
        "{text}"
    );
    assert!(
        payload["host"]
            .as_str()
            .is_some_and(|host| !host.is_empty()),
        "{text}"
    );
}

/// Checks one kill payload against what the test knows of the process.
fn check_kill_payload(payload: &serde_json::Value, pid: i32, comm: &str, marker: &str) {
    let text = payload.to_string();
    check_envelope(payload, "kill", Some("hooks"), Some(pid), Some(comm));
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
    script(&record, RECORD);
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

/// What the command hook wrote for `event` about `pid` (none: an event without a
/// process): its JSON payload and its `GUARDIAN_*` variables, once written.
fn recorded(
    dir: &Path,
    event: &str,
    pid: Option<i32>,
    daemon: &Daemon,
) -> (serde_json::Value, String) {
    let base = dir.join(format!(
        "{event}-{}",
        pid.map(|pid| pid.to_string()).unwrap_or_default()
    ));
    let json = wait_for(TREND_TIMEOUT, || {
        std::fs::read_to_string(base.with_extension("json")).ok()
    })
    .unwrap_or_else(|| {
        panic!(
            "the command hook never got {event} {pid:?}\n{}",
            daemon.log()
        )
    });
    let payload = serde_json::from_str(&json).expect("command payload JSON");
    let env = std::fs::read_to_string(base.with_extension("env")).expect("hook env");
    assert!(!env.contains(SECRET), "{env}");
    (payload, env)
}

/// The first body the receiver got for which `wanted` holds, once posted.
fn posted(
    receiver: &Receiver,
    what: &str,
    daemon: &Daemon,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_for(TREND_TIMEOUT, || {
        receiver.bodies().into_iter().find_map(|body| {
            let payload: serde_json::Value = serde_json::from_str(&body).ok()?;
            wanted(&payload).then_some(payload)
        })
    })
    .unwrap_or_else(|| panic!("the webhook never got {what}\n{}", daemon.log()))
}

/// Fails unless every `GUARDIAN_*` line in `expected` is in `env`, and no
/// `GUARDIAN_{name}=` line for the names in `absent` (events without a rule or process).
fn check_env(env: &str, expected: &[String], absent: &[&str]) {
    for line in expected {
        assert!(env.lines().any(|l| l == line), "{line} missing from\n{env}");
    }
    for name in absent {
        let prefix = format!("GUARDIAN_{name}=");
        assert!(!env.lines().any(|l| l.starts_with(&prefix)), "{env}");
    }
    for name in ["HOOK=record", "TIME=", "HOST="] {
        let prefix = format!("GUARDIAN_{name}");
        assert!(env.lines().any(|l| l.starts_with(&prefix)), "{env}");
    }
}

/// A trend subject: this process, its comm and a start time.
fn check_subject(subject: &serde_json::Value, pid: i32) {
    assert_eq!(subject["kind"], "process", "{subject}");
    assert_eq!(subject["pid"], pid, "{subject}");
    assert_eq!(subject["comm"], "memhog", "{subject}");
    assert!(subject["start_ticks"].as_u64() > Some(0), "{subject}");
}

/// The OOM payload's event record: the victim the kernel log named, in the test's cgroup.
fn check_oom(payload: &serde_json::Value, pid: i32, cgroup: &str) {
    println!("oom payload: {payload}");
    check_envelope(payload, "oom", None, Some(pid), Some("memhog"));
    let data = &payload["data"];
    assert_eq!(data["pid"], pid, "{data}");
    assert_eq!(data["comm"], "memhog", "{data}");
    assert_eq!(data["uid"], 0, "{data}");
    assert_eq!(data["cgroup"], cgroup, "{data}");
    assert_eq!(data["scope"], "cgroup", "{data}");
    assert_eq!(data["origin"], "kernel-log", "{data}");
    assert!(
        data["time"].as_str().is_some_and(|time| time.contains('T')),
        "{data}"
    );
    assert!(data["unix_time"].as_f64() > Some(0.0), "{data}");
    assert!(data["anon_rss_bytes"].as_u64() > Some(8 * MIB), "{data}");
    assert!(data["file_rss_bytes"].as_u64().is_some(), "{data}");
    assert!(data["shmem_rss_bytes"].as_u64().is_some(), "{data}");
    assert!(data["oom_score_adj"].as_i64().is_some(), "{data}");
    // The kernel log has no boot-clock time of the kill (the tracepoint has).
    assert!(data["kernel_boot_ns"].is_null(), "{data}");
}

/// The leak payload: the detector's verdict change to "leak" on the growing process.
fn check_leak(payload: &serde_json::Value, pid: i32) {
    println!("leak payload: {payload}");
    check_envelope(payload, "leak", None, Some(pid), Some("memhog"));
    let data = &payload["data"];
    check_subject(&data["subject"], pid);
    assert!(
        data["from"]
            .as_str()
            .is_some_and(|from| !from.is_empty() && from != "leak"),
        "{data}"
    );
    assert_eq!(data["to"], "leak", "{data}");
    assert!(data["at_s"].as_f64() > Some(0.0), "{data}");
    assert!(
        data["slope_bytes_per_second"].as_f64() > Some(0.0),
        "{data}"
    );
    assert!(
        data["confidence"]
            .as_f64()
            .is_some_and(|confidence| confidence > 0.0 && confidence <= 1.0),
        "{data}"
    );
    assert!(
        data["time_to_limit_s"]
            .as_f64()
            .is_some_and(|seconds| seconds > 0.0),
        "{data}"
    );
}

/// The imminent payload on the growing process: its cgroup's limit within the horizon.
fn check_imminent(payload: &serde_json::Value, pid: i32) {
    println!("imminent payload: {payload}");
    check_envelope(payload, "imminent", None, Some(pid), Some("memhog"));
    let data = &payload["data"];
    check_subject(&data["subject"], pid);
    check_imminence(data);
}

/// The fields of an imminence change against the 1 GiB cgroup limit.
fn check_imminence(data: &serde_json::Value) {
    assert_eq!(data["imminent"], true, "{data}");
    assert!(data["at_s"].as_f64() > Some(0.0), "{data}");
    assert!(
        data["verdict"]
            .as_str()
            .is_some_and(|verdict| !verdict.is_empty()),
        "{data}"
    );
    // Within the default horizon (45 minutes).
    assert!(
        data["time_to_limit_s"]
            .as_f64()
            .is_some_and(|seconds| seconds > 0.0 && seconds <= 2700.0),
        "{data}"
    );
    assert_eq!(data["limit_bytes"], GROW_LIMIT, "{data}");
    assert_eq!(data["limit_kind"], "cgroup", "{data}");
    assert!(
        data["level_bytes"]
            .as_u64()
            .is_some_and(|level| level > 0 && level < GROW_LIMIT),
        "{data}"
    );
    assert!(
        data["approach_bytes_per_second"].as_f64() > Some(0.0),
        "{data}"
    );
}

/// The pressure payload: the rule, its trigger and what it measured.
fn check_pressure(payload: &serde_json::Value, limit: u64) {
    println!("pressure payload: {payload}");
    check_envelope(payload, "pressure", Some("hooks-pressure"), None, None);
    let data = &payload["data"];
    assert_eq!(data["rule"], "hooks-pressure", "{data}");
    assert_eq!(data["trigger"], "mem_available", "{data}");
    assert_eq!(data["threshold"].as_f64(), Some(limit as f64), "{data}");
    assert!(
        data["value"]
            .as_f64()
            .is_some_and(|value| value > 0.0 && value < limit as f64),
        "{data}"
    );
    assert_eq!(data["firing"], true, "{data}");
    assert!(data["held_s"].as_f64() >= Some(0.0), "{data}");
}

#[test]
fn hooks_receive_redacted_oom_leak_imminent_and_pressure_events() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("hook-events");
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("record.sh");
    script(&record, RECORD);
    let receiver = Receiver::start();
    let secret_arg = format!("--password={SECRET}");
    let with_secret = |command: &mut std::process::Command| {
        command.arg(&secret_arg).env("MEMHOG_ANY_ARGS", "1");
    };

    // Grows 2 MB/s toward its cgroup's 1 GiB limit (stopping at 600 MB).
    let grow_cgroup = TestCgroup::new(&format!("{m}-grow"), Some(GROW_LIMIT));
    let grower = spawn_hog_with(
        &format!("{m}-grow"),
        &["--rss", "20", "--grow", "2", "--max", "600"],
        |command| {
            with_secret(command);
            grow_cgroup.enter(command);
        },
    );
    // Always true: MemAvailable now plus 1 GiB; the rule matches no process.
    let limit = mem_available() + (1 << 30);
    // Every series on the host is tracked from 16 MiB up and their events reach the hook
    // too: enough slots that none of the test's events is dropped as busy.
    let text = config(&format!(
        "[trends]\nmin_rss = \"16MiB\"\nwarmup = \"0s\"\nwarmup_max_age = \"0s\"\n\n\
         [[pressure_rule]]\nname = \"hooks-pressure\"\nmem_available_below = {limit}\n\
         sustain = \"1s\"\ncooldown = \"10m\"\ndry_run = true\n\
         match = {{ cmdline = '{}( |$)' }}\n\n\
         [[hook]]\nname = \"record\"\nevents = [\"oom\", \"leak\", \"imminent\", \"pressure\"]\n\
         command = [\"{}\"]\nurl = \"http://{}/events\"\ntimeout = \"30s\"\n\
         max_concurrent = 64\n",
        regex::escape(&format!("{m}-nobody")),
        record.display(),
        receiver.addr,
    ));
    let daemon = Daemon::start(&text, &["--source", "procfs"]);

    // "pressure": at once.
    let (payload, env) = recorded(dir.path(), "pressure", None, &daemon);
    check_pressure(&payload, limit);
    check_env(
        &env,
        &[
            "GUARDIAN_EVENT=pressure".into(),
            "GUARDIAN_RULE=hooks-pressure".into(),
        ],
        &["PID", "COMM"],
    );
    check_pressure(
        &posted(&receiver, "the pressure event", &daemon, |payload| {
            payload["event"] == "pressure" && payload["rule"] == "hooks-pressure"
        }),
        limit,
    );

    // "oom": a memhog the kernel kills in a 48 MiB cgroup the daemon already lists.
    let oom_cgroup = TestCgroup::new(&format!("{m}-oom"), Some(48 * MIB));
    let listed = wait_for(TIMEOUT, || {
        daemon
            .get_json("/api/v1/cgroups?limit=100000")
            .as_array()?
            .iter()
            .any(|entry| entry["path"] == oom_cgroup.path.as_str())
            .then_some(())
    });
    assert!(
        listed.is_some(),
        "the daemon never listed {}",
        oom_cgroup.path
    );
    // Its counters seeded before the kill (see sources.rs).
    std::thread::sleep(Duration::from_millis(1200));
    let mut victim = spawn_hog_with(
        &format!("{m}-oom"),
        &["--rss", "8", "--grow", "200"],
        |command| {
            with_secret(command);
            oom_cgroup.enter(command);
        },
    );
    let pid = victim.pid();
    let died = wait_for(TIMEOUT, || victim.has_exited().then_some(()));
    assert!(died.is_some(), "the memhog was not OOM-killed");
    assert_eq!(victim.exit_signal(), Some(libc::SIGKILL));
    let (payload, env) = recorded(dir.path(), "oom", Some(pid), &daemon);
    check_oom(&payload, pid, &oom_cgroup.path);
    check_env(
        &env,
        &[
            "GUARDIAN_EVENT=oom".into(),
            format!("GUARDIAN_PID={pid}"),
            "GUARDIAN_COMM=memhog".into(),
        ],
        &["RULE"],
    );
    check_oom(
        &posted(&receiver, "the OOM event", &daemon, |payload| {
            payload["event"] == "oom" && payload["pid"] == pid
        }),
        pid,
        &oom_cgroup.path,
    );

    // "imminent" and "leak": the growing memhog, then its cgroup.
    let pid = grower.pid();
    for event in ["imminent", "leak"] {
        let (payload, env) = recorded(dir.path(), event, Some(pid), &daemon);
        let posted = posted(&receiver, event, &daemon, |payload| {
            payload["event"] == event && payload["pid"] == pid
        });
        for payload in [&payload, &posted] {
            if event == "leak" {
                check_leak(payload, pid);
            } else {
                check_imminent(payload, pid);
            }
        }
        check_env(
            &env,
            &[
                format!("GUARDIAN_EVENT={event}"),
                format!("GUARDIAN_PID={pid}"),
                "GUARDIAN_COMM=memhog".into(),
            ],
            &["RULE"],
        );
    }
    let cgroup = posted(&receiver, "the cgroup's imminence", &daemon, |payload| {
        payload["event"] == "imminent" && payload["data"]["subject"]["path"] == grow_cgroup.path
    });
    println!("imminent payload (cgroup): {cgroup}");
    check_envelope(&cgroup, "imminent", None, None, None);
    assert_eq!(
        cgroup["data"]["subject"],
        serde_json::json!({"kind": "cgroup", "path": grow_cgroup.path}),
        "{cgroup}"
    );
    check_imminence(&cgroup["data"]);

    // Redaction held in everything any hook got, whatever it was about.
    for body in receiver.bodies() {
        assert!(
            !body.contains(SECRET),
            "the secret reached the webhook: {body}"
        );
    }
    for entry in std::fs::read_dir(dir.path()).expect("read the hook's directory") {
        let path = entry.expect("directory entry").path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains(SECRET),
            "the secret reached {}",
            path.display()
        );
    }
    let (_, metrics) = daemon.get("/metrics");
    for event in ["oom", "leak", "imminent", "pressure"] {
        let ok = sample(
            &metrics,
            &format!(
                "guardian_hook_deliveries_total{{hook=\"record\",target=\"webhook\",event=\"{event}\",result=\"ok\"}}"
            ),
        );
        assert!(ok >= Some(1.0), "{event}: {ok:?}\n{metrics}");
    }
}
