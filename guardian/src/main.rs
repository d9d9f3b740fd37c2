//! The `guardian` binary: parses the command line and runs the chosen command.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = guardian::cli::Cli::parse();
    match guardian::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("guardian: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
