//! OOM kills the guardian saw, from the kernel's tracepoint or from cgroup counters.

use serde::Serialize;

/// Whether the OOM killer ran because a cgroup hit its limit or the whole host ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OomScope {
    Cgroup,
    Host,
}

impl OomScope {
    pub fn as_str(self) -> &'static str {
        match self {
            OomScope::Cgroup => "cgroup",
            OomScope::Host => "host",
        }
    }
}

/// Which source reported the OOM kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OomOrigin {
    /// `oom:mark_victim`, with the victim's details from the kernel.
    Tracepoint,
    /// An `oom_kill` counter of a cgroup went up (procfs mode).
    CgroupCounter,
    /// The kernel log named the victim (procfs mode, `/dev/kmsg`).
    KernelLog,
}

/// One OOM kill.
#[derive(Clone, Debug, Serialize)]
pub struct OomEvent {
    /// RFC 3339 UTC time the guardian learnt of it.
    pub time: String,
    pub unix_time: f64,
    /// The victim, when known (counters alone do not always name it).
    pub pid: Option<i32>,
    pub comm: Option<String>,
    pub uid: Option<u32>,
    /// The victim's memory cgroup path, when known.
    pub cgroup: Option<String>,
    pub scope: OomScope,
    pub anon_rss_bytes: Option<u64>,
    pub file_rss_bytes: Option<u64>,
    pub shmem_rss_bytes: Option<u64>,
    pub oom_score_adj: Option<i32>,
    pub origin: OomOrigin,
    /// When the kernel chose the victim (CLOCK_BOOTTIME ns), from the tracepoint: with
    /// the time the API shows the event, the pipeline's latency.
    pub kernel_boot_ns: Option<u64>,
}

impl OomEvent {
    /// An OOM kill learnt of now, nothing known of its victim yet: sources fill in what
    /// they know.
    pub fn now(scope: OomScope, origin: OomOrigin) -> OomEvent {
        let now = time::OffsetDateTime::now_utc();
        OomEvent {
            time: now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            unix_time: now.unix_timestamp_nanos() as f64 / 1e9,
            pid: None,
            comm: None,
            uid: None,
            cgroup: None,
            scope,
            anon_rss_bytes: None,
            file_rss_bytes: None,
            shmem_rss_bytes: None,
            oom_score_adj: None,
            origin,
            kernel_boot_ns: None,
        }
    }
}
