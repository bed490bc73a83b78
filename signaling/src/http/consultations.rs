//! Consultation records: who may read or write which, and the audit trace of
//! every read and change.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;

use super::views::{ConsultationView, Visibility};
use super::{ApiError, ApiJson, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::Role;
use crate::ids::{ConsultationId, RegionId};
use crate::store::{AuditEntry, ConsultationRecord, ConsultationScope};

/// Outcomes a lawyer can record.
pub const OUTCOMES: [&str; 4] =
    ["advice_given", "referred_legal_aid", "referred_mediation", "follow_up_appointment"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRequest {
    /// What was asked and advised; at most 20,000 characters.
    pub summary: String,
    /// One of `advice_given`, `referred_legal_aid`, `referred_mediation`, `follow_up_appointment`.
    pub outcome: String,
}

/// How much of `consultation` the caller may see, or `None` for nothing.
fn visibility(principal: &Principal, c: &ConsultationRecord) -> Option<Visibility> {
    match principal {
        Principal::Account { account, .. } => {
            if c.lawyer_id == account.id || c.interpreter_id.as_deref() == Some(account.id.as_str()) {
                Some(Visibility::Participant)
            } else if principal.manages_region(&c.region_id) {
                Some(Visibility::Coordinator)
            } else {
                None
            }
        }
        Principal::Terminal { terminal } => (c.terminal_id == terminal.id).then_some(Visibility::Terminal),
    }
}

/// The caller's consultations, newest first: their own for lawyers,
/// interpreters and terminals; their regions' for coordinators.
#[utoipa::path(
    get,
    path = "/api/consultations",
    tag = "consultations",
    security(("bearer" = [])),
    responses((status = 200, body = [ConsultationView]), (status = 401, body = super::ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
) -> Result<ApiJson<Vec<ConsultationView>>, ApiError> {
    const LIMIT: i64 = 200;
    let records = match &principal {
        Principal::Terminal { terminal } => {
            state.store.consultations(ConsultationScope::Terminal(&terminal.id), LIMIT).await?
        }
        Principal::Account { account, .. } if account.has_role(Role::Admin) => {
            let all: Vec<RegionId> = state.store.regions().await?.into_iter().map(|r| r.id).collect();
            state.store.consultations(ConsultationScope::Regions(&all), LIMIT).await?
        }
        Principal::Account { account, .. } if account.has_role(Role::Coordinator) => {
            state.store.consultations(ConsultationScope::Regions(&account.regions), LIMIT).await?
        }
        Principal::Account { account, .. } => {
            state.store.consultations(ConsultationScope::Participant(&account.id), LIMIT).await?
        }
    };
    let views: Vec<ConsultationView> = records
        .iter()
        .filter_map(|c| visibility(&principal, c).map(|v| ConsultationView::new(c, v)))
        .collect();
    state
        .audit(
            &principal.actor(),
            "consultation.listed",
            "",
            serde_json::json!({"count": views.len()}),
            &source,
        )
        .await?;
    Ok(ApiJson(views))
}

/// One consultation, as much of it as the caller may see. Consultations the
/// caller may not see answer 404, whether they exist or not.
#[utoipa::path(
    get,
    path = "/api/consultations/{id}",
    tag = "consultations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consultation id")),
    responses((status = 200, body = ConsultationView), (status = 404, body = super::ErrorBody))
)]
pub async fn read(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ConsultationId>,
) -> Result<ApiJson<ConsultationView>, ApiError> {
    let record = state.store.consultation(&id).await?;
    let seen = record.as_ref().and_then(|c| visibility(&principal, c).map(|v| (c, v)));
    let Some((record, visibility)) = seen else {
        state
            .audit(&principal.actor(), "consultation.read_denied", &id, serde_json::Value::Null, &source)
            .await?;
        return Err(ApiError::NotFound);
    };
    state.audit(&principal.actor(), "consultation.read", &id, serde_json::Value::Null, &source).await?;
    Ok(ApiJson(ConsultationView::new(record, visibility)))
}

/// The lawyer writes (or rewrites) the consultation's record.
#[utoipa::path(
    put,
    path = "/api/consultations/{id}/record",
    tag = "consultations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consultation id")),
    request_body = RecordRequest,
    responses((status = 200, body = ConsultationView), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn write_record(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ConsultationId>,
    ApiJson(request): ApiJson<RecordRequest>,
) -> Result<ApiJson<ConsultationView>, ApiError> {
    let account = principal.account().map_err(|_| ApiError::NotFound)?;
    let record = state.store.consultation(&id).await?.filter(|c| c.lawyer_id == account.id);
    let Some(_) = record else {
        state
            .audit(&principal.actor(), "consultation.write_denied", &id, serde_json::Value::Null, &source)
            .await?;
        return Err(ApiError::NotFound);
    };
    if request.summary.chars().count() > 20_000 {
        return Err(ApiError::bad_request("invalid_field", "summary: at most 20000 characters"));
    }
    if !OUTCOMES.contains(&request.outcome.as_str()) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("outcome: one of {}", OUTCOMES.join(", ")),
        ));
    }
    let audit = AuditEntry::new(
        &principal.actor(),
        "consultation.record_written",
        &id,
        serde_json::json!({"outcome": request.outcome}),
        &source,
    );
    state.store.save_consultation_record(&id, &request.summary, &request.outcome, &audit).await?;
    // The record is written: the lawyer's wrap-up is over.
    state.live.send(crate::live::Command::RecordSaved { consultation: id.clone() }).await;
    let record = state.store.consultation(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(ConsultationView::new(&record, Visibility::Participant)))
}
