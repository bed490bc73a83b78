//! Service records: what the volunteers gave (consultations, minutes in
//! calls, appointments kept, referrals made, ratings), per volunteer, aid team
//! or region over any period; as JSON or CSV, as a volunteer's service
//! certificate and as a region's monthly report for the justice bureau (PDF,
//! in Tibetan, Chinese and English). A volunteer sees their own; a
//! coordinator their regions'; an admin all. Every read is audited.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::schedule::{invalid, parse_date};
use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::Role;
use crate::ids::{AccountId, RegionId};
use crate::pdf::{Draft, Fonts, PAGE_WIDTH};
use crate::schedule::civil::start_of_day;
use crate::store::ServiceRow;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// First date, `YYYY-MM-DD` (each region's own calendar).
    #[param(format = Date)]
    pub from: String,
    /// Day after the last date; at most 366 days after `from`.
    #[param(format = Date)]
    pub to: String,
    /// `volunteer` (the default), `team` or `region`.
    #[param(pattern = "^(volunteer|team|region)$")]
    pub by: Option<String>,
    /// `json` (the default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// What one volunteer, team or region gave in the period.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct ServiceLine {
    /// The account's, team's or region's id; empty for the total.
    pub key: String,
    pub name: String,
    pub consultations: u64,
    /// Minutes in calls, of the consultations that ended.
    pub minutes: u64,
    /// Consultations that were a booked appointment, kept.
    pub appointments_kept: u64,
    /// Referrals the residents agreed to.
    pub referrals: u64,
    pub ratings: u64,
    pub rating_avg: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceRecords {
    pub from: String,
    pub to: String,
    pub by: String,
    pub lines: Vec<ServiceLine>,
    /// Over the period's consultations in the caller's reach, each once.
    pub total: ServiceLine,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    consultations: u64,
    seconds: i64,
    appointments: u64,
    referrals: u64,
    ratings: u64,
    rating_sum: i64,
}

impl Tally {
    fn add(&mut self, r: &ServiceRow) {
        self.consultations += 1;
        self.seconds += r.ended_at.map_or(0, |end| (end - r.started_at).max(0));
        self.appointments += u64::from(r.appointment);
        self.referrals += u64::try_from(r.referrals).unwrap_or(0);
        if let Some(rating) = r.rating {
            self.ratings += 1;
            self.rating_sum += rating;
        }
    }

    fn line(&self, key: &str, name: &str) -> ServiceLine {
        ServiceLine {
            key: key.to_owned(),
            name: name.to_owned(),
            consultations: self.consultations,
            minutes: u64::try_from(self.seconds / 60).unwrap_or(0),
            appointments_kept: self.appointments,
            referrals: self.referrals,
            ratings: self.ratings,
            rating_avg: (self.ratings > 0)
                .then(|| (self.rating_sum as f64 / self.ratings as f64 * 100.0).round() / 100.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Volunteer,
    Team,
    Region,
}

/// What a refused read of the service records is audited as.
const DENIED: &str = "service_records.denied";

fn by_name(by: By) -> &'static str {
    match by {
        By::Volunteer => "volunteer",
        By::Team => "team",
        By::Region => "region",
    }
}

/// Whose consultations the caller may count.
enum Reach {
    All,
    /// A coordinator's regions, and their own consultations.
    Regions(Vec<RegionId>, AccountId),
    /// A volunteer's own consultations.
    Own(AccountId),
}

impl Reach {
    fn of(principal: &Principal) -> Result<Reach, ApiError> {
        let account = principal.account()?;
        Ok(if account.has_role(Role::Admin) {
            Reach::All
        } else if account.has_role(Role::Coordinator) {
            Reach::Regions(account.regions.clone(), account.id.clone())
        } else if account.has_role(Role::Lawyer) || account.has_role(Role::Interpreter) {
            Reach::Own(account.id.clone())
        } else {
            return Err(ApiError::Forbidden);
        })
    }

    fn covers(&self, r: &ServiceRow) -> bool {
        let took_part = |me: &AccountId| r.lawyer_id == *me || r.interpreter_id.as_ref() == Some(me);
        match self {
            Reach::All => true,
            Reach::Regions(regions, me) => regions.contains(&r.region_id) || took_part(me),
            Reach::Own(me) => took_part(me),
        }
    }
}

/// The period's consultations in `[from_day, to_day)` of each one's region's calendar.
async fn rows_in(state: &AppState, from_day: i64, to_day: i64) -> Result<Vec<ServiceRow>, ApiError> {
    let snapshot = state.scheduler.snapshot().await?;
    let rows = state.store.service_rows((from_day - 1) * 86_400, (to_day + 1) * 86_400).await?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            let tz = snapshot.region_zone(&r.region_id);
            start_of_day(tz, from_day) <= r.started_at && r.started_at < start_of_day(tz, to_day)
        })
        .collect())
}

/// The last day of a period whose `to` is the day after it (for people and file names).
fn last_day(to: &str) -> String {
    to.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.yesterday().ok())
        .map(|d| d.to_string())
        .unwrap_or_default()
}

fn period(from: &str, to: &str) -> Result<(i64, i64), ApiError> {
    let (from_day, _) = parse_date("from", from)?;
    let (to_day, _) = parse_date("to", to)?;
    if to_day <= from_day || to_day - from_day > 366 {
        return Err(invalid("to must be 1 to 366 days after from"));
    }
    Ok((from_day, to_day))
}

/// Names of accounts, teams and regions, and the teams' members.
struct Names {
    accounts: BTreeMap<String, String>,
    regions: BTreeMap<String, String>,
    teams: Vec<(String, String, Vec<AccountId>)>,
}

impl Names {
    async fn load(state: &AppState, with_teams: bool) -> Result<Names, ApiError> {
        let accounts =
            state.store.accounts().await?.into_iter().map(|a| (a.id.to_string(), a.display_name)).collect();
        let regions = state.store.regions().await?.into_iter().map(|r| (r.id.to_string(), r.name)).collect();
        let mut teams = Vec::new();
        if with_teams {
            for team in state.store.teams().await? {
                let (members, _, _) = state.store.team_links(&team.id).await?;
                teams.push((team.id, team.name, members));
            }
        }
        Ok(Names { accounts, regions, teams })
    }

    fn account<'a>(&'a self, id: &'a str) -> &'a str {
        self.accounts.get(id).map_or(id, String::as_str)
    }

    fn region<'a>(&'a self, id: &'a str) -> &'a str {
        self.regions.get(id).map_or(id, String::as_str)
    }
}

/// One line per volunteer, team or region, by name.
fn lines(rows: &[ServiceRow], by: By, names: &Names, only: Option<&AccountId>) -> Vec<ServiceLine> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for r in rows {
        match by {
            By::Volunteer => {
                for person in std::iter::once(&r.lawyer_id).chain(r.interpreter_id.as_ref()) {
                    if only.is_none_or(|me| me == person) {
                        tallies.entry(person.to_string()).or_default().add(r);
                    }
                }
            }
            By::Team => {
                for (id, _, members) in &names.teams {
                    let served =
                        members.iter().any(|m| *m == r.lawyer_id || r.interpreter_id.as_ref() == Some(m));
                    if served {
                        tallies.entry(id.clone()).or_default().add(r);
                    }
                }
            }
            By::Region => tallies.entry(r.region_id.to_string()).or_default().add(r),
        }
    }
    let name = |key: &str| match by {
        By::Volunteer => names.account(key).to_owned(),
        By::Region => names.region(key).to_owned(),
        By::Team => names.teams.iter().find(|t| t.0 == key).map_or_else(|| key.to_owned(), |t| t.1.clone()),
    };
    let mut out: Vec<ServiceLine> = tallies.iter().map(|(key, tally)| tally.line(key, &name(key))).collect();
    out.sort_by(|a, b| (&a.name, &a.key).cmp(&(&b.name, &b.key)));
    out
}

fn total(rows: &[ServiceRow]) -> ServiceLine {
    let mut tally = Tally::default();
    rows.iter().for_each(|r| tally.add(r));
    tally.line("", "")
}

fn csv(records: &ServiceRecords) -> String {
    let mut out =
        String::from("key,name,consultations,minutes,appointments_kept,referrals,ratings,rating_avg\n");
    for l in records.lines.iter().chain(std::iter::once(&records.total)) {
        let name = if l.key.is_empty() { "total" } else { &l.name };
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            l.key,
            super::csv_text(name),
            l.consultations,
            l.minutes,
            l.appointments_kept,
            l.referrals,
            l.ratings,
            l.rating_avg.map(|r| format!("{r:.2}")).unwrap_or_default(),
        ));
    }
    out
}

/// Service records per volunteer, aid team or region: a volunteer their own
/// line, a coordinator their regions', an admin all.
#[utoipa::path(
    get,
    path = "/api/service-records",
    tag = "service records",
    security(("bearer" = [])),
    params(RecordsQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`",
            content((ServiceRecords = "application/json"), (String = "text/csv"))),
        (status = 400, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody)
    )
)]
pub async fn records(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    query: ApiQuery<RecordsQuery>,
) -> Result<Response, ApiError> {
    let reach = state.audit_refusal(&principal, DENIED, "", &source, Reach::of(&principal)).await?;
    let query = query.parse()?;
    let by = match query.by.as_deref() {
        None | Some("volunteer") => By::Volunteer,
        Some("team") => By::Team,
        Some("region") => By::Region,
        Some(other) => return Err(invalid(format!("by: volunteer, team or region, not {other:?}"))),
    };
    let as_csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(invalid(format!("format: json or csv, not {other:?}"))),
    };
    let only = match &reach {
        Reach::Own(me) if by == By::Volunteer => Some(me.clone()),
        Reach::Own(_) => {
            return Err(state.refuse(&principal, DENIED, by_name(by), &source).await);
        }
        _ => None,
    };
    let (from_day, to_day) = period(&query.from, &query.to)?;
    let rows: Vec<ServiceRow> =
        rows_in(&state, from_day, to_day).await?.into_iter().filter(|r| reach.covers(r)).collect();
    let names = Names::load(&state, by == By::Team).await?;
    let by_name = by_name(by);
    let records = ServiceRecords {
        lines: lines(&rows, by, &names, only.as_ref()),
        total: if only.is_some() {
            // Their own line, as a total: no key, no name.
            let own = lines(&rows, By::Volunteer, &names, only.as_ref()).pop().unwrap_or_default();
            ServiceLine { key: String::new(), name: String::new(), ..own }
        } else {
            total(&rows)
        },
        from: query.from,
        to: query.to,
        by: by_name.to_owned(),
    };
    state
        .audit(
            &principal.actor(),
            "service_records.read",
            by_name,
            serde_json::json!({"from": records.from, "to": records.to, "lines": records.lines.len()}),
            &source,
        )
        .await?;
    if as_csv {
        let filename = format!("service-{}-{}-{}.csv", by_name, records.from, last_day(&records.to));
        return Ok(super::attachment("text/csv; charset=utf-8", &filename, csv(&records)));
    }
    Ok(ApiJson(records).into_response())
}

// ---------------------------------------------------------------- documents

/// The fonts, read once (they are large); `None` until the first read works.
static FONTS: OnceLock<Fonts> = OnceLock::new();

async fn fonts(state: &AppState) -> Result<Fonts, ApiError> {
    if let Some(fonts) = FONTS.get() {
        return Ok(fonts.clone());
    }
    let web = state.config.web.clone();
    match tokio::task::spawn_blocking(move || web.pdf_fonts()).await {
        Ok(Ok(fonts)) => Ok(FONTS.get_or_init(|| fonts).clone()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "PDF documents need their fonts");
            Err(ApiError::Status {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                code: "fonts_missing",
                message: "this server has not the fonts its documents are set in (web.font_dir, web.cjk_font)",
            })
        }
        Err(error) => Err(ApiError::Internal(error.to_string())),
    }
}

/// Draws on a blocking thread (shaping and font subsetting take a while).
async fn render(
    fonts: Fonts,
    title: String,
    draw: impl FnOnce(&mut Draft) + Send + 'static,
) -> Result<Vec<u8>, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut draft = Draft::new(fonts);
        draw(&mut draft);
        draft.finish(&title)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))
}

const LEFT: f32 = 64.0;
const RIGHT: f32 = PAGE_WIDTH - 64.0;

fn hours(minutes: u64) -> String {
    format!("{:.1}", minutes as f64 / 60.0)
}

/// The figures of one line, label and value, from `y` down; returns the next `y`.
fn figures(d: &mut Draft, line: &ServiceLine, mut y: f32) -> f32 {
    let rows = [
        ("咨询次数 Consultations", line.consultations.to_string()),
        ("通话时长（小时）Hours in calls", hours(line.minutes)),
        ("履约预约 Appointments kept", line.appointments_kept.to_string()),
        ("转介（经当事人同意）Referrals made", line.referrals.to_string()),
        ("评价次数 Ratings", line.ratings.to_string()),
        (
            "平均评分（1–5）Average rating",
            line.rating_avg.map(|r| format!("{r:.2}")).unwrap_or_else(|| "–".into()),
        ),
    ];
    for (label, value) in rows {
        d.text(LEFT + 16.0, y, 12.0, label);
        d.text_right(RIGHT - 16.0, y, 12.0, &value);
        d.rule(LEFT + 16.0, y + 6.0, RIGHT - LEFT - 32.0, 0.4);
        y += 26.0;
    }
    y
}

fn today() -> String {
    let zone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC);
    zone.to_datetime(jiff::Timestamp::now()).date().to_string()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CertificateQuery {
    /// The volunteer; the caller when absent.
    #[param(value_type = Option<String>)]
    pub account: Option<AccountId>,
    #[param(format = Date)]
    pub from: String,
    /// Day after the last date.
    #[param(format = Date)]
    pub to: String,
}

/// A volunteer's service certificate for a period, as PDF: for the volunteer,
/// a coordinator of a region they serve, an admin.
#[utoipa::path(
    get,
    path = "/api/service-records/certificate",
    tag = "service records",
    security(("bearer" = [])),
    params(CertificateQuery),
    responses(
        (status = 200, content_type = "application/pdf", description = "The certificate"),
        (status = 400, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody),
        (status = 503, body = super::ErrorBody)
    )
)]
pub async fn certificate(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    query: ApiQuery<CertificateQuery>,
) -> Result<Response, ApiError> {
    let caller = state.audit_refusal(&principal, DENIED, "", &source, principal.account()).await?.clone();
    let query = query.parse()?;
    let (from_day, to_day) = period(&query.from, &query.to)?;
    let volunteer_id = query.account.clone().unwrap_or_else(|| caller.id.clone());
    let volunteer = state.store.account(&volunteer_id).await?.ok_or(ApiError::NotFound)?;
    let is_volunteer = volunteer.has_role(Role::Lawyer) || volunteer.has_role(Role::Interpreter);
    let allowed = volunteer.id == caller.id
        || principal.is_admin()
        || principal.manages_volunteer(&state.store.regions_of_member(&volunteer.id).await?);
    if !allowed {
        state.audit(&principal.actor(), DENIED, &volunteer_id, serde_json::Value::Null, &source).await?;
        return Err(ApiError::NotFound);
    }
    if !is_volunteer {
        return Err(invalid("account: not a lawyer or interpreter"));
    }
    let fonts = fonts(&state).await?;
    // A coordinator certifies what the volunteer gave in the regions they
    // coordinate; the volunteer and admins get it all.
    let reach =
        if volunteer.id == caller.id { Reach::Own(caller.id.clone()) } else { Reach::of(&principal)? };
    let rows: Vec<ServiceRow> =
        rows_in(&state, from_day, to_day).await?.into_iter().filter(|r| reach.covers(r)).collect();
    let names = Names::load(&state, false).await?;
    let line = lines(&rows, By::Volunteer, &names, Some(&volunteer.id)).pop().unwrap_or_default();
    let mut regions: Vec<String> = rows
        .iter()
        .filter(|r| r.lawyer_id == volunteer.id || r.interpreter_id.as_ref() == Some(&volunteer.id))
        .map(|r| names.region(&r.region_id).to_owned())
        .collect();
    regions.sort();
    regions.dedup();
    state
        .audit(
            &principal.actor(),
            "service_records.certificate",
            &volunteer.id,
            serde_json::json!({"from": query.from, "to": query.to}),
            &source,
        )
        .await?;
    let last_day = last_day(&query.to);
    let filename = format!("service-certificate-{}-{}.pdf", query.from, last_day);
    let (name, from, issuer) =
        (volunteer.display_name.clone(), query.from.clone(), caller.display_name.clone());
    let title = format!("Service certificate: {name}, {from} to {last_day}");
    let bytes = render(fonts, title, move |d| {
        d.rule(LEFT, 56.0, RIGHT - LEFT, 2.0);
        d.text_centred(96.0, 15.0, "ཁྲིམས་ལུགས་ཞབས་ཞུའི་དཔང་ཡིག");
        d.text_centred(128.0, 22.0, "志愿法律服务证明");
        d.text_centred(154.0, 13.0, "Certificate of Volunteer Legal Service");
        d.text_centred(178.0, 11.0, "云上律所 · Cloud Law Office");
        d.rule(LEFT, 194.0, RIGHT - LEFT, 0.8);
        d.text(LEFT, 236.0, 12.0, "兹证明 This certifies that");
        d.text_centred(272.0, 18.0, &name);
        d.text(
            LEFT,
            308.0,
            12.0,
            &format!("于 {from} 至 {last_day} 期间，通过云上律所远程视频为偏远地区群众提供法律服务："),
        );
        d.text(
            LEFT,
            328.0,
            11.0,
            &format!("gave legal services to residents of remote areas by video, from {from} to {last_day}:"),
        );
        let mut y = figures(d, &line, 366.0);
        y += 12.0;
        d.text(LEFT, y, 12.0, "服务地区 Regions served");
        y += 22.0;
        if regions.is_empty() {
            d.text(LEFT + 16.0, y, 11.0, "–");
            y += 20.0;
        }
        for region in regions.iter().take(12) {
            d.text(LEFT + 16.0, y, 11.0, region);
            y += 20.0;
        }
        y += 24.0;
        d.text(LEFT, y, 11.0, "特此证明。Figures are counted from the platform's consultation records.");
        d.text(
            LEFT,
            y + 40.0,
            11.0,
            &format!("应 {issuer} 请求由平台生成 Made by the platform at the request of {issuer}"),
        );
        d.text(LEFT, y + 60.0, 11.0, &format!("日期 Date: {}", today()));
        d.rule(LEFT, 800.0, RIGHT - LEFT, 2.0);
    })
    .await?;
    Ok(super::attachment("application/pdf", &filename, bytes))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MonthlyQuery {
    #[param(value_type = String)]
    pub region: RegionId,
    /// `YYYY-MM`.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
}

/// A region's monthly report for the justice bureau, as PDF: the counts and
/// hours a government-purchase contract asks for, in total, per aid team and
/// per volunteer. The region's coordinators, admins.
#[utoipa::path(
    get,
    path = "/api/service-records/monthly-report",
    tag = "service records",
    security(("bearer" = [])),
    params(MonthlyQuery),
    responses(
        (status = 200, content_type = "application/pdf", description = "The report"),
        (status = 400, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody),
        (status = 503, body = super::ErrorBody)
    )
)]
pub async fn monthly_report(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    query: ApiQuery<MonthlyQuery>,
) -> Result<Response, ApiError> {
    let role = principal.require_any(&[Role::Coordinator, Role::Admin]);
    state.audit_refusal(&principal, DENIED, "", &source, role).await?;
    let query = query.parse()?;
    let region = state.store.region(&query.region).await?.ok_or(ApiError::NotFound)?;
    if !principal.manages_region(&region.id) {
        return Err(state.refuse(&principal, DENIED, &region.id, &source).await);
    }
    let first = format!("{}-01", query.month);
    let (from_day, first_date) = parse_date("month", &first)?;
    let to_day = from_day + i64::from(first_date.days_in_month());
    let fonts = fonts(&state).await?;
    let rows: Vec<ServiceRow> =
        rows_in(&state, from_day, to_day).await?.into_iter().filter(|r| r.region_id == region.id).collect();
    let names = Names::load(&state, true).await?;
    let (total, teams, volunteers) =
        (total(&rows), lines(&rows, By::Team, &names, None), lines(&rows, By::Volunteer, &names, None));
    state
        .audit(
            &principal.actor(),
            "service_records.monthly_report",
            &region.id,
            serde_json::json!({"month": query.month, "consultations": total.consultations}),
            &source,
        )
        .await?;
    let (region_name, month, issuer) =
        (region.name.clone(), query.month.clone(), principal.account()?.display_name.clone());
    let title = format!("Monthly legal service report: {region_name}, {month}");
    let bytes = render(fonts, title, move |d| {
        d.rule(LEFT, 56.0, RIGHT - LEFT, 2.0);
        d.text_centred(92.0, 14.0, "ཟླ་རེའི་ཁྲིམས་ལུགས་ཞབས་ཞུའི་སྙན་ཞུ།");
        d.text_centred(122.0, 20.0, "公共法律服务月度报告");
        d.text_centred(146.0, 12.0, "Monthly Report of Public Legal Services");
        d.text_centred(172.0, 13.0, &region_name);
        d.text_centred(192.0, 12.0, &format!("{month} · 云上律所 Cloud Law Office"));
        d.rule(LEFT, 206.0, RIGHT - LEFT, 0.8);
        d.text(LEFT, 236.0, 13.0, "合计 Totals");
        let volunteers_served = volunteers.len();
        let mut y = figures(d, &total, 262.0);
        d.text(LEFT + 16.0, y, 12.0, "提供服务的志愿者 Volunteers who served");
        d.text_right(RIGHT - 16.0, y, 12.0, &volunteers_served.to_string());
        y += 40.0;
        for (heading, table) in
            [("援藏律师服务团 By aid team", &teams), ("按志愿者 By volunteer", &volunteers)]
        {
            if y > 700.0 {
                d.new_page();
                y = 72.0;
            }
            d.text(LEFT, y, 13.0, heading);
            y += 22.0;
            let columns = [
                (RIGHT - 156.0, "咨询", "Consultations"),
                (RIGHT - 86.0, "小时", "Hours"),
                (RIGHT - 16.0, "转介", "Referrals"),
            ];
            d.text(LEFT + 16.0, y + 12.0, 10.0, "名称 Name");
            for (right, chinese, english) in columns {
                d.text_right(right, y, 10.0, chinese);
                d.text_right(right, y + 12.0, 9.0, english);
            }
            d.rule(LEFT + 16.0, y + 18.0, RIGHT - LEFT - 32.0, 0.8);
            y += 34.0;
            if table.is_empty() {
                d.text(LEFT + 16.0, y, 11.0, "–");
                y += 20.0;
            }
            let name_width = RIGHT - 156.0 - 64.0 - (LEFT + 16.0);
            for line in table.iter() {
                if y > 790.0 {
                    d.new_page();
                    y = 72.0;
                }
                let name = d.fonts().fit(&line.name, 11.0, name_width);
                d.text(LEFT + 16.0, y, 11.0, &name);
                let values =
                    [line.consultations.to_string(), hours(line.minutes), line.referrals.to_string()];
                for ((right, _, _), value) in columns.iter().zip(values) {
                    d.text_right(*right, y, 11.0, &value);
                }
                y += 20.0;
            }
            y += 24.0;
        }
        if y > 780.0 {
            d.new_page();
            y = 72.0;
        }
        d.text(LEFT, y, 10.0, &format!("制表 Prepared by: {issuer} · 日期 Date: {}", today()));
    })
    .await?;
    Ok(super::attachment(
        "application/pdf",
        &format!("monthly-report-{}-{}.pdf", region.id, query.month),
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        lawyer: &str,
        interpreter: Option<&str>,
        region: &str,
        minutes: i64,
        rating: Option<i64>,
    ) -> ServiceRow {
        ServiceRow {
            region_id: region.into(),
            lawyer_id: lawyer.into(),
            interpreter_id: interpreter.map(Into::into),
            started_at: 1_000,
            ended_at: Some(1_000 + minutes * 60),
            rating,
            appointment: interpreter.is_some(),
            referrals: 1,
        }
    }

    #[test]
    fn each_consultation_counts_for_each_volunteer_in_it_and_once_in_the_total() {
        let rows = [
            row("a", Some("i"), "r1", 30, Some(5)),
            row("a", None, "r2", 15, Some(4)),
            row("b", None, "r1", 10, None),
        ];
        let names = Names {
            accounts: [
                ("a".into(), "Lawyer A".into()),
                ("b".into(), "Lawyer B".into()),
                ("i".into(), "Interp I".into()),
            ]
            .into(),
            regions: [("r1".into(), "Region 1".into())].into(),
            teams: vec![("t".into(), "Team".into(), vec![AccountId::from("a"), AccountId::from("i")])],
        };
        let by_person = lines(&rows, By::Volunteer, &names, None);
        let a = by_person.iter().find(|l| l.key == "a").unwrap();
        assert_eq!((a.consultations, a.minutes, a.appointments_kept, a.referrals), (2, 45, 1, 2));
        assert_eq!((a.ratings, a.rating_avg), (2, Some(4.5)));
        let i = by_person.iter().find(|l| l.key == "i").unwrap();
        assert_eq!((i.consultations, i.minutes), (1, 30));
        let team = lines(&rows, By::Team, &names, None);
        assert_eq!(team.len(), 1);
        assert_eq!(team[0].consultations, 2, "a consultation of two members counts once for the team");
        let regions = lines(&rows, By::Region, &names, None);
        assert_eq!(
            regions.iter().map(|l| (l.name.as_str(), l.consultations)).collect::<Vec<_>>(),
            [("Region 1", 2), ("r2", 1)]
        );
        let all = total(&rows);
        assert_eq!((all.consultations, all.minutes, all.ratings), (3, 55, 2));
        let own = lines(&rows, By::Volunteer, &names, Some(&AccountId::from("b")));
        assert_eq!(own.len(), 1);
        let csv = csv(&ServiceRecords {
            from: "f".into(),
            to: "t".into(),
            by: "volunteer".into(),
            lines: own,
            total: all,
        });
        assert_eq!(csv.lines().nth(1), Some("b,\"Lawyer B\",1,10,0,1,0,"));
        assert_eq!(csv.lines().last(), Some(",\"total\",3,55,1,3,2,4.50"));
    }

    #[test]
    fn a_name_that_looks_like_a_formula_stays_text_in_a_spreadsheet() {
        use super::super::csv_text;
        assert_eq!(csv_text("卓玛律师 Drolma"), "\"卓玛律师 Drolma\"");
        assert_eq!(csv_text("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        for risky in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_text(risky).starts_with("\"'"), "{risky:?}");
        }
        assert_eq!(csv_text("Team-1"), "\"Team-1\"", "only the first character counts");
    }
}
