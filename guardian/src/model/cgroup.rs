//! A memory cgroup as the model knows it, on v1 or v2.

use serde::Serialize;

/// A memory limit: a number of bytes or none ("max" on v2, the huge page-rounded
/// default on v1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Limit {
    #[default]
    Max,
    Bytes(u64),
}

impl Limit {
    pub fn bytes(self) -> Option<u64> {
        match self {
            Limit::Max => None,
            Limit::Bytes(bytes) => Some(bytes),
        }
    }
}

/// Pressure stall information for memory (`memory.pressure` or `/proc/pressure/memory`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Pressure {
    pub some_avg10: f64,
    pub some_avg60: f64,
    pub full_avg10: f64,
    pub full_avg60: f64,
    /// Cumulative stall time in microseconds (`some total=`).
    pub some_total_us: u64,
    pub full_total_us: u64,
}

/// Memory figures of one cgroup.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CgroupStats {
    pub usage: u64,
    pub limit: Limit,
    /// v2 `memory.high` (v1: soft limit).
    pub high: Limit,
    pub anon: u64,
    pub file: u64,
    /// Page cache the kernel reclaims first (v2 `inactive_file`, v1 `total_inactive_file`).
    pub inactive_file: u64,
    /// Times the cgroup hit its limit and ran the OOM killer (v2 `oom`; v1: 0, it has no
    /// such count).
    pub oom: u64,
    /// Processes the OOM killer killed in this cgroup (v2 `oom_kill`, v1 `oom_kill`).
    pub oom_kill: u64,
    pub pressure: Option<Pressure>,
}

impl CgroupStats {
    /// Usage minus inactive page cache, floored at 0: what the kubelet evicts on and
    /// cAdvisor reports as `container_memory_working_set_bytes`, so container alerts
    /// do not fire for cache the kernel would drop before an OOM kill.
    pub fn working_set(&self) -> u64 {
        self.usage.saturating_sub(self.inactive_file)
    }
}

/// One cgroup, keyed by its path in the memory hierarchy ("/docker/<id>").
#[derive(Clone, Debug, Serialize)]
pub struct Cgroup {
    pub path: String,
    pub stats: CgroupStats,
    pub class: crate::classify::Classification,
}
