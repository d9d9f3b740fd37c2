//! `cargo xtask bench` (benchmark `parse`): the guardian's kernel-file parsers beside
//! the `procfs` crate's (procfs-core) on the same held buffers, the `stat` and `status`
//! of every process on this host read once into memory. Prints one JSON line per round
//! and file: `{"file":"stat","processes":N,"hand_ns":..,"crate_ns":..}` (per process),
//! the two parsers alternating first from round to round.

use std::{hint::black_box, time::Instant};

use guardian::sources::kernfs::proc as hand;
use procfs::{FromBufRead as _, FromRead as _};

const ROUNDS: usize = 15;
/// Passes over all buffers per timing, so each timing lasts a few milliseconds.
const PASSES: usize = 20;

fn main() {
    let (stats, statuses) = held_buffers();
    for round in 0..ROUNDS {
        for (file, buffers) in [("stat", &stats), ("status", &statuses)] {
            let hand = || time(buffers, |buf| parse_hand(file, buf));
            let krate = || time(buffers, |buf| parse_crate(file, buf));
            let (hand_ns, crate_ns) = if round % 2 == 0 {
                (hand(), krate())
            } else {
                let crate_ns = krate();
                (hand(), crate_ns)
            };
            println!(
                "{{\"file\":\"{file}\",\"processes\":{},\"hand_ns\":{hand_ns:.1},\"crate_ns\":{crate_ns:.1}}}",
                buffers.len()
            );
        }
    }
}

/// `/proc/PID/stat` and `/proc/PID/status` of every process, read once.
fn held_buffers() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut stats = Vec::new();
    let mut statuses = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (stats, statuses);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let (Ok(stat), Ok(status)) = (
            std::fs::read(path.join("stat")),
            std::fs::read(path.join("status")),
        ) {
            stats.push(stat);
            statuses.push(status);
        }
    }
    (stats, statuses)
}

/// Nanoseconds per buffer of `parse` over all `buffers`.
fn time(buffers: &[Vec<u8>], parse: impl Fn(&[u8]) -> bool) -> f64 {
    let started = Instant::now();
    let mut parsed = 0usize;
    for _ in 0..PASSES {
        for buf in buffers {
            parsed += usize::from(parse(black_box(buf)));
        }
    }
    black_box(parsed);
    started.elapsed().as_nanos() as f64 / (PASSES * buffers.len().max(1)) as f64
}

fn parse_hand(file: &str, buf: &[u8]) -> bool {
    match file {
        "stat" => black_box(hand::stat(buf)).is_some(),
        _ => black_box(hand::status(buf)).is_some(),
    }
}

fn parse_crate(file: &str, buf: &[u8]) -> bool {
    match file {
        "stat" => black_box(procfs::process::Stat::from_read(buf)).is_ok(),
        _ => black_box(procfs::process::Status::from_buf_read(buf)).is_ok(),
    }
}
