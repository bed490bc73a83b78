//! The scheduler's API: availability, aid teams, duty rosters, who is on duty,
//! coverage and gaps, appointments, and each lawyer's calendar feed.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::{AppointmentView, rfc3339};
use super::{ApiError, ApiJson, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::{Language, Role, Topic};
use crate::password::fingerprint;
use crate::schedule::civil::{Instant, date_of, days_of};
use crate::schedule::{DutyReason, Person, Snapshot, ical, intervals};
use crate::store::{
    AppointmentRecord, AppointmentScope, BookOutcome, Booking, OverrideRow, RosterRow, WeeklyRow,
};
use crate::unix_now;

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_field", message)
}

/// `HH:MM` to minutes since midnight; `24:00` is the end of the day.
fn parse_time(field: &str, value: &str) -> Result<u16, ApiError> {
    let parsed = value.split_once(':').and_then(|(h, m)| {
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (value.len() == 5 && m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| invalid(format!("{field}: {value:?} is not a time like \"14:00\"")))
}

fn format_time(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn parse_window(start: &str, end: &str) -> Result<(u16, u16), ApiError> {
    let (s, e) = (parse_time("start", start)?, parse_time("end", end)?);
    if e <= s {
        return Err(invalid(format!("end {end} must be after start {start}")));
    }
    Ok((s, e))
}

/// A `YYYY-MM-DD` date between 2000 and 2100, as (days since epoch, date).
fn parse_date(field: &str, value: &str) -> Result<(i64, Date), ApiError> {
    let date: Date = value
        .parse()
        .map_err(|_| invalid(format!("{field}: {value:?} is not a date like \"2026-12-01\"")))?;
    if !(2000..=2100).contains(&date.year()) {
        return Err(invalid(format!("{field}: {value} is out of range (2000 to 2100)")));
    }
    Ok((days_of(date), date))
}

/// An RFC 3339 instant (`2026-12-01T14:00:00+08:00`), within 2000 to 2100.
fn parse_instant(field: &str, value: &str) -> Result<Instant, ApiError> {
    let ts: jiff::Timestamp = value.parse().map_err(|_| {
        invalid(format!("{field}: {value:?} is not a time like \"2026-12-01T14:00:00+08:00\""))
    })?;
    let at = ts.as_second();
    if !(946_684_800..=4_133_980_800).contains(&at) {
        return Err(invalid(format!("{field}: {value} is out of range (2000 to 2100)")));
    }
    Ok(at)
}

fn parse_weekday(value: &str) -> Result<usize, ApiError> {
    WEEKDAYS
        .iter()
        .position(|d| *d == value)
        .ok_or_else(|| invalid(format!("weekday: {value:?} is not one of mon..sun")))
}

/// The first instant of a local date in `tz`.
fn start_of_day(tz: &jiff::tz::TimeZone, day: i64) -> Instant {
    date_of(day).to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_second()).unwrap_or(day * 86_400)
}

// ---------------------------------------------------------------- availability

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    /// `mon` ... `sun`.
    #[schema(example = "mon")]
    pub weekday: String,
    #[schema(example = "14:00")]
    pub start: String,
    #[schema(example = "18:00")]
    pub end: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateOverride {
    #[schema(example = "2026-12-24")]
    pub date: String,
    pub start: String,
    pub end: String,
    /// `extra` (more hours) or `off` (hours off; wins over everything).
    pub kind: String,
}

/// A person's availability, in their own time zone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AvailabilityBody {
    /// Read-only: the account's IANA time zone, in which all times here are.
    #[serde(default, skip_deserializing)]
    pub time_zone: String,
    pub weekly: Vec<WeeklyWindow>,
    #[serde(default)]
    pub overrides: Vec<DateOverride>,
}

/// The caller may edit this person's availability: themselves, an admin, or a
/// coordinator of a region where one of the person's teams is posted.
async fn require_person_manager(
    state: &AppState,
    principal: &Principal,
    account_id: &str,
) -> Result<(), ApiError> {
    let caller = principal.account().map_err(|_| ApiError::NotFound)?;
    if caller.id == account_id || caller.has_role(Role::Admin) {
        return Ok(());
    }
    if caller.has_role(Role::Coordinator) {
        let regions = state.store.regions_of_member(account_id).await?;
        if regions.iter().any(|r| caller.regions.contains(r)) {
            return Ok(());
        }
    }
    Err(ApiError::NotFound)
}

async fn availability_body(state: &AppState, account_id: &str) -> Result<AvailabilityBody, ApiError> {
    let account = state.store.account(account_id).await?.ok_or(ApiError::NotFound)?;
    let (weekly, overrides) = state.store.availability_of(account_id).await?;
    Ok(AvailabilityBody {
        time_zone: account.time_zone,
        weekly: weekly
            .iter()
            .map(|w| WeeklyWindow {
                weekday: WEEKDAYS[w.weekday.clamp(0, 6) as usize].into(),
                start: format_time(w.start_minute),
                end: format_time(w.end_minute),
            })
            .collect(),
        overrides: overrides
            .iter()
            .map(|o| DateOverride {
                date: o.date.clone(),
                start: format_time(o.start_minute),
                end: format_time(o.end_minute),
                kind: o.kind.clone(),
            })
            .collect(),
    })
}

#[utoipa::path(
    get,
    path = "/api/accounts/{id}/availability",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    responses((status = 200, body = AvailabilityBody), (status = 404, body = super::ErrorBody))
)]
pub async fn get_availability(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<ApiJson<AvailabilityBody>, ApiError> {
    require_person_manager(&state, &principal, &id).await?;
    Ok(ApiJson(availability_body(&state, &id).await?))
}

/// Replaces a person's weekly windows and date overrides.
#[utoipa::path(
    put,
    path = "/api/accounts/{id}/availability",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id")),
    request_body = AvailabilityBody,
    responses((status = 200, body = AvailabilityBody), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn put_availability(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AvailabilityBody>,
) -> Result<ApiJson<AvailabilityBody>, ApiError> {
    require_person_manager(&state, &principal, &id).await?;
    if body.weekly.len() > 100 || body.overrides.len() > 500 {
        return Err(invalid("at most 100 weekly windows and 500 overrides"));
    }
    let mut weekly = Vec::new();
    for w in &body.weekly {
        let weekday = parse_weekday(&w.weekday)?;
        let (s, e) = parse_window(&w.start, &w.end)?;
        weekly.push(WeeklyRow {
            account_id: id.clone(),
            weekday: weekday as i64,
            start_minute: s.into(),
            end_minute: e.into(),
        });
    }
    let mut overrides = Vec::new();
    for o in &body.overrides {
        parse_date("date", &o.date)?;
        let (s, e) = parse_window(&o.start, &o.end)?;
        if o.kind != "extra" && o.kind != "off" {
            return Err(invalid(format!("kind: {:?} is not \"extra\" or \"off\"", o.kind)));
        }
        overrides.push(OverrideRow {
            account_id: id.clone(),
            date: o.date.clone(),
            start_minute: s.into(),
            end_minute: e.into(),
            kind: o.kind.clone(),
        });
    }
    state.store.replace_availability(&id, &weekly, &overrides).await?;
    state.scheduler.invalidate();
    state
        .audit(
            &principal.actor(),
            "availability.replaced",
            &id,
            serde_json::json!({"weekly": weekly.len(), "overrides": overrides.len()}),
            &source,
        )
        .await?;
    Ok(ApiJson(availability_body(&state, &id).await?))
}

// ---------------------------------------------------------------- teams and rosters

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
    pub regions: Vec<String>,
    pub terminals: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    /// Required when creating.
    pub name: Option<String>,
    /// Account ids (lawyers and interpreters).
    pub members: Option<Vec<String>>,
    pub regions: Option<Vec<String>>,
    pub terminals: Option<Vec<String>>,
}

async fn team_view(state: &AppState, id: &str) -> Result<TeamView, ApiError> {
    let team = state.store.team(id).await?.ok_or(ApiError::NotFound)?;
    let (members, regions, terminals) = state.store.team_links(id).await?;
    Ok(TeamView { id: team.id, name: team.name, members, regions, terminals })
}

/// Aid teams the caller manages (coordinators: teams posted to their regions or to none).
#[utoipa::path(
    get,
    path = "/api/teams",
    tag = "schedule",
    security(("bearer" = [])),
    responses((status = 200, body = [TeamView]), (status = 403, body = super::ErrorBody))
)]
pub async fn teams(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<ApiJson<Vec<TeamView>>, ApiError> {
    principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let mut out = Vec::new();
    for team in state.store.teams().await? {
        let view = team_view(&state, &team.id).await?;
        if view.regions.is_empty() || view.regions.iter().any(|r| principal.manages_region(r)) {
            out.push(view);
        }
    }
    Ok(ApiJson(out))
}

async fn check_team_links(state: &AppState, principal: &Principal, body: &TeamBody) -> Result<(), ApiError> {
    for region in body.regions.iter().flatten() {
        if !principal.manages_region(region) {
            return Err(ApiError::Forbidden);
        }
    }
    for member in body.members.iter().flatten() {
        let account = state.store.account(member).await?;
        if !account.is_some_and(|a| a.has_role(Role::Lawyer) || a.has_role(Role::Interpreter)) {
            return Err(invalid(format!("members: {member:?} is not a lawyer or interpreter")));
        }
    }
    for terminal in body.terminals.iter().flatten() {
        let found = state.store.terminal(terminal).await?;
        if !found.is_some_and(|t| principal.manages_region(&t.region_id)) {
            return Err(invalid(format!("terminals: no terminal {terminal:?} in your regions")));
        }
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/teams",
    tag = "schedule",
    security(("bearer" = [])),
    request_body = TeamBody,
    responses((status = 201, body = TeamView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn create_team(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(body): ApiJson<TeamBody>,
) -> Result<(StatusCode, ApiJson<TeamView>), ApiError> {
    principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let name = body.name.as_deref().map(str::trim).unwrap_or_default();
    if !(1..=200).contains(&name.chars().count()) {
        return Err(invalid("name: 1 to 200 characters"));
    }
    check_team_links(&state, &principal, &body).await?;
    let id = state.store.create_team(name).await?;
    state
        .store
        .set_team_links(&id, body.members.as_deref(), body.regions.as_deref(), body.terminals.as_deref())
        .await?;
    state.scheduler.invalidate();
    state.audit(&principal.actor(), "team.created", &id, serde_json::json!({"name": name}), &source).await?;
    Ok((StatusCode::CREATED, ApiJson(team_view(&state, &id).await?)))
}

/// Replaces a team's members, regions or terminals.
#[utoipa::path(
    patch,
    path = "/api/teams/{id}",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Team id")),
    request_body = TeamBody,
    responses((status = 200, body = TeamView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn update_team(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TeamBody>,
) -> Result<ApiJson<TeamView>, ApiError> {
    principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let current = team_view(&state, &id).await?;
    if !current.regions.iter().all(|r| principal.manages_region(r)) {
        return Err(ApiError::Forbidden);
    }
    if body.name.is_some() {
        return Err(invalid("name cannot be changed"));
    }
    check_team_links(&state, &principal, &body).await?;
    state
        .store
        .set_team_links(&id, body.members.as_deref(), body.regions.as_deref(), body.terminals.as_deref())
        .await?;
    state.scheduler.invalidate();
    state.audit(&principal.actor(), "team.updated", &id, serde_json::Value::Null, &source).await?;
    Ok(ApiJson(team_view(&state, &id).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterBody {
    /// Read-only.
    #[serde(default, skip_deserializing)]
    pub id: String,
    pub team_id: String,
    pub region_id: String,
    #[schema(example = json!(["mon", "wed"]))]
    pub weekdays: Vec<String>,
    #[schema(example = "14:00")]
    pub start: String,
    #[schema(example = "18:00")]
    pub end: String,
    #[schema(example = "2026-12-01")]
    pub starts_on: String,
    #[schema(example = "2027-05-31")]
    pub ends_on: String,
}

fn roster_body(r: &RosterRow) -> RosterBody {
    RosterBody {
        id: r.id.clone(),
        team_id: r.team_id.clone(),
        region_id: r.region_id.clone(),
        weekdays: (0..7).filter(|d| r.weekdays & (1 << d) != 0).map(|d| WEEKDAYS[d].to_owned()).collect(),
        start: format_time(r.start_minute),
        end: format_time(r.end_minute),
        starts_on: r.starts_on.clone(),
        ends_on: r.ends_on.clone(),
    }
}

fn require_region(principal: &Principal, region: &str) -> Result<(), ApiError> {
    if principal.manages_region(region) { Ok(()) } else { Err(ApiError::Forbidden) }
}

#[utoipa::path(
    get,
    path = "/api/regions/{id}/rosters",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Region id")),
    responses((status = 200, body = [RosterBody]), (status = 403, body = super::ErrorBody))
)]
pub async fn rosters(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<ApiJson<Vec<RosterBody>>, ApiError> {
    require_region(&principal, &id)?;
    Ok(ApiJson(state.store.rosters_for_region(&id).await?.iter().map(roster_body).collect()))
}

/// Posts a team to a region on recurring hours over a date range.
#[utoipa::path(
    post,
    path = "/api/rosters",
    tag = "schedule",
    security(("bearer" = [])),
    request_body = RosterBody,
    responses((status = 201, body = RosterBody), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn create_roster(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(body): ApiJson<RosterBody>,
) -> Result<(StatusCode, ApiJson<RosterBody>), ApiError> {
    require_region(&principal, &body.region_id)?;
    if state.store.region(&body.region_id).await?.is_none() {
        return Err(invalid("region_id: no such region"));
    }
    if state.store.team(&body.team_id).await?.is_none() {
        return Err(invalid("team_id: no such team"));
    }
    if body.weekdays.is_empty() {
        return Err(invalid("weekdays: at least one"));
    }
    let mut mask = 0i64;
    for d in &body.weekdays {
        mask |= 1 << parse_weekday(d)?;
    }
    let (s, e) = parse_window(&body.start, &body.end)?;
    let (first, _) = parse_date("starts_on", &body.starts_on)?;
    let (last, _) = parse_date("ends_on", &body.ends_on)?;
    if last < first {
        return Err(invalid("ends_on must not be before starts_on"));
    }
    if last - first > 3 * 366 {
        return Err(invalid("a roster spans at most three years"));
    }
    let row = RosterRow {
        id: String::new(),
        team_id: body.team_id.clone(),
        region_id: body.region_id.clone(),
        weekdays: mask,
        start_minute: s.into(),
        end_minute: e.into(),
        starts_on: body.starts_on.clone(),
        ends_on: body.ends_on.clone(),
    };
    let id = state.store.create_roster(&row).await?;
    state.scheduler.invalidate();
    state
        .audit(
            &principal.actor(),
            "roster.created",
            &id,
            serde_json::json!({"region_id": body.region_id}),
            &source,
        )
        .await?;
    let stored = state.store.roster(&id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, ApiJson(roster_body(&stored))))
}

#[utoipa::path(
    delete,
    path = "/api/rosters/{id}",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Roster id")),
    responses((status = 204), (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody))
)]
pub async fn delete_roster(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let roster = state.store.roster(&id).await?.ok_or(ApiError::NotFound)?;
    require_region(&principal, &roster.region_id)?;
    state.store.delete_roster(&id).await?;
    state.scheduler.invalidate();
    state.audit(&principal.actor(), "roster.deleted", &id, serde_json::Value::Null, &source).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- on duty and coverage

#[derive(Debug, Deserialize, IntoParams)]
pub struct AtQuery {
    /// RFC 3339; default now.
    pub at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnDutyView {
    pub account_id: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub languages: Vec<Language>,
    pub topics: Vec<Topic>,
    pub duty: DutyReason,
}

/// Who is on duty for a region at a time: members of the teams posted there
/// who are available or rostered.
#[utoipa::path(
    get,
    path = "/api/regions/{id}/on-duty",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Region id"), AtQuery),
    responses((status = 200, body = [OnDutyView]), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn on_duty(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<AtQuery>,
) -> Result<ApiJson<Vec<OnDutyView>>, ApiError> {
    require_region(&principal, &id)?;
    let at = match &query.at {
        Some(at) => parse_instant("at", at)?,
        None => unix_now(),
    };
    let snapshot = state.scheduler.snapshot().await?;
    Ok(ApiJson(
        snapshot
            .on_duty_for_region(&id, at)
            .into_iter()
            .map(|(p, duty)| OnDutyView {
                account_id: p.account.id.clone(),
                display_name: p.account.display_name.clone(),
                roles: p.account.roles.clone(),
                languages: p.account.languages.clone(),
                topics: p.account.topics.clone(),
                duty,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CoverageQuery {
    /// First local date, `YYYY-MM-DD`.
    pub from: String,
    /// Day after the last local date (at most 62 days after `from`).
    pub to: String,
    /// The language someone on duty must speak.
    pub language: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Span {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CoverageView {
    pub region_id: String,
    pub language: String,
    /// The region's time zone; `from` and `to` are local dates there.
    pub time_zone: String,
    pub from: String,
    pub to: String,
    /// When at least one person on duty for the region speaks the language.
    pub covered: Vec<Span>,
    /// When nobody does.
    pub gaps: Vec<Span>,
    pub covered_minutes: i64,
    pub total_minutes: i64,
}

fn spans(intervals: &[(Instant, Instant)]) -> Vec<Span> {
    intervals.iter().map(|&(s, e)| Span { start: rfc3339(s), end: rfc3339(e) }).collect()
}

/// Hours of a date range in which someone speaking the language is on duty
/// for the region, and the gaps.
#[utoipa::path(
    get,
    path = "/api/regions/{id}/coverage",
    tag = "schedule",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Region id"), CoverageQuery),
    responses((status = 200, body = CoverageView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn coverage(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<CoverageQuery>,
) -> Result<ApiJson<CoverageView>, ApiError> {
    require_region(&principal, &id)?;
    let region = state.store.region(&id).await?.ok_or(ApiError::NotFound)?;
    let language = Language::parse(&query.language).map_err(|e| invalid(format!("language: {e}")))?;
    let (from_day, _) = parse_date("from", &query.from)?;
    let (to_day, _) = parse_date("to", &query.to)?;
    if to_day <= from_day || to_day - from_day > 62 {
        return Err(invalid("to must be 1 to 62 days after from"));
    }
    let snapshot = state.scheduler.snapshot().await?;
    let tz = snapshot.region_zone(&id).clone();
    let (from, to) = (start_of_day(&tz, from_day), start_of_day(&tz, to_day));
    let covered = intervals::clip(&snapshot.coverage(&id, &language, from, to), from, to);
    let gaps = intervals::gaps(&covered, from, to);
    let covered_minutes = covered.iter().map(|(s, e)| (e - s) / 60).sum();
    Ok(ApiJson(CoverageView {
        region_id: id,
        language: language.to_string(),
        time_zone: region.time_zone,
        from: query.from,
        to: query.to,
        covered: spans(&covered),
        gaps: spans(&gaps),
        covered_minutes,
        total_minutes: (to - from) / 60,
    }))
}

// ---------------------------------------------------------------- appointments

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    /// RFC 3339; on the slot grid, at least `min_notice_minutes` ahead.
    #[schema(example = "2026-12-01T14:00:00+08:00")]
    pub start: String,
    pub language: Language,
    pub topic: Topic,
    /// A named lawyer (a follow-up); otherwise assigned by round robin.
    pub lawyer_id: Option<String>,
    /// Coordinators booking on a resident's behalf name the terminal.
    pub terminal_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    pub start: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SlotsQuery {
    pub language: String,
    pub topic: String,
    /// RFC 3339; default now.
    pub from: Option<String>,
    /// RFC 3339; default and at most 14 days after `from`.
    pub to: Option<String>,
    /// Coordinators: the region. Terminals: their own.
    pub region_id: Option<String>,
    pub lawyer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    pub start: String,
    pub end: String,
    /// How many lawyers could take it.
    pub lawyers: usize,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeQuery {
    /// RFC 3339; default 30 days ago.
    pub from: Option<String>,
    /// RFC 3339; default 90 days ahead.
    pub to: Option<String>,
    /// Coordinators: one of their regions (default all of them).
    pub region_id: Option<String>,
}

/// The terminal and region an appointment is for, from the caller.
async fn booking_place(
    state: &AppState,
    principal: &Principal,
    terminal_id: Option<&str>,
) -> Result<(String, String), ApiError> {
    match principal {
        Principal::Terminal { terminal } => {
            if terminal_id.is_some_and(|t| t != terminal.id) {
                return Err(ApiError::Forbidden);
            }
            Ok((terminal.id.clone(), terminal.region_id.clone()))
        }
        Principal::Account { .. } => {
            principal.require_any(&[Role::Coordinator, Role::Admin])?;
            let id =
                terminal_id.ok_or_else(|| invalid("terminal_id: required when booking for a resident"))?;
            let terminal =
                state.store.terminal(id).await?.ok_or_else(|| invalid("terminal_id: no such terminal"))?;
            require_region(principal, &terminal.region_id)?;
            Ok((terminal.id, terminal.region_id))
        }
    }
}

impl AppState {
    /// Checks a requested start against the grid, the notice and the horizon.
    fn check_start(&self, start: Instant) -> Result<Instant, ApiError> {
        let config = &self.scheduler.config;
        let now = unix_now();
        if start <= now {
            return Err(ApiError::bad_request("in_the_past", "that time has passed"));
        }
        if start % (i64::from(config.slot_minutes) * 60) != 0 {
            return Err(ApiError::bad_request(
                "off_grid",
                format!("appointments start every {} minutes", config.slot_minutes),
            ));
        }
        if start < now + i64::from(config.min_notice_minutes) * 60 {
            return Err(ApiError::bad_request(
                "too_soon",
                format!("book at least {} minutes ahead", config.min_notice_minutes),
            ));
        }
        if start > now + i64::from(config.horizon_days) * 86_400 {
            return Err(ApiError::bad_request(
                "too_far",
                format!("book at most {} days ahead", config.horizon_days),
            ));
        }
        Ok(start + i64::from(config.appointment_minutes) * 60)
    }

    fn booking_for(
        &self,
        snapshot: &Snapshot,
        person: &Person,
        start: Instant,
        end: Instant,
    ) -> (i64, i64, i64) {
        let tz = snapshot.zone_of(person);
        let day = crate::schedule::civil::local_day_minute(tz, start).0;
        let bounds = (start_of_day(tz, day), start_of_day(tz, day + 1));
        let _ = end;
        let cap = person.daily_cap.unwrap_or(i64::from(self.scheduler.config.default_daily_cap));
        (bounds.0, bounds.1, cap)
    }
}

/// Round robin: the lawyers given an appointment longest ago (or never) first,
/// keeping the region's team members ahead of everyone else.
fn round_robin<'a>(mut candidates: Vec<(&'a Person, bool)>, last: &HashMap<String, i64>) -> Vec<&'a Person> {
    candidates.sort_by_key(|(p, in_team)| {
        (!in_team, last.get(&p.account.id).copied().unwrap_or(i64::MIN), p.account.username.clone())
    });
    candidates.into_iter().map(|(p, _)| p).collect()
}

/// Books an appointment: a terminal for itself, or a coordinator for a
/// resident at a terminal in their region.
#[utoipa::path(
    post,
    path = "/api/appointments",
    tag = "appointments",
    security(("bearer" = [])),
    request_body = BookRequest,
    responses(
        (status = 201, body = AppointmentView),
        (status = 400, description = "`in_the_past`, `too_soon`, `too_far`, `off_grid`, `invalid_field` (e.g. a named lawyer who does not speak the language)", body = super::ErrorBody),
        (status = 409, description = "`slot_taken`, `terminal_busy`, `not_available`, `no_lawyer_available`", body = super::ErrorBody),
    )
)]
pub async fn book(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(request): ApiJson<BookRequest>,
) -> Result<(StatusCode, ApiJson<AppointmentView>), ApiError> {
    let (terminal_id, region_id) = booking_place(&state, &principal, request.terminal_id.as_deref()).await?;
    let start = parse_instant("start", &request.start)?;
    let end = state.check_start(start)?;
    let snapshot = state.scheduler.snapshot().await?;
    let candidates: Vec<&Person> = match &request.lawyer_id {
        Some(id) => {
            let person = snapshot
                .person(id)
                .filter(|p| p.account.has_role(Role::Lawyer))
                .ok_or_else(|| invalid("lawyer_id: no such active lawyer"))?;
            if !person.account.languages.contains(&request.language) {
                return Err(invalid(format!("this lawyer does not speak {}", request.language)));
            }
            if !person.account.topics.contains(&request.topic) {
                return Err(invalid(format!("this lawyer does not advise on {}", request.topic)));
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
            let last: HashMap<String, i64> = state.store.last_assignments().await?.into_iter().collect();
            round_robin(
                snapshot.eligible_lawyers(&region_id, &request.language, request.topic, start, end),
                &last,
            )
        }
    };
    if candidates.is_empty() {
        return Err(ApiError::Clash {
            code: "no_lawyer_available",
            message: "nobody who speaks this language is free then".into(),
        });
    }
    for person in candidates {
        let (day_start, day_end, cap) = state.booking_for(&snapshot, person, start, end);
        let booking = Booking {
            terminal_id: terminal_id.clone(),
            region_id: region_id.clone(),
            lawyer_id: person.account.id.clone(),
            language: request.language.to_string(),
            topic: request.topic.code().into(),
            starts_at: start,
            ends_at: end,
            buffer_secs: i64::from(state.scheduler.config.buffer_minutes) * 60,
            booked_by: principal.actor(),
            day: (day_start, day_end),
            daily_cap: cap,
        };
        match state.store.book(&booking).await? {
            BookOutcome::Booked(id) => {
                let appointment = state.store.appointment(&id).await?.ok_or(ApiError::NotFound)?;
                state
                    .audit(
                        &principal.actor(),
                        "appointment.booked",
                        &id,
                        serde_json::json!({"lawyer_id": appointment.lawyer_id, "start": start}),
                        &source,
                    )
                    .await?;
                return Ok((StatusCode::CREATED, ApiJson(AppointmentView::from(&appointment))));
            }
            BookOutcome::TerminalBusy => {
                return Err(ApiError::Clash {
                    code: "terminal_busy",
                    message: "this terminal already has an appointment then".into(),
                });
            }
            BookOutcome::LawyerBusy | BookOutcome::CapReached => continue,
        }
    }
    let (code, message) = if request.lawyer_id.is_some() {
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
    Query(query): Query<SlotsQuery>,
) -> Result<ApiJson<Vec<SlotView>>, ApiError> {
    let (terminal_id, region_id) = match &principal {
        Principal::Terminal { terminal } => (Some(terminal.id.clone()), terminal.region_id.clone()),
        Principal::Account { .. } => {
            principal.require_any(&[Role::Coordinator, Role::Admin])?;
            let region = query.region_id.clone().ok_or_else(|| invalid("region_id: required"))?;
            require_region(&principal, &region)?;
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
        .map(|(p, in_team)| {
            snapshot.duty_intervals(p, in_team.then_some(region_id.as_str()), first, latest + length)
        })
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
    responses((status = 200, body = [AppointmentView]), (status = 400, body = super::ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<RangeQuery>,
) -> Result<ApiJson<Vec<AppointmentView>>, ApiError> {
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
            let regions: Vec<String> = match &query.region_id {
                Some(r) => {
                    require_region(&principal, r)?;
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
    id: &str,
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
    Path(id): Path<String>,
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
    Path(id): Path<String>,
) -> Result<ApiJson<AppointmentView>, ApiError> {
    visible_appointment(&state, &principal, &id).await?;
    if !state.store.close_appointment(&id, "cancelled").await? {
        return Err(ApiError::Clash {
            code: "not_booked",
            message: "this appointment is no longer booked".into(),
        });
    }
    state.audit(&principal.actor(), "appointment.cancelled", &id, serde_json::Value::Null, &source).await?;
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
    responses((status = 200, body = AppointmentView), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn reschedule(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
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
    let (day_start, day_end, cap) = state.booking_for(&snapshot, person, start, end);
    let booking = Booking {
        terminal_id: appointment.terminal_id.clone(),
        region_id: appointment.region_id.clone(),
        lawyer_id: appointment.lawyer_id.clone(),
        language: appointment.language.clone(),
        topic: appointment.topic.clone(),
        starts_at: start,
        ends_at: end,
        buffer_secs: i64::from(state.scheduler.config.buffer_minutes) * 60,
        booked_by: principal.actor(),
        day: (day_start, day_end),
        daily_cap: cap,
    };
    match state.store.reschedule(&id, &booking).await? {
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
    }
    state
        .audit(
            &principal.actor(),
            "appointment.rescheduled",
            &id,
            serde_json::json!({"start": start}),
            &source,
        )
        .await?;
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
    responses((status = 200, body = AppointmentView), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn no_show(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    Path(id): Path<String>,
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
    if !state.store.close_appointment(&id, "no_show").await? {
        return Err(ApiError::Clash {
            code: "not_booked",
            message: "this appointment is no longer booked".into(),
        });
    }
    state.audit(&principal.actor(), "appointment.no_show", &id, serde_json::Value::Null, &source).await?;
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
    state.store.set_calendar_token(&account.id, &fingerprint(&token)).await?;
    state
        .audit(&principal.actor(), "calendar.feed_created", &account.id, serde_json::Value::Null, &source)
        .await?;
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
    state.store.delete_calendar_token(&account.id).await?;
    state
        .audit(&principal.actor(), "calendar.feed_revoked", &account.id, serde_json::Value::Null, &source)
        .await?;
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
    let account = state.store.account(&account_id).await?.ok_or(ApiError::NotFound)?;
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
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response())
}
