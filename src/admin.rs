//! The admin HTTP endpoint: `/metrics`, `/healthz`, `/readyz`, `/status`.
//!
//! It takes an already bound listener so the bind address (default `127.0.0.1:9464`) stays in
//! configuration and tests can bind port 0.

use crate::status::StatusRegistry;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;

/// What the admin endpoint serves from.
#[derive(Clone)]
pub struct AdminState {
    pub registry: StatusRegistry,
    pub prometheus: PrometheusHandle,
}

/// The admin routes, for embedding in another server or testing without a socket.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(state)
}

/// Serves the admin endpoint on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin endpoint listening");
    }
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

async fn metrics(State(state): State<AdminState>) -> Response {
    // Fold pending histogram samples in first so a scrape sees every invocation so far, not
    // only those up to the background upkeep's last run.
    state.prometheus.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.prometheus.render()).into_response()
}

/// Liveness: answering at all is the signal.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: every mapping has started its workers.
async fn readyz(State(state): State<AdminState>) -> Response {
    if state.registry.ready() {
        return (StatusCode::OK, "ready").into_response();
    }
    // Name the laggards so whoever looks at a failing probe knows where to look.
    let not_started: Vec<String> =
        state.registry.snapshot().into_iter().filter(|(_, m)| !m.started).map(|(name, _)| name).collect();
    (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: mappings not started: {}", not_started.join(", ")))
        .into_response()
}

async fn status(State(state): State<AdminState>) -> Response {
    match serde_json::to_string_pretty(&state.registry.snapshot()) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("status: {e}")).into_response(),
    }
}
