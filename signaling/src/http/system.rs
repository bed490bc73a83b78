//! System endpoints: health, metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// Whether the server can do its work.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    #[schema(example = "ok")]
    pub status: &'static str,
    pub version: &'static str,
    pub database: DatabaseHealth,
    pub relay: RelayHealth,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    #[schema(example = "sqlite")]
    pub backend: &'static str,
    pub ok: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelayHealth {
    pub running: bool,
    /// The UDP address media arrives on.
    #[schema(example = "127.0.0.1:7900")]
    pub udp_addr: String,
    pub rooms: u64,
    pub participants: u64,
}

/// Ready when the database answers and the in-process relay runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database or relay not working", body = Health),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database_ok = state.store.ping().await;
    let relay = state.relay.status();
    let relay_running = state.relay.is_running() && relay.is_some();
    let ok = database_ok && relay_running;
    let health = Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseHealth { backend: state.store.backend(), ok: database_ok },
        relay: RelayHealth {
            running: relay_running,
            udp_addr: relay.as_ref().map(|r| r.udp_addr.to_string()).unwrap_or_default(),
            rooms: relay.as_ref().map_or(0, |r| r.rooms),
            participants: relay.as_ref().map_or(0, |r| r.participants),
        },
    };
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(health))
}

/// Counters and histograms in the Prometheus/OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((status = 200, description = "Metrics text", content_type = "application/openmetrics-text", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
}
