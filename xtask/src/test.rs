//! `cargo xtask test`: fmt, clippy with warnings denied (with and without eBPF), the
//! deployment files' schemas (`check-deploy`), every unit and integration test, every
//! fuzz target for a few seconds, then the VM matrix (`cargo xtask vm`); prints the
//! summed counts.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::{cmd, setup};

pub fn test(root: &Path) -> anyhow::Result<()> {
    setup::setup(root, setup::For::Tests)?;
    cmd::run(root, "format check", "cargo", &["fmt", "--all", "--check"])?;
    println!("==> [architecture] import cycles and layers of guardian/src");
    crate::layers::check(root)?;
    cmd::run(
        root,
        "clippy",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    cmd::run(
        root,
        "clippy without eBPF",
        "cargo",
        &[
            "clippy",
            "-p",
            "guardian",
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // Manifests, chart and dashboards against maintained schemas (about 50 s once for
    // the installs, then seconds).
    crate::check_deploy::check_deploy(root)?;
    // The integration tests run the guardian and the memhog workload as binaries.
    cmd::run(
        root,
        "build binaries",
        "cargo",
        &["build", "--workspace", "--bins"],
    )?;
    let (passed, failed, ignored) = cargo_test(root)?;
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if failed > 0 {
        bail!("{failed} test(s) failed");
    }
    // Every parser of untrusted input, a few seconds each (`cargo xtask fuzz` for longer).
    crate::fuzz::fuzz(root, crate::fuzz::CI_SECS, &[])?;
    // The .deb on stock kernels, in VMs (one per host core at a time; about 6 minutes
    // for three once the rootfs and kernels are cached).
    crate::vm::vm(root, &crate::vm::Options::default())
}

/// Runs `cargo test --workspace`, echoing its output and summing its result lines.
fn cargo_test(root: &Path) -> anyhow::Result<(u64, u64, u64)> {
    println!("==> [tests] cargo test --workspace --no-fail-fast");
    let mut child = Command::new("cargo")
        .args(["test", "--workspace", "--no-fail-fast"])
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
            ignored += count(rest, " ignored");
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() && failed == 0 {
        bail!(
            "step 'tests' failed ({status}); rerun by hand: cargo test --workspace --no-fail-fast"
        );
    }
    Ok((passed, failed, ignored))
}

/// The number before `label` in a libtest summary ("3 passed; 0 failed; ...").
fn count(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim_start())
                .map(str::trim)
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
