//! `/metrics`: the guardian's Prometheus exposition.

use std::sync::Arc;

use axum::{extract::State, http::header, response::IntoResponse};
use prometheus_client::{
    encoding::text::encode,
    metrics::{gauge::Gauge, info::Info},
    registry::Registry,
};

use crate::daemon::AppState;

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let mut registry = Registry::with_prefix("guardian");
    registry.register(
        "build",
        "guardian version",
        Info::new(vec![("version".to_string(), env!("CARGO_PKG_VERSION").to_string())]),
    );
    let processes = Gauge::<i64>::default();
    if let Ok(model) = state.model.read() {
        processes.set(model.process_count() as i64);
    }
    registry.register("processes", "Processes in the model", processes);
    let mut body = String::new();
    if let Err(error) = encode(&mut body, &registry) {
        tracing::error!(%error, "encoding metrics");
    }
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        body,
    )
}
