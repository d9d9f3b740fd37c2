//! The kernel-file parsers side by side: the guardian's own (`sources::kernfs`) and the
//! `procfs` crate's procfs-core, on the same held buffers (`stat` and `status` of every
//! process here), alternating which runs first. The crate is used where it is as fast;
//! this row says whether it is (the ratio is crate / hand, per round).

use std::path::Path;

use anyhow::Context as _;

use super::{
    harness::Stats,
    report::{Row, Verdict, ratio_text},
};
use crate::cmd;

/// Builds and runs the `kernfs_parsers` example; one row per file.
pub fn run(root: &Path, debug: bool) -> Vec<Row> {
    match measure(root, debug) {
        Ok(rows) => rows,
        Err(error) => vec![Row::failed("parse /proc/PID/stat, status", &error)],
    }
}

fn measure(root: &Path, debug: bool) -> anyhow::Result<Vec<Row>> {
    let mut args = vec!["build", "-p", "guardian", "--example", "kernfs_parsers"];
    if !debug {
        args.push("--release");
    }
    cmd::run(root, "build the parser benchmark", "cargo", &args)?;
    let binary = root
        .join("target")
        .join(if debug { "debug" } else { "release" })
        .join("examples/kernfs_parsers");
    let output = cmd::output(root, "parser benchmark", &binary.to_string_lossy(), &[])?;
    let mut rows = Vec::new();
    for file in ["stat", "status"] {
        let mut hand = Vec::new();
        let mut krate = Vec::new();
        let mut processes = 0;
        for line in output.lines() {
            let value: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("parser benchmark: {line}"))?;
            if value["file"] != file {
                continue;
            }
            processes = value["processes"].as_u64().unwrap_or(0);
            hand.push(value["hand_ns"].as_f64().unwrap_or(f64::NAN));
            krate.push(value["crate_ns"].as_f64().unwrap_or(f64::NAN));
        }
        let ratios: Vec<f64> = krate.iter().zip(&hand).map(|(c, h)| c / h).collect();
        let (Some(hand), Some(krate), Some(ratio)) =
            (Stats::of(&hand), Stats::of(&krate), Stats::of(&ratios))
        else {
            anyhow::bail!("the parser benchmark printed no {file} rounds");
        };
        rows.push(Row {
            figure: format!("parse /proc/PID/{file} ({processes} held buffers)"),
            measured: format!("procfs-core {:.0} ns/process", krate.median),
            baseline: format!("kernfs (hand) {:.0} ns/process", hand.median),
            ratio: ratio_text(&ratio),
            target: "crate used where <= 1.0".to_string(),
            verdict: Verdict::Info,
        });
    }
    Ok(rows)
}
