//! The `guardian` binary: parses the command line and runs the chosen command.

use std::process::ExitCode;

use clap::Parser as _;

/// With `--features dhat-heap`, every allocation is profiled (see guardian/Cargo.toml).
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    let cli = guardian::cli::Cli::parse();
    match guardian::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("guardian: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
