//! Appointments: free slots, booking (round robin or a named lawyer),
//! rescheduling, cancelling, no-shows, and each lawyer's calendar feed.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::schedule::{invalid, parse_instant};
use super::views::{AppointmentView, rfc3339};
use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::{Language, Role, Topic};
use crate::ids::{AccountId, AppointmentId, RegionId, TerminalId};
use crate::password::fingerprint;
use crate::schedule::civil::Instant;
use crate::schedule::{Person, booking, ical, intervals};
use crate::store::{AppointmentRecord, AppointmentScope, AuditEntry, BookOutcome};
use crate::unix_now;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    /// RFC 3339; on the slot grid, at least `min_notice_minutes` ahead.
    #[schema(example = "2030-01-07T14:00:00+08:00", format = DateTime)]
    pub start: String,
    pub language: Language,
    pub topic: Topic,
    /// A named lawyer (a follow-up); otherwise assigned by round robin.
    #[schema(value_type = Option<String>)]
    pub lawyer_id: Option<AccountId>,
    /// Coordinators booking on a resident's behalf name the terminal...
    #[schema(value_type = Option<String>)]
    pub terminal_id: Option<TerminalId>,
    /// ...or, by phone, the resident's number (the lawyer calls them; needs
    /// `phone.outbound_trunk` and a number with an allowed prefix) and the
    /// region whose lawyers serve them.
    #[schema(example = "13812345678")]
    pub phone: Option<String>,
    #[schema(value_type = Option<String>)]
    pub region_id: Option<RegionId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    #[schema(example = "2030-01-07T15:00:00+08:00", format = DateTime)]
    pub start: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotsQuery {
    #[param(pattern = "^[a-z]{2,3}$", example = "bo")]
    pub language: String,
    #[param(value_type = Topic)]
    pub topic: String,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; default and at most 14 days after `from`.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Coordinators: the region. Terminals: their own.
    #[param(value_type = Option<String>)]
    pub region_id: Option<RegionId>,
    #[param(value_type = Option<String>)]
    pub lawyer_id: Option<AccountId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    pub start: String,
    pub end: String,
    /// How many lawyers could take it.
    pub lawyers: usize,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// RFC 3339; default 30 days ago.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; default 90 days ahead.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Coordinators: one of their regions (default all of them).
    #[param(value_type = Option<String>)]
    pub region_id: Option<RegionId>,
}

/// Where an appointment is kept: a kiosk, or a phone number.
struct Place {
    terminal_id: TerminalId,
    region_id: RegionId,
    phone: Option<String>,
}

/// The terminal and region an appointment is for, from the caller: a kiosk
/// books for itself; a coordinator names a kiosk in their region, or a phone
/// number and a region (held on one of the region's phone lines).
async fn booking_place(
    state: &AppState,
    principal: &Principal,
    request: &BookRequest,
) -> Result<Place, ApiError> {
    match principal {
        Principal::Terminal { terminal } => {
            if request.terminal_id.as_ref().is_some_and(|t| *t != terminal.id)
                || request.phone.is_some()
                || request.region_id.is_some()
            {
                return Err(ApiError::Forbidden);
            }
            Ok(Place { terminal_id: terminal.id.clone(), region_id: terminal.region_id.clone(), phone: None })
        }
        Principal::Account { .. } => {
            principal.require_any(&[Role::Coordinator, Role::Admin])?;
            if let Some(number) = &request.phone {
                return phone_place(state, principal, request, number).await;
            }
            let id = request
                .terminal_id
                .as_ref()
                .ok_or_else(|| invalid("terminal_id: required when booking for a resident"))?;
            if request.region_id.is_some() {
                return Err(invalid("region_id: only with phone (a terminal has its region)"));
            }
            let terminal =
                state.store.terminal(id).await?.ok_or_else(|| invalid("terminal_id: no such terminal"))?;
            if terminal.channel == "phone" {
                return Err(invalid("terminal_id: a phone line, not a kiosk; book by phone instead"));
            }
            principal.require_region(&terminal.region_id)?;
            Ok(Place { terminal_id: terminal.id, region_id: terminal.region_id, phone: None })
        }
    }
}

/// A phone appointment's place: the number checked as a callback's would be.
async fn phone_place(
    state: &AppState,
    principal: &Principal,
    request: &BookRequest,
    number: &str,
) -> Result<Place, ApiError> {
    if request.terminal_id.is_some() {
        return Err(invalid("terminal_id: not with phone (the lawyer calls the number)"));
    }
    let region = request.region_id.as_ref().ok_or_else(|| invalid("region_id: required with phone"))?;
    principal.require_region(region)?;
    by_phone(state, region, number).await
}

/// A phone appointment's place in `region`, calling `number`.
async fn by_phone(state: &AppState, region: &RegionId, number: &str) -> Result<Place, ApiError> {
    let phone = &state.config.phone;
    if !phone.calls_back() {
        return Err(ApiError::Clash {
            code: "callback_off",
            message: "calling residents is not enabled here".into(),
        });
    }
    if !phone.may_call(number) {
        return Err(invalid("phone: digits only, starting with a prefix this server may call"));
    }
    state.store.region(region).await?.ok_or_else(|| invalid("region_id: no such region"))?;
    // (Made when the region has none yet, as the gateway makes lines for calls.)
    let line = state.store.phone_lines(region, 1).await?.into_iter().next().ok_or(ApiError::NotFound)?;
    Ok(Place { terminal_id: line.id, region_id: region.clone(), phone: Some(number.to_owned()) })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequest {
    /// RFC 3339, on the slot grid.
    #[schema(example = "2026-12-08T10:00:00+08:00")]
    pub start: String,
}

/// The consultation's lawyer books a follow-up with the same resident, in
/// one step: at the same kiosk, or, for a hotline caller whose number was
/// kept, by phone (the lawyer calls them then). Same language and topic; the
/// lawyer is the caller.
#[utoipa::path(
    post,
    path = "/api/consultations/{id}/follow-up",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Consultation id")),
    request_body = FollowUpRequest,
    responses((status = 201, body = AppointmentView),
        (status = 400, description = "`in_the_past`, `too_soon`, `too_far`, `off_grid`, `invalid_field`", body = super::ErrorBody),
        (status = 404, description = "not the caller's consultation", body = super::ErrorBody),
        (status = 409, description = "`slot_taken`, `terminal_busy`, `not_available`, `no_number`, `callback_off`", body = super::ErrorBody),
    )
)]
pub async fn follow_up(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<crate::ids::ConsultationId>,
    ApiJson(request): ApiJson<FollowUpRequest>,
) -> Result<(StatusCode, ApiJson<AppointmentView>), ApiError> {
    let lawyer = principal.account().ok().map(|a| a.id.clone());
    let Some(consultation) =
        state.store.consultation(&id).await?.filter(|c| Some(&c.lawyer_id) == lawyer.as_ref())
    else {
        state
            .audit(&principal.actor(), "appointment.follow_up_denied", &id, serde_json::Value::Null, &source)
            .await?;
        return Err(ApiError::NotFound);
    };
    let start = parse_instant("start", &request.start)?;
    let terminal = state.store.terminal(&consultation.terminal_id).await?.ok_or(ApiError::NotFound)?;
    let place = if terminal.channel == "phone" {
        let number = state.store.callback_number(&id).await?.ok_or_else(|| ApiError::Clash {
            code: "no_number",
            message: "the caller's number was not kept; they can call the hotline again".into(),
        })?;
        by_phone(&state, &consultation.region_id, &number).await?
    } else {
        Place { terminal_id: terminal.id, region_id: consultation.region_id.clone(), phone: None }
    };
    let language =
        Language::parse(&consultation.language).map_err(|_| invalid("the consultation's language"))?;
    let topic = Topic::from_code(&consultation.topic).ok_or_else(|| invalid("the consultation's topic"))?;
    let wanted = Wanted { language: &language, topic, lawyer: lawyer.as_ref(), start };
    let appointment = book_at(&state, &principal, &source, place, wanted).await?;
    state
        .audit(
            &principal.actor(),
            "appointment.follow_up",
            &id,
            serde_json::json!({"appointment": appointment.id}),
            &source,
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(appointment)))
}

impl AppState {
    /// The end of an appointment that may start at `start`, or why it may not.
    fn check_start(&self, start: Instant) -> Result<Instant, ApiError> {
        booking::check_start(&self.scheduler.config, start, unix_now())
            .map_err(|refused| ApiError::bad_request(refused.code(), refused.message()))
    }
}

/// Books an appointment: a terminal for itself, or a coordinator for a
/// resident at a terminal in their region.
#[utoipa::path(
    post,
    path = "/api/appointments",
    tag = "appointments",
    security(("bearer" = [])),
    request_body = BookRequest,
    responses((status = 201, body = AppointmentView),
        (status = 400, description = "`in_the_past`, `too_soon`, `too_far`, `off_grid`, `invalid_field` (e.g. a named lawyer who does not speak the language)", body = super::ErrorBody),
        (status = 403, description = "not a terminal, coordinator or admin; or a terminal or region not the caller's", body = super::ErrorBody),
        (status = 409, description = "`slot_taken`, `terminal_busy`, `not_available`, `no_lawyer_available`", body = super::ErrorBody),
    )
)]
pub async fn book(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(request): ApiJson<BookRequest>,
) -> Result<(StatusCode, ApiJson<AppointmentView>), ApiError> {
    let place = booking_place(&state, &principal, &request).await?;
    let start = parse_instant("start", &request.start)?;
    let what = Wanted {
        language: &request.language,
        topic: request.topic,
        lawyer: request.lawyer_id.as_ref(),
        start,
    };
    let appointment = book_at(&state, &principal, &source, place, what).await?;
    Ok((StatusCode::CREATED, ApiJson(appointment)))
}

/// What is to be booked at a [`Place`].
struct Wanted<'a> {
    language: &'a Language,
    topic: Topic,
    /// This lawyer, or the next free one in turn.
    lawyer: Option<&'a AccountId>,
    start: Instant,
}

/// Books `wanted` at `place`: the booking rules, the lawyer's duty and the
/// claims that keep anyone from being booked twice.
async fn book_at(
    state: &AppState,
    principal: &Principal,
    source: &str,
    place: Place,
    wanted: Wanted<'_>,
) -> Result<AppointmentView, ApiError> {
    let (terminal_id, region_id) = (place.terminal_id.clone(), place.region_id.clone());
    let (language, topic, start) = (wanted.language, wanted.topic, wanted.start);
    let end = state.check_start(start)?;
    let snapshot = state.scheduler.snapshot().await?;
    let candidates: Vec<&Person> = match wanted.lawyer {
        Some(id) => {
            let person = snapshot
                .person(id)
                .filter(|p| p.account.has_role(Role::Lawyer))
                .ok_or_else(|| invalid("lawyer_id: no such active lawyer"))?;
            if !person.account.languages.contains(language) {
                return Err(invalid(format!("this lawyer does not speak {}", language)));
            }
            if !person.account.topics.contains(&topic) {
                return Err(invalid(format!("this lawyer does not advise on {}", topic)));
            }
            if !snapshot.on_duty_through(person, Some(&region_id), start, end) {
                return Err(ApiError::Clash {
                    code: "not_available",
                    message: "this lawyer is not on duty then".into(),
                });
            }
            vec![person]
        }
        None => {
            let last: HashMap<AccountId, i64> = state.store.last_assignments().await?.into_iter().collect();
            booking::round_robin(snapshot.eligible_lawyers(&region_id, language, topic, start, end), &last)
        }
    };
    if candidates.is_empty() {
        return Err(ApiError::Clash {
            code: "no_lawyer_available",
            message: "nobody who speaks this language is free then".into(),
        });
    }
    for person in candidates {
        let what = booking::What {
            terminal_id: &terminal_id,
            region_id: &region_id,
            language: language.as_str(),
            topic: topic.code(),
            phone: place.phone.as_deref(),
        };
        let booking = booking::booking(
            &state.scheduler.config,
            &snapshot,
            person,
            what,
            (start, end),
            principal.actor(),
        );
        let mut detail = serde_json::json!({"lawyer_id": booking.lawyer_id, "start": start});
        if let Some(number) = &place.phone {
            detail["phone"] = crate::phone::mask_number(number).into();
        }
        let audit = AuditEntry::new(&principal.actor(), "appointment.booked", "", detail, source);
        match state.store.book(&booking, &audit).await? {
            BookOutcome::Booked(id) => {
                let appointment = state.store.appointment(&id).await?.ok_or(ApiError::NotFound)?;
                return Ok(AppointmentView::from(&appointment));
            }
            BookOutcome::TerminalBusy if place.phone.is_some() => {
                return Err(ApiError::Clash {
                    code: "terminal_busy",
                    message: "this number already has an appointment then".into(),
                });
            }
            BookOutcome::TerminalBusy => {
                return Err(ApiError::Clash {
                    code: "terminal_busy",
                    message: "this terminal already has an appointment then".into(),
                });
            }
            BookOutcome::LawyerBusy | BookOutcome::CapReached | BookOutcome::NotBooked => continue,
        }
    }
    let (code, message) = if wanted.lawyer.is_some() {
        ("slot_taken", "this lawyer is already booked then")
    } else {
        ("no_lawyer_available", "every lawyer free then is booked")
    };
    Err(ApiError::Clash { code, message: message.into() })
}

/// Free slots in a range: each with how many lawyers could take it.
#[utoipa::path(
    get,
    path = "/api/appointments/slots",
    tag = "appointments",
    security(("bearer" = [])),
    params(SlotsQuery),
    responses((status = 200, body = [SlotView]), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn slots(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<SlotsQuery>,
) -> Result<ApiJson<Vec<SlotView>>, ApiError> {
    if let Principal::Account { .. } = &principal {
        principal.require_any(&[Role::Coordinator, Role::Admin])?;
    }
    let query = query.parse()?;
    let (terminal_id, region_id) = match &principal {
        Principal::Terminal { terminal } => (Some(terminal.id.clone()), terminal.region_id.clone()),
        Principal::Account { .. } => {
            let region = query.region_id.clone().ok_or_else(|| invalid("region_id: required"))?;
            principal.require_region(&region)?;
            (None, region)
        }
    };
    let language = Language::parse(&query.language).map_err(|e| invalid(format!("language: {e}")))?;
    let topic = Topic::from_code(&query.topic).ok_or_else(|| invalid("topic: unknown"))?;
    let config = &state.scheduler.config;
    let now = unix_now();
    let from = match &query.from {
        Some(f) => parse_instant("from", f)?,
        None => now,
    };
    let to = match &query.to {
        Some(t) => parse_instant("to", t)?,
        None => from + 14 * 86_400,
    };
    if to <= from || to - from > 14 * 86_400 {
        return Err(invalid("to must be after from, by at most 14 days"));
    }
    let slot = i64::from(config.slot_minutes) * 60;
    let length = i64::from(config.appointment_minutes) * 60;
    let buffer = i64::from(config.buffer_minutes) * 60;
    let earliest = from.max(now + i64::from(config.min_notice_minutes) * 60);
    let latest = to.min(now + i64::from(config.horizon_days) * 86_400);
    let first = (earliest + slot - 1).div_euclid(slot) * slot;

    let snapshot = state.scheduler.snapshot().await?;
    let candidates: Vec<(&Person, bool)> = snapshot
        .candidates(&region_id, &language, topic)
        .into_iter()
        .filter(|(p, _)| query.lawyer_id.as_ref().is_none_or(|id| *id == p.account.id))
        .collect();
    let duty: Vec<Vec<(Instant, Instant)>> = candidates
        .iter()
        .map(|(p, in_team)| snapshot.duty_intervals(p, in_team.then_some(&region_id), first, latest + length))
        .collect();
    let booked = state.store.booked_between(first - length - buffer, latest + length + buffer).await?;
    let mut busy: HashMap<&str, Vec<(Instant, Instant)>> = HashMap::new();
    for (lawyer, s, e) in &booked {
        busy.entry(lawyer.as_str()).or_default().push((*s, *e + buffer));
    }
    let terminal_busy: Vec<(Instant, Instant)> = match &terminal_id {
        Some(t) => state
            .store
            .appointments(AppointmentScope::Terminal(t), first - length, latest + length)
            .await?
            .into_iter()
            .filter(|a| a.status == "booked")
            .map(|a| (a.starts_at, a.ends_at))
            .collect(),
        None => Vec::new(),
    };
    let mut out = Vec::new();
    let mut start = first;
    while start + length <= latest + length && start < latest {
        let end = start + length;
        if !terminal_busy.iter().any(|&(s, e)| s < end && start < e) {
            let lawyers = candidates
                .iter()
                .zip(&duty)
                .filter(|((p, _), d)| {
                    intervals::contains(d, start, end)
                        && !busy
                            .get(p.account.id.as_str())
                            .is_some_and(|b| b.iter().any(|&(s, e)| s < end + buffer && start < e))
                })
                .count();
            if lawyers > 0 {
                out.push(SlotView { start: rfc3339(start), end: rfc3339(end), lawyers });
            }
        }
        start += slot;
    }
    Ok(ApiJson(out))
}

fn may_see(principal: &Principal, a: &AppointmentRecord) -> bool {
    match principal {
        Principal::Terminal { terminal } => terminal.id == a.terminal_id,
        Principal::Account { account, .. } => {
            account.id == a.lawyer_id || principal.manages_region(&a.region_id)
        }
    }
}

/// The caller's appointments: a lawyer's, a terminal's, or a coordinator's regions'.
#[utoipa::path(
    get,
    path = "/api/appointments",
    tag = "appointments",
    security(("bearer" = [])),
    params(RangeQuery),
    responses((status = 200, body = [AppointmentView]), (status = 400, body = super::ErrorBody), (status = 403, description = "a region not the caller's", body = super::ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: ApiQuery<RangeQuery>,
) -> Result<ApiJson<Vec<AppointmentView>>, ApiError> {
    let query = query.parse()?;
    let now = unix_now();
    let from = match &query.from {
        Some(f) => parse_instant("from", f)?,
        None => now - 30 * 86_400,
    };
    let to = match &query.to {
        Some(t) => parse_instant("to", t)?,
        None => now + 90 * 86_400,
    };
    let records = match &principal {
        Principal::Terminal { terminal } => {
            state.store.appointments(AppointmentScope::Terminal(&terminal.id), from, to).await?
        }
        Principal::Account { account, .. }
            if account.has_role(Role::Coordinator) || account.has_role(Role::Admin) =>
        {
            let regions: Vec<RegionId> = match &query.region_id {
                Some(r) => {
                    principal.require_region(r)?;
                    vec![r.clone()]
                }
                None if account.has_role(Role::Admin) => {
                    state.store.regions().await?.into_iter().map(|r| r.id).collect()
                }
                None => account.regions.clone(),
            };
            let mut all = Vec::new();
            for region in &regions {
                all.extend(state.store.appointments(AppointmentScope::Region(region), from, to).await?);
            }
            all.sort_by_key(|a| a.starts_at);
            all
        }
        Principal::Account { account, .. } => {
            state.store.appointments(AppointmentScope::Lawyer(&account.id), from, to).await?
        }
    };
    Ok(ApiJson(records.iter().filter(|a| may_see(&principal, a)).map(AppointmentView::from).collect()))
}

async fn visible_appointment(
    state: &AppState,
    principal: &Principal,
    id: &AppointmentId,
) -> Result<AppointmentRecord, ApiError> {
    state.store.appointment(id).await?.filter(|a| may_see(principal, a)).ok_or(ApiError::NotFound)
}

#[utoipa::path(
    get,
    path = "/api/appointments/{id}",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    responses((status = 200, body = AppointmentView), (status = 404, body = super::ErrorBody))
)]
pub async fn read(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<AppointmentId>,
) -> Result<ApiJson<AppointmentView>, ApiError> {
    Ok(ApiJson(AppointmentView::from(&visible_appointment(&state, &principal, &id).await?)))
}

/// Cancels a booked appointment (its terminal, its lawyer, or a coordinator).
#[utoipa::path(
    post,
    path = "/api/appointments/{id}/cancel",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    responses((status = 200, body = AppointmentView), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn cancel(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<AppointmentId>,
) -> Result<ApiJson<AppointmentView>, ApiError> {
    visible_appointment(&state, &principal, &id).await?;
    let audit =
        AuditEntry::new(&principal.actor(), "appointment.cancelled", &id, serde_json::Value::Null, &source);
    if !state.store.close_appointment(&id, "cancelled", &audit).await? {
        return Err(ApiError::Clash {
            code: "not_booked",
            message: "this appointment is no longer booked".into(),
        });
    }
    let appointment = state.store.appointment(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(AppointmentView::from(&appointment)))
}

/// Moves a booked appointment to another time with the same lawyer.
#[utoipa::path(
    post,
    path = "/api/appointments/{id}/reschedule",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    request_body = RescheduleRequest,
    responses((status = 403, description = "not the caller's to move", body = super::ErrorBody), (status = 200, body = AppointmentView), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn reschedule(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<AppointmentId>,
    ApiJson(request): ApiJson<RescheduleRequest>,
) -> Result<ApiJson<AppointmentView>, ApiError> {
    let appointment = visible_appointment(&state, &principal, &id).await?;
    if matches!(&principal, Principal::Account { account, .. } if account.id == appointment.lawyer_id && !principal.manages_region(&appointment.region_id))
    {
        return Err(ApiError::Forbidden);
    }
    if appointment.status != "booked" {
        return Err(ApiError::Clash {
            code: "not_booked",
            message: "this appointment is no longer booked".into(),
        });
    }
    let start = parse_instant("start", &request.start)?;
    let end = state.check_start(start)?;
    let snapshot = state.scheduler.snapshot().await?;
    let person = snapshot.person(&appointment.lawyer_id).ok_or(ApiError::Clash {
        code: "not_available",
        message: "this lawyer no longer takes appointments".into(),
    })?;
    if !snapshot.on_duty_through(person, Some(&appointment.region_id), start, end) {
        return Err(ApiError::Clash {
            code: "not_available",
            message: "this lawyer is not on duty then".into(),
        });
    }
    let what = booking::What {
        terminal_id: &appointment.terminal_id,
        region_id: &appointment.region_id,
        language: &appointment.language,
        topic: &appointment.topic,
        phone: appointment.phone_number.as_deref(),
    };
    let booking =
        booking::booking(&state.scheduler.config, &snapshot, person, what, (start, end), principal.actor());
    let audit = AuditEntry::new(
        &principal.actor(),
        "appointment.rescheduled",
        &id,
        serde_json::json!({"start": start}),
        &source,
    );
    match state.store.reschedule(&id, &booking, &audit).await? {
        BookOutcome::Booked(_) => {}
        BookOutcome::TerminalBusy => {
            return Err(ApiError::Clash {
                code: "terminal_busy",
                message: "this terminal already has an appointment then".into(),
            });
        }
        BookOutcome::LawyerBusy | BookOutcome::CapReached => {
            return Err(ApiError::Clash {
                code: "slot_taken",
                message: "this lawyer is already booked then".into(),
            });
        }
        BookOutcome::NotBooked => {
            return Err(ApiError::Clash {
                code: "not_booked",
                message: "this appointment is no longer booked".into(),
            });
        }
    }
    let appointment = state.store.appointment(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(AppointmentView::from(&appointment)))
}

/// Records that the resident did not come (the lawyer or a coordinator, once it has started).
#[utoipa::path(
    post,
    path = "/api/appointments/{id}/no-show",
    tag = "appointments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Appointment id")),
    responses((status = 403, description = "a terminal cannot mark one", body = super::ErrorBody), (status = 200, body = AppointmentView), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn no_show(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<AppointmentId>,
) -> Result<ApiJson<AppointmentView>, ApiError> {
    let appointment = visible_appointment(&state, &principal, &id).await?;
    if matches!(principal, Principal::Terminal { .. }) {
        return Err(ApiError::Forbidden);
    }
    if appointment.starts_at > unix_now() {
        return Err(ApiError::bad_request(
            "not_started",
            "an appointment can be marked a no-show once it has started",
        ));
    }
    let audit =
        AuditEntry::new(&principal.actor(), "appointment.no_show", &id, serde_json::Value::Null, &source);
    if !state.store.close_appointment(&id, "no_show", &audit).await? {
        return Err(ApiError::Clash {
            code: "not_booked",
            message: "this appointment is no longer booked".into(),
        });
    }
    let appointment = state.store.appointment(&id).await?.ok_or(ApiError::NotFound)?;
    Ok(ApiJson(AppointmentView::from(&appointment)))
}

// ---------------------------------------------------------------- calendar feed

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarFeed {
    /// The feed's path on this server; subscribe to it (`webcal://host/...`).
    #[schema(example = "/calendar/5f1c...e2.ics")]
    pub path: String,
}

/// Creates (or replaces, revoking the old) the caller's private calendar feed.
#[utoipa::path(
    post,
    path = "/api/me/calendar",
    tag = "appointments",
    security(("bearer" = [])),
    responses((status = 200, body = CalendarFeed), (status = 403, body = super::ErrorBody))
)]
pub async fn create_feed(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
) -> Result<ApiJson<CalendarFeed>, ApiError> {
    let account = principal.require_any(&[Role::Lawyer, Role::Interpreter])?;
    let token = hex::encode(rand::random::<[u8; 24]>());
    let audit = AuditEntry::new(
        &principal.actor(),
        "calendar.feed_created",
        &account.id,
        serde_json::Value::Null,
        &source,
    );
    state.store.set_calendar_token(&account.id, &fingerprint(&token), &audit).await?;
    Ok(ApiJson(CalendarFeed { path: format!("/calendar/{token}.ics") }))
}

/// Revokes the caller's calendar feed.
#[utoipa::path(
    delete,
    path = "/api/me/calendar",
    tag = "appointments",
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = super::ErrorBody))
)]
pub async fn delete_feed(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    let account = principal.require_any(&[Role::Lawyer, Role::Interpreter])?;
    let audit = AuditEntry::new(
        &principal.actor(),
        "calendar.feed_revoked",
        &account.id,
        serde_json::Value::Null,
        &source,
    );
    state.store.delete_calendar_token(&account.id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A lawyer's appointments as iCalendar. The token in the path is the only
/// credential, so the URL is private.
#[utoipa::path(
    get,
    path = "/calendar/{file}",
    tag = "appointments",
    params(("file" = String, Path, description = "`<token>.ics`")),
    responses((status = 200, content_type = "text/calendar", body = String), (status = 404, body = super::ErrorBody))
)]
pub async fn feed(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let token = file.strip_suffix(".ics").unwrap_or(&file);
    if token.len() != 48 {
        return Err(ApiError::NotFound);
    }
    let account_id = state.store.calendar_owner(&fingerprint(token)).await?.ok_or(ApiError::NotFound)?;
    let account = state.store.account(&account_id).await?.filter(|a| a.active).ok_or(ApiError::NotFound)?;
    let now = unix_now();
    let horizon = i64::from(state.scheduler.config.horizon_days) * 86_400;
    let appointments = state
        .store
        .appointments(AppointmentScope::Lawyer(&account_id), now - 30 * 86_400, now + horizon)
        .await?;
    let mut terminals = HashMap::new();
    let mut events = Vec::new();
    for a in &appointments {
        if !terminals.contains_key(&a.terminal_id)
            && let Some(t) = state.store.terminal(&a.terminal_id).await?
        {
            terminals.insert(a.terminal_id.clone(), format!("{} ({})", t.name, t.township));
        }
        events.push(ical::Event {
            uid: format!("{}@cloudlaw", a.id),
            start: a.starts_at,
            end: a.ends_at,
            stamp: a.created_at,
            summary: format!("法律咨询 Legal consultation ({}, {})", a.language, a.topic),
            description: format!(
                "Terminal: {}\nLanguage: {}\nTopic: {}\nStatus: {}",
                terminals.get(&a.terminal_id).map(String::as_str).unwrap_or("-"),
                a.language,
                a.topic,
                a.status
            ),
            cancelled: a.status == "cancelled",
        });
    }
    let body = ical::calendar(&format!("Cloud Law Office: {}", account.display_name), &events);
    // Personal data: `protective_headers` marks it no-store.
    Ok(([(header::CONTENT_TYPE, "text/calendar; charset=utf-8")], body).into_response())
}
