//! memhog: a test workload for guardian's integration tests and benchmarks.
//!
//! `memhog [--rss MIB] [--grow MIB_PER_S] [--max MIB] [--ignore-term] [--marker TEXT]
//!         [--exit] [--mark MIB] [--wait-stdin] [--comm NAME]`
//! touches `--rss` MiB at once, then `--grow` MiB per second until `--max` (or forever),
//! and prints `ready` on stdout once the first allocation is resident. The marker only
//! lands in argv so tests can match their own processes and nothing else.
//!
//! For benchmarks: `--exit` touches `--rss` MiB and exits at once (a page-fault storm);
//! `--wait-stdin` waits for a line on stdin after `ready` before growing (so a benchmark
//! can let the guardian learn of the process first); `--mark MIB` prints
//! `crossing <CLOCK_MONOTONIC ns>` right after the resident set (as it was at start, plus
//! every page touched since) passes MIB, so a kill latency can be timed from that moment.
//!
//! `--comm NAME` renames the process (`prctl(PR_SET_NAME)`) before anything else, as a
//! process disguising itself as a protected program would.
//!
//! With `MEMHOG_ANY_ARGS=1` in the environment, arguments memhog does not know are
//! skipped, so a test can give a memhog any command line (`Command::arg0` and the
//! redaction corpus's arguments).

use std::{
    io::{BufRead as _, Write as _},
    thread,
    time::Duration,
};

const PAGE: usize = 4096;

struct Args {
    rss_mib: usize,
    grow_mib_per_s: f64,
    max_mib: Option<usize>,
    ignore_term: bool,
    exit: bool,
    mark_mib: Option<usize>,
    wait_stdin: bool,
    comm: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        rss_mib: 0,
        grow_mib_per_s: 0.0,
        max_mib: None,
        ignore_term: false,
        exit: false,
        mark_mib: None,
        wait_stdin: false,
        comm: None,
    };
    let any_args = std::env::var_os("MEMHOG_ANY_ARGS").is_some_and(|value| value == "1");
    // Lossy: hostile-process tests pass arguments that are not UTF-8.
    let mut iter = std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned());
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rss" => args.rss_mib = value()?.parse().map_err(|e| format!("--rss: {e}"))?,
            "--grow" => {
                args.grow_mib_per_s = value()?.parse().map_err(|e| format!("--grow: {e}"))?
            }
            "--max" => args.max_mib = Some(value()?.parse().map_err(|e| format!("--max: {e}"))?),
            "--mark" => args.mark_mib = Some(value()?.parse().map_err(|e| format!("--mark: {e}"))?),
            "--marker" => {
                value()?;
            }
            "--comm" => args.comm = Some(value()?),
            "--ignore-term" => args.ignore_term = true,
            "--exit" => args.exit = true,
            "--wait-stdin" => args.wait_stdin = true,
            _ if any_args => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Counts pages down to the `--mark` crossing and reports it once.
struct Mark {
    /// Pages still to touch before the resident set passes the mark; `None` once reported.
    pages_left: Option<usize>,
}

impl Mark {
    fn new(mark_mib: Option<usize>) -> Mark {
        let pages_left =
            mark_mib.map(|mib| (mib * 1024 * 1024 / PAGE).saturating_sub(resident_pages()));
        Mark { pages_left }
    }

    /// Called after each touched page.
    fn page_touched(&mut self) {
        match self.pages_left {
            Some(0) => {
                let now = monotonic_ns();
                println!("crossing {now}");
                let _ = std::io::stdout().flush();
                self.pages_left = None;
            }
            Some(left) => self.pages_left = Some(left - 1),
            None => {}
        }
    }
}

/// Resident pages now, from `/proc/self/statm` (0 when unreadable).
fn resident_pages() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn monotonic_ns() -> u128 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128
}

/// Allocates `mib` MiB and writes every page so it is resident.
fn touch(mib: usize, mark: &mut Mark) -> Vec<u8> {
    let mut block = vec![0u8; mib * 1024 * 1024];
    for page in block.chunks_mut(PAGE) {
        page[0] = 1;
        mark.page_touched();
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
    if let Some(comm) = &args.comm {
        let Ok(name) = std::ffi::CString::new(comm.as_str()) else {
            eprintln!("memhog: --comm has a NUL byte");
            std::process::exit(2);
        };
        // SAFETY: PR_SET_NAME reads a NUL-terminated string that outlives the call.
        if unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) } != 0 {
            eprintln!(
                "memhog: prctl(PR_SET_NAME): {}",
                std::io::Error::last_os_error()
            );
            std::process::exit(2);
        }
    }
    if args.ignore_term {
        // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    let mut mark = Mark::new(args.mark_mib);
    let mut held = vec![touch(args.rss_mib, &mut mark)];
    if args.exit {
        return;
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    if args.wait_stdin {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    }
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
            held.push(touch(step, &mut mark));
            total += step;
        }
    }
}
