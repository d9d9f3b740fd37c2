//! One VM run: qemu boots a kernel straight into the cached rootfs (no initramfs, no
//! firmware menu, no network) with the payload disk as a second NVMe namespace, and its
//! serial console goes to a file. The VM powers itself off when the suite is done; a
//! VM that does not is killed at the deadline, and always when this run ends.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// How the guest's CPU runs. KVM hangs guests at boot on the machine this was written
/// on, so TCG (emulation) is the default; `GUARDIAN_VM_ACCEL=kvm` picks KVM.
pub fn accel() -> String {
    std::env::var("GUARDIAN_VM_ACCEL").unwrap_or_else(|_| "tcg".into())
}

/// What a run left behind.
pub struct Run {
    pub console: String,
    pub wall: Duration,
    pub timed_out: bool,
}

/// Boots `vmlinuz` (with `append` on its command line) and waits for the VM to power off
/// (at most `deadline`).
pub fn boot(
    vmlinuz: &Path,
    append: &str,
    rootfs: &Path,
    payload: &Path,
    console: &Path,
    deadline: Duration,
) -> anyhow::Result<Run> {
    let accel = accel();
    let cpu = if accel == "kvm" { "host" } else { "max" };
    let drive = |id: &str, file: &Path, extra: &str| {
        format!("file={},format=raw,if=none,id={id}{extra}", file.display())
    };
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args(["-accel", &accel, "-cpu", cpu, "-smp", "2", "-m", "1024"])
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-append")
        // Pure cgroup v2, PSI on, a panic ends the VM (-no-reboot) instead of hanging.
        .arg(format!(
            "console=ttyS0 root={} rw quiet panic=-1 systemd.unified_cgroup_hierarchy=1 psi=1 {append}",
            super::rootfs::ROOT
        ))
        .arg("-drive")
        .arg(drive("root", rootfs, ",snapshot=on"))
        .arg("-drive")
        .arg(drive("payload", payload, ",readonly=on"))
        .args([
            "-device",
            "nvme,id=disks,serial=guardian-vm",
            "-device",
            // Distinct UUIDs: namespaces with the same (empty) identifiers are taken by
            // Linux as two paths to one namespace, and reads then mix both disks.
            "nvme-ns,drive=root,bus=disks,nsid=1,uuid=6775a4d1-0000-4000-8000-000000000001",
            "-device",
            "nvme-ns,drive=payload,bus=disks,nsid=2,uuid=6775a4d1-0000-4000-8000-000000000002",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let started = Instant::now();
    let child = command
        .spawn()
        .context("starting qemu-system-x86_64 (cargo xtask vm installs qemu-system-x86)")?;
    let mut vm = KillOnDrop(child);
    let timed_out = loop {
        if let Some(status) = vm.0.try_wait().context("waiting for qemu")? {
            if !status.success() {
                bail!(
                    "qemu exited with {status}; console in {}",
                    console.display()
                );
            }
            break false;
        }
        if started.elapsed() > deadline {
            break true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(vm);
    let wall = started.elapsed();
    let console = std::fs::read(console)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .with_context(|| format!("reading {}", console.display()))?;
    Ok(Run {
        console,
        wall,
        timed_out,
    })
}

/// The qemu process is killed (and reaped) whatever way a run ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
