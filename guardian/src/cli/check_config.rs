//! `guardian check-config PATH`.

use std::{path::Path, process::ExitCode};

use crate::config::Config;

pub fn check_config(path: &Path) -> anyhow::Result<ExitCode> {
    match Config::load(path) {
        Ok(config) => {
            println!(
                "{}: ok ({} rule(s), {} orphan rule(s), {} pressure rule(s), {} leak rule(s))",
                path.display(),
                config.rules.len(),
                config.orphan_rules.len(),
                config.pressure_rules.len(),
                config.leak_rules.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
