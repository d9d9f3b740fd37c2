//! The kill log on a device that answers writes with EIO. This kernel has no
//! device-mapper (no `error` target) and no fault injection; a loop device does the same
//! job: its ext2 image lives on the host's ext4, and once the image is made immutable
//! (`chattr +i`) ext4 refuses the loop driver's writes, which reach the file system on top
//! as I/O errors: `write()` still lands in the page cache, `fsync()` fails with EIO.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use super::{TIMEOUT, wait_log};
use crate::{
    common::{
        Daemon, DaemonOptions, Needs, assert_every_kill_has_an_intent, guardian_bin, marker,
        require, spawn_hog, wait_for, which,
    },
    killswitch::{config, rule},
};

/// An ext2 file system on a loop device whose image can be made to fail every write;
/// unmounted (which frees the loop device) and its image made mutable again on drop.
struct FailingDevice {
    dir: tempfile::TempDir,
    image: PathBuf,
    mount: PathBuf,
}

impl FailingDevice {
    /// Makes and mounts the file system; `None` (with the reason) when the host lacks a
    /// tool or the temp dir's file system cannot make a file immutable.
    fn mount() -> Result<FailingDevice, String> {
        for tool in ["mkfs.ext2", "chattr", "mount", "umount"] {
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
        run("mkfs.ext2", &["-q", "-F", "-E", "nodiscard"], &image)?;
        let status = Command::new("mount")
            .args(["-o", "loop,errors=continue"])
            .arg(&image)
            .arg(&mount)
            .status()
            .map_err(|error| format!("mount: {error}"))?;
        if !status.success() {
            return Err(format!("mount -o loop {}: {status}", image.display()));
        }
        Ok(FailingDevice { dir, image, mount })
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
}

impl Drop for FailingDevice {
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
    let device = match FailingDevice::mount() {
        Ok(device) => device,
        Err(reason) if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") => {
            panic!("CI=true but the I/O-error device cannot be made: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
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
    let verify = Command::new(guardian_bin())
        .args(["audit", "verify"])
        .arg(&log)
        .output()
        .expect("run guardian audit verify");
    assert!(
        verify.status.success(),
        "the log does not verify after the I/O errors:\n{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
