//! Regions and terminals: coordinators register kiosks in their regions and
//! hand out one-time enrollment codes; a kiosk enrolls and receives its device
//! credential; a stolen kiosk is revoked in one action.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::views::{RegionView, TerminalView};
use super::{ApiError, ApiJson, AppState};
use crate::auth::tokens::TokenKind;
use crate::auth::{ClientAddr, Principal};
use crate::domain::{Language, Role};
use crate::ids::{RegionId, TerminalId};
use crate::password::fingerprint;
use crate::store::{AuditEntry, NewTerminal, RegionRecord};
use crate::unix_now;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRegion {
    /// A stable id, 1 to 64 of a-z, 0-9, `-`.
    #[schema(value_type = String, example = "garze", pattern = "^[a-z0-9-]{1,64}$")]
    pub id: RegionId,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<RegionId>,
    #[schema(max_length = 64, example = "Asia/Shanghai")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTerminal {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub township: String,
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub region_id: RegionId,
    pub languages: Vec<Language>,
}

/// A terminal with a fresh one-time enrollment code. The code is shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TerminalCode {
    pub terminal: TerminalView,
    #[schema(example = "K7QM-3XHD-9PWT")]
    pub enrollment_code: String,
    pub enrollment_expires_at: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    #[schema(max_length = 64, example = "DEMO-TERMINAL-1")]
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollResponse {
    /// The kiosk's bearer credential for the API and the WebSocket. Keep it;
    /// it lasts until the terminal is revoked.
    pub device_token: String,
    pub terminal: TerminalView,
}

/// Regions the caller may see: all for admins, their own for coordinators.
#[utoipa::path(
    get,
    path = "/api/regions",
    tag = "regions",
    security(("bearer" = [])),
    responses((status = 200, body = [RegionView]), (status = 403, body = super::ErrorBody))
)]
pub async fn regions(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<ApiJson<Vec<RegionView>>, ApiError> {
    principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let regions = state.store.regions().await?;
    Ok(ApiJson(regions.iter().filter(|r| principal.manages_region(&r.id)).map(RegionView::from).collect()))
}

/// Creates a region (admins).
#[utoipa::path(
    post,
    path = "/api/regions",
    tag = "regions",
    security(("bearer" = [])),
    request_body = CreateRegion,
    responses((status = 201, body = RegionView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn create_region(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(request): ApiJson<CreateRegion>,
) -> Result<(StatusCode, ApiJson<RegionView>), ApiError> {
    principal.require_any(&[Role::Admin])?;
    let id_ok = (1..=64).contains(&request.id.len())
        && request.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        return Err(ApiError::bad_request("invalid_field", "id: 1 to 64 of a-z, 0-9, '-'"));
    }
    let name = text_field("name", &request.name)?;
    if let Some(parent) = &request.parent_id
        && state.store.region(parent).await?.is_none()
    {
        return Err(ApiError::bad_request("invalid_field", "parent_id: no such region"));
    }
    let time_zone = request.time_zone.unwrap_or_else(|| "Asia/Shanghai".into());
    if time_zone.len() > 64 || jiff::tz::TimeZone::get(&time_zone).is_err() {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("time_zone: {time_zone:?} is not an IANA time zone"),
        ));
    }
    let region = RegionRecord { id: request.id, name, parent_id: request.parent_id, time_zone };
    let audit =
        AuditEntry::new(&principal.actor(), "region.created", &region.id, serde_json::Value::Null, &source);
    state.store.create_region(&region, &audit).await?;
    Ok((StatusCode::CREATED, ApiJson(RegionView::from(&region))))
}

fn text_field(name: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if (1..=200).contains(&value.chars().count()) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::bad_request("invalid_field", format!("{name}: 1 to 200 characters")))
    }
}

#[utoipa::path(
    get,
    path = "/api/regions/{id}/terminals",
    tag = "regions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Region id")),
    responses((status = 200, body = [TerminalView]), (status = 403, body = super::ErrorBody))
)]
pub async fn region_terminals(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<RegionId>,
) -> Result<ApiJson<Vec<TerminalView>>, ApiError> {
    principal.require_region(&id)?;
    let terminals = state.store.terminals_in_region(&id).await?;
    Ok(ApiJson(terminals.iter().map(TerminalView::from).collect()))
}

/// A random one-time code: 12 characters from an alphabet without look-alikes
/// (no 0/O, 1/I/L), about 59 bits, grouped for reading aloud.
fn new_enrollment_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let chars: Vec<char> = (0..12).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// How a typed code is compared: case and surrounding spaces do not matter.
fn normalize_code(code: &str) -> String {
    code.trim().to_uppercase()
}

/// Registers a terminal and returns its one-time enrollment code.
#[utoipa::path(
    post,
    path = "/api/terminals",
    tag = "terminals",
    security(("bearer" = [])),
    request_body = CreateTerminal,
    responses((status = 201, body = TerminalCode), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn create_terminal(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(request): ApiJson<CreateTerminal>,
) -> Result<(StatusCode, ApiJson<TerminalCode>), ApiError> {
    principal.require_region(&request.region_id)?;
    if state.store.region(&request.region_id).await?.is_none() {
        return Err(ApiError::bad_request("invalid_field", "region_id: no such region"));
    }
    let name = text_field("name", &request.name)?;
    let township = text_field("township", &request.township)?;
    if request.languages.is_empty() {
        return Err(ApiError::bad_request("invalid_field", "languages: at least one"));
    }
    let code = new_enrollment_code();
    let expires_at = unix_now() + state.tokens.config().enrollment_code_ttl_secs as i64;
    let mut languages = request.languages;
    languages.sort();
    languages.dedup();
    let audit = AuditEntry::new(
        &principal.actor(),
        "terminal.registered",
        "",
        serde_json::json!({"region_id": request.region_id}),
        &source,
    );
    let new = NewTerminal {
        name,
        township,
        region_id: request.region_id,
        languages,
        enrollment_code_hash: fingerprint(&code),
        enrollment_expires_at: expires_at,
    };
    let id = state.store.create_terminal(&new, &audit).await?;
    let terminal = state.store.terminal(&id).await?.ok_or(ApiError::NotFound)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(TerminalCode {
            terminal: TerminalView::from(&terminal),
            enrollment_code: code,
            enrollment_expires_at: expires_at,
        }),
    ))
}

/// Gives a terminal a new one-time enrollment code (a replaced kiosk, an
/// expired code). Its current credential, if any, keeps working until revoked.
#[utoipa::path(
    post,
    path = "/api/terminals/{id}/enrollment-code",
    tag = "terminals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Terminal id")),
    responses((status = 200, body = TerminalCode), (status = 400, description = "`phone_line`: the hotline's lines cannot be enrolled", body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn new_code(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<TerminalId>,
) -> Result<ApiJson<TerminalCode>, ApiError> {
    let terminal = managed_terminal(&state, &principal, &id).await?;
    if terminal.channel == "phone" {
        // The hotline's lines hold no device: nothing may enroll as one.
        return Err(ApiError::bad_request("phone_line", "a phone line cannot be enrolled"));
    }
    let code = new_enrollment_code();
    let expires_at = unix_now() + state.tokens.config().enrollment_code_ttl_secs as i64;
    let audit =
        AuditEntry::new(&principal.actor(), "terminal.code_issued", &id, serde_json::Value::Null, &source);
    state.store.set_enrollment_code(&terminal.id, &fingerprint(&code), expires_at, &audit).await?;
    let terminal = state.store.terminal(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(TerminalCode {
        terminal: TerminalView::from(&terminal),
        enrollment_code: code,
        enrollment_expires_at: expires_at,
    }))
}

/// Revokes a terminal: its credential and any pending code stop working and
/// its connections close, at once.
#[utoipa::path(
    post,
    path = "/api/terminals/{id}/revoke",
    tag = "terminals",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Terminal id")),
    responses((status = 200, body = TerminalView), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<TerminalId>,
) -> Result<ApiJson<TerminalView>, ApiError> {
    managed_terminal(&state, &principal, &id).await?;
    let audit =
        AuditEntry::new(&principal.actor(), "terminal.revoked", &id, serde_json::Value::Null, &source);
    state.store.revoke_terminal(&id, unix_now(), &audit).await?;
    state.connections.close_terminal(&id, "terminal revoked");
    let terminal = state.store.terminal(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(TerminalView::from(&terminal)))
}

async fn managed_terminal(
    state: &AppState,
    principal: &Principal,
    id: &TerminalId,
) -> Result<crate::store::TerminalRecord, ApiError> {
    principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let terminal = state.store.terminal(id).await?.ok_or(ApiError::NotFound)?;
    principal.require_region(&terminal.region_id)?;
    Ok(terminal)
}

/// Enrolls a kiosk with its one-time code and returns its device credential.
/// Failed attempts count against the caller's address.
#[utoipa::path(
    post,
    path = "/api/terminals/enroll",
    tag = "terminals",
    request_body = EnrollRequest,
    responses(
        (status = 200, body = EnrollResponse),
        (status = 401, description = "`invalid_code`: unknown, used or expired", body = super::ErrorBody),
        (status = 429, body = super::ErrorBody),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    ApiJson(request): ApiJson<EnrollRequest>,
) -> Result<ApiJson<EnrollResponse>, ApiError> {
    let address_key = format!("address:{source}");
    let now = Instant::now();
    if let Err(blocked) = state.limits.failures_per_address.attempt(&address_key, now) {
        if blocked.first {
            state
                .audit("anonymous", "terminal.enroll_rate_limited", "", serde_json::Value::Null, &source)
                .await?;
        }
        return Err(ApiError::TooManyRequests { retry_after_secs: blocked.retry_after_secs });
    }
    let code = normalize_code(&request.code);
    let credential_id = uuid::Uuid::new_v4().to_string();
    let enrolled = if code.is_empty() || code.len() > 64 {
        None
    } else {
        let audit = AuditEntry::new("", "terminal.enrolled", "", serde_json::Value::Null, &source);
        state.store.enroll_terminal(&fingerprint(&code), &credential_id, unix_now(), &audit).await?
    };
    let Some(terminal_id) = enrolled else {
        state.limits.failed(crate::auth::Limiter::Address, &address_key);
        state.audit("anonymous", "terminal.enroll_failed", "", serde_json::Value::Null, &source).await?;
        return Err(ApiError::InvalidEnrollmentCode);
    };
    state.limits.failures_per_address.succeeded(&address_key);
    // A replaced kiosk's open connections belong to the old credential.
    state.connections.close_terminal(&terminal_id, "terminal enrolled again");
    let ttl = Duration::from_secs(state.tokens.config().device_ttl_secs);
    let (device_token, _) = state.tokens.issue(TokenKind::Device, &terminal_id, &credential_id, ttl, None);
    let terminal = state.store.terminal(&terminal_id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(EnrollResponse { device_token, terminal: TerminalView::from(&terminal) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_random() {
        let a = new_enrollment_code();
        let b = new_enrollment_code();
        assert_eq!(a.len(), 14);
        assert_eq!(a.matches('-').count(), 2);
        assert!(!a.contains(['0', 'O', '1', 'I', 'L']), "{a}");
        assert_ne!(a, b);
        assert_eq!(normalize_code(&format!("  {}  ", a.to_lowercase())), a);
    }
}
