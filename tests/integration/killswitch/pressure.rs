//! Pressure rules end to end: MemAvailable triggers with a threshold relative to the
//! host's current value (true for real, without squeezing the host), and a real PSI
//! squeeze inside cgroups the test makes (a small v1 memory limit plus a v2 cgroup whose
//! `memory.pressure` the rule reads) that must end in the rule's kill, not the kernel's.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::{KILL_TIMEOUT, assert_spared, config, records_for, wait_exit};
use crate::{
    common::{
        Daemon, Needs, TestCgroup, marker, mem_available, require, spawn_hog, spawn_hog_with,
        wait_for,
    },
    docker::TestContainer,
};

/// A pressure rule on `marker`'s processes: `trigger` is its trigger line(s),
/// `more_match` further matchers (", cgroup = ..."), `extra` further keys.
fn pressure_rule(name: &str, marker: &str, trigger: &str, more_match: &str, extra: &str) -> String {
    format!(
        "[[pressure_rule]]\nname = \"{name}\"\n{trigger}\nsustain = \"1s\"\ncooldown = \"10m\"\n\
         action = \"kill\"\nmatch = {{ cmdline = '{}( |$)'{more_match} }}\n{extra}\n",
        regex::escape(marker)
    )
}

/// The intent record about `pid`, once written.
fn wait_intent(daemon: &Daemon, pid: i32) -> serde_json::Value {
    wait_for(KILL_TIMEOUT, || {
        records_for(daemon, pid)
            .into_iter()
            .find(|record| record["kind"] == "intent")
    })
    .unwrap_or_else(|| panic!("no intent for pid {pid} in the kill log\n{}", daemon.log()))
}

#[test]
fn mem_available_rule_kills_the_largest_marked_host_process_and_spares_the_rest() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("pressure-mem");
    // A container twin larger than both host processes, matching the same pattern
    // (its argv ends with the marker): a pressure rule never takes a container unless
    // it says so.
    let docker = Path::new("/var/run/docker.sock").exists();
    let container = docker.then(|| {
        let container = TestContainer::run_sh(
            &m,
            "x=$(head -c 90000000 /dev/zero | tr '\\0' a); sleep 100000; :",
        );
        container.wait_rss(80 * 1024 * 1024);
        container
    });
    let mut small = spawn_hog(&m, &["--rss", "30"]);
    let mut large = spawn_hog(&m, &["--rss", "60"]);
    // Always true: MemAvailable now plus 1 GiB.
    let limit = mem_available() + (1 << 30);
    let text = config(&pressure_rule(
        "low-memory",
        &m,
        &format!("mem_available_below = {limit}"),
        "",
        "",
    ));
    let daemon = Daemon::start(&text, &["--source", "procfs"]);
    wait_exit(&mut large, &daemon);
    let intent = wait_intent(&daemon, large.pid());
    assert_eq!(intent["rule"], "low-memory");
    assert_eq!(intent["trigger"]["trigger"], "mem_available");
    assert_eq!(intent["trigger"]["source"], "host");
    assert_eq!(intent["trigger"]["threshold"].as_f64(), Some(limit as f64));
    let measured = intent["trigger"]["value"].as_f64().expect("measured value");
    assert!(measured > 0.0 && measured < limit as f64, "{intent}");
    assert!(
        intent["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("MemAvailable ")),
        "{intent}"
    );
    // Cooldown 10m: the smaller one stays; the container is never a candidate.
    assert_spared(&mut small, &daemon);
    if let Some(container) = &container {
        assert!(
            container.is_running(),
            "the container was killed\n{}",
            daemon.log()
        );
        assert!(records_for(&daemon, container.pid()).is_empty());
    }
    let (_, metrics) = daemon.get("/metrics");
    assert!(
        metrics.contains(
            "guardian_pressure_rule_firing{rule=\"low-memory\",trigger=\"mem_available\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("guardian_kill_decisions_total{rule=\"low-memory\",outcome=\"exited\"} 1")
    );
}

#[test]
fn mem_available_rule_in_dry_run_logs_and_kills_nothing() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("pressure-dry");
    let mut small = spawn_hog(&m, &["--rss", "20"]);
    let mut large = spawn_hog(&m, &["--rss", "40"]);
    let limit = mem_available() + (1 << 30);
    let text = config(&pressure_rule(
        "low-memory-dry",
        &m,
        &format!("mem_available_below = {limit}"),
        "",
        "dry_run = true",
    ));
    let daemon = Daemon::start(&text, &["--source", "procfs"]);
    let outcome = wait_for(KILL_TIMEOUT, || {
        records_for(&daemon, large.pid())
            .into_iter()
            .find(|record| record["kind"] == "outcome")
    })
    .unwrap_or_else(|| panic!("no dry-run outcome\n{}", daemon.log()));
    assert_eq!(outcome["outcome"], "dry-run");
    assert_eq!(
        wait_intent(&daemon, large.pid())["trigger"]["trigger"],
        "mem_available"
    );
    assert!(!large.has_exited() && !small.has_exited());
    // explain shows the pressure rule and its trigger for a matching process.
    let config_path = daemon.config_path();
    let output = Command::new(crate::common::guardian_bin())
        .args(["explain", &large.pid().to_string(), "--json", "--config"])
        .arg(&config_path)
        .output()
        .expect("run guardian explain");
    assert!(output.status.success());
    let explanation: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("explain JSON");
    let verdict = explanation["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|rule| rule["kind"] == "pressure"))
        .unwrap_or_else(|| panic!("no pressure verdict: {explanation}"));
    assert_eq!(verdict["applies"], true, "{verdict}");
}

/// A v2 cgroup the test made under the v2 root (`/sys/fs/cgroup/unified` on this hybrid
/// host): PSI files are cgroup-core files, so it has `memory.pressure` even where the
/// memory controller is on v1. Removed on drop (its processes are the test's own).
struct PsiCgroup {
    dir: PathBuf,
    path: String,
}

impl PsiCgroup {
    fn new(name: &str) -> Option<PsiCgroup> {
        let root = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            PathBuf::from("/sys/fs/cgroup/unified")
        };
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).ok()?;
        let cgroup = PsiCgroup {
            dir,
            path: format!("/{name}"),
        };
        cgroup
            .dir
            .join("memory.pressure")
            .exists()
            .then_some(cgroup)
    }

    fn pressure(&self) -> String {
        std::fs::read_to_string(self.dir.join("memory.pressure")).unwrap_or_default()
    }
}

impl Drop for PsiCgroup {
    fn drop(&mut self) {
        let _ = wait_for(Duration::from_secs(10), || {
            std::fs::remove_dir(&self.dir).ok()
        });
    }
}

/// Makes `command` join the v1 memory cgroup and the v2 one (the same hierarchy twice on
/// a pure v2 host) before it execs.
fn enter_both(command: &mut Command, memory: &TestCgroup, psi: &PsiCgroup) {
    memory.enter(command);
    if psi.dir != memory.dir {
        use std::os::unix::process::CommandExt as _;
        let procs = psi.dir.join("cgroup.procs");
        // SAFETY: only async-signal-safe work between fork and exec: open, write, close.
        unsafe {
            command.pre_exec(move || std::fs::write(&procs, b"0"));
        }
    }
}

/// `sh` rereading `file` forever inside the cgroups: with the limit nearly filled by
/// anonymous memory, every read reclaims page cache, and the cgroup stalls on memory.
struct Thrasher(Child);

impl Drop for Thrasher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn oom_kills(cgroup: &TestCgroup) -> u64 {
    let file = if cgroup.is_v1() {
        "memory.oom_control"
    } else {
        "memory.events"
    };
    std::fs::read_to_string(cgroup.dir.join(file))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn cgroup_psi_rule_kills_the_largest_squeezed_process_before_the_oom_killer() {
    if !require(&[Needs::Root]) {
        return;
    }
    let m = marker("pressure-psi");
    let Some(psi) = PsiCgroup::new(&m) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true but this kernel has no cgroup PSI (memory.pressure)"
        );
        eprintln!("skipped: no memory.pressure in v2 cgroups (PSI off?)");
        return;
    };
    let memory = TestCgroup::new(&m, Some(128 << 20));
    // A file larger than the cgroup, written outside it and dropped from the page cache,
    // so every read in the cgroup faults and reclaims.
    let dir = tempfile::tempdir_in("/var/tmp").expect("temp dir");
    let file = dir.path().join("thrash");
    let status = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=192", "status=none"])
        .arg(format!("of={}", file.display()))
        .args(["conv=fsync"])
        .status()
        .expect("dd");
    assert!(status.success());
    let status = Command::new("dd")
        .arg(format!("if={}", file.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()
        .expect("dd nocache");
    assert!(status.success());
    let oom_before = oom_kills(&memory);

    let mut small = spawn_hog_with(&m, &["--rss", "20"], |command| {
        enter_both(command, &memory, &psi)
    });
    let mut large = spawn_hog_with(&m, &["--rss", "90"], |command| {
        enter_both(command, &memory, &psi)
    });
    let mut thrash = Command::new("sh");
    thrash
        .args(["-c", "while :; do cat \"$1\" > /dev/null; done", "thrash"])
        .arg(&file)
        .stdin(Stdio::null());
    enter_both(&mut thrash, &memory, &psi);
    let mut thrasher = Thrasher(thrash.spawn().expect("spawn the thrasher"));

    let text = config(&format!(
        "{}\n[safety]\nbackoff = \"1s\"\n",
        pressure_rule(
            "cgroup-psi",
            &m,
            &format!("psi_some_above = 1.0\npsi_cgroup = \"{}\"", psi.path),
            &format!(", cgroup = \"{}\"", memory.path),
            "",
        )
    ));
    let daemon = Daemon::start(&text, &["--source", "procfs"]);
    wait_exit(&mut large, &daemon);
    let intent = wait_intent(&daemon, large.pid());
    assert_eq!(intent["trigger"]["trigger"], "psi_some", "{intent}");
    assert_eq!(intent["trigger"]["source"], psi.path.as_str());
    let measured = intent["trigger"]["value"].as_f64().expect("value");
    assert!(measured > 1.0, "{intent}");
    eprintln!(
        "squeeze: PSI some avg10 {measured:.2}% in {} at the kill; now {}",
        psi.path,
        psi.pressure().lines().next().unwrap_or_default()
    );
    assert_eq!(
        oom_kills(&memory),
        oom_before,
        "the kernel's OOM killer ran in the test cgroup\n{}",
        daemon.log()
    );
    assert_spared(&mut small, &daemon);
    assert!(
        matches!(thrasher.0.try_wait(), Ok(None)),
        "the non-matching thrasher was killed"
    );
    assert!(records_for(&daemon, thrasher.0.id() as i32).is_empty());
}
