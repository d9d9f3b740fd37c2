//! `cargo xtask bench`: the figures of issues 4 and 5, each measured beside a baseline in
//! the same run (alternating A B A B where the baseline is a run of its own) and printed
//! as a ratio with the target beside it. Nothing here asserts a time: the table
//! is for people to read. Every process, cgroup and temp dir a benchmark creates is
//! removed on every path (guards with `Drop`).

mod bpf_stats;
mod cgroup;
pub(crate) mod daemon;
pub(crate) mod harness;
mod hook_latency;
mod kernel_btf;
mod kill_latency;
mod memory;
mod null_probe;
mod oom_latency;
mod parse;
mod pressure_latency;
mod report;
mod scan;
pub(crate) mod sleepers;
mod storm;
mod tracefs;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::{cmd, setup};

/// The binaries under measurement.
pub struct Binaries {
    pub guardian: PathBuf,
    pub memhog: PathBuf,
}

/// Which benchmarks run, and how often.
#[derive(Clone, Debug, clap::Parser)]
pub struct Options {
    /// Only these benchmarks (comma-separated): storm, scan, parse, memory, oom, kill,
    /// hooks (kill latency with a hung hook beside none), pressure, extra.
    #[arg(long, value_delimiter = ',', default_values_t = ["storm", "scan", "parse", "memory", "oom", "kill", "hooks", "pressure", "extra"].map(String::from))]
    pub only: Vec<String>,
    /// Page-fault storm rounds (each runs every arm once, order alternating).
    #[arg(long, default_value_t = 9)]
    pub rounds: usize,
    /// Memhogs per storm.
    #[arg(long, default_value_t = 16)]
    pub hogs: usize,
    /// MiB each storm memhog touches.
    #[arg(long, default_value_t = 256)]
    pub mib: usize,
    /// Guardian-vs-ps pairs per process count in the scan benchmark.
    #[arg(long, default_value_t = 5)]
    pub pairs: usize,
    /// Process counts for the scan and memory benchmarks.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000])]
    pub processes: Vec<usize>,
    /// OOM kills and threshold kills measured per mode.
    #[arg(long, default_value_t = 12)]
    pub runs: usize,
    /// Also report the rss_stat programs' run time per call from the kernel's BPF
    /// statistics (turns kernel.bpf_stats_enabled on during the storm; restored after).
    #[arg(long)]
    pub bpf_stats: bool,
    /// Measure the debug binaries (quick to build while developing the benchmarks; the
    /// figures are release figures only without it).
    #[arg(long)]
    pub debug: bool,
}

/// Installs what is missing, builds the binaries, runs the selected benchmarks and prints
/// the summary table.
pub fn bench(root: &Path, options: &Options) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the benchmarks load eBPF programs, make cgroups and kill their own processes: run them as root"
        );
    }
    setup::setup(root, setup::For::Tests)?;
    harness::catch_interrupts()?;
    ensure_bpftrace(root)?;
    if options.only.iter().any(|only| only == "memory") {
        ensure_node_exporter(root)?;
    }
    let bins = build(root, options.debug)?;
    let wants = |name: &str| options.only.iter().any(|only| only == name);
    let mut rows = Vec::new();
    let mut timed = |name: &str, run: &mut dyn FnMut() -> Vec<report::Row>| {
        if wants(name) && harness::check_interrupted().is_ok() {
            println!("\n[{name}: host {} before]", harness::cpu_pressure());
            rows.extend(run());
            println!("[{name}: host {} after]", harness::cpu_pressure());
        }
    };
    let storm_options = storm::StormOptions {
        hogs: options.hogs,
        mib: options.mib,
        rounds: options.rounds,
        bpf_stats: options.bpf_stats,
    };
    timed("storm", &mut || storm::run(&bins, storm_options));
    timed("scan", &mut || {
        scan::run(&bins, &options.processes, options.pairs)
    });
    timed("parse", &mut || parse::run(root, options.debug));
    timed("memory", &mut || memory::run(&bins, &options.processes));
    timed("oom", &mut || oom_latency::run(&bins, options.runs));
    timed("kill", &mut || kill_latency::run(&bins, options.runs));
    timed("hooks", &mut || hook_latency::run(&bins, options.runs));
    timed("pressure", &mut || {
        pressure_latency::run(&bins, options.runs)
    });
    println!(
        "\n== summary ({} binaries; ratios are median (min..max) over per-pair ratios)",
        if options.debug { "debug" } else { "release" }
    );
    report::print_table(&rows);
    harness::check_interrupted()?;
    if wants("extra") {
        extras(root, &bins)?;
    }
    Ok(())
}

/// Builds guardian and memhog (release unless `debug`).
pub(crate) fn build(root: &Path, debug: bool) -> anyhow::Result<Binaries> {
    let mut args = vec!["build", "-p", "guardian", "-p", "memhog"];
    if !debug {
        args.push("--release");
    }
    cmd::run(root, "build guardian and memhog", "cargo", &args)?;
    let dir = root
        .join("target")
        .join(if debug { "debug" } else { "release" });
    let bins = Binaries {
        guardian: dir.join("guardian"),
        memhog: dir.join("memhog"),
    };
    for bin in [&bins.guardian, &bins.memhog] {
        if !bin.is_file() {
            bail!("{} is missing after the build", bin.display());
        }
    }
    Ok(bins)
}

/// bpftrace is the OOM latency reference.
fn ensure_bpftrace(root: &Path) -> anyhow::Result<()> {
    if cmd::succeeds("bpftrace", &["--version"]) {
        return Ok(());
    }
    println!("setup: installing bpftrace: the OOM latency reference");
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    cmd::run_env(root, "apt-get update", "apt-get", &["update", "-q"], &env)?;
    cmd::run_env(
        root,
        "install bpftrace",
        "apt-get",
        &["install", "-y", "-q", "--no-install-recommends", "bpftrace"],
        &env,
    )
}

/// node-exporter is the reference beside the guardian's own memory. Installing it starts
/// Debian's service where systemd runs; the benchmark starts its own on a free port.
fn ensure_node_exporter(root: &Path) -> anyhow::Result<()> {
    if Path::new("/usr/bin/prometheus-node-exporter").is_file() {
        return Ok(());
    }
    println!("setup: installing prometheus-node-exporter: the own-memory reference");
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    cmd::run_env(root, "apt-get update", "apt-get", &["update", "-q"], &env)?;
    cmd::run_env(
        root,
        "install prometheus-node-exporter",
        "apt-get",
        &[
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "prometheus-node-exporter",
        ],
        &env,
    )
}

/// The other benchmarks of the project: the /metrics scrape, and the criterion-style
/// `cargo bench` targets of the guardian crate that exist.
fn extras(root: &Path, bins: &Binaries) -> anyhow::Result<()> {
    println!("\n== /metrics scrape cost");
    if let Err(error) = crate::bench_scrape::bench_scrape(&bins.guardian) {
        println!("scrape benchmark failed: {error:#}");
    }
    let manifest = root.join("guardian/Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    for bench in ["detector", "killlog", "names", "redact"] {
        let declared = text.contains(&format!("name = \"{bench}\""))
            && root.join(format!("guardian/benches/{bench}.rs")).is_file();
        if !declared {
            println!("\n== cargo bench --bench {bench}: not in guardian/Cargo.toml yet, skipped");
            continue;
        }
        if let Err(error) = cmd::run(
            root,
            &format!("cargo bench {bench}"),
            "cargo",
            &["bench", "-p", "guardian", "--bench", bench],
        ) {
            println!("{error:#}");
        }
    }
    Ok(())
}
