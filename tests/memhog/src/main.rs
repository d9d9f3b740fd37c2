//! memhog: a test workload for guardian's integration tests and benchmarks.
//!
//! `memhog [--rss MIB] [--grow MIB_PER_S] [--max MIB] [--ignore-term] [--marker TEXT]`
//! touches `--rss` MiB at once, then `--grow` MiB per second until `--max` (or forever),
//! and prints `ready` on stdout once the first allocation is resident. The marker only
//! lands in argv so tests can match their own processes and nothing else.

use std::{io::Write as _, thread, time::Duration};

struct Args {
    rss_mib: usize,
    grow_mib_per_s: f64,
    max_mib: Option<usize>,
    ignore_term: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rss_mib: 0,
        grow_mib_per_s: 0.0,
        max_mib: None,
        ignore_term: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rss" => args.rss_mib = value()?.parse().map_err(|e| format!("--rss: {e}"))?,
            "--grow" => {
                args.grow_mib_per_s = value()?.parse().map_err(|e| format!("--grow: {e}"))?
            }
            "--max" => args.max_mib = Some(value()?.parse().map_err(|e| format!("--max: {e}"))?),
            "--marker" => {
                value()?;
            }
            "--ignore-term" => args.ignore_term = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Allocates `mib` MiB and writes every page so it is resident.
fn touch(mib: usize) -> Vec<u8> {
    let mut block = vec![0u8; mib * 1024 * 1024];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    block
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("memhog: {error}");
            std::process::exit(2);
        }
    };
    if args.ignore_term {
        // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    let mut held = vec![touch(args.rss_mib)];
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut total = args.rss_mib;
    let tick = Duration::from_millis(100);
    let mut owed = 0.0;
    loop {
        thread::sleep(tick);
        if args.grow_mib_per_s <= 0.0 || args.max_mib.is_some_and(|max| total >= max) {
            continue;
        }
        owed += args.grow_mib_per_s * tick.as_secs_f64();
        let step = owed.floor() as usize;
        if step > 0 {
            owed -= step as f64;
            held.push(touch(step));
            total += step;
        }
    }
}
