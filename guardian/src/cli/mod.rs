//! The command line: one module per command, each a thin layer over the library.

mod audit;
mod check_config;
mod explain;
mod journald;
pub mod logging;
mod run;
mod trend;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::config::SourceChoice;

/// guardian: tracks memory of processes and cgroups (eBPF, or /proc and cgroups), kills
/// runaway host processes safely with an audit trail, sees leaks coming, exports metrics.
#[derive(Debug, Parser)]
#[command(name = "guardian", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground.
    Run(RunArgs),
    /// Validate a config file; errors name the key, line and column.
    CheckConfig {
        /// The config file to check.
        path: PathBuf,
    },
    /// Check (`verify`) and read (`list`) the kill log.
    Audit(audit::AuditArgs),
    /// What the guardian sees of one process, and why each rule does or does not apply.
    Explain(explain::ExplainArgs),
    /// Replay a recorded RSS trace (`t_s,rss_bytes`) through the leak detector; prints JSON.
    Trend(trend::TrendArgs),
}

/// Flags of `guardian run`; each overrides the config file.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Config file (default /etc/guardian/guardian.toml; built-in defaults if that is absent).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Memory source.
    #[arg(long, value_enum)]
    pub source: Option<SourceChoice>,
    /// Decide and log kills, but never signal anything.
    #[arg(long)]
    pub dry_run: bool,
    /// HTTP address for /metrics, /healthz and /api/v1 (loopback by default).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Kill log path.
    #[arg(long)]
    pub kill_log: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Runs one command; the exit code is the command's verdict.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::CheckConfig { path } => check_config::check_config(&path),
        Command::Audit(args) => audit::audit(args),
        Command::Explain(args) => explain::explain(args),
        Command::Trend(args) => trend::trend(args),
    }
}
