//! The guest's root disk: a minimal Debian 12 (debootstrap minbase, systemd as PID 1)
//! turned into a disk image once and cached as `rootfs-<key>.img` in the VM cache, the
//! key hashing everything that shapes it (images of other keys are removed then). VMs boot it with `snapshot=on`: the cached image
//! never changes. The debootstrap tree is removed once the image is made.

use std::{
    hash::{DefaultHasher, Hash as _, Hasher as _},
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::cmd;

/// The guest's Debian release: the one the host builds the .deb on (glibc 2.36).
const SUITE: &str = "bookworm";
/// Besides minbase: systemd as PID 1, curl and jq for the suite's API calls, Docker (the
/// suite checks it runs and imports an image offline).
const PACKAGES: &str = "systemd,systemd-sysv,dbus,init-system-helpers,curl,jq,procps,docker.io";
/// The guest boots a bare `vmlinuz` (no modules): Docker without the netfilter, bridge
/// and overlayfs modules, so containers run with `--network none` on the vfs driver.
const DOCKER_CONFIG: &str = r#"{"iptables": false, "ip6tables": false, "bridge": "none", "storage-driver": "vfs"}
"#;
/// Size of the root filesystem in the (sparse) image; the tree is about 450 MB.
const FS_SIZE: &str = "1G";
/// The image: a GPT disk with one partition (1 MiB in, 1 GiB long), so the kernel finds
/// its root by `PARTUUID` whatever order the NVMe namespaces come up in (Linux 6.12
/// scans them in parallel: `/dev/nvme0n1` is not always the first).
const IMAGE_BYTES: u64 = (1024 + 2) << 20;
const FS_OFFSET: &str = "offset=1048576";
const PARTITION_TABLE: &str =
    "label: gpt\nstart=2048, size=2097152, uuid=6775a4d1-0000-4000-8000-0000000000f1\n";
/// The kernel's `root=`.
pub const ROOT: &str = "PARTUUID=6775a4d1-0000-4000-8000-0000000000f1";

/// The unit that runs the acceptance suite from the payload disk, then powers off.
const ACCEPT_UNIT: &str = "\
[Unit]
Description=guardian VM acceptance suite (cargo xtask vm)
After=basic.target dbus.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /mnt/payload && mount -o ro -L guardian-payload /mnt/payload && exec /bin/sh /mnt/payload/accept.sh'
ExecStopPost=/bin/sh -c 'test \"$$EXIT_STATUS\" = 0 || systemctl poweroff --no-block'

[Install]
WantedBy=multi-user.target
";

/// The cached image, built when missing (a few minutes and 300 MB of downloads once).
pub fn ensure(root: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let image = dir.join(format!("rootfs-{}.img", key()));
    if image.exists() {
        return Ok(image);
    }
    let started = Instant::now();
    let mirror = std::env::var("GUARDIAN_VM_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    println!("vm: building the {SUITE} rootfs {} (once)", image.display());
    let scratch = tempfile::tempdir_in(dir)
        .with_context(|| format!("creating a scratch dir in {}", dir.display()))?;
    let tree = scratch.path().join("tree");
    let tree_arg = tree.display().to_string();
    cmd::run(
        root,
        "debootstrap the VM rootfs",
        "debootstrap",
        &[
            "--variant=minbase",
            &format!("--include={PACKAGES}"),
            SUITE,
            &tree_arg,
            &mirror,
        ],
    )?;
    configure(&tree)?;
    let partial = scratch.path().join("rootfs.img");
    let partial_arg = partial.display().to_string();
    std::fs::File::create(&partial)
        .and_then(|file| file.set_len(IMAGE_BYTES))
        .with_context(|| format!("creating {}", partial.display()))?;
    partition(&partial)?;
    cmd::run(
        root,
        "make the root filesystem",
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            "guardian-vm",
            "-E",
            FS_OFFSET,
            "-d",
            &tree_arg,
            &partial_arg,
            FS_SIZE,
        ],
    )?;
    std::fs::rename(&partial, &image).with_context(|| format!("moving {}", image.display()))?;
    remove_stale_images(dir, &image);
    println!("vm: rootfs built in {:.0?}", started.elapsed());
    Ok(image)
}

/// Removes rootfs images other than `current` (each is 1 GiB, sparse).
fn remove_stale_images(dir: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|entry| entry.path()) {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if path != current
            && name.starts_with("rootfs-")
            && name.ends_with(".img")
            && let Err(error) = std::fs::remove_file(&path)
        {
            println!("vm: cannot remove {}: {error}", path.display());
        }
    }
}

/// Everything that shapes the image: a change rebuilds it.
fn key() -> String {
    let mut hasher = DefaultHasher::new();
    (
        SUITE,
        PACKAGES,
        DOCKER_CONFIG,
        FS_SIZE,
        PARTITION_TABLE,
        ACCEPT_UNIT,
    )
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// `sfdisk IMAGE < PARTITION_TABLE`.
fn partition(image: &Path) -> anyhow::Result<()> {
    println!(
        "==> [partition the rootfs image] sfdisk {}",
        image.display()
    );
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(image)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("starting sfdisk (util-linux)")?;
    sfdisk
        .stdin
        .take()
        .context("sfdisk stdin")?
        .write_all(PARTITION_TABLE.as_bytes())
        .context("writing the partition table to sfdisk")?;
    let status = sfdisk.wait().context("waiting for sfdisk")?;
    if !status.success() {
        bail!("sfdisk {} failed ({status})", image.display());
    }
    Ok(())
}

fn configure(tree: &Path) -> anyhow::Result<()> {
    let write = |path: &str, text: &str| {
        let path = tree.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    for leftover in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let path = tree.join(leftover);
        std::fs::remove_dir_all(&path).with_context(|| format!("emptying {}", path.display()))?;
        std::fs::create_dir_all(&path)?;
    }
    // Empty: each boot makes up its own machine id.
    write("etc/machine-id", "")?;
    write("etc/hostname", "guardian-vm\n")?;
    write("etc/fstab", &format!("{ROOT} / ext4 rw 0 1\n"))?;
    write("etc/systemd/system/guardian-vm-accept.service", ACCEPT_UNIT)?;
    write("etc/docker/daemon.json", DOCKER_CONFIG)?;
    let wants = tree.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants)?;
    std::os::unix::fs::symlink(
        "/etc/systemd/system/guardian-vm-accept.service",
        wants.join("guardian-vm-accept.service"),
    )?;
    // The serial console carries the suite's results: no login prompt on it.
    for masked in ["serial-getty@ttyS0.service", "getty.target"] {
        std::os::unix::fs::symlink("/dev/null", tree.join("etc/systemd/system").join(masked))?;
    }
    Ok(())
}
