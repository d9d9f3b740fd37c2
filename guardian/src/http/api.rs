//! The JSON API under `/api/v1/`: what the guardian sees, for people and scripts.

use std::{cmp::Reverse, sync::Arc, sync::atomic::Ordering};

use axum::{
    Json,
    extract::{FromRequestParts, Query, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::{
    daemon::AppState,
    model::{Cgroup, OomEvent, Process},
};

/// A query string that, when malformed, answers 400 with a JSON error naming the
/// problem (axum's own rejection is plain text).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| ApiQuery(query))
            .map_err(|rejection| bad_request(rejection.body_text()))
    }
}

/// Most entries a list returns when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// `GET /api/v1/status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub source: crate::daemon::SourceStatus,
    pub dry_run: bool,
    pub uptime_seconds: f64,
    /// Seconds since the model last took fresh data.
    pub data_age_seconds: f64,
    /// False when the pipeline is stale (/healthz then fails).
    pub fresh: bool,
    pub processes: usize,
    pub cgroups: usize,
    pub oom_events: usize,
    pub scans: u64,
    pub events_received: u64,
    pub events_lost_kernel: u64,
    pub events_lost_user: u64,
    pub host: crate::model::HostMemory,
}

pub async fn status(State(state): State<Arc<AppState>>) -> Json<Status> {
    let model = state
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let telemetry = &state.telemetry;
    let staleness = state.staleness();
    Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        source: state
            .status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        dry_run: state.config().daemon.dry_run,
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        data_age_seconds: staleness.as_secs_f64(),
        fresh: state.is_fresh(),
        processes: model.process_count(),
        cgroups: model.cgroups().count(),
        oom_events: model.oom_totals().values().sum::<u64>() as usize,
        scans: telemetry.scans_total.get(),
        events_received: telemetry.events_received_total.get(),
        events_lost_kernel: telemetry.events_lost_kernel.load(Ordering::Relaxed),
        events_lost_user: telemetry.events_lost_user.load(Ordering::Relaxed),
        host: model.host,
    })
}

/// How `/api/v1/processes` orders its list (always largest or highest first).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProcessSort {
    #[default]
    Rss,
    Anon,
    File,
    Shmem,
    Swap,
    Pid,
}

/// Query of `/api/v1/processes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessQuery {
    pub limit: Option<usize>,
    #[serde(default)]
    pub sort: ProcessSort,
    /// Only this pid.
    pub pid: Option<i32>,
    /// Only processes with this exact command name.
    pub comm: Option<String>,
    /// Only processes whose memory cgroup is this path.
    pub cgroup: Option<String>,
}

/// `GET /api/v1/processes?limit=N&sort=rss|anon|file|shmem|swap|pid&pid=&comm=&cgroup=`:
/// processes, largest first (kernel threads left out).
pub async fn processes(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<ProcessQuery>,
) -> Response {
    let model = state
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut list: Vec<&Process> = model
        .processes()
        .filter(|process| !process.kernel_thread)
        .filter(|process| query.pid.is_none_or(|pid| process.key.pid == pid))
        .filter(|process| {
            query
                .comm
                .as_deref()
                .is_none_or(|comm| process.comm == comm)
        })
        .filter(|process| {
            query
                .cgroup
                .as_deref()
                .is_none_or(|cgroup| process.memory_cgroup.as_deref() == Some(cgroup))
        })
        .collect();
    let key = |process: &Process| match query.sort {
        ProcessSort::Rss => process.memory.rss,
        ProcessSort::Anon => process.memory.anon,
        ProcessSort::File => process.memory.file,
        ProcessSort::Shmem => process.memory.shmem,
        ProcessSort::Swap => process.memory.swap,
        ProcessSort::Pid => process.key.pid as u64,
    };
    list.sort_unstable_by_key(|process| (Reverse(key(process)), process.key));
    list.truncate(query.limit.unwrap_or(DEFAULT_LIMIT));
    // A process serializes its command line redacted, as one string.
    Json(list).into_response()
}

/// Query of the other lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<usize>,
}

/// `GET /api/v1/cgroups?limit=N`: memory cgroups, largest usage first.
pub async fn cgroups(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Response {
    let model = state
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut list: Vec<&Cgroup> = model.cgroups().collect();
    list.sort_unstable_by(|a, b| {
        b.stats
            .usage
            .cmp(&a.stats.usage)
            .then_with(|| a.path.cmp(&b.path))
    });
    list.truncate(query.limit.unwrap_or(DEFAULT_LIMIT));
    Json(list).into_response()
}

/// `GET /api/v1/oom-events?limit=N`: OOM kills seen, oldest first (the newest N).
pub async fn oom_events(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Response {
    let model = state
        .model
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let all: Vec<&OomEvent> = model.oom_events().collect();
    let skip = all
        .len()
        .saturating_sub(query.limit.unwrap_or(crate::model::OOM_HISTORY));
    Json(&all[skip..]).into_response()
}

/// `GET /api/v1/kills`: the kill ledger (decisions since start, write failures, the last
/// kill, counts by rule and outcome, the newest 256 reports, oldest first).
pub async fn kills(State(state): State<Arc<AppState>>) -> Json<crate::policy::Ledger> {
    Json(
        state
            .kills
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    )
}

/// Query of `/api/v1/trends`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendQuery {
    pub limit: Option<usize>,
    /// Only series with this verdict ("leak", "growing", "stable", "warming-up").
    pub verdict: Option<String>,
}

/// `GET /api/v1/trends?limit=N&verdict=leak`: the leak detector's reports, leaks first,
/// then growing series, each by time to limit.
pub async fn trends(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<TrendQuery>,
) -> Response {
    let reports = state
        .trends
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let list: Vec<&crate::trends::TrendReport> = reports
        .iter()
        .filter(|report| {
            query
                .verdict
                .as_deref()
                .is_none_or(|verdict| report.verdict.as_str() == verdict)
        })
        .take(query.limit.unwrap_or(DEFAULT_LIMIT))
        .collect();
    Json(list).into_response()
}

/// A 400 with a JSON body naming what is wrong with the request.
fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}
