//! The kill log on a failing device. This kernel has no device-mapper (no `error` target)
//! and no fault injection; loop devices do the same job:
//!
//! - I/O errors: an ext2 image on the host's ext4; once the image is made immutable
//!   (`chattr +i`) ext4 refuses the loop driver's writes, which reach the file system on
//!   top as I/O errors: `write()` still lands in the page cache, `fsync()` fails with EIO.
//! - Read-only while the guardian runs: `mount -o remount,ro` is refused (EBUSY) while the
//!   guardian holds the log open for writing, so the way a running host's kill log really
//!   turns read-only is ext4's `errors=remount-ro` after a file system error, forced here
//!   through `/sys/fs/ext4/<dev>/trigger_fs_error` (the kernel then marks the mount
//!   `emergency_ro`; only an unmount, fsck and mount make it writable again).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{TIMEOUT, wait_log};
use crate::{
    common::{
        Daemon, DaemonOptions, Needs, assert_every_kill_has_an_intent, assert_log_verifies, marker,
        require, spawn_hog, wait_for, which,
    },
    killswitch::{config, rule},
};

/// A file system on a loop device in a temp dir; unmounted (which frees the loop device)
/// and its image made mutable again on drop.
struct LoopDevice {
    dir: tempfile::TempDir,
    image: PathBuf,
    mount: PathBuf,
    options: String,
}

impl LoopDevice {
    /// Makes the file system with `mkfs` and mounts it with `options` (besides `loop`);
    /// `Err` (with the reason) when the host lacks a tool or cannot mount it.
    fn mount(mkfs: &str, options: &str) -> Result<LoopDevice, String> {
        for tool in [mkfs, "chattr", "mount", "umount", "e2fsck"] {
            if which(tool).is_none() {
                return Err(format!("{tool} is not on PATH (e2fsprogs, util-linux)"));
            }
        }
        let dir = tempfile::tempdir().map_err(|error| format!("temp dir: {error}"))?;
        let image = dir.path().join("disk.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).map_err(|error| format!("mkdir: {error}"))?;
        let file = std::fs::File::create(&image).map_err(|error| format!("image: {error}"))?;
        file.set_len(32 << 20)
            .map_err(|error| format!("size the image: {error}"))?;
        run(mkfs, &["-q", "-F", "-E", "nodiscard"], &image)?;
        let device = LoopDevice {
            dir,
            image,
            mount,
            options: format!("loop,{options}"),
        };
        device.mount_again()?;
        Ok(device)
    }

    fn mount_again(&self) -> Result<(), String> {
        let status = Command::new("mount")
            .args(["-o", &self.options])
            .arg(&self.image)
            .arg(&self.mount)
            .status()
            .map_err(|error| format!("mount: {error}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "mount -o {} {}: {status}",
                self.options,
                self.image.display()
            ))
        }
    }

    /// Makes one with an I/O-error switch (ext2: no journal between the writes and the
    /// device).
    fn failing() -> Result<LoopDevice, String> {
        LoopDevice::mount("mkfs.ext2", "errors=continue")
    }

    fn path(&self) -> &Path {
        &self.mount
    }

    /// From now on every write to the device fails with EIO.
    fn fail(&self) {
        run("chattr", &["+i"], &self.image).unwrap_or_else(|error| {
            panic!(
                "{error}: the temp dir's file system ({}) cannot make a file immutable",
                self.dir.path().display()
            )
        });
    }

    /// The device takes writes again.
    fn heal(&self) {
        run("chattr", &["-i"], &self.image).expect("chattr -i the image");
    }

    /// The loop device under the mount (`loop3`), from /proc/self/mounts.
    fn loop_name(&self) -> String {
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read mounts");
        let mount = self.mount.to_str().expect("UTF-8 temp path");
        mounts
            .lines()
            .map(|line| line.split(' ').collect::<Vec<_>>())
            .filter(|fields| fields.get(1) == Some(&mount))
            .filter_map(|fields| fields.first()?.strip_prefix("/dev/").map(str::to_string))
            .next_back()
            .unwrap_or_else(|| panic!("{mount} is not in /proc/self/mounts:\n{mounts}"))
    }

    /// An ext4 error as the kernel would raise on a bad block: with `errors=remount-ro`
    /// the kernel turns the mount read-only at once, open files included.
    fn error_remounts_read_only(&self) {
        let trigger = format!("/sys/fs/ext4/{}/trigger_fs_error", self.loop_name());
        std::fs::write(&trigger, "guardian fault test")
            .unwrap_or_else(|error| panic!("write {trigger}: {error}"));
    }

    /// What an operator does once nothing holds the file system: unmount, fsck, mount.
    fn repair(&self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .status()
            .expect("umount");
        assert!(unmounted.success(), "umount {}", self.mount.display());
        // e2fsck exits 1 when it fixed something: the error the test raised.
        let fsck = Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(&self.image)
            .output()
            .expect("run e2fsck");
        assert!(
            matches!(fsck.status.code(), Some(0 | 1)),
            "e2fsck {}: {}{}",
            self.image.display(),
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
        self.mount_again().expect("mount the repaired file system");
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = run("chattr", &["-i"], &self.image);
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

/// The device, or a skip (a panic under CI=true) when this host cannot make it.
fn device_or_skip(device: Result<LoopDevice, String>) -> Option<LoopDevice> {
    match device {
        Ok(device) => Some(device),
        Err(reason) if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") => {
            panic!("CI=true but the loop device cannot be made: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}

fn run(tool: &str, args: &[&str], path: &Path) -> Result<(), String> {
    let output = Command::new(tool)
        .args(args)
        .arg(path)
        .output()
        .map_err(|error| format!("{tool}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {args:?} {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// With the kill log's device failing every write, a hog that crosses its threshold is
/// not killed (its intent cannot be fsynced) and the error names the file and the EIO;
/// once the device takes writes again the hog is killed with its intent record and the
/// log verifies.
#[test]
fn an_io_error_device_spares_the_hog_until_its_intent_is_on_disk() {
    if !require(&[Needs::Root]) {
        return;
    }
    let Some(device) = device_or_skip(LoopDevice::failing()) else {
        return;
    };
    let log = device.path().join("kills.jsonl");
    let mark = marker("eio-kill-log");
    let daemon = Daemon::start_with(
        &config(&format!(
            "lock_memory = false\n[kill_log]\non_write_failure = \"skip-kill\"\n\
             [safety]\nmax_kills = 1000\nrate_window = \"1s\"\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n{}",
            rule("eio", &mark, "8MiB", "action = \"kill\"")
        )),
        &["--source", "procfs"],
        &DaemonOptions {
            kill_log: Some(&log),
            ..DaemonOptions::default()
        },
    );
    device.fail();
    let mut hog = spawn_hog(&mark, &["--rss", "16"]);
    wait_log(&daemon, "cannot write the kill intent");
    let text = daemon.log();
    assert!(
        text.contains(&log.display().to_string()) && text.contains("Input/output error"),
        "the write error names neither the kill log nor the I/O error:\n{text}"
    );
    assert!(
        !hog.has_exited(),
        "killed although its intent could not be written:\n{text}"
    );

    device.heal();
    let killed = wait_for(TIMEOUT, || hog.has_exited().then_some(()));
    assert!(
        killed.is_some(),
        "hog not killed once the device took writes again:\n{}",
        daemon.log()
    );
    assert_every_kill_has_an_intent(&log, &[hog.pid()]);
    assert_log_verifies(&log, "the kill log");
}

/// The kill log's ext4 turns read-only under the running guardian (an error with
/// `errors=remount-ro`): a hog killed before has its records; one crossing its threshold
/// after is spared (skip-kill) with an error naming the file and the read-only file
/// system. Once the operator has stopped the guardian, checked and remounted the file
/// system and started it again, that hog is killed with its intent record and the whole
/// log, records from before and after, verifies.
#[test]
fn a_kill_log_device_turning_read_only_while_running_spares_the_hog() {
    if !require(&[Needs::Root]) {
        return;
    }
    let Some(device) = device_or_skip(LoopDevice::mount("mkfs.ext4", "errors=remount-ro")) else {
        return;
    };
    let log = device.path().join("kills.jsonl");
    let mark = marker("ro-kill-log");
    let settings = config(&format!(
        "lock_memory = false\n[kill_log]\non_write_failure = \"skip-kill\"\n\
         [safety]\nmax_kills = 1000\nrate_window = \"1s\"\nbackoff = \"1ms\"\nmax_backoff = \"1ms\"\n{}",
        rule("read-only", &mark, "8MiB", "action = \"kill\"")
    ));
    let options = DaemonOptions {
        kill_log: Some(&log),
        ..DaemonOptions::default()
    };
    let mut daemon = Daemon::start_with(&settings, &["--source", "procfs"], &options);
    let mut before = spawn_hog(&mark, &["--rss", "16"]);
    let killed = wait_for(TIMEOUT, || before.has_exited().then_some(()));
    assert!(killed.is_some(), "first hog not killed:\n{}", daemon.log());

    device.error_remounts_read_only();
    let mut spared = spawn_hog(&mark, &["--rss", "16"]);
    wait_log(&daemon, "cannot write the kill intent");
    let text = daemon.log();
    assert!(
        text.contains(&log.display().to_string()) && text.contains("Read-only file system"),
        "the write error names neither the kill log nor the read-only file system:\n{text}"
    );
    assert!(
        !spared.has_exited(),
        "killed although its intent could not be written:\n{text}"
    );
    daemon.stop();

    device.repair();
    let daemon = Daemon::start_with(&settings, &["--source", "procfs"], &options);
    let killed = wait_for(TIMEOUT, || spared.has_exited().then_some(()));
    assert!(
        killed.is_some(),
        "hog not killed once the file system was writable again:\n{}",
        daemon.log()
    );
    assert_every_kill_has_an_intent(&log, &[before.pid(), spared.pid()]);
    assert_log_verifies(&log, "the kill log");
}
