//! Leak detector cost and memory, beside baselines measured in the same run:
//!
//! - cost per sample, amortised over every recorded and synthetic trace (healthy and
//!   leaking), against pushing the same samples into a plain `VecDeque` ring of the last
//!   8 minutes and against an incremental least-squares slope (the cheapest trend there
//!   is); target <= 1 us/sample;
//! - memory per tracked series: `size_of::<Detector>()` (it holds no heap), and the
//!   bytes a `TrendBook` allocates per process series (map entry, name, detector) counted
//!   by a counting allocator; target <= 4 KiB.
//!
//! `cargo bench -p guardian --bench detector` (DETECTOR_BENCH_ROUNDS sets the rounds).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::VecDeque,
    hint::black_box,
    path::Path,
    sync::atomic::{AtomicIsize, Ordering},
    time::{Duration, Instant},
};

use guardian::{
    classify::Classification,
    config::TrendsConfig,
    model::{MemoryUsage, Model, Process, ProcessKey},
    trends::{Detector, Params, Sample, Scratch, TrendBook, read_trace},
};

/// Counts the bytes live on the heap, to measure what a series costs.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is
// kept beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Every trace under the shared and fixture directories that exist.
fn traces() -> Vec<(String, Vec<Sample>)> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut traces = Vec::new();
    for dir in [
        manifest.join("../../shared/traces"),
        manifest.join("../tests/fixtures/traces"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            println!("(no traces at {}: skipped)", dir.display());
            continue;
        };
        let mut paths: Vec<_> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension().is_some_and(|ext| ext == "csv")
                    && path.file_name().is_some_and(|name| name != "labels.csv")
            })
            .collect();
        paths.sort();
        for path in paths {
            let samples = read_trace(&path).expect("trace");
            let name = path
                .file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
            traces.push((name, samples));
        }
    }
    traces
}

/// The detector, one per trace, as the daemon feeds it.
fn detector(traces: &[&[Sample]]) -> Duration {
    let params = Params::default();
    let mut scratch = Scratch::default();
    let start = Instant::now();
    for samples in traces {
        let mut detector = Detector::new(samples[0].t);
        for sample in *samples {
            black_box(detector.push(sample.t, sample.bytes, &params, &mut scratch));
        }
        black_box(&detector);
    }
    start.elapsed()
}

/// Baseline: the same samples into a ring of the last 480.
fn ring(traces: &[&[Sample]]) -> Duration {
    let start = Instant::now();
    for samples in traces {
        let mut ring: VecDeque<(f64, u64)> = VecDeque::with_capacity(480);
        for sample in *samples {
            if ring.len() == 480 {
                ring.pop_front();
            }
            ring.push_back((sample.t, sample.bytes));
            black_box(ring.back());
        }
        black_box(&ring);
    }
    start.elapsed()
}

/// Baseline: an incremental least-squares slope over all samples.
fn ols(traces: &[&[Sample]]) -> Duration {
    let start = Instant::now();
    for samples in traces {
        let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for sample in *samples {
            let (x, y) = (sample.t, sample.bytes as f64);
            n += 1.0;
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
            black_box((n * sxy - sx * sy) / (n * sxx - sx * sx));
        }
    }
    start.elapsed()
}

/// Median of `rounds` runs of each arm, alternating arms within a round.
fn measure(rounds: usize, traces: &[&[Sample]]) -> [Duration; 3] {
    let mut runs: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds {
        let order: [usize; 3] = if round % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for arm in order {
            let elapsed = match arm {
                0 => detector(traces),
                1 => ring(traces),
                _ => ols(traces),
            };
            runs[arm].push(elapsed);
        }
    }
    runs.map(|mut runs| {
        runs.sort();
        runs[runs.len() / 2]
    })
}

fn process(pid: i32, rss: u64) -> Process {
    Process {
        key: ProcessKey {
            pid,
            start_ticks: 1000 + pid as u64,
        },
        ppid: 1,
        uid: 1000,
        comm: "node-service-01".into(),
        cmdline: vec!["node".into(), "dist/main.js".into()].into(),
        kernel_thread: false,
        oom_score_adj: 0,
        memory: MemoryUsage::from_parts(rss, 0, 0, 0),
        cgroups: Vec::new().into(),
        memory_cgroup: None,
        class: Classification::default().into(),
        started_secs: 0.0,
    }
}

/// Heap bytes a `TrendBook` holds per process series, with `series` of them after an
/// hour of samples (every ring full).
fn book_bytes_per_series(series: i32) -> f64 {
    let mut model = Model::default();
    model.replace_processes((0..series).map(|pid| process(pid, 64 << 20)).collect());
    let before = LIVE.load(Ordering::Relaxed);
    let mut book = TrendBook::new(&TrendsConfig::default());
    for tick in 0..3700 {
        book.observe(&model, f64::from(tick), &|_| None);
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(book.len(), series as usize);
    black_box(&book);
    (after - before) as f64 / f64::from(series)
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let rounds: usize = std::env::var("DETECTOR_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(7);
    let traces = traces();
    let all: Vec<&[Sample]> = traces
        .iter()
        .map(|(_, samples)| samples.as_slice())
        .collect();
    let count = |set: &[&[Sample]]| set.iter().map(|samples| samples.len()).sum::<usize>() as f64;
    let leaking: Vec<&[Sample]> = traces
        .iter()
        .filter(|(name, _)| name.contains("leak") && !name.contains("noleak"))
        .map(|(_, samples)| samples.as_slice())
        .collect();
    println!(
        "detector: {} traces, {} samples; median of {rounds} rounds, arms alternating",
        all.len(),
        count(&all)
    );
    println!(
        "  {:<34} {:>10} {:>12} {:>12} {:>9} {:>9}",
        "per sample, amortised", "detector", "VecDeque", "OLS slope", "vs ring", "target"
    );
    for (name, set) in [
        ("all traces (healthy and leaking)", &all),
        ("leaking traces only", &leaking),
    ] {
        let [det, ring, ols] = measure(rounds, set);
        let per = |elapsed: Duration| elapsed.as_secs_f64() * 1e9 / count(set);
        println!(
            "  {:<34} {:>7.0} ns {:>9.1} ns {:>9.1} ns {:>8.1}x {:>9}",
            name,
            per(det),
            per(ring),
            per(ols),
            per(det) / per(ring),
            "<= 1000 ns"
        );
    }
    let detector_size = std::mem::size_of::<Detector>();
    let book = book_bytes_per_series(2000);
    println!("  memory per tracked series              bytes     target");
    println!(
        "  {:<34} {:>8} {:>10}",
        "Detector (inline, no heap)", detector_size, "<= 4096"
    );
    println!(
        "  {:<34} {:>8.0} {:>10}",
        "TrendBook, per process series", book, "<= 4096"
    );
}
