//! The kernel matrix: Debian's own kernel packages, fetched with `apt-get download` and
//! unpacked with `dpkg-deb` (never installed on the host); only `vmlinuz` is kept, under
//! `kernels/<package>/` in the VM cache.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::cmd;

/// One kernel of the matrix: a label for the table and the Debian meta package that
/// names its newest build. Add a kernel by adding a row (see the README).
pub struct Kernel {
    pub label: &'static str,
    pub meta_package: &'static str,
    /// Extra kernel command line: a row can take a feature away from a stock kernel.
    pub append: &'static str,
}

/// Debian 12's stock kernel and its 6.12 backport, both the cloud flavour (NVMe and ext4
/// are built in, so they boot without an initramfs), and the stock kernel locked down.
pub const MATRIX: &[Kernel] = &[
    Kernel {
        label: "6.1",
        meta_package: "linux-image-cloud-amd64",
        append: "",
    },
    Kernel {
        label: "6.12",
        meta_package: "linux-image-6.12-cloud-amd64",
        append: "",
    },
    // Lockdown (as Secure Boot distributions set it, here its strictest level) forbids
    // BPF programs to read kernel memory: the guardian must fall back to /proc and
    // cgroups and still pass the suite.
    Kernel {
        label: "6.1-lockdown",
        meta_package: "linux-image-cloud-amd64",
        append: "lockdown=confidentiality",
    },
];

/// A kernel ready to boot.
pub struct Fetched {
    pub label: String,
    pub package: String,
    pub vmlinuz: PathBuf,
    pub append: &'static str,
}

/// Resolves each meta package to its versioned image package and fetches the ones not
/// cached yet.
pub fn fetch(root: &Path, dir: &Path, only: &[String]) -> anyhow::Result<Vec<Fetched>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut fetched = Vec::new();
    for kernel in MATRIX {
        if !only.is_empty() && !only.iter().any(|label| label == kernel.label) {
            continue;
        }
        let package = image_package(root, kernel.meta_package)?;
        let vmlinuz = dir.join(&package).join("vmlinuz");
        if !vmlinuz.exists() {
            unpack(dir, &package, &vmlinuz)?;
        }
        fetched.push(Fetched {
            label: kernel.label.to_string(),
            package,
            vmlinuz,
            append: kernel.append,
        });
    }
    if let Some(host) = host_kernel() {
        fetched.push(host);
    }
    Ok(fetched)
}

/// The host's own kernel, when its image is readable under /boot (the normal tests cover
/// it otherwise).
fn host_kernel() -> Option<Fetched> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim();
    let vmlinuz = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    if !vmlinuz.exists() {
        println!(
            "vm: host kernel {release} left out: no {}",
            vmlinuz.display()
        );
        return None;
    }
    Some(Fetched {
        label: format!("host {release}"),
        package: "host".into(),
        vmlinuz,
        append: "",
    })
}

/// `linux-image-cloud-amd64` -> `linux-image-6.1.0-57-cloud-amd64` (its first image
/// dependency in the local apt lists).
fn image_package(root: &Path, meta: &str) -> anyhow::Result<String> {
    let depends = cmd::output(
        root,
        "resolve the kernel package",
        "apt-cache",
        &["depends", meta],
    )?;
    depends
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|name| name.starts_with("linux-image-"))
        .map(str::to_string)
        .with_context(|| {
            format!("apt-cache depends {meta}: no linux-image dependency (apt-get update?)")
        })
}

fn unpack(dir: &Path, package: &str, vmlinuz: &Path) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir_in(dir)
        .with_context(|| format!("creating a scratch dir in {}", dir.display()))?;
    println!("vm: fetching {package} (once)");
    cmd::run(
        scratch.path(),
        "download the kernel package",
        "apt-get",
        // Root downloads into a private dir: no sandbox user (`_apt` cannot write there).
        &["download", "-q", "-o", "APT::Sandbox::User=root", package],
    )?;
    let deb = std::fs::read_dir(scratch.path())?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .with_context(|| format!("apt-get download {package} wrote no .deb"))?;
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(&tree)?;
    extract_boot(&deb, &tree)?;
    let image = std::fs::read_dir(tree.join("boot"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("vmlinuz-"))
        });
    let Some(image) = image else {
        bail!("{package} holds no /boot/vmlinuz-*");
    };
    let parent = vmlinuz.parent().context("kernel dir")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    std::fs::copy(&image, vmlinuz).with_context(|| format!("copying {}", image.display()))?;
    Ok(())
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x ./boot`: the image without the modules (the
/// VMs boot without them), so the scratch dir stays small.
fn extract_boot(deb: &Path, tree: &Path) -> anyhow::Result<()> {
    println!(
        "==> [unpack the kernel image] dpkg-deb --fsys-tarfile {} | tar -x ./boot",
        deb.display()
    );
    let mut archive = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting dpkg-deb")?;
    let stdout = archive.stdout.take().context("dpkg-deb stdout")?;
    let tar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(tree)
        .arg("./boot")
        .stdin(stdout)
        .status()
        .context("starting tar")?;
    let status = archive.wait().context("waiting for dpkg-deb")?;
    if !status.success() || !tar.success() {
        bail!(
            "unpacking {} failed (dpkg-deb {status}, tar {tar})",
            deb.display()
        );
    }
    Ok(())
}
