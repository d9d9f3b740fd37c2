//! HTTP on loopback: `/metrics`, `/healthz` and the JSON API under `/api/v1/`.

mod api;
pub mod metrics;
#[cfg(test)]
mod tests;

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::snapshot::AppState;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds `addr` and serves until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, HttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %local, "listening");
    let app = router(state);
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "HTTP server failed");
        }
    }))
}

/// Every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/processes", get(api::processes))
        .route("/api/v1/cgroups", get(api::cgroups))
        .route("/api/v1/containers", get(api::containers))
        .route("/api/v1/oom-events", get(api::oom_events))
        .route("/api/v1/kills", get(api::kills))
        .route("/api/v1/trends", get(api::trends))
        .with_state(state)
}

/// 200 while the pipeline delivers fresh data, 503 once it is stale.
async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let snapshot = state.snapshot();
    let staleness = snapshot.staleness();
    if snapshot.is_fresh() {
        (StatusCode::OK, "ok\n".to_string())
    } else if !snapshot.has_data() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: the first scan is not done yet\n".to_string(),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stale: no fresh data for {:.1}s\n", staleness.as_secs_f64()),
        )
    }
}
