//! The scheduler's API: availability, aid teams, duty rosters, who is on duty,
//! and coverage and gaps. Appointments are in `appointments.rs`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::views::rfc3339;
use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::{Language, Role, Topic};
use crate::ids::{AccountId, RegionId, TerminalId};
use crate::schedule::civil::{Instant, days_of};
use crate::schedule::{DutyReason, intervals};
use crate::store::{AuditEntry, OverrideRow, RosterRow, TeamLinks, WeeklyRow};
use crate::unix_now;

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub(super) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_field", message)
}

/// `HH:MM` to minutes since midnight; `24:00` is the end of the day.
fn parse_time(field: &str, value: &str) -> Result<u16, ApiError> {
    let parsed = value.split_once(':').and_then(|(h, m)| {
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (value.len() == 5 && m < 60 && (h < 24 || (h == 24 && m == 0))).then(|| h * 60 + m)
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
pub(super) fn parse_date(field: &str, value: &str) -> Result<(i64, Date), ApiError> {
    let date: Date = value
        .parse()
        .map_err(|_| invalid(format!("{field}: {value:?} is not a date like \"2026-12-01\"")))?;
    if !(2000..=2100).contains(&date.year()) {
        return Err(invalid(format!("{field}: {value} is out of range (2000 to 2100)")));
    }
    Ok((days_of(date), date))
}

/// An RFC 3339 instant (`2026-12-01T14:00:00+08:00`), within 2000 to 2100.
pub(super) fn parse_instant(field: &str, value: &str) -> Result<Instant, ApiError> {
    let ts: jiff::Timestamp = value.parse().map_err(|_| {
        invalid(format!("{field}: {value:?} is not a time like \"2026-12-01T14:00:00+08:00\""))
    })?;
    let at = ts.as_second();
    if !(946_684_800..=4_133_980_800).contains(&at) {
        return Err(invalid(format!("{field}: {value} is out of range (2000 to 2100)")));
    }
    Ok(at)
}

/// A day of the week, as rosters name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday first, as `WEEKDAYS`.
    const ALL: [Weekday; 7] =
        [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
}

fn parse_weekday(value: &str) -> Result<usize, ApiError> {
    WEEKDAYS
        .iter()
        .position(|d| *d == value)
        .ok_or_else(|| invalid(format!("weekday: {value:?} is not one of mon..sun")))
}

pub(super) use crate::schedule::civil::start_of_day;

// ---------------------------------------------------------------- availability

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    /// `mon` ... `sun`.
    #[schema(example = "mon", pattern = "^(mon|tue|wed|thu|fri|sat|sun)$")]
    pub weekday: String,
    #[schema(example = "14:00", pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub start: String,
    #[schema(example = "18:00", pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub end: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DateOverride {
    #[schema(example = "2026-12-24", format = Date)]
    pub date: String,
    #[schema(pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub start: String,
    #[schema(pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub end: String,
    /// `extra` (more hours) or `off` (hours off; wins over everything).
    #[schema(pattern = "^(extra|off)$")]
    pub kind: String,
}

/// A person's availability, in their own time zone.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AvailabilityBody {
    /// The account's IANA time zone, in which all times here are. Read-only:
    /// ignored when sent.
    #[serde(default)]
    #[schema(read_only)]
    pub time_zone: String,
    pub weekly: Vec<WeeklyWindow>,
    #[serde(default)]
    pub overrides: Vec<DateOverride>,
}

/// The caller may edit this person's availability: themselves, an admin, or a
/// coordinator who manages the person (see [`Principal::manages_volunteer`]).
async fn require_person_manager(
    state: &AppState,
    principal: &Principal,
    account_id: &AccountId,
) -> Result<(), ApiError> {
    let caller = principal.account().map_err(|_| ApiError::NotFound)?;
    if caller.id == *account_id || caller.has_role(Role::Admin) {
        return Ok(());
    }
    let Some(target) = state.store.account(account_id).await? else { return Err(ApiError::NotFound) };
    let volunteer = target.roles.iter().all(|r| matches!(r, Role::Lawyer | Role::Interpreter));
    if volunteer && principal.manages_volunteer(&state.store.regions_of_member(account_id).await?) {
        return Ok(());
    }
    Err(ApiError::NotFound)
}

async fn availability_body(state: &AppState, account_id: &AccountId) -> Result<AvailabilityBody, ApiError> {
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
    Path(id): Path<AccountId>,
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
    Path(id): Path<AccountId>,
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
    let audit = AuditEntry::new(
        &principal.actor(),
        "availability.replaced",
        &id,
        serde_json::json!({"weekly": weekly.len(), "overrides": overrides.len()}),
        &source,
    );
    state.store.replace_availability(&id, &weekly, &overrides, &audit).await?;
    state.scheduler.invalidate();
    Ok(ApiJson(availability_body(&state, &id).await?))
}

// ---------------------------------------------------------------- teams and rosters

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    #[schema(value_type = Vec<String>)]
    pub members: Vec<AccountId>,
    #[schema(value_type = Vec<String>)]
    pub regions: Vec<RegionId>,
    #[schema(value_type = Vec<String>)]
    pub terminals: Vec<TerminalId>,
}

/// A new team: its name and, optionally, what it is linked to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Account ids (lawyers and interpreters).
    #[schema(value_type = Option<Vec<String>>)]
    pub members: Option<Vec<AccountId>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub regions: Option<Vec<RegionId>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub terminals: Option<Vec<TerminalId>>,
}

impl NewTeam {
    fn links(&self) -> TeamBody {
        TeamBody {
            members: self.members.clone(),
            regions: self.regions.clone(),
            terminals: self.terminals.clone(),
        }
    }
}

/// What a team is linked to; each list given replaces the team's. A team's
/// name cannot be changed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamBody {
    /// Account ids (lawyers and interpreters).
    #[schema(value_type = Option<Vec<String>>)]
    pub members: Option<Vec<AccountId>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub regions: Option<Vec<RegionId>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub terminals: Option<Vec<TerminalId>>,
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

/// Checks what a team is to be linked to, as `body` and the team's current
/// links (`current`, when it exists) would make it: every region exists and is
/// the caller's, every terminal is in the caller's regions, every member is a
/// volunteer the caller may act on. Being in a team posted to a region lets
/// that region's coordinators manage the person, so a coordinator cannot add
/// someone who serves only other regions (an admin can): that would take them
/// over.
async fn check_team_links(
    state: &AppState,
    principal: &Principal,
    body: &TeamBody,
    current: Option<&TeamView>,
) -> Result<(), ApiError> {
    for region in body.regions.iter().flatten() {
        if state.store.region(region).await?.is_none() {
            return Err(invalid(format!("regions: no region {region:?}")));
        }
        if !principal.manages_region(region) {
            return Err(ApiError::Forbidden);
        }
    }
    let members = body.members.as_ref().or(current.map(|c| &c.members));
    let regions_change = body.regions.is_some() || body.members.is_some();
    for member in members.into_iter().flatten() {
        let account = state.store.account(member).await?;
        if !account.is_some_and(|a| a.has_role(Role::Lawyer) || a.has_role(Role::Interpreter)) {
            return Err(invalid(format!("members: {member:?} is not a lawyer or interpreter")));
        }
        if regions_change && !principal.manages_volunteer(&state.store.regions_of_member(member).await?) {
            return Err(ApiError::Denied {
                code: "serves_elsewhere",
                message: format!(
                    "members: {member:?} serves other regions' teams; ask an admin to add them to this team"
                ),
            });
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

fn links(body: &TeamBody) -> TeamLinks<'_> {
    TeamLinks {
        members: body.members.as_deref(),
        regions: body.regions.as_deref(),
        terminals: body.terminals.as_deref(),
    }
}

#[utoipa::path(
    post,
    path = "/api/teams",
    tag = "schedule",
    security(("bearer" = [])),
    request_body = NewTeam,
    responses((status = 201, body = TeamView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody), (status = 409, body = super::ErrorBody))
)]
pub async fn create_team(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    ApiJson(new): ApiJson<NewTeam>,
) -> Result<(StatusCode, ApiJson<TeamView>), ApiError> {
    principal.require_any(&[Role::Coordinator, Role::Admin])?;
    let name = new.name.trim();
    let body = new.links();
    if !(1..=200).contains(&name.chars().count()) {
        return Err(invalid("name: 1 to 200 characters"));
    }
    check_team_links(&state, &principal, &body, None).await?;
    let audit =
        AuditEntry::new(&principal.actor(), "team.created", "", serde_json::json!({"name": name}), &source);
    let id = state.store.create_team(name, links(&body), &audit).await?;
    state.scheduler.invalidate();
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
    check_team_links(&state, &principal, &body, Some(&current)).await?;
    let audit = AuditEntry::new(&principal.actor(), "team.updated", &id, serde_json::Value::Null, &source);
    state.store.set_team_links(&id, links(&body), &audit).await?;
    state.scheduler.invalidate();
    Ok(ApiJson(team_view(&state, &id).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterBody {
    /// Read-only: ignored when sent.
    #[serde(default)]
    #[schema(read_only)]
    pub id: String,
    #[schema(min_length = 1, max_length = 64)]
    pub team_id: String,
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub region_id: RegionId,
    #[schema(example = json!(["mon", "wed"]), min_items = 1)]
    pub weekdays: Vec<Weekday>,
    #[schema(example = "14:00", pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub start: String,
    #[schema(example = "18:00", pattern = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub end: String,
    #[schema(example = "2026-12-01", format = Date)]
    pub starts_on: String,
    #[schema(example = "2027-05-31", format = Date)]
    pub ends_on: String,
}

fn roster_body(r: &RosterRow) -> RosterBody {
    RosterBody {
        id: r.id.clone(),
        team_id: r.team_id.clone(),
        region_id: r.region_id.clone(),
        weekdays: (0..7).filter(|d| r.weekdays & (1 << d) != 0).map(|d| Weekday::ALL[d]).collect(),
        start: format_time(r.start_minute),
        end: format_time(r.end_minute),
        starts_on: r.starts_on.clone(),
        ends_on: r.ends_on.clone(),
    }
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
    Path(id): Path<RegionId>,
) -> Result<ApiJson<Vec<RosterBody>>, ApiError> {
    principal.require_region(&id)?;
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
    principal.require_region(&body.region_id)?;
    if state.store.region(&body.region_id).await?.is_none() {
        return Err(invalid("region_id: no such region"));
    }
    if state.store.team(&body.team_id).await?.is_none() {
        return Err(invalid("team_id: no such team"));
    }
    // Putting a team on duty in a region is acting on its members.
    let (members, _, _) = state.store.team_links(&body.team_id).await?;
    for member in &members {
        if !principal.manages_volunteer(&state.store.regions_of_member(member).await?) {
            return Err(ApiError::Denied {
                code: "serves_elsewhere",
                message: "team_id: the team has members who serve other regions; ask an admin".into(),
            });
        }
    }
    if body.weekdays.is_empty() {
        return Err(invalid("weekdays: at least one"));
    }
    let mut mask = 0i64;
    for d in &body.weekdays {
        mask |= 1 << *d as usize;
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
    let audit = AuditEntry::new(
        &principal.actor(),
        "roster.created",
        "",
        serde_json::json!({"region_id": body.region_id}),
        &source,
    );
    let id = state.store.create_roster(&row, &audit).await?;
    state.scheduler.invalidate();
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
    principal.require_region(&roster.region_id)?;
    let audit = AuditEntry::new(&principal.actor(), "roster.deleted", &id, serde_json::Value::Null, &source);
    state.store.delete_roster(&id, &audit).await?;
    state.scheduler.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- on duty and coverage

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// RFC 3339; default now.
    #[param(format = DateTime)]
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
    Path(id): Path<RegionId>,
    query: ApiQuery<AtQuery>,
) -> Result<ApiJson<Vec<OnDutyView>>, ApiError> {
    principal.require_region(&id)?;
    let query = query.parse()?;
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
                account_id: p.account.id.to_string(),
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
#[into_params(parameter_in = Query)]
pub struct CoverageQuery {
    /// First local date, `YYYY-MM-DD`.
    #[param(format = Date)]
    pub from: String,
    /// Day after the last local date (at most 62 days after `from`).
    #[param(format = Date)]
    pub to: String,
    /// The language someone on duty must speak.
    #[param(pattern = "^[a-z]{2,3}$", example = "bo")]
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
    responses((status = 404, description = "no such region", body = super::ErrorBody), (status = 200, body = CoverageView), (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody))
)]
pub async fn coverage(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<RegionId>,
    query: ApiQuery<CoverageQuery>,
) -> Result<ApiJson<CoverageView>, ApiError> {
    principal.require_region(&id)?;
    let query = query.parse()?;
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
        region_id: id.into_string(),
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
