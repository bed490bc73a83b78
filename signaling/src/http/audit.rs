//! Reading the audit log (admins).

use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, ApiJson, AppState};
use crate::auth::Principal;
use crate::domain::Role;
use crate::store::AuditRow;

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only rows with a smaller sequence number (for paging back).
    pub before: Option<i64>,
    /// At most this many rows (1 to 500, default 100).
    pub limit: Option<i64>,
}

/// The newest audit rows, newest first.
#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = [AuditRow]), (status = 403, body = super::ErrorBody))
)]
pub async fn recent(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<AuditQuery>,
) -> Result<ApiJson<Vec<AuditRow>>, ApiError> {
    principal.require_any(&[Role::Admin])?;
    let limit = query.limit.unwrap_or(100).clamp(1, 500);
    Ok(ApiJson(state.store.recent_audit(query.before, limit).await?))
}
