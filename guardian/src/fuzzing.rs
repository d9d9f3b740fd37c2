//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`, and unit
//! tests): every parser that reads input the guardian does not control, each fed
//! arbitrary bytes the way the daemon or a command would feed it. A target passes when
//! nothing panics, overflows or hangs; results are used only so the work is not
//! optimized away. The unit test below replays the committed corpus (seeds and every
//! input that once crashed) through the same entry points on the stable toolchain.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use crate::{
    audit, classify,
    config::Config,
    model::Pressure,
    redact,
    sources::{
        cgroup::{Hierarchy, memory_line, stats},
        kernfs::proc as parse,
    },
    trends,
};

/// The ring buffer record decoder, built here also without the `ebpf` feature (it needs
/// only the shared `#[repr(C)]` types).
#[cfg(not(feature = "ebpf"))]
#[path = "sources/ebpf/decode.rs"]
mod decode;
#[cfg(feature = "ebpf")]
use crate::sources::ebpf::decode;

/// `/proc/PID/stat`.
pub fn proc_stat(data: &[u8]) -> bool {
    parse::stat(data).is_some_and(|stat| stat.kernel_thread() || stat.comm.len() < 64)
}

/// `/proc/PID/status`.
pub fn proc_status(data: &[u8]) -> bool {
    parse::status(data).is_some()
}

/// `/proc/PID/cmdline`, then both redactions the outputs apply to it.
pub fn proc_cmdline(data: &[u8]) -> usize {
    let cmdline = parse::cmdline(data);
    let argv = cmdline.to_vec();
    let redacted = redact::redact_argv(&argv);
    redacted.len() + redact::redact_cmdline(&argv.join("\0")).len()
}

/// `/proc/PID/cgroup`, the memory line, and the container classification of every path.
pub fn proc_cgroup(data: &[u8]) -> usize {
    let Some(lines) = parse::cgroup(data) else {
        return 0;
    };
    let memory = memory_line(&lines).map_or(0, |line| line.path.len());
    let kinds: usize = lines
        .iter()
        .map(|line| classify::classify_path(&line.path).kind().len())
        .sum();
    memory + kinds + classify::classify(&lines).kind().len()
}

/// The small /proc files: `meminfo`, `oom_score_adj`, `pressure/memory`, a number.
pub fn proc_small(data: &[u8]) -> u64 {
    let meminfo = parse::meminfo(data).map_or(0, |info| info.total);
    let adj = parse::oom_score_adj(data).map_or(0, |adj| adj.unsigned_abs().into());
    let pressure = pressure(data).map_or(0, |p| p.some_total_us);
    meminfo ^ adj ^ pressure ^ parse::uint(data).unwrap_or(0)
}

fn pressure(data: &[u8]) -> Option<Pressure> {
    parse::pressure(std::str::from_utf8(data).ok()?)
}

/// One cgroup directory's memory files (v1 or v2, by the first byte), the rest of the
/// input split on NUL into the files' contents in a fixed order; a missing part is a
/// missing file. Written to a scratch directory and read the way the daemon reads them.
pub fn cgroup_files(data: &[u8]) -> bool {
    const V2: [&str; 6] = [
        "memory.current",
        "memory.stat",
        "memory.pressure",
        "memory.max",
        "memory.high",
        "memory.events",
    ];
    const V1: [&str; 6] = [
        "memory.usage_in_bytes",
        "memory.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.stat",
        "memory.oom_control",
        "memory.pressure",
    ];
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let (hierarchy, names) = if mode & 1 == 0 {
        (Hierarchy::V2, V2)
    } else {
        (Hierarchy::V1, V1)
    };
    let dir = scratch_dir().join("cgroup");
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    for (name, content) in names.iter().zip(rest.split(|&b| b == 0)) {
        if std::fs::write(dir.join(name), content).is_err() {
            return false;
        }
    }
    stats::read(hierarchy, &dir, mode & 2 != 0).is_ok_and(|stats| stats.is_some())
}

/// `/dev/kmsg` records (one per line), through the OOM victim parser.
pub fn kmsg(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let mut parser = crate::sources::kmsg::VictimParser::default();
    text.lines()
        .filter_map(|record| parser.record(record))
        .map(|victim| victim.comm.len())
        .sum()
}

/// One ring buffer record, as the reader hands it to the decoder.
pub fn ring_record(data: &[u8]) -> bool {
    decode::decode(data).is_some()
}

/// The config file (`guardian check-config`, a reload).
pub fn config(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    match Config::parse(Path::new("fuzz.toml"), &text) {
        Ok(config) => config.rules.len() + config.orphan_rules.len(),
        Err(error) => error.to_string().len(),
    }
}

/// A hostile kill log, through `guardian audit verify` and `guardian audit list`.
pub fn kill_log(data: &[u8]) -> usize {
    let path = scratch_dir().join("kills.jsonl");
    let written = std::fs::File::create(&path).and_then(|mut file| file.write_all(data));
    if written.is_err() {
        return 0;
    }
    let files = [path];
    let verified = match audit::verify(&files) {
        Ok(report) => usize::from(report.is_ok()) + report.to_string().len(),
        Err(error) => error.to_string().len(),
    };
    let listed = match audit::list::read_decisions(&files) {
        Ok(listing) => {
            let decisions: Vec<_> = listing.decisions.iter().collect();
            audit::list::format_table(&decisions).len() + listing.skipped.len()
        }
        Err(error) => error.to_string().len(),
    };
    verified + listed
}

/// A trend CSV (`guardian trend --csv`, `cargo xtask eval-trends`), replayed through the
/// detector when it parses (bounded, so one input cannot take minutes).
pub fn trend_csv(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    match trends::parse_trace(Path::new("fuzz.csv"), &text) {
        Ok(samples) => {
            let samples = &samples[..samples.len().min(20_000)];
            let limit = samples.last().map(|sample| sample.bytes);
            trends::replay(samples, &trends::Params::default(), limit)
                .changes
                .len()
        }
        Err(error) => error.to_string().len(),
    }
}

/// Redaction of a command line as one string and as NUL-separated arguments.
pub fn redaction(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<&str> = text.split('\0').collect();
    redact::redact_cmdline(&text).len() + redact::redact_argv(&argv).len()
}

/// A private directory for the file-based targets (tmpfs when there is one).
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("guardian-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

#[cfg(test)]
mod tests {
    type Target = fn(&[u8]);

    /// Every target by its fuzz/ name.
    fn targets() -> Vec<(&'static str, Target)> {
        vec![
            ("proc_stat", |data| {
                std::hint::black_box(super::proc_stat(data));
            }),
            ("proc_status", |data| {
                std::hint::black_box(super::proc_status(data));
            }),
            ("proc_cmdline", |data| {
                std::hint::black_box(super::proc_cmdline(data));
            }),
            ("proc_cgroup", |data| {
                std::hint::black_box(super::proc_cgroup(data));
            }),
            ("proc_small", |data| {
                std::hint::black_box(super::proc_small(data));
            }),
            ("cgroup_files", |data| {
                std::hint::black_box(super::cgroup_files(data));
            }),
            ("kmsg", |data| {
                std::hint::black_box(super::kmsg(data));
            }),
            ("ring_record", |data| {
                std::hint::black_box(super::ring_record(data));
            }),
            ("config", |data| {
                std::hint::black_box(super::config(data));
            }),
            ("kill_log", |data| {
                std::hint::black_box(super::kill_log(data));
            }),
            ("trend_csv", |data| {
                std::hint::black_box(super::trend_csv(data));
            }),
            ("redaction", |data| {
                std::hint::black_box(super::redaction(data));
            }),
        ]
    }

    #[test]
    fn the_committed_corpus_replays_without_a_panic() {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (name, target) in targets() {
            let dir = corpus.join(name);
            let inputs: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect();
            assert!(!inputs.is_empty(), "no seed inputs in {}", dir.display());
            for input in inputs {
                let data = std::fs::read(&input).expect("read corpus input");
                target(&data);
            }
        }
    }
}
