//! `cargo xtask`: the project's commands. `run` and `test` are the README's two commands;
//! both install what is missing first (see `setup`).

mod bench;
mod bench_scrape;
mod check_deploy;
mod cmd;
mod eval_trends;
mod fuzz;
mod image;
mod layers;
mod manifests;
mod package;
mod setup;
mod soak;
mod test;
mod vm;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "guardian's build, test and run commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing (idempotent): nightly rust-src, llvm-22-dev, bpf-linker, and
    /// for tests docker.io, busybox-static, prometheus.
    Setup {
        /// Also what the tests need.
        #[arg(long)]
        tests: bool,
    },
    /// Build and start `guardian run` in the foreground with the shipped config, in dry-run.
    Run {
        /// Extra arguments for `guardian run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Every check and test: fmt, clippy (warnings denied), unit and integration tests.
    Test,
    /// The architecture check alone: no import cycle between modules, no import from a
    /// lower layer to a higher one.
    Layers {
        /// Another checkout of the workspace to check (default: this one).
        root: Option<PathBuf>,
    },
    /// Measured figures of issues 4, 5 and 7, each as a ratio against a baseline run
    /// beside it, with the target (release binaries; needs root).
    Bench(bench::Options),
    /// Build the Debian package (cargo-deb): binary, systemd unit, config as a conffile,
    /// alert rules and dashboard.
    Package,
    /// Run every cargo-fuzz target (fuzz/) for --secs seconds each (default 60) from the
    /// seed corpus; a crash fails and names its input.
    Fuzz(fuzz::Options),
    /// Churn soak (not in CI; loads the machine): 10,000 live processes, ~1,000 spawns
    /// and ~100 cgroup creations and removals a second, marked hogs to kill, for
    /// --minutes (default 10); reports RSS and fd slopes, kills, /healthz, drops, CPU.
    Soak(soak::Options),
    /// The DaemonSet's container image (guardian, its libraries, the shipped config),
    /// built with `docker import`: no registry, no base image.
    Image(image::Options),
    /// Check the Kubernetes manifests, the Helm chart and the Grafana dashboards against
    /// maintained schemas and linters (installed into target/deploy-check, pinned).
    CheckDeploy,
    /// The .deb on stock Debian kernels (6.1, 6.12) booted in qemu with a cached Debian 12
    /// rootfs, systemd as PID 1 and pure cgroup v2: an acceptance suite in each VM, one
    /// row per kernel (downloads kernels and the rootfs once into /var/cache/guardian-xtask/vm).
    Vm(vm::Options),
    /// Write the Kubernetes files generated from config/ (PrometheusRule, ConfigMap, the
    /// Helm chart's copies); `--check` only fails when one differs.
    Manifests {
        /// Change nothing; fail when a generated file is out of date.
        #[arg(long)]
        check: bool,
    },
    /// Replay every labelled RSS trace in each DIR (see DIR/labels.csv) through
    /// `guardian trend` and print detections, false alarms, delays, slope errors and
    /// imminence leads, with pass/fail per acceptance criterion.
    EvalTrends {
        /// Folders with the traces and labels.csv (default: ../shared/traces and
        /// tests/fixtures/traces).
        dirs: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let root = workspace_root();
    match Cli::parse().command {
        Command::Setup { tests } => setup::setup(
            &root,
            if tests {
                setup::For::Tests
            } else {
                setup::For::Build
            },
        ),
        Command::Run { args } => run(&root, &args),
        Command::Test => test::test(&root),
        Command::Layers { root: other } => layers::check(&other.unwrap_or(root)),
        Command::Bench(options) => bench::bench(&root, &options),
        Command::Package => package::package(&root).map(drop),
        Command::Fuzz(options) => fuzz::fuzz(&root, options.secs, &options.targets),
        Command::Soak(options) => soak::soak(&root, &options),
        Command::Image(options) => image::image(&root, &options),
        Command::Vm(options) => vm::vm(&root, &options),
        Command::CheckDeploy => check_deploy::check_deploy(&root),
        Command::Manifests { check } => manifests::manifests(&root, check),
        Command::EvalTrends { dirs } => {
            cmd::run(
                &root,
                "build guardian",
                "cargo",
                &["build", "-p", "guardian"],
            )?;
            let dirs = if dirs.is_empty() {
                vec![
                    root.join("../shared/traces"),
                    root.join("tests/fixtures/traces"),
                ]
            } else {
                dirs
            };
            let dirs = dirs
                .iter()
                .map(|dir| {
                    std::fs::canonicalize(dir)
                        .map_err(|error| anyhow::anyhow!("trace folder {}: {error}", dir.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            eval_trends::eval_trends(&dirs, &root.join("target/debug/guardian"))
        }
    }
}

/// The workspace root (xtask's parent directory).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn run(root: &std::path::Path, args: &[String]) -> anyhow::Result<()> {
    setup::setup(root, setup::For::Build)?;
    cmd::run(
        root,
        "build guardian",
        "cargo",
        &["build", "-p", "guardian"],
    )?;
    let binary = root.join("target/debug/guardian");
    let config = root.join("config/guardian.toml");
    let mut full: Vec<String> = vec![
        "run".into(),
        "--config".into(),
        config.display().to_string(),
        "--dry-run".into(),
        "--kill-log".into(),
        root.join("target/guardian-kills.jsonl")
            .display()
            .to_string(),
    ];
    full.extend(args.iter().cloned());
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    println!(
        "guardian runs in dry-run: it decides and logs kills but signals nothing. Ctrl-C stops it."
    );
    cmd::run(root, "guardian run", &binary.display().to_string(), &full)
}
