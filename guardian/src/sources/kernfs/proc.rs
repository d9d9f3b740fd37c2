//! Parsers for the /proc files the reader uses. They work on the raw bytes the kernel
//! wrote, borrow instead of allocating where they can, and read only the fields needed:
//! a steady-state scan parses one `stat` per process and nothing else.

use crate::{
    classify::CgroupLine,
    model::{Cmdline, MemoryUsage, Pressure},
};

/// `PF_KTHREAD` in the `flags` field of `/proc/PID/stat`.
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/PID/stat` the guardian uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat<'a> {
    /// Raw `comm`, which may hold spaces, parentheses and any other byte.
    pub comm: &'a [u8],
    pub state: u8,
    pub ppid: i32,
    pub flags: u64,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
    /// Field 24: resident pages (anon + file + shmem, as VmRSS).
    pub rss_pages: u64,
}

impl Stat<'_> {
    pub fn kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid ...`. `comm` ends at the *last* `)`,
/// since it may itself contain `) `.
pub fn stat(buf: &[u8]) -> Option<Stat<'_>> {
    let open = buf.iter().position(|&b| b == b'(')?;
    let close = buf.iter().rposition(|&b| b == b')')?;
    let comm = buf.get(open + 1..close)?;
    let rest = buf.get(close + 2..)?;
    let mut fields = rest.split(|&b| b == b' ');
    // Field numbers as in proc(5); `rest` starts at field 3.
    let state = *fields.next()?.first()?;
    let ppid = int(fields.next()?)?;
    let flags = uint(fields.nth(4)?)?; // field 9
    let start_ticks = uint(fields.nth(12)?)?; // field 22
    let rss_pages = uint(fields.nth(1)?)?; // field 24
    Some(Stat {
        comm,
        state,
        ppid: i32::try_from(ppid).ok()?,
        flags,
        start_ticks,
        rss_pages,
    })
}

/// The fields of `/proc/PID/status` the guardian uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Thread-group id: differs from the pid for a thread's `/proc/TID`.
    pub tgid: Option<u32>,
    /// Real uid (first of the four `Uid:` values).
    pub uid: u32,
    pub memory: MemoryUsage,
}

/// Parses `/proc/PID/status`. Processes without an mm (kernel threads, zombies) have no
/// `Vm*`/`Rss*` lines: their memory is zero.
pub fn status(buf: &[u8]) -> Option<Status> {
    let mut out = Status::default();
    let mut uid = None;
    for line in buf.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        let target = match key {
            b"Tgid" => {
                out.tgid = u32::try_from(uint(value.trim_ascii())?).ok();
                continue;
            }
            b"Uid" => {
                let real = value
                    .split(|&b| b == b'\t' || b == b' ')
                    .find(|field| !field.is_empty())?;
                uid = Some(u32::try_from(uint(real)?).ok()?);
                continue;
            }
            b"VmRSS" => &mut out.memory.rss,
            b"RssAnon" => &mut out.memory.anon,
            b"RssFile" => &mut out.memory.file,
            b"RssShmem" => &mut out.memory.shmem,
            b"VmSwap" => {
                out.memory.swap = kib(value)?;
                // The last field the guardian needs.
                break;
            }
            _ => continue,
        };
        *target = kib(value)?;
    }
    out.uid = uid?;
    Some(out)
}

/// `/proc/PID/cmdline`: NUL-separated arguments (a trailing NUL ends the last one).
pub fn cmdline(buf: &[u8]) -> Cmdline {
    Cmdline::from_raw(buf)
}

/// `/proc/PID/cgroup`: `hierarchy-id:controller,list:/path` per line.
pub fn cgroup(buf: &[u8]) -> Option<Vec<CgroupLine>> {
    let text = std::str::from_utf8(buf).ok()?;
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            let path = parts.next()?.to_string();
            Some(CgroupLine {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// `/proc/PID/oom_score_adj`: one signed integer.
pub fn oom_score_adj(buf: &[u8]) -> Option<i32> {
    i32::try_from(int(trim(buf))?).ok()
}

/// The `/proc/meminfo` fields the model keeps, in bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

/// Parses `/proc/meminfo`. `MemTotal` is required; `MemAvailable` (kernel 3.14+) falls
/// back to `MemFree` when missing.
pub fn meminfo(buf: &[u8]) -> Option<MemInfo> {
    let mut total = None;
    let mut available = None;
    let mut free = 0;
    let mut info = MemInfo::default();
    for line in buf.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        match key {
            b"MemTotal" => total = Some(kib(value)?),
            b"MemFree" => free = kib(value)?,
            b"MemAvailable" => available = Some(kib(value)?),
            b"SwapTotal" => info.swap_total = kib(value)?,
            b"SwapFree" => info.swap_free = kib(value)?,
            _ => {}
        }
    }
    info.total = total?;
    info.available = available.unwrap_or(free);
    Some(info)
}

/// Parses a PSI file (`/proc/pressure/memory`, a cgroup's `memory.pressure`):
/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and the same for `full`.
pub fn pressure(text: &str) -> Option<Pressure> {
    let mut out = Pressure::default();
    let mut some_seen = false;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let kind = words.next()?;
        let (mut avg10, mut avg60, mut total) = (None, None, None);
        for word in words {
            match word.split_once('=') {
                Some(("avg10", value)) => avg10 = value.parse::<f64>().ok(),
                Some(("avg60", value)) => avg60 = value.parse::<f64>().ok(),
                Some(("total", value)) => total = value.parse::<u64>().ok(),
                _ => {}
            }
        }
        let (avg10, avg60, total) = (avg10?, avg60?, total?);
        match kind {
            "some" => {
                some_seen = true;
                (out.some_avg10, out.some_avg60, out.some_total_us) = (avg10, avg60, total);
            }
            "full" => (out.full_avg10, out.full_avg60, out.full_total_us) = (avg10, avg60, total),
            _ => {}
        }
    }
    some_seen.then_some(out)
}

/// `  1234 kB` to bytes.
fn kib(value: &[u8]) -> Option<u64> {
    let value = trim(value);
    let digits = value.strip_suffix(b"kB").map(trim).unwrap_or(value);
    uint(digits)?.checked_mul(1024)
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// An unsigned decimal, without allocating.
pub fn uint(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// A signed decimal.
fn int(bytes: &[u8]) -> Option<i64> {
    match bytes.strip_prefix(b"-") {
        Some(digits) => i64::try_from(uint(digits)?).ok().map(|v| -v),
        None => i64::try_from(uint(bytes)?).ok(),
    }
}

#[cfg(test)]
mod tests;
