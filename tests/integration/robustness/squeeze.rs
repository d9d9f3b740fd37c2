//! The guardian's own memory cgroup squeezed: the daemon starts (with `lock_memory`, as
//! shipped) inside a memory cgroup of the test's, which is then limited to what it uses
//! plus a small margin, memory and swap alike. It says so in its log (naming the cgroup,
//! before an allocation can get it OOM-killed); under churn and scrapes it keeps serving,
//! keeps killing with intent records, and is not OOM-killed.

use std::{
    ffi::CString,
    process::{Command, Stdio},
    sync::OnceLock,
};

use super::{TIMEOUT, wait_log};
use crate::{
    common::{
        Daemon, DaemonOptions, Needs, TestCgroup, assert_every_kill_has_an_intent, marker, require,
        spawn_hog, wait_for,
    },
    killswitch::{config, rule},
};

/// Room above the daemon's usage once ready: enough for the churn below and for other
/// tests' processes appearing meanwhile, under the 16 MiB the guardian warns at. (With
/// 1 MiB the first scrape gets it OOM-killed.)
const MARGIN_BYTES: u64 = 8 << 20;

/// The `cgroup.procs` the daemon joins before exec (set once, before the fork).
static PROCS: OnceLock<CString> = OnceLock::new();

/// Between fork and exec: join the squeeze cgroup (open, write, close: async-signal-safe).
fn enter_squeeze_cgroup() -> std::io::Result<()> {
    let Some(path) = PROCS.get() else {
        return Err(std::io::Error::other("squeeze cgroup not set"));
    };
    // SAFETY: raw syscalls on a C string that outlives the child.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, c"0".as_ptr().cast(), 1);
        libc::close(fd);
        if written != 1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn read_u64(cgroup: &TestCgroup, file: &str) -> u64 {
    std::fs::read_to_string(cgroup.dir.join(file))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// The `oom_kill` count of a v1 cgroup's `memory.oom_control`.
fn oom_kills(cgroup: &TestCgroup) -> u64 {
    std::fs::read_to_string(cgroup.dir.join("memory.oom_control"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_squeezed_own_cgroup_keeps_the_guardian_serving_and_killing() {
    if !require(&[Needs::Root]) {
        return;
    }
    let cgroup = TestCgroup::new(&marker("squeeze-own"), None);
    if !cgroup.is_v1() {
        // The v2 files differ (memory.max, memory.events); this host's memory is on v1.
        eprintln!("skipped: the memory controller is on cgroup v2 here");
        return;
    }
    let procs = CString::new(
        cgroup
            .dir
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .expect("no NUL in a cgroup path");
    assert!(
        PROCS.set(procs).is_ok(),
        "the squeeze cgroup is set once per test binary"
    );
    let mark = marker("squeeze-hog");
    let daemon = Daemon::start_with(
        &config(&format!(
            "lock_memory = true\n\
             [safety]\nmax_kills = 1000\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n{}",
            rule("squeeze", &mark, "8MiB", "action = \"kill\"")
        )),
        &["--source", "procfs"],
        &DaemonOptions {
            pre_exec: Some(enter_squeeze_cgroup),
            ..DaemonOptions::default()
        },
    );
    assert!(
        cgroup.pids().contains(&(daemon.child.id() as i32)),
        "the daemon is not in the squeeze cgroup"
    );
    let limit = read_u64(&cgroup, "memory.usage_in_bytes") + MARGIN_BYTES;
    // memsw first may not go below memory's limit: set memory first, then memory+swap.
    std::fs::write(cgroup.dir.join("memory.limit_in_bytes"), limit.to_string())
        .expect("squeeze memory.limit_in_bytes");
    let _ = std::fs::write(
        cgroup.dir.join("memory.memsw.limit_in_bytes"),
        limit.to_string(),
    );
    wait_log(&daemon, "own memory cgroup is nearly full");
    let text = daemon.log();
    assert!(
        text.contains(&format!("cgroup={}", cgroup.path))
            && text.contains(&format!("limit_bytes={limit}")),
        "the squeeze warning names neither the cgroup nor its limit:\n{text}"
    );

    // Churn: 400 short processes in bursts, scrapes, and a hog per burst.
    let mut hogs = Vec::new();
    for _ in 0..4 {
        let mut burst: Vec<_> = (0..100)
            .map(|_| {
                Command::new("sleep")
                    .arg("1")
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("spawn sleep")
            })
            .collect();
        hogs.push(spawn_hog(&mark, &["--rss", "16"]));
        for _ in 0..3 {
            let (status, _) = daemon.get("/metrics");
            assert_eq!(status, 200, "/metrics under the squeeze:\n{}", daemon.log());
        }
        for child in &mut burst {
            let _ = child.wait();
        }
    }
    let killed = wait_for(TIMEOUT, || {
        hogs.iter_mut().all(|hog| hog.has_exited()).then_some(())
    });
    assert!(
        killed.is_some(),
        "hogs not killed under the squeeze:\n{}",
        daemon.log()
    );
    let pids: Vec<i32> = hogs.iter().map(|hog| hog.pid()).collect();
    assert_every_kill_has_an_intent(&daemon.kill_log_path(), &pids);
    super::assert_healthy(&daemon);
    assert_eq!(
        oom_kills(&cgroup),
        0,
        "the guardian's own cgroup OOM-killed it:\n{}",
        daemon.log()
    );
    eprintln!(
        "squeeze: limit {limit} bytes, peak {} bytes, limit hits (failcnt) {}",
        read_u64(&cgroup, "memory.max_usage_in_bytes"),
        read_u64(&cgroup, "memory.failcnt")
    );
}
