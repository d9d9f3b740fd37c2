//! `guardian trend --csv FILE [--limit BYTES] [--config PATH]`: replays a recorded RSS
//! trace through the same online leak detector the daemon runs and prints one JSON object.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;

use crate::{
    config::{Bytes, Config},
    trends::{self, Params},
};

/// Flags of `guardian trend`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrendArgs {
    /// The trace: a CSV with the header `t_s,rss_bytes`, one sample per row from the
    /// process's start, at any regular interval.
    #[arg(long)]
    pub csv: PathBuf,
    /// A memory limit ("512MiB", "1GB" or bytes) for the time-to-limit.
    #[arg(long)]
    pub limit: Option<Bytes>,
    /// Take the detector settings from this config's [trends] (default: built-in).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn trend(args: TrendArgs) -> anyhow::Result<ExitCode> {
    let params = match &args.config {
        Some(path) => Params::from(&Config::load(path)?.trends),
        None => Params::default(),
    };
    let report = trends::replay_file(&args.csv, &params, args.limit.map(|limit| limit.0))?;
    let json = serde_json::to_string_pretty(&report).context("encoding the report as JSON")?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}
