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
    model::{Cgroup, OomEvent, Process},
    names::{ContainerName, NameTable},
    snapshot::{AppState, SourceStatus},
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
    /// Number of the published snapshot this answer was built from (`/metrics` says the
    /// same in `guardian_snapshot_tick`).
    pub tick: u64,
    pub source: SourceStatus,
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
    let snapshot = state.snapshot();
    let model = &snapshot.model;
    let telemetry = &state.telemetry;
    Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        tick: snapshot.tick,
        source: SourceStatus::clone(&snapshot.status),
        dry_run: snapshot.config.daemon.dry_run,
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        data_age_seconds: snapshot.staleness().as_secs_f64(),
        fresh: snapshot.is_fresh(),
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
    let snapshot = state.snapshot();
    let model = &snapshot.model;
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
    let names = state.names.current();
    // A process serializes its command line redacted, as one string.
    let list: Vec<serde_json::Value> = list
        .into_iter()
        .map(|process| {
            with_container(
                serde_json::to_value(process).unwrap_or_default(),
                &names,
                &process.class,
            )
        })
        .collect();
    Json(list).into_response()
}

/// Adds `container`: what the runtime calls the container `class` names, when known.
fn with_container(
    mut value: serde_json::Value,
    names: &NameTable,
    class: &crate::classify::Classification,
) -> serde_json::Value {
    if let (Some(object), Some(name)) = (value.as_object_mut(), names.of(class)) {
        object.insert(
            "container".into(),
            serde_json::to_value(&**name).unwrap_or_default(),
        );
    }
    value
}

/// `GET /api/v1/containers`: every container the runtimes named, by id.
pub async fn containers(State(state): State<Arc<AppState>>) -> Response {
    let names = state.names.current();
    let list: std::collections::BTreeMap<&String, &ContainerName> =
        names.iter().map(|(id, name)| (id, &**name)).collect();
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
    let snapshot = state.snapshot();
    let model = &snapshot.model;
    let mut list: Vec<&Cgroup> = model.cgroups().collect();
    list.sort_unstable_by(|a, b| {
        b.stats
            .usage
            .cmp(&a.stats.usage)
            .then_with(|| a.path.cmp(&b.path))
    });
    list.truncate(query.limit.unwrap_or(DEFAULT_LIMIT));
    let names = state.names.current();
    let list: Vec<serde_json::Value> = list
        .into_iter()
        .map(|cgroup| {
            with_container(
                serde_json::to_value(cgroup).unwrap_or_default(),
                &names,
                &cgroup.class,
            )
        })
        .collect();
    Json(list).into_response()
}

/// `GET /api/v1/oom-events?limit=N`: OOM kills seen, oldest first (the newest N).
pub async fn oom_events(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Response {
    let snapshot = state.snapshot();
    let model = &snapshot.model;
    let all: Vec<&OomEvent> = model.oom_events().collect();
    let skip = all
        .len()
        .saturating_sub(query.limit.unwrap_or(crate::model::OOM_HISTORY));
    Json(&all[skip..]).into_response()
}

/// `GET /api/v1/kills`: the kill ledger (decisions since start, write failures, the last
/// kill, counts by rule and outcome, the newest 256 reports, oldest first).
pub async fn kills(State(state): State<Arc<AppState>>) -> Json<Arc<crate::policy::Ledger>> {
    Json(Arc::clone(&state.snapshot().ledger))
}

/// Query of `/api/v1/trends`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendQuery {
    pub limit: Option<usize>,
    /// Only series with this verdict ("leak", "growing", "stable", "warming-up").
    pub verdict: Option<String>,
    /// Only series whose limit is (true) or is not (false) imminent.
    pub imminent: Option<bool>,
}

/// `GET /api/v1/trends?limit=N&verdict=leak&imminent=true`: the leak detector's reports,
/// imminent ones first, then leaks, then growing series, each by time to limit.
pub async fn trends(
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<TrendQuery>,
) -> Response {
    let snapshot = state.snapshot();
    let list: Vec<&crate::trends::TrendReport> = snapshot
        .trends
        .iter()
        .filter(|report| {
            query
                .verdict
                .as_deref()
                .is_none_or(|verdict| report.verdict.as_str() == verdict)
                && query
                    .imminent
                    .is_none_or(|imminent| report.imminent == imminent)
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
