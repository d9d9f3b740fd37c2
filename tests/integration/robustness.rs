//! Edges a new user meets and faults a host throws at the daemon: the kill log on a full
//! device, a reload of `[kill_log]`, a start without root, the systemd watchdog with a
//! slow scan interval. Each names what failed and where, and loses no kill record.

mod clock;
mod eio;
mod faults;
mod hidepid;
mod hostile;
mod ring;
mod squeeze;

use std::{
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    common::{
        Daemon, DaemonOptions, Needs, assert_log_verifies, free_port, guardian_bin, marker,
        require, spawn_hog, wait_for,
    },
    killswitch::{config, rule},
};

/// How long a kill or a log line may take on a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A tmpfs of `size` the test mounted; unmounted on drop.
pub struct SmallFs {
    pub dir: tempfile::TempDir,
}

impl SmallFs {
    pub fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().expect("temp dir");
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(format!("size={size},mode=0755").as_str()),
        )
        .unwrap_or_else(|error| panic!("mount tmpfs on {}: {error}", dir.path().display()));
        SmallFs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the device is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("create filler");
        let chunk = [0u8; 1024];
        loop {
            match file.write_all(&chunk).and_then(|()| file.sync_all()) {
                Ok(()) => continue,
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(error) => panic!("fill {}: {error}", filler.display()),
            }
        }
        filler
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Waits until /healthz answers 200 (a tick may run late on a loaded machine: the check
/// is that the pipeline comes back fresh, not how fast).
fn assert_healthy(daemon: &Daemon) {
    let healthy = wait_for(TIMEOUT, || {
        matches!(daemon.get("/healthz"), (200, _)).then_some(())
    });
    assert!(
        healthy.is_some(),
        "/healthz never answered 200: {}\n{}",
        daemon.get("/healthz").1,
        daemon.log()
    );
}

/// Waits until the daemon's log contains `needle`.
fn wait_log(daemon: &Daemon, needle: &str) {
    let found = wait_for(TIMEOUT, || daemon.log().contains(needle).then_some(()));
    assert!(
        found.is_some(),
        "{needle:?} never logged:\n{}",
        daemon.log()
    );
}

/// `[kill_log]` settings change on SIGHUP: with the log on a full device and
/// `on_write_failure = "skip-kill"` a hog is spared (no record, no kill); after a reload
/// to "kill-anyway" it is killed; after the device has room again, a reloaded
/// `max_file_bytes` rotates the log.
#[test]
fn reload_applies_kill_log_settings_on_a_full_device() {
    if !require(&[Needs::Root]) {
        return;
    }
    let fs = SmallFs::mount("64k");
    let log = fs.path().join("kills.jsonl");
    let mark = marker("reload-kill-log");
    let settings = |kill_log: &str| {
        config(&format!(
            "lock_memory = false\n[kill_log]\n{kill_log}\n\
             [safety]\nmax_kills = 1000\nrate_window = \"1s\"\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n\
             {}",
            rule("full-device", &mark, "8MiB", "action = \"kill\"")
        ))
    };
    let daemon = Daemon::start_with(
        &settings("on_write_failure = \"skip-kill\""),
        &["--source", "procfs"],
        &DaemonOptions {
            kill_log: Some(&log),
            ..DaemonOptions::default()
        },
    );
    let filler = fs.fill();

    let mut spared = spawn_hog(&mark, &["--rss", "16"]);
    // The error names the record, the file and the cause; the hog lives.
    wait_log(&daemon, "cannot write the kill intent");
    let text = daemon.log();
    assert!(
        text.contains(&log.display().to_string()) && text.contains("No space left on device"),
        "the write error names neither the file nor the cause:\n{text}"
    );
    assert!(
        !spared.has_exited(),
        "killed without an intent record under skip-kill:\n{text}"
    );

    daemon.reload(
        &settings("on_write_failure = \"kill-anyway\"\nmax_file_bytes = \"1KiB\"\nkeep_files = 2"),
        1,
    );
    let killed = wait_for(TIMEOUT, || spared.has_exited().then_some(()));
    assert!(
        killed.is_some(),
        "on_write_failure = \"kill-anyway\" was not applied by the reload:\n{}",
        daemon.log()
    );

    std::fs::remove_file(&filler).expect("remove filler");
    let mut logged = spawn_hog(&mark, &["--rss", "16"]);
    let exited = wait_for(TIMEOUT, || logged.has_exited().then_some(()));
    assert!(exited.is_some(), "second hog not killed:\n{}", daemon.log());
    let rotated = wait_for(TIMEOUT, || {
        log.with_extension("jsonl.1").exists().then_some(())
    });
    assert!(
        rotated.is_some(),
        "max_file_bytes = \"1KiB\" was not applied by the reload (no {}.1):\n{}",
        log.display(),
        daemon.log()
    );
    assert_log_verifies(&log, "the rotated log");
}

/// Without root, the default kill log directory cannot be written: the guardian says
/// which path and what to do instead of a bare permission error.
#[test]
fn without_root_the_kill_log_error_says_what_to_do() {
    if !require(&[Needs::Root]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    let config = dir.path().join("guardian.toml");
    std::fs::write(&config, "[daemon]\nlock_memory = false\n").expect("write config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))
        .expect("chmod config");
    let output = Command::new(guardian_bin())
        .args(["run", "--source", "procfs", "--config"])
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .output()
        .expect("run guardian as nobody");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "guardian ran as nobody:\n{stderr}"
    );
    for needle in ["/var/lib/guardian", "root", "--kill-log"] {
        assert!(
            stderr.contains(needle),
            "the error does not mention {needle:?}:\n{stderr}"
        );
    }
}
