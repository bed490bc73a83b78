//! Reading the audit log (admins).

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::auth::Principal;
use crate::domain::Role;
use crate::store::AuditRow;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only rows with a smaller sequence number (for paging back).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// At most this many rows (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
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
    query: ApiQuery<AuditQuery>,
) -> Result<ApiJson<Vec<AuditRow>>, ApiError> {
    principal.require_any(&[Role::Admin])?;
    let query = query.parse()?;
    if query.limit.is_some_and(|l| !(1..=500).contains(&l)) || query.before.is_some_and(|b| b < 1) {
        return Err(ApiError::bad_request("invalid_query", "limit: 1 to 500; before: 1 or more"));
    }
    let limit = query.limit.unwrap_or(100);
    Ok(ApiJson(state.store.recent_audit(query.before, limit).await?))
}
