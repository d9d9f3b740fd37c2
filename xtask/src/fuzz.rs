//! `cargo xtask fuzz [--secs N]`: every cargo-fuzz target in `fuzz/` for N seconds each,
//! starting from the seed corpus in `fuzz/corpus/<target>/`. `cargo xtask test` runs
//! them for a few seconds each. New inputs go to `fuzz/target/corpus/<target>/` (not
//! committed); a crash fails the step and names the input to fix and then keep in the
//! seed corpus.

use std::path::Path;

use anyhow::{Context as _, bail};

use crate::cmd;

/// The version `cargo xtask setup` installs.
const CARGO_FUZZ_VERSION: &str = "0.13";

/// Seconds per target in `cargo xtask test` (the whole step stays within its CI budget).
pub const CI_SECS: u32 = 5;

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Options {
    /// Seconds each target runs.
    #[arg(long, default_value_t = 60)]
    pub secs: u32,
    /// Only these targets (default: all).
    pub targets: Vec<String>,
}

/// Installs cargo-fuzz when it is missing (about a minute once); a second run installs
/// nothing.
pub fn ensure_cargo_fuzz(root: &Path) -> anyhow::Result<()> {
    let installed = std::process::Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains(&format!(" {CARGO_FUZZ_VERSION}"))
        });
    if installed {
        return Ok(());
    }
    println!(
        "setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about a minute): `cargo xtask fuzz` and `cargo xtask test` fuzz the parsers with it"
    );
    cmd::run(
        root,
        "install cargo-fuzz",
        "cargo",
        &[
            "install",
            "cargo-fuzz",
            "--locked",
            "--version",
            &format!("^{CARGO_FUZZ_VERSION}"),
        ],
    )
}

/// Builds the targets and runs each for `secs` seconds.
pub fn fuzz(root: &Path, secs: u32, only: &[String]) -> anyhow::Result<()> {
    ensure_cargo_fuzz(root)?;
    let dir = root.join("fuzz");
    cmd::run(
        &dir,
        "fuzz build",
        "cargo",
        &["+nightly", "fuzz", "build", "-s", "none"],
    )?;
    let listed = cmd::output(&dir, "fuzz list", "cargo", &["+nightly", "fuzz", "list"])?;
    let targets: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|target| !target.is_empty())
        .filter(|target| only.is_empty() || only.iter().any(|name| name == target))
        .collect();
    if targets.is_empty() {
        bail!("no fuzz target matches {only:?} (cargo fuzz list: {listed})");
    }
    let mut failed = Vec::new();
    for target in &targets {
        let seeds = dir.join("corpus").join(target);
        let work = dir.join("target").join("corpus").join(target);
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        let seed_count = std::fs::read_dir(&seeds).map_or(0, Iterator::count);
        println!("==> [fuzz] {target}: {secs} s from {seed_count} seed inputs");
        let result = cmd::run(
            &dir,
            &format!("fuzz {target}"),
            "cargo",
            &[
                "+nightly",
                "fuzz",
                "run",
                "-s",
                "none",
                target,
                &work.display().to_string(),
                &seeds.display().to_string(),
                "--",
                &format!("-max_total_time={secs}"),
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ],
        );
        if let Err(error) = result {
            println!(
                "fuzz {target} FAILED: {error:#}\n  the input is in fuzz/artifacts/{target}/; fix the \
                 parser, then copy the input into fuzz/corpus/{target}/ so it stays a test"
            );
            failed.push(*target);
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets crashed: {}", failed.join(", "));
    }
    println!("fuzz: {} targets, {secs} s each, no crash", targets.len());
    Ok(())
}
