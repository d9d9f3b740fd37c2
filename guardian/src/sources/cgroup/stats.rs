//! One cgroup's memory figures, from v2 or v1 files.

use std::{
    io,
    path::{Path, PathBuf},
};

use crate::{
    model::{CgroupStats, Limit},
    sources::kernfs::{self, cgroup::limit_v1, proc::pressure as parse_pressure},
};

use super::{CgroupError, Hierarchy};

/// Reads the cgroup at `dir`. `None` when it is gone, or is no memory cgroup (a v2
/// cgroup whose parent does not enable memory). The v2 root has no `memory.current`,
/// `memory.max` or `memory.events`: its usage is the sum of its `memory.stat` counters.
pub fn read(
    hierarchy: Hierarchy,
    dir: &Path,
    is_root: bool,
) -> Result<Option<CgroupStats>, CgroupError> {
    match hierarchy {
        Hierarchy::V2 => read_v2(dir, is_root),
        Hierarchy::V1 => read_v1(dir),
    }
}

fn read_v2(dir: &Path, is_root: bool) -> Result<Option<CgroupStats>, CgroupError> {
    let current = read_file(dir, "memory.current")?;
    if current.is_none() && !is_root {
        return Ok(None);
    }
    let Some(stat) = read_file(dir, "memory.stat")? else {
        return Ok(None);
    };
    let stat = Keyed::new(dir, "memory.stat", &stat);
    let mut stats = CgroupStats {
        anon: stat.get("anon")?.unwrap_or(0),
        file: stat.get("file")?.unwrap_or(0),
        inactive_file: stat.get("inactive_file")?.unwrap_or(0),
        pressure: read_file(dir, "memory.pressure")?.and_then(|text| parse_pressure(&text)),
        ..CgroupStats::default()
    };
    let Some(current) = current else {
        // The root: memory.current is what these add up to.
        let kernel = stat.get("kernel")?.unwrap_or(0);
        let sock = stat.get("sock")?.unwrap_or(0);
        stats.usage = stats.anon + stats.file + kernel + sock;
        return Ok(Some(stats));
    };
    stats.usage = number(dir, "memory.current", &current)?;
    let (Some(max), Some(high), Some(events)) = (
        read_file(dir, "memory.max")?,
        read_file(dir, "memory.high")?,
        read_file(dir, "memory.events")?,
    ) else {
        return Ok(None);
    };
    stats.limit = limit_v2(dir, "memory.max", &max)?;
    stats.high = limit_v2(dir, "memory.high", &high)?;
    let events = Keyed::new(dir, "memory.events", &events);
    stats.oom = events.get("oom")?.unwrap_or(0);
    stats.oom_kill = events.get("oom_kill")?.unwrap_or(0);
    Ok(Some(stats))
}

fn read_v1(dir: &Path) -> Result<Option<CgroupStats>, CgroupError> {
    let (Some(usage), Some(limit), Some(soft), Some(stat)) = (
        read_file(dir, "memory.usage_in_bytes")?,
        read_file(dir, "memory.limit_in_bytes")?,
        read_file(dir, "memory.soft_limit_in_bytes")?,
        read_file(dir, "memory.stat")?,
    ) else {
        return Ok(None);
    };
    let stat = Keyed::new(dir, "memory.stat", &stat);
    // total_* count the whole subtree, as usage_in_bytes does.
    let anon = match stat.get("total_rss")? {
        Some(value) => value,
        None => stat.get("rss")?.unwrap_or(0),
    };
    let file = match stat.get("total_cache")? {
        Some(value) => value,
        None => stat.get("cache")?.unwrap_or(0),
    };
    let inactive_file = match stat.get("total_inactive_file")? {
        Some(value) => value,
        None => stat.get("inactive_file")?.unwrap_or(0),
    };
    // `oom_kill` appeared in memory.oom_control in kernel 4.13.
    let oom_kill = match read_file(dir, "memory.oom_control")? {
        Some(text) => Keyed::new(dir, "memory.oom_control", &text)
            .get("oom_kill")?
            .unwrap_or(0),
        None => 0,
    };
    Ok(Some(CgroupStats {
        usage: number(dir, "memory.usage_in_bytes", &usage)?,
        limit: limit_v1(number(dir, "memory.limit_in_bytes", &limit)?),
        high: limit_v1(number(dir, "memory.soft_limit_in_bytes", &soft)?),
        anon,
        file,
        inactive_file,
        // v1 has no count of limit hits that ran the OOM killer.
        oom: 0,
        oom_kill,
        pressure: read_file(dir, "memory.pressure")?.and_then(|text| parse_pressure(&text)),
    }))
}

fn limit_v2(dir: &Path, name: &str, text: &str) -> Result<Limit, CgroupError> {
    kernfs::cgroup::limit_v2(text).ok_or_else(|| parse_error(dir, name, text))
}

/// A file of `key value` lines (memory.stat, memory.events, memory.oom_control).
struct Keyed<'a> {
    dir: &'a Path,
    name: &'static str,
    text: &'a str,
}

impl<'a> Keyed<'a> {
    fn new(dir: &'a Path, name: &'static str, text: &'a str) -> Self {
        Keyed { dir, name, text }
    }

    fn get(&self, key: &str) -> Result<Option<u64>, CgroupError> {
        let Some(value) = kernfs::cgroup::keyed(self.text, key) else {
            return Ok(None);
        };
        number(self.dir, self.name, value).map(Some)
    }
}

fn number(dir: &Path, name: &str, text: &str) -> Result<u64, CgroupError> {
    kernfs::cgroup::number(text).ok_or_else(|| parse_error(dir, name, text))
}

fn parse_error(dir: &Path, name: &str, text: &str) -> CgroupError {
    CgroupError::Parse {
        path: dir.join(name),
        value: text.trim().to_string(),
    }
}

/// Reads one file of a cgroup; `None` when it (or the cgroup) is gone: ENOENT, or
/// ENODEV when the cgroup was removed between open and read.
fn read_file(dir: &Path, name: &str) -> Result<Option<String>, CgroupError> {
    let path: PathBuf = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(error)
            if error.kind() == io::ErrorKind::NotFound
                || error.raw_os_error() == Some(libc::ENODEV) =>
        {
            Ok(None)
        }
        Err(source) => Err(CgroupError::Io {
            op: "read",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_no_limit_values_are_max() {
        assert_eq!(limit_v1(9_223_372_036_854_771_712), Limit::Max);
        assert_eq!(limit_v1(9_223_372_036_854_710_272), Limit::Max); // 64 KiB pages
        assert_eq!(limit_v1(u64::MAX), Limit::Max);
        assert_eq!(limit_v1(52_428_800), Limit::Bytes(52_428_800));
    }

    #[test]
    fn v2_max_is_max() {
        let dir = Path::new("/x");
        assert_eq!(limit_v2(dir, "memory.max", "max\n").ok(), Some(Limit::Max));
        assert_eq!(
            limit_v2(dir, "memory.max", "1048576\n").ok(),
            Some(Limit::Bytes(1 << 20))
        );
        let error = limit_v2(dir, "memory.max", "lots").expect_err("not a number");
        assert!(error.to_string().contains("/x/memory.max"), "{error}");
    }

    #[test]
    fn keyed_files_find_exact_keys() {
        let dir = Path::new("/x");
        let text = "total_rss_huge 5\ntotal_rss 7\nrss 3\n";
        let keyed = Keyed::new(dir, "memory.stat", text);
        assert_eq!(keyed.get("total_rss").ok(), Some(Some(7)));
        assert_eq!(keyed.get("rss").ok(), Some(Some(3)));
        assert_eq!(keyed.get("cache").ok(), Some(None));
    }
}
