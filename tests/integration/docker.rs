//! Docker helpers: the local test image (imported from busybox-static, no registry
//! needed) and containers removed in `Drop`.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use crate::common::wait_for;

/// The image every Docker test runs: busybox and its applet links, nothing else.
pub const TEST_IMAGE: &str = "guardian-test:busybox";

/// Runs `docker ARGS`, returning stdout on success.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|error| format!("docker {}: {error}", args.join(" ")))?;
    if !output.status.success() {
        return Err(format!(
            "docker {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Imports [`TEST_IMAGE`] unless it is already there (idempotent; serialized between
/// the tests of this binary).
pub fn ensure_test_image() {
    static IMPORT: Mutex<()> = Mutex::new(());
    let _guard = IMPORT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if docker(&["image", "inspect", TEST_IMAGE]).is_ok() {
        return;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .expect("busybox is missing: apt-get install busybox-static");
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if !applet.is_empty() && applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
        }
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar");
    let status = Command::new("docker")
        .args(["import", "-", TEST_IMAGE])
        .stdin(tar.stdout.take().expect("tar stdout"))
        .stdout(Stdio::null())
        .status()
        .expect("docker import");
    let tarred = tar.wait().expect("wait for tar");
    assert!(
        status.success() && tarred.success(),
        "docker import of {TEST_IMAGE} failed"
    );
}

/// A container the test started (`docker run -d --name NAME`), removed on drop.
pub struct TestContainer {
    pub name: String,
}

impl TestContainer {
    /// Starts `sh -c SCRIPT NAME` in [`TEST_IMAGE`]; NAME (the test's marker) is the
    /// script's `$0`, so it lands in the container process's argv.
    pub fn run_sh(name: &str, script: &str) -> TestContainer {
        ensure_test_image();
        docker(&[
            "run", "-d", "--rm", "--name", name, TEST_IMAGE, "sh", "-c", script, name,
        ])
        .unwrap_or_else(|error| panic!("{error}"));
        TestContainer {
            name: name.to_string(),
        }
    }

    /// The host pid of the container's main process.
    pub fn pid(&self) -> i32 {
        docker(&["inspect", "-f", "{{.State.Pid}}", &self.name])
            .ok()
            .and_then(|pid| pid.parse().ok())
            .filter(|pid| *pid > 0)
            .unwrap_or_else(|| panic!("container {} has no pid", self.name))
    }

    /// Waits until the main process's RSS reaches `bytes`.
    pub fn wait_rss(&self, bytes: u64) {
        let pid = self.pid();
        let reached = wait_for(Duration::from_secs(60), || {
            (rss_bytes(pid)? >= bytes).then_some(())
        });
        assert!(
            reached.is_some(),
            "container {} never reached {bytes} bytes",
            self.name
        );
    }

    pub fn is_running(&self) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", &self.name]).is_ok_and(|s| s == "true")
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

/// VmRSS of a process, in bytes.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
