//! Installs what is missing, idempotently: a second run installs nothing and takes
//! seconds. Says what it installs and why.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, bail};

use crate::cmd;

/// What the setup prepares for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum For {
    /// Building guardian with its eBPF programs.
    Build,
    /// Building and running every test (Docker engine, busybox, Prometheus too).
    Tests,
}

/// Debian packages and why each is needed.
const BUILD_PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "bpf-linker links eBPF objects with LLVM 22"),
    (
        "protobuf-compiler",
        "k8s-cri generates the CRI gRPC client with protoc at build time",
    ),
];
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("docker.io", "container tests run a real Docker engine"),
    ("busybox-static", "the test container image is busybox"),
    (
        "prometheus",
        "metrics tests scrape the guardian with a real Prometheus and promtool",
    ),
    (
        "debootstrap",
        "the systemd test builds its Debian rootfs once",
    ),
    (
        "systemd-container",
        "the systemd test boots that rootfs with systemd-nspawn",
    ),
    (
        "podman",
        "container tests run real Podman containers (conmon)",
    ),
    (
        "containerd",
        "container tests run real containerd containers through ctr",
    ),
    (
        "lxc",
        "container tests run a real LXC container (busybox template)",
    ),
    ("nodejs", "live trend tests run real Node.js programs"),
    (
        "openjdk-17-jdk-headless",
        "live trend tests run real Java programs (single-file source launch)",
    ),
    ("python3", "live trend tests run real Python programs"),
    (
        "libfaketime",
        "the wall-clock jump test moves the daemon's clock, not the host's",
    ),
];

pub fn setup(root: &Path, purpose: For) -> anyhow::Result<()> {
    let mut packages: Vec<(&str, &str)> = BUILD_PACKAGES.to_vec();
    if purpose == For::Tests {
        packages.extend_from_slice(TEST_PACKAGES);
    }
    install_packages(root, &packages)?;
    ensure_rust_src(root)?;
    ensure_bpf_linker(root)?;
    if purpose == For::Tests {
        ensure_dockerd(root)?;
        crate::package::ensure_cargo_deb(root)?;
        crate::fuzz::ensure_cargo_fuzz(root)?;
    }
    Ok(())
}

fn installed(package: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}

/// Installs the Debian packages of `packages` that are missing, saying why each is needed.
pub fn install_packages(root: &Path, packages: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&(&str, &str)> = packages
        .iter()
        .filter(|(name, _)| !installed(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for (name, why) in &missing {
        println!("setup: installing {name}: {why}");
    }
    if !nix_is_root() {
        bail!(
            "setup needs root to install {}; run as root or install them by hand",
            missing
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    cmd::run_env(root, "apt-get update", "apt-get", &["update", "-q"], &env)?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing.iter().map(|(name, _)| *name));
    cmd::run_env(root, "install Debian packages", "apt-get", &args, &env)
}

fn nix_is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The nightly builds the eBPF crate with -Z build-std=core, which needs rust-src.
fn ensure_rust_src(root: &Path) -> anyhow::Result<()> {
    let toolchains = cmd::output(root, "list toolchains", "rustup", &["toolchain", "list"])?;
    if !toolchains.lines().any(|line| line.starts_with("nightly")) {
        bail!(
            "the nightly toolchain is missing: the eBPF programs need it (rustup toolchain install nightly)"
        );
    }
    let components = cmd::output(
        root,
        "list nightly components",
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )?;
    if components.lines().any(|line| line.starts_with("rust-src")) {
        return Ok(());
    }
    println!("setup: installing rust-src for the nightly: the eBPF crate builds core from source");
    cmd::run(
        root,
        "install rust-src",
        "rustup",
        &["component", "add", "rust-src", "--toolchain", "nightly"],
    )
}

/// bpf-linker, built from source against Debian's LLVM 22 (about 70 s once).
fn ensure_bpf_linker(root: &Path) -> anyhow::Result<()> {
    if cmd::succeeds("bpf-linker", &["--version"]) {
        return Ok(());
    }
    println!(
        "setup: installing bpf-linker (built against llvm-22, about 70 s): it links the eBPF object"
    );
    cmd::run_env(
        root,
        "install bpf-linker",
        "cargo",
        &[
            "install",
            "bpf-linker",
            "--locked",
            "--no-default-features",
            "--features",
            "llvm-22",
        ],
        &[("LLVM_PREFIX", "/usr/lib/llvm-22")],
    )
}

/// Starts dockerd in the background when no engine answers (no systemd here).
fn ensure_dockerd(root: &Path) -> anyhow::Result<()> {
    if cmd::succeeds("docker", &["info"]) {
        return Ok(());
    }
    println!("setup: starting dockerd in the background: container tests need a running engine");
    // An engine killed with the last session leaves its pid files; when the pid has since
    // gone to another process, dockerd (and its containerd) refuse to start.
    if !cmd::succeeds("pgrep", &["-x", "dockerd"]) {
        for stale in [
            "/var/run/docker.pid",
            "/var/run/docker/containerd/containerd.pid",
        ] {
            if let Err(error) = std::fs::remove_file(stale)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                bail!("removing the stale {stale}: {error}");
            }
        }
    }
    let log = root.join("target/dockerd.log");
    std::fs::create_dir_all(root.join("target")).context("creating target/")?;
    let log_file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err_file = log_file.try_clone().context("dup dockerd log")?;
    std::process::Command::new("setsid")
        .arg("dockerd")
        .stdin(std::process::Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .spawn()
        .context("starting dockerd (setsid dockerd)")?;
    for _ in 0..120 {
        if cmd::succeeds("docker", &["info"]) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("dockerd did not answer within 60 s; see {}", log.display())
}
