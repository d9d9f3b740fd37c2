//! `cargo xtask vm`: the guardian's .deb on stock Debian kernels, each booted in qemu
//! over a cached Debian 12 rootfs with systemd as PID 1 and pure cgroup v2, where an
//! acceptance suite (accept.sh) installs the package and checks the service, its
//! source, OOM kills, PSI, RSS, a host rule's kill, a leak's trend, reload and the
//! watchdog. Prints one row per kernel. Downloads are cached outside the checkout, so
//! CI's clean clones reuse them: kernels (`kernels/<package>/vmlinuz`) and the rootfs
//! image in [`cache_dir`]; the last run's consoles (`console-<label>.log`) go to
//! `target/vm/`.

mod kernels;
mod qemu;
mod report;
mod rootfs;

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::cmd;

/// The suite, copied onto each run's payload disk.
const ACCEPT_SCRIPT: &str = include_str!("accept.sh");
/// Host packages the matrix needs, and why.
const HOST_PACKAGES: &[(&str, &str)] = &[
    (
        "qemu-system-x86",
        "cargo xtask vm boots each kernel in qemu",
    ),
    (
        "debootstrap",
        "cargo xtask vm builds its Debian rootfs once",
    ),
    (
        "e2fsprogs",
        "cargo xtask vm makes ext4 images with mkfs.ext4 -d",
    ),
    (
        "fdisk",
        "cargo xtask vm partitions its root image with sfdisk",
    ),
    (
        "busybox-static",
        "cargo xtask vm makes the container twin's image of it",
    ),
];
/// The static busybox the container twin's image is made of (setup installs it).
const BUSYBOX: &str = "/bin/busybox";
/// A VM that has not powered off by then is killed and its row fails (TCG is slow).
const DEADLINE: Duration = Duration::from_secs(900);

/// Options of `cargo xtask vm`.
#[derive(clap::Args, Default)]
pub struct Options {
    /// Only these kernels (labels of the matrix, e.g. 6.1); default: all.
    #[arg(long = "kernel")]
    kernels: Vec<String>,
}

pub fn vm(root: &Path, options: &Options) -> anyhow::Result<()> {
    crate::setup::install_packages(root, HOST_PACKAGES)?;
    let dir = root.join("target/vm");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let kernels = kernels::fetch(root, &cache.join("kernels"), &options.kernels)?;
    if kernels.is_empty() {
        bail!("no kernel of the matrix matches {:?}", options.kernels);
    }
    let rootfs = rootfs::ensure(root, &cache)?;
    let deb = crate::package::package(root)?;
    let payload_dir = tempfile::tempdir_in(&dir).context("creating the payload dir")?;
    let payload = payload(root, payload_dir.path(), &deb)?;

    // The suites mostly wait (for a trend, the watchdog, an OOM kill), but TCG burns a
    // host core whenever a guest computes: at most one VM per host core at a time (more
    // made every guest miss its deadline on a 2-core machine), rows in matrix order.
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(kernels.len());
    println!(
        "vm: accel {} ({} kernels, {workers} at a time)",
        qemu::accel(),
        kernels.len()
    );
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, anyhow::Result<report::Row>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(kernel) = kernels.get(index) else {
                        break;
                    };
                    let row = run_kernel(kernel, &dir, &rootfs, &payload);
                    if let Ok(mut done) = done.lock() {
                        done.push((index, row));
                    }
                }
            });
        }
    });
    let mut done = done
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a VM's thread panicked"))?;
    if done.len() != kernels.len() {
        bail!("a VM's thread panicked");
    }
    done.sort_by_key(|(index, _)| *index);
    let rows = done
        .into_iter()
        .map(|(_, row)| row)
        .collect::<anyhow::Result<Vec<_>>>()?;
    report::print(&rows);
    println!("vm: matrix took {:.1?}", started.elapsed());
    if rows.iter().any(|row| !row.green()) {
        bail!("the VM matrix failed (consoles in {})", dir.display());
    }
    Ok(())
}

/// Boots one kernel of the matrix and reads its row off the console.
fn run_kernel(
    kernel: &kernels::Fetched,
    dir: &Path,
    rootfs: &Path,
    payload: &Path,
) -> anyhow::Result<report::Row> {
    let console = dir.join(format!("console-{}.log", kernel.label.replace(' ', "-")));
    println!("vm: booting {} ({})", kernel.label, kernel.package);
    let run = qemu::boot(
        &kernel.vmlinuz,
        kernel.append,
        rootfs,
        payload,
        &console,
        DEADLINE,
    )?;
    let mut row = report::Row::parse(&kernel.label, &run.console, run.wall);
    if run.timed_out {
        row.failed
            .push(format!("VM still running after {DEADLINE:?}"));
    }
    println!(
        "vm: {} done in {:.1?}: {} passed, {} failed (console {})",
        kernel.label,
        run.wall,
        row.passed.len(),
        row.failed.len(),
        console.display()
    );
    Ok(row)
}

/// Where kernels and the rootfs are kept between runs and clones: `GUARDIAN_VM_CACHE`,
/// else `/var/cache/guardian-xtask/vm` (the matrix runs as root).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("GUARDIAN_VM_CACHE").map_or_else(
        || PathBuf::from("/var/cache/guardian-xtask/vm"),
        PathBuf::from,
    )
}

/// The payload disk: the .deb, the suite and a static busybox (the container twin's
/// image) in a small ext4 image.
fn payload(root: &Path, dir: &Path, deb: &Path) -> anyhow::Result<PathBuf> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree)?;
    std::fs::copy(deb, tree.join("guardian.deb"))
        .with_context(|| format!("copying {}", deb.display()))?;
    std::fs::write(tree.join("accept.sh"), ACCEPT_SCRIPT)?;
    std::fs::copy(BUSYBOX, tree.join("busybox"))
        .with_context(|| format!("copying {BUSYBOX} (Debian's busybox-static)"))?;
    let image = dir.join("payload.ext4");
    let tree_arg = tree.display().to_string();
    let image_arg = image.display().to_string();
    cmd::run(
        root,
        "make the payload image",
        "mkfs.ext4",
        &[
            "-q",
            "-L",
            "guardian-payload",
            "-d",
            &tree_arg,
            &image_arg,
            "64M",
        ],
    )?;
    Ok(image)
}
