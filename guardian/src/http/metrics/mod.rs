//! `/metrics`: the guardian's Prometheus exposition, built from the model at scrape time
//! by one custom collector (no per-series state to keep in sync, so a process that exits
//! is simply absent from the next scrape). OpenMetrics text, or the classic 0.0.4 text
//! format when the scraper prefers `text/plain`.

mod cgroups;
mod containers;
mod exposition;
mod families;
mod hooks;
mod host;
mod kills;
mod labels;
mod own_process;
mod pressure;
mod processes;
mod self_metrics;
#[cfg(test)]
mod tests;
mod trends;

use std::{collections::HashSet, fmt, sync::Arc};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use prometheus_client::{
    collector::Collector, encoding::DescriptorEncoder, encoding::text::encode, registry::Registry,
};

pub use exposition::Format;

use crate::{
    model::ProcessKey,
    snapshot::AppState,
    trends::{Subject, TrendReport, Verdict},
};
use processes::TrackedRow;

/// GET /metrics.
pub async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    match render(&state, format) {
        Ok(body) => ([(header::CONTENT_TYPE, format.content_type())], body).into_response(),
        Err(fmt::Error) => {
            tracing::error!("encoding metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}

/// The whole exposition in `format`, from the state as it is now.
pub fn render(state: &Arc<AppState>, format: Format) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StateCollector(Arc::clone(state))));
    registry.register_collector(Box::new(own_process::OwnProcessCollector));
    let mut body = String::with_capacity(64 * 1024);
    encode(&mut body, &registry)?;
    Ok(match format {
        Format::OpenMetrics => body,
        Format::Text => exposition::to_classic(&body),
    })
}

/// Reads one published snapshot on every scrape (and the counters since start).
#[derive(Debug)]
struct StateCollector(Arc<AppState>);

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let state = &*self.0;
        let snapshot = state.snapshot();
        let config = &snapshot.config;
        let model = &*snapshot.model;
        let reports: Vec<&TrendReport> = snapshot
            .trends
            .iter()
            .filter(|report| trends::exported(report))
            .collect();
        self_metrics::encode(state, &snapshot, &mut encoder)?;
        host::encode(model, &mut encoder)?;
        let cgroups = cgroups::select(model, config.metrics.max_cgroups);
        cgroups::encode(&cgroups, &mut encoder)?;
        containers::encode(&cgroups, &state.names, &mut encoder)?;

        let tracked_rows: Vec<TrackedRow<'_>> = snapshot
            .tracked
            .iter()
            .filter_map(|tracked| {
                Some(TrackedRow {
                    process: model.process(&tracked.key)?,
                    rule: &tracked.rule,
                    threshold: tracked.threshold_bytes,
                })
            })
            .collect();
        let leaking = reports.iter().filter_map(|report| match report.subject {
            Subject::Process {
                pid, start_ticks, ..
            } if report.verdict == Verdict::Leak || report.imminent => {
                Some(ProcessKey { pid, start_ticks })
            }
            _ => None,
        });
        let always: HashSet<ProcessKey> = tracked_rows
            .iter()
            .map(|row| row.process.key)
            .chain(leaking)
            .collect();
        let processes = processes::select(model, config.metrics.top_processes, &always);
        processes::encode(&processes, &mut encoder)?;
        processes::encode_tracked(&tracked_rows, &mut encoder)?;
        trends::encode(&reports, model, &mut encoder)?;
        pressure::encode(&snapshot.pressure, &mut encoder)?;
        hooks::encode(&state.telemetry.hooks, &mut encoder)?;
        kills::encode(config, &snapshot.thresholds, &snapshot.ledger, &mut encoder)
    }
}
