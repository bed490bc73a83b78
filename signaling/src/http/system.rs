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
    /// Every relay, by name (one, `local`, when the relay runs in this process).
    pub relays: Vec<RelayNodeHealth>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelayNodeHealth {
    pub name: String,
    /// The region it serves first; absent: anywhere.
    pub region: Option<String>,
    /// It answers.
    pub up: bool,
    /// It finishes its calls and takes no new rooms.
    pub draining: bool,
    pub rooms: u64,
    pub max_rooms: u32,
    pub participants: u64,
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
    /// Some relay can take a new room (one answers, is not draining, and is not full).
    pub accepting_rooms: bool,
}

/// Ready when the database answers and a relay answers.
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
    // The relay section describes the first relay that answers; healthy means
    // some relay answers (full or draining ones still carry their calls).
    let relay =
        state.relays.entries().iter().find_map(|r| r.handle.status().filter(|_| r.handle.is_running()));
    let relay_running = relay.is_some();
    let ok = database_ok && relay_running;
    // A node that moved is listed once, at its new address.
    let relays = state
        .relays
        .entries()
        .iter()
        .filter(|r| !r.handle.is_retired())
        .map(|r| {
            let status = r.handle.status();
            RelayNodeHealth {
                name: r.name.clone(),
                region: r.region.clone(),
                up: status.is_some() && r.handle.is_running(),
                draining: status.as_ref().is_some_and(|s| s.draining),
                rooms: status.as_ref().map_or(0, |s| s.rooms),
                max_rooms: status.as_ref().map_or(0, |s| s.max_rooms),
                participants: status.as_ref().map_or(0, |s| s.participants),
            }
        })
        .collect();
    let health = Health {
        status: if ok { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: DatabaseHealth { backend: state.store.backend(), ok: database_ok },
        relay: RelayHealth {
            running: relay_running,
            udp_addr: relay.as_ref().map(|r| r.udp_addr.to_string()).unwrap_or_default(),
            rooms: relay.as_ref().map_or(0, |r| r.rooms),
            participants: relay.as_ref().map_or(0, |r| r.participants),
            accepting_rooms: state.relays.can_place(),
        },
        relays,
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
