//! Calling residents by phone: a lawyer calls back a hotline caller after
//! their consultation, or calls the resident of an appointment booked by
//! phone. The server dials through `phone.outbound_trunk`, only numbers with
//! an allowed prefix, and audits every call (the number masked); the lawyer
//! is rung first when the resident answers.

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{ApiError, ApiJson, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::Role;
use crate::ids::{AppointmentId, ConsultationId};
use crate::live::Asked;
use crate::phone::Route;
use crate::phone::sip::{Callback, Dialer};
use crate::unix_now;

/// An appointment's call may be placed this long before it starts.
const EARLY_SECS: i64 = 15 * 60;

/// A callback being dialled.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CallbackStarted {
    /// The number, masked.
    pub number: String,
}

/// Calls a hotline caller back: the consultation's lawyer asks, the server
/// dials the number the caller called from, and the lawyer is rung first
/// when they answer.
#[utoipa::path(
    post,
    path = "/api/consultations/{id}/callback",
    tag = "consultations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consultation id")),
    responses(
        (status = 202, description = "Dialling; the lawyer is rung when the caller answers", body = CallbackStarted),
        (status = 403, description = "`not_allowed`: the number's prefix is not in `phone.outbound_prefixes`", body = super::ErrorBody),
        (status = 404, description = "No such consultation of the caller's, or `no_number`: none kept for it", body = super::ErrorBody),
        (status = 409, description = "`callback_off`: calling back is not enabled; `in_progress`: the consultation has not ended, or its caller is being called already", body = super::ErrorBody),
    )
)]
pub async fn consultation(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<ConsultationId>,
) -> Result<(StatusCode, ApiJson<CallbackStarted>), ApiError> {
    let account = principal.require_any(&[Role::Lawyer])?;
    let record = state.store.consultation(&id).await?.filter(|c| c.lawyer_id == account.id);
    let Some(record) = record else { return Err(ApiError::NotFound) };
    let dialer = dialer(&state)?;
    if record.status == "active" {
        return Err(ApiError::Clash {
            code: "in_progress",
            message: "the consultation has not ended".into(),
        });
    }
    let number = state.store.callback_number(&id).await?.ok_or(NO_NUMBER)?;
    let callback = Callback {
        key: format!("consultation:{id}"),
        number,
        asked: Asked { lawyer: account.id.clone(), appointment: None },
        route: Route {
            number: "callback".into(),
            language: record.language,
            topic: record.topic,
            region: record.region_id,
        },
    };
    dial(&state, dialer, &principal, &source, &id, callback).await
}

/// Calls the resident of an appointment booked by phone: its lawyer asks,
/// from a quarter of an hour before it starts until it ends. When the
/// resident answers they wait at the front for this lawyer, and the
/// appointment is kept once the call begins.
#[utoipa::path(
    post,
    path = "/api/appointments/{id}/callback",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    responses(
        (status = 202, description = "Dialling; the lawyer is rung when the resident answers", body = CallbackStarted),
        (status = 403, description = "`not_allowed`: the number's prefix is not in `phone.outbound_prefixes`", body = super::ErrorBody),
        (status = 404, description = "No such appointment of the caller's, or `no_number`: not booked by phone", body = super::ErrorBody),
        (status = 409, description = "`callback_off`: calling is not enabled; `not_booked`: cancelled, kept or missed already; `not_now`: more than 15 minutes before its start, or over; `in_progress`: the resident is being called already", body = super::ErrorBody),
    )
)]
pub async fn appointment(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<AppointmentId>,
) -> Result<(StatusCode, ApiJson<CallbackStarted>), ApiError> {
    let account = principal.require_any(&[Role::Lawyer])?;
    let appointment = state.store.appointment(&id).await?.filter(|a| a.lawyer_id == account.id);
    let Some(appointment) = appointment else { return Err(ApiError::NotFound) };
    let dialer = dialer(&state)?;
    let number = appointment.phone_number.clone().filter(|_| appointment.by_phone()).ok_or(NO_NUMBER)?;
    if appointment.status != "booked" {
        return Err(ApiError::Clash {
            code: "not_booked",
            message: "this appointment is no longer booked".into(),
        });
    }
    let now = unix_now();
    if now < appointment.starts_at - EARLY_SECS || now >= appointment.ends_at {
        return Err(ApiError::Clash {
            code: "not_now",
            message: "call from 15 minutes before the appointment until its end".into(),
        });
    }
    let callback = Callback {
        key: format!("appointment:{id}"),
        number,
        asked: Asked { lawyer: account.id.clone(), appointment: Some(id.clone()) },
        route: Route {
            number: "appointment".into(),
            language: appointment.language,
            topic: appointment.topic,
            region: appointment.region_id,
        },
    };
    dial(&state, dialer, &principal, &source, &id, callback).await
}

const NO_NUMBER: ApiError = ApiError::Status {
    status: StatusCode::NOT_FOUND,
    code: "no_number",
    message: "no number is kept for this",
};

/// What places calls, or a refusal when this server does not call out.
fn dialer(state: &AppState) -> Result<&Dialer, ApiError> {
    match state.phone.get() {
        Some(dialer) if state.config.phone.calls_back() => Ok(dialer),
        _ => {
            Err(ApiError::Clash { code: "callback_off", message: "calling back is not enabled here".into() })
        }
    }
}

/// Checks the number against the allowed prefixes (auditing a refusal), then
/// audits and places the call; one at a time per consultation or appointment.
async fn dial(
    state: &AppState,
    dialer: &Dialer,
    principal: &Principal,
    source: &str,
    subject: &str,
    callback: Callback,
) -> Result<(StatusCode, ApiJson<CallbackStarted>), ApiError> {
    let masked = crate::phone::mask_number(&callback.number);
    let detail = serde_json::json!({ "number": masked });
    if !state.config.phone.may_call(&callback.number) {
        state.audit(&principal.actor(), "phone.callback_refused", subject, detail, source).await?;
        return Err(ApiError::Denied {
            code: "not_allowed",
            message: "this number may not be called from here".into(),
        });
    }
    let busy =
        || ApiError::Clash { code: "in_progress", message: "this resident is being called already".into() };
    if dialer.is_calling(&callback.key) {
        return Err(busy());
    }
    state.audit(&principal.actor(), "phone.callback", subject, detail, source).await?;
    if !dialer.call_back(callback) {
        return Err(busy());
    }
    Ok((StatusCode::ACCEPTED, ApiJson(CallbackStarted { number: masked })))
}
