//! The kill log across crashes of the real daemon: guardian is SIGKILLed at random
//! moments while it kills the test's own marked processes, then restarted on the same
//! log. Every process it killed has an intent record, and the chain verifies. The crash
//! moments come from a seeded generator: the seed is printed, `GUARDIAN_TEST_SEED`
//! replays it.

use std::{
    process::{Command, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::common::{
    Needs, TestProcess, assert_every_kill_has_an_intent, assert_log_verifies, free_port,
    guardian_bin, marker, require, spawn_hog,
};

const ROUNDS: usize = 12;
const HOGS_PER_ROUND: usize = 4;

/// The seed of the crash moments: `GUARDIAN_TEST_SEED` to replay a run, else the clock.
/// Printed first, so a failing run's output says how to replay it.
fn seed() -> u64 {
    let seed = std::env::var("GUARDIAN_TEST_SEED")
        .ok()
        .map(|text| {
            text.trim()
                .parse()
                .unwrap_or_else(|_| panic!("GUARDIAN_TEST_SEED={text:?} is not a u64"))
        })
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("crash test seed {seed} (replay with GUARDIAN_TEST_SEED={seed})");
    seed
}

#[test]
fn every_kill_has_an_intent_across_daemon_crashes() {
    if !require(&[Needs::Root]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("kills.jsonl");
    let prefix = marker("crash");
    let config = dir.path().join("guardian.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nscan_interval = \"100ms\"\nlock_memory = false\n\
             [safety]\nmax_kills = 1000\nrate_window = \"1s\"\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n\
             [[rule]]\nname = \"crash-test\"\nthreshold = \"8MiB\"\naction = \"kill\"\n\
             match = {{ cmdline = \"{prefix}-\" }}\n"
        ),
    )
    .expect("write config");

    let mut rng = fastrand::Rng::with_seed(seed());
    let mut hogs: Vec<TestProcess> = Vec::new();
    for round in 0..ROUNDS {
        for index in 0..HOGS_PER_ROUND {
            hogs.push(spawn_hog(
                &format!("{prefix}-{round}-{index}"),
                &["--rss", "16"],
            ));
        }
        let mut daemon = Command::new(guardian_bin())
            .args(["run", "--source", "procfs", "--config"])
            .arg(&config)
            .arg("--kill-log")
            .arg(&log)
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start guardian");
        // Anywhere from before its first scan to well after its kills.
        std::thread::sleep(Duration::from_millis(rng.u64(0..500)));
        let _ = daemon.kill();
        let _ = daemon.wait();
    }

    // Processes the guardian killed: dead by SIGKILL before the test touched them.
    std::thread::sleep(Duration::from_millis(200));
    let killed: Vec<i32> = hogs
        .iter_mut()
        .filter_map(|hog| (hog.exit_signal() == Some(9)).then(|| hog.pid()))
        .collect();
    assert!(
        !killed.is_empty(),
        "the guardian killed nothing in {ROUNDS} rounds"
    );

    let intents = assert_every_kill_has_an_intent(&log, &killed);

    assert_log_verifies(&log, "the kill log after crashes");
    eprintln!(
        "crash test: {} killed over {ROUNDS} crashes, {} intent records",
        killed.len(),
        intents
    );
}
