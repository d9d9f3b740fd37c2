//! Logging to journald end to end: the real daemon, started the way systemd starts it
//! (stderr is the journal stream named by `JOURNAL_STREAM`), writes native-protocol
//! entries to `/run/systemd/journal/socket`. journald is not running here, so the test
//! listens itself: the daemon runs in a private mount namespace where the test's socket
//! is bind-mounted at journald's path (nothing changes on the host).

use std::{
    collections::HashMap,
    os::unix::{fs::MetadataExt as _, net::UnixDatagram},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nix::sys::signal::{Signal, kill};

use crate::common::{Needs, free_port, guardian_bin, require, which};

/// Parses a native-protocol datagram (length-encoded and `KEY=value` fields).
fn decode(mut data: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    while !data.is_empty() {
        let newline = data.iter().position(|&b| b == b'\n').expect("field end");
        let head = String::from_utf8_lossy(&data[..newline]).into_owned();
        if let Some((name, value)) = head.split_once('=') {
            fields.insert(name.to_string(), value.to_string());
            data = &data[newline + 1..];
            continue;
        }
        let rest = &data[newline + 1..];
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
        let value = String::from_utf8_lossy(&rest[8..8 + len]).into_owned();
        assert_eq!(rest[8 + len], b'\n', "value of {head} ends with a newline");
        fields.insert(head, value);
        data = &rest[8 + len + 1..];
    }
    fields
}

/// The daemon in its own mount namespace; SIGTERM and reaped on drop.
struct Journaled(Child);

impl Drop for Journaled {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                Signal::SIGTERM,
            );
        }
        let _ = self.0.wait();
    }
}

struct Journal {
    socket: UnixDatagram,
}

impl Journal {
    /// Entries until one whose MESSAGE starts with `start` (returned), within 30 s.
    fn entry(&self, start: &str, log: &std::path::Path) -> HashMap<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
        {
            self.socket.set_read_timeout(Some(left)).expect("timeout");
            let Ok(len) = self.socket.recv(&mut buf) else {
                break;
            };
            if len == 0 {
                continue; // the connection probe
            }
            let entry = decode(&buf[..len]);
            if entry.get("MESSAGE").is_some_and(|m| m.starts_with(start)) {
                return entry;
            }
            seen.push(entry.get("MESSAGE").cloned().unwrap_or_default());
        }
        panic!(
            "no journal entry starting {start:?}; saw {seen:?}\nstderr:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

#[test]
fn entries_carry_guardian_fields_and_a_readable_message() {
    if !require(&[Needs::Root]) {
        return;
    }
    let unshare = which("unshare").expect("unshare (util-linux) on PATH");
    let dir = tempfile::tempdir().expect("temp dir");
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).expect("journal dir");
    let journal = Journal {
        socket: UnixDatagram::bind(journal_dir.join("socket")).expect("bind the journal socket"),
    };
    let config = dir.path().join("guardian.toml");
    std::fs::write(
        &config,
        "[daemon]\nscan_interval = \"1s\"\nlock_memory = false\n",
    )
    .expect("write config");
    // stderr goes to a file whose device and inode JOURNAL_STREAM names, as systemd does
    // for a unit whose output is the journal.
    let log = dir.path().join("stderr");
    let stderr = std::fs::File::create(&log).expect("stderr file");
    let meta = stderr.metadata().expect("stderr metadata");
    // A private mount namespace: journald's directory is the test's, for this child only.
    let script = r#"set -e
        if [ -d /run/systemd ]; then mount -t tmpfs tmpfs /run/systemd; else mount -t tmpfs tmpfs /run; fi
        mkdir -p /run/systemd/journal
        mount --bind "$0" /run/systemd/journal
        exec "$@""#;
    let child = Command::new(unshare)
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(&journal_dir)
        .arg(guardian_bin())
        .args(["run", "--source", "procfs", "--dry-run", "--config"])
        .arg(&config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--kill-log")
        .arg(dir.path().join("kills.jsonl"))
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn guardian in a mount namespace");
    let daemon = Journaled(child);

    let ready = journal.entry("ready", &log);
    assert_eq!(ready["GUARDIAN_SOURCE"], "procfs", "{ready:?}");
    let processes = &ready["GUARDIAN_PROCESSES"];
    assert!(processes.parse::<u64>().is_ok(), "{ready:?}");
    assert_eq!(
        ready["MESSAGE"],
        format!("ready source=\"procfs\" processes={processes}")
    );
    assert_eq!(ready["PRIORITY"], "5");
    assert_eq!(ready["SYSLOG_IDENTIFIER"], "guardian");
    assert_eq!(ready["TARGET"], "guardian::daemon");
    assert!(ready["CODE_FILE"].ends_with(".rs"), "{ready:?}");
    assert!(ready["CODE_LINE"].parse::<u32>().is_ok(), "{ready:?}");

    // A broken config on SIGHUP: the error, with its line and column, in MESSAGE and in
    // its own field.
    std::fs::write(&config, "[daemon]\nscan_interval = \"1s\"\nbogus = 1\n").expect("rewrite");
    kill(
        nix::unistd::Pid::from_raw(daemon.0.id() as i32),
        Signal::SIGHUP,
    )
    .expect("SIGHUP");
    let rejected = journal.entry("config reload rejected", &log);
    assert_eq!(rejected["PRIORITY"], "3");
    let error = &rejected["GUARDIAN_ERROR"];
    assert!(
        error.contains("guardian.toml:3:1") && error.contains("bogus"),
        "{rejected:?}"
    );
    assert_eq!(
        rejected["MESSAGE"],
        format!("config reload rejected; the old config stays in force error={error}")
    );
    // Everything went to the journal, nothing to stderr.
    drop(daemon);
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), "");
}
