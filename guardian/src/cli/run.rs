//! `guardian run`: loads the config, applies the flags over it, runs the daemon.

use std::{path::Path, process::ExitCode};

use anyhow::Context as _;

use super::RunArgs;
use crate::config::{self, Config};

/// Stack of each runtime thread (workers and blocking pool).
const WORKER_STACK: usize = 512 * 1024;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    super::logging::init(args.log_format);
    let (mut config, path) = load(&args)?;
    if let Some(source) = args.source {
        config.daemon.source = source;
    }
    if args.dry_run {
        config.daemon.dry_run = true;
    }
    if let Some(listen) = args.listen {
        config.daemon.listen = listen;
    }
    if let Some(kill_log) = args.kill_log {
        config.kill_log.path = kill_log;
    }
    if config.daemon.dry_run {
        tracing::info!("dry run: kill decisions are logged, nothing is signalled");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // mlockall makes every thread's whole stack resident: 2 MiB each by default.
        // The pipeline runs on the main thread; workers serve HTTP, read the ring
        // buffer, look up container names and write the kill log, none of it deep.
        .thread_stack_size(WORKER_STACK)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(crate::daemon::run(config, path));
    // Everything that matters (kill log, detach) is done: do not wait on idle tasks.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The config named by `--config` (missing is an error), else the default path when it
/// exists, else built-in defaults.
fn load(args: &RunArgs) -> anyhow::Result<(Config, Option<std::path::PathBuf>)> {
    if let Some(path) = &args.config {
        return Ok((Config::load(path)?, Some(path.clone())));
    }
    let default = Path::new(config::DEFAULT_PATH);
    if default.exists() {
        return Ok((Config::load(default)?, Some(default.to_path_buf())));
    }
    tracing::info!(
        path = config::DEFAULT_PATH,
        "no config file; using built-in defaults (no kill rules)"
    );
    Ok((Config::default(), None))
}
