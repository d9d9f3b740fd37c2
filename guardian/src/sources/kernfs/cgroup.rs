//! Parsers for the cgroupfs text the cgroup reader uses (v2 and v1 memory files), on
//! the text the kernel wrote; the reader names the file in its errors.

use crate::model::Limit;

/// v1 reports "no limit" as the largest page count times the page size: `LONG_MAX`
/// rounded down to a page (9223372036854771712 with 4 KiB pages), or `ULLONG_MAX` before
/// kernel 3.19. Anything within 1 MiB (the largest page size) of `LONG_MAX`, or above,
/// is no limit.
const V1_NO_LIMIT_FROM: u64 = i64::MAX as u64 - (1 << 20);

/// A file holding one number (`memory.current`, `memory.usage_in_bytes`).
pub fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A v2 limit (`memory.max`, `memory.high`): `max` or bytes.
pub fn limit_v2(text: &str) -> Option<Limit> {
    if text.trim() == "max" {
        Some(Limit::Max)
    } else {
        number(text).map(Limit::Bytes)
    }
}

/// A v1 limit in bytes, where values near `LONG_MAX` mean none.
pub fn limit_v1(value: u64) -> Limit {
    if value >= V1_NO_LIMIT_FROM {
        Limit::Max
    } else {
        Limit::Bytes(value)
    }
}

/// The value of `key` in a file of `key value` lines (memory.stat, memory.events,
/// memory.oom_control), as written.
pub fn keyed<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        line.split_once(' ')
            .filter(|(found, _)| *found == key)
            .map(|(_, value)| value)
    })
}

/// Whether a v2 `cgroup.controllers` lists the memory controller.
pub fn has_memory(controllers: &str) -> bool {
    controllers.split_ascii_whitespace().any(|c| c == "memory")
}
