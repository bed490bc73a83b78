//! Relay nodes registering themselves (`media-relay --register-at`): the
//! registration is stored, and every signaling node starts using the node
//! within seconds (`relay::Relays`), reading its capacity and load from its
//! control channel like a configured node's.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;

use super::{ApiError, ApiJson, AppState};
use crate::auth::ClientAddr;
use crate::ids::RegionId;
use crate::store::AuditEntry;
use crate::unix_now;

pub use media_relay::register::Registration as RelayRegistration;

/// The body of a registration, as documented ([`RelayRegistration`] is the
/// type read: media-relay does not depend on the OpenAPI crate).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RelayRegistrationDoc {
    /// Unique among the deployment's relays.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "relay-garze-1")]
    name: String,
    /// The region (id) it serves first; none: anywhere.
    region_id: Option<String>,
    /// Its control channel, on a private network.
    #[schema(
        pattern = "^ws://[^/]+:[0-9]+(/.*)?$",
        max_length = 256,
        example = "ws://10.0.0.5:7901/control"
    )]
    control_url: String,
}

/// Registers (or renews) a relay node; a node does so every 10 s. The bearer
/// token is `relay_registration.token`, also the node's control token. A new
/// node, or one at a new address or in a new region, is written to the audit
/// log (`relay.registered`, `relay.moved`).
#[utoipa::path(
    post,
    path = "/api/relays/register",
    tag = "relays",
    security(("bearer" = [])),
    request_body = RelayRegistrationDoc,
    responses(
        (status = 204, description = "registered; signaling connects to `control_url` within seconds"),
        (status = 400, description = "`invalid_field`: a name, region or URL it cannot use", body = super::ErrorBody),
        (status = 401, description = "not the registration token", body = super::ErrorBody),
        (status = 404, description = "registration is off (no `relay_registration.token`)", body = super::ErrorBody),
        (status = 409, description = "a relay listed in the configuration has this name", body = super::ErrorBody),
    )
)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    node: Result<ApiJson<RelayRegistration>, ApiError>,
) -> Result<StatusCode, ApiError> {
    // Who is asking before anything else: no token is 401 whatever the body.
    let presented = crate::auth::bearer(&headers).ok_or(ApiError::Unauthorized)?;
    let Some(token) = &state.config.relay_registration.token else { return Err(ApiError::NotFound) };
    if !media_relay::control::constant_time_eq(presented.as_bytes(), token.expose_secret().as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    let ApiJson(node) = node?;
    let invalid = |message: String| ApiError::bad_request("invalid_field", message);
    let name_ok = (1..=64).contains(&node.name.len())
        && node.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok {
        return Err(invalid("name: 1 to 64 letters, digits, '-', '_' or '.'".into()));
    }
    let url_ok = node.control_url.len() <= 256
        && node.control_url.strip_prefix("ws://").is_some_and(|rest| {
            let host = rest.split('/').next().unwrap_or("");
            !host.is_empty() && host.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        });
    if !url_ok {
        return Err(invalid("control_url: ws://HOST:PORT/control (on a private network)".into()));
    }
    if let Some(region) = &node.region_id
        && state.store.region(&RegionId::from(region.as_str())).await?.is_none()
    {
        return Err(invalid(format!("region_id: no region {region:?}")));
    }
    if state.config.relay_node_list().iter().any(|n| n.display_name() == node.name) {
        return Err(ApiError::Conflict(format!("a configured relay node is named {:?}", node.name)));
    }
    let detail = serde_json::json!({"control_url": node.control_url, "region_id": node.region_id});
    // Renewals (every 10 s) are not news; a new node, or a move, is audited with the change.
    let audit = AuditEntry::new(&format!("relay:{}", node.name), "", &node.name, detail, &source);
    state
        .store
        .register_relay(&node.name, node.region_id.as_deref(), &node.control_url, unix_now(), &audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
