//! `guardian explain PID`: what the guardian sees of one process (identity, RSS, cgroup
//! paths, classification) and, for every rule and the protect list, whether it applies
//! and why not. Reads /proc directly, so it works without a running daemon.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;

use crate::{
    classify::Classification,
    config::{Config, DEFAULT_PATH},
    model::Model,
    names::Lookup,
    policy::Policy,
    sources::{cgroup::CgroupReader, procfs::ProcReader},
};

/// Flags of `guardian explain`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    /// The process to explain.
    pub pid: i32,
    /// Config file whose rules are explained (default /etc/guardian/guardian.toml; built-in
    /// defaults, which have no rules, if that is absent).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_deref())?;
    let reader = ProcReader::new("/proc").context("opening /proc")?;
    let process = reader
        .read_process(args.pid)
        .with_context(|| format!("reading /proc/{}", args.pid))?
        .with_context(|| format!("no process with pid {}", args.pid))?;
    let mut model = Model::default();
    model.host = reader
        .host_memory()
        .context("reading /proc/meminfo (MemTotal resolves percentage thresholds)")?;
    // The parent decides whether the process counts as an orphan of a subreaper; the
    // ancestors whether a container is confirmed (a runtime helper among them).
    let mut ppid = process.ppid;
    for _ in 0..64 {
        if ppid <= 0 {
            break;
        }
        let Ok(Some(ancestor)) = reader.read_process(ppid) else {
            break;
        };
        ppid = ancestor.ppid;
        model.upsert_process(ancestor);
    }
    model.upsert_process(process.clone());
    let policy = Policy::new(&config, std::process::id() as i32)
        .context("building the kill policy from the config")?;
    let mut policy = policy;
    if let Ok(cgroups) = CgroupReader::detect(Path::new("/sys/fs/cgroup")) {
        policy.set_cgroup_root(cgroups.memory_root().to_path_buf());
    }
    let mut explanation = policy.explain(&process, &model);
    if let Classification::Container { id, .. } = &*process.class {
        let lookup = Lookup::from_config(&config.containers);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime for the container name lookup")?;
        match runtime.block_on(lookup.name_of(id)) {
            Ok(name) => explanation.container = name,
            Err(error) => tracing::warn!(%error, "cannot look up the container's name"),
        }
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&explanation)?)
    } else {
        write!(out, "{explanation}")
    };
    match written {
        // `guardian explain PID | head` is fine.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("writing to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `--config`, else /etc/guardian/guardian.toml when present, else the defaults.
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None if Path::new(DEFAULT_PATH).exists() => Ok(Config::load(Path::new(DEFAULT_PATH))?),
        None => Ok(Config::default()),
    }
}
