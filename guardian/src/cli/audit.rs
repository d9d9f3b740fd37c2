//! `guardian audit verify [PATH...]` and `guardian audit list`: check and read the kill log.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::{Subcommand, builder::PossibleValuesParser};
use time::OffsetDateTime;

use crate::{
    audit::{
        self,
        files::log_files,
        list::{self, Decision, Filter},
    },
    config::{Config, DEFAULT_PATH, KillLogConfig},
};

/// `guardian audit ...`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Check the kill log's hash chain and sequence, across rotated files.
    ///
    /// Exit 0: intact (a torn last line after a crash is noted, not counted as
    /// tampering); 1: a record was edited, deleted, inserted or moved (the first bad one
    /// is named by file and line); 2: the log could not be read.
    Verify {
        /// Files to check as one chain, oldest first (default: the configured log and
        /// its rotated files, kills.jsonl.N ... kills.jsonl.1 kills.jsonl).
        paths: Vec<PathBuf>,
        /// Config naming the log (default /etc/guardian/guardian.toml when present).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show kill decisions (an intent and its outcome per row), oldest first.
    List(ListArgs),
}

/// Flags of `guardian audit list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only decisions since an RFC 3339 time or a duration ago ("1h", "2days").
    #[arg(long)]
    pub since: Option<String>,
    /// Only this rule's decisions.
    #[arg(long)]
    pub rule: Option<String>,
    /// Only decisions about this pid.
    #[arg(long)]
    pub pid: Option<i64>,
    /// Only decisions with this outcome ("pending": no outcome record yet).
    #[arg(long, value_parser = PossibleValuesParser::new(list::OUTCOMES))]
    pub outcome: Option<String>,
    /// JSON Lines: the intent and outcome records of each decision, as logged.
    #[arg(long)]
    pub json: bool,
    /// The log (its rotated files are read too; default: from the config).
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Config naming the log (default /etc/guardian/guardian.toml when present).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

/// Runs an audit command.
pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Verify { paths, config } => verify(paths, config.as_deref()),
        AuditCommand::List(args) => list(args),
    }
}

fn verify(paths: Vec<PathBuf>, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let files = if paths.is_empty() {
        log_files(&configured_log(config)?)
    } else {
        Ok(paths)
    };
    let report = match files.and_then(|files| audit::verify(&files)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("guardian: error: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    print!("{report}");
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let path = match args.path {
        Some(path) => path,
        None => configured_log(args.config.as_deref())?,
    };
    let since = args
        .since
        .as_deref()
        .map(|since| list::parse_since(since, OffsetDateTime::now_utc()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let filter = Filter {
        since,
        rule: args.rule,
        pid: args.pid,
        outcome: args.outcome,
    };
    let listing = list::read_decisions(&log_files(&path)?)?;
    for skipped in &listing.skipped {
        eprintln!("guardian: skipped {skipped} (run `guardian audit verify`)");
    }
    let decisions: Vec<&Decision> = listing
        .decisions
        .iter()
        .filter(|decision| filter.matches(decision))
        .collect();
    if args.json {
        for line in decisions.iter().flat_map(|decision| &decision.lines) {
            println!("{line}");
        }
    } else {
        print!("{}", list::format_table(&decisions));
    }
    Ok(ExitCode::SUCCESS)
}

/// The log the config names: `--config`, else /etc/guardian/guardian.toml when present,
/// else the built-in default path.
fn configured_log(config: Option<&Path>) -> anyhow::Result<PathBuf> {
    let load = |path: &Path| {
        Config::load(path)
            .map(|config| config.kill_log.path)
            .with_context(|| format!("reading the kill log path from {}", path.display()))
    };
    match config {
        Some(path) => load(path),
        None if Path::new(DEFAULT_PATH).exists() => load(Path::new(DEFAULT_PATH)),
        None => Ok(KillLogConfig::default().path),
    }
}
