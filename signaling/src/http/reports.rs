//! Reports for coordinators: consultations per region, language and topic per
//! week or month, with waits, abandonment and satisfaction. Aggregates only:
//! no record, no resident, no lawyer.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::schedule::{invalid, parse_date, start_of_day};
use super::{ApiError, ApiJson, ApiQuery, AppState};
use crate::auth::{ClientAddr, Principal};
use crate::domain::Role;
use crate::ids::RegionId;
use crate::schedule::civil::{date_of, local_day_minute, weekday_of};
use crate::store::ReportRow;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First date, `YYYY-MM-DD` (each region's own calendar).
    #[param(format = Date)]
    pub from: String,
    /// Day after the last date; at most 366 days after `from`.
    #[param(format = Date)]
    pub to: String,
    /// `week` (from Monday, the default) or `month`.
    #[param(pattern = "^(week|month)$")]
    pub period: Option<String>,
    /// `json` (the default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

/// One period of one region, language and topic.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct ReportLine {
    /// The first day of the week (Monday) or month.
    pub period_start: String,
    pub region_id: String,
    pub language: String,
    pub topic: String,
    /// `kiosk`, or `phone` (callers on the hotline).
    pub channel: String,
    /// Residents who asked (live requests and appointments' starts).
    pub requests: u64,
    /// Requests that became a consultation.
    pub consultations: u64,
    /// Requests cancelled by the resident or abandoned (the kiosk went away).
    pub abandoned: u64,
    /// `abandoned / (requests that ended)`; none when none ended.
    pub abandonment_rate: Option<f64>,
    /// Seconds from asking to the consultation's start, over matched requests.
    pub wait_p50_secs: Option<i64>,
    pub wait_p90_secs: Option<i64>,
    /// Ratings given (1 to 5) and their mean.
    pub ratings: u64,
    pub rating_avg: Option<f64>,
}

/// The waits of one period (or of the whole report: no `period_start`) in one
/// region (or in all of the report's: no `region_id`), over the requests
/// themselves: the lines' percentiles cannot be combined into these.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct WaitSummary {
    pub period_start: Option<String>,
    pub region_id: Option<String>,
    /// Matched requests with a wait.
    pub waits: u64,
    pub wait_p50_secs: Option<i64>,
    pub wait_p90_secs: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub period: String,
    pub lines: Vec<ReportLine>,
    /// Every period and the whole report, per region and over all regions;
    /// only where some request waited.
    pub waits: Vec<WaitSummary>,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    consultations: u64,
    abandoned: u64,
    waits: Vec<i64>,
    ratings: Vec<i64>,
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64) * q).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Builds the report lines, and the waits over periods and regions, from
/// request rows.
fn tally(
    rows: &[ReportRow],
    monthly: bool,
    zone_of: impl Fn(&RegionId) -> jiff::tz::TimeZone,
) -> (Vec<ReportLine>, Vec<WaitSummary>) {
    let mut groups: BTreeMap<(String, String, String, String, String), Tally> = BTreeMap::new();
    let mut waits: BTreeMap<(Option<String>, Option<String>), Vec<i64>> = BTreeMap::new();
    for row in rows {
        let (day, _) = local_day_minute(&zone_of(&row.region_id), row.created_at);
        let start = if monthly {
            let date = date_of(day);
            date.first_of_month().to_string()
        } else {
            date_of(day - weekday_of(day) as i64).to_string()
        };
        let key =
            (start, row.region_id.to_string(), row.language.clone(), row.topic.clone(), row.channel.clone());
        let t = groups.entry(key.clone()).or_default();
        t.requests += 1;
        match row.status.as_str() {
            "matched" => {
                t.consultations += 1;
                if let Some(started) = row.started_at {
                    let wait = (started - row.created_at).max(0);
                    t.waits.push(wait);
                    let (period, region) = (Some(&key.0), Some(&key.1));
                    for scope in [(period, region), (period, None), (None, region), (None, None)] {
                        waits.entry((scope.0.cloned(), scope.1.cloned())).or_default().push(wait);
                    }
                }
            }
            "cancelled" | "abandoned" => t.abandoned += 1,
            _ => {}
        }
        t.ratings.extend(row.rating);
    }
    let lines = groups
        .into_iter()
        .map(|((period_start, region_id, language, topic, channel), mut t)| {
            t.waits.sort_unstable();
            let ended = t.consultations + t.abandoned;
            ReportLine {
                period_start,
                region_id,
                language,
                topic,
                channel,
                requests: t.requests,
                consultations: t.consultations,
                abandoned: t.abandoned,
                abandonment_rate: (ended > 0).then(|| t.abandoned as f64 / ended as f64),
                wait_p50_secs: quantile(&t.waits, 0.5),
                wait_p90_secs: quantile(&t.waits, 0.9),
                ratings: t.ratings.len() as u64,
                rating_avg: (!t.ratings.is_empty())
                    .then(|| t.ratings.iter().sum::<i64>() as f64 / t.ratings.len() as f64),
            }
        })
        .collect();
    let waits = waits
        .into_iter()
        .map(|((period_start, region_id), mut waits)| {
            waits.sort_unstable();
            WaitSummary {
                period_start,
                region_id,
                waits: waits.len() as u64,
                wait_p50_secs: quantile(&waits, 0.5),
                wait_p90_secs: quantile(&waits, 0.9),
            }
        })
        .collect();
    (lines, waits)
}

fn csv(lines: &[ReportLine]) -> String {
    let mut out = String::from(
        "period_start,region_id,language,topic,requests,consultations,abandoned,abandonment_rate,wait_p50_secs,wait_p90_secs,ratings,rating_avg,channel\n",
    );
    let opt = |v: Option<String>| v.unwrap_or_default();
    for l in lines {
        // Ids and codes never hold commas or quotes; quoting keeps a stray one harmless.
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            l.period_start,
            super::csv_text(&l.region_id),
            l.language,
            l.topic,
            l.requests,
            l.consultations,
            l.abandoned,
            opt(l.abandonment_rate.map(|r| format!("{r:.3}"))),
            opt(l.wait_p50_secs.map(|w| w.to_string())),
            opt(l.wait_p90_secs.map(|w| w.to_string())),
            l.ratings,
            opt(l.rating_avg.map(|r| format!("{r:.2}"))),
            l.channel,
        ));
    }
    out
}

/// Consultations, waits, abandonment and satisfaction per region, language and
/// topic, per week or month: coordinators for their regions, admins for all.
#[utoipa::path(
    get,
    path = "/api/reports/consultations",
    tag = "consultations",
    security(("bearer" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`",
            content((Report = "application/json"), (String = "text/csv"))),
        (status = 400, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody)
    )
)]
pub async fn consultations(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    principal: Principal,
    query: ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let account = principal.account()?;
    let scope: Option<&[RegionId]> = if account.has_role(Role::Admin) {
        None
    } else if account.has_role(Role::Coordinator) {
        Some(&account.regions)
    } else {
        return Err(ApiError::Forbidden);
    };
    let query = query.parse()?;
    let monthly = match query.period.as_deref() {
        None | Some("week") => false,
        Some("month") => true,
        Some(other) => return Err(invalid(format!("period: week or month, not {other:?}"))),
    };
    let as_csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(invalid(format!("format: json or csv, not {other:?}"))),
    };
    let (from_day, _) = parse_date("from", &query.from)?;
    let (to_day, _) = parse_date("to", &query.to)?;
    if to_day <= from_day || to_day - from_day > 366 {
        return Err(invalid("to must be 1 to 366 days after from"));
    }
    let snapshot = state.scheduler.snapshot().await?;
    // A day either side, so each region's own calendar days are all in; trimmed below.
    let rows = state.store.report_rows((from_day - 1) * 86_400, (to_day + 1) * 86_400).await?;
    let rows: Vec<ReportRow> = rows
        .into_iter()
        .filter(|r| scope.is_none_or(|regions| regions.contains(&r.region_id)))
        .filter(|r| {
            let tz = snapshot.region_zone(&r.region_id);
            start_of_day(tz, from_day) <= r.created_at && r.created_at < start_of_day(tz, to_day)
        })
        .collect();
    let (lines, waits) = tally(&rows, monthly, |region| snapshot.region_zone(region).clone());
    state
        .audit(
            &principal.actor(),
            "report.read",
            "consultations",
            serde_json::json!({"from": query.from, "to": query.to, "lines": lines.len()}),
            &source,
        )
        .await?;
    if as_csv {
        let filename = format!("consultations-{}-{}.csv", query.from, query.to);
        return Ok(super::attachment("text/csv; charset=utf-8", &filename, csv(&lines)));
    }
    let period = if monthly { "month" } else { "week" }.to_owned();
    Ok(ApiJson(Report { from: query.from, to: query.to, period, lines, waits }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        region: &str,
        status: &str,
        created_at: i64,
        started_at: Option<i64>,
        rating: Option<i64>,
    ) -> ReportRow {
        ReportRow {
            region_id: region.into(),
            language: "bo".into(),
            topic: "land".into(),
            status: status.into(),
            created_at,
            started_at,
            rating,
            channel: "kiosk".into(),
        }
    }

    #[test]
    fn waits_abandonment_and_ratings_per_week() {
        // 2026-11-23 is a Monday; 00:30 on the 23rd in Shanghai is still the 22nd in UTC.
        let monday = 1_795_392_000 - 8 * 3600 + 1800;
        let rows = vec![
            row("r", "matched", monday, Some(monday + 10), Some(5)),
            row("r", "matched", monday + 60, Some(monday + 90), Some(3)),
            row("r", "matched", monday + 120, Some(monday + 220), None),
            row("r", "cancelled", monday + 200, None, None),
            row("r", "waiting", monday + 300, None, None),
            row("r", "abandoned", monday + 7 * 86_400, None, None),
        ];
        let zone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let (lines, _) = tally(&rows, false, |_| zone.clone());
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let first = &lines[0];
        assert_eq!(first.period_start, "2026-11-23", "the region's own calendar");
        assert_eq!((first.requests, first.consultations, first.abandoned), (5, 3, 1));
        assert_eq!(first.abandonment_rate, Some(0.25), "one of the four that ended");
        assert_eq!((first.wait_p50_secs, first.wait_p90_secs), (Some(30), Some(100)));
        assert_eq!((first.ratings, first.rating_avg), (2, Some(4.0)));
        assert_eq!(lines[1].period_start, "2026-11-30");
        assert_eq!(lines[1].abandonment_rate, Some(1.0));
        assert_eq!(lines[1].wait_p50_secs, None);
        let (monthly, _) = tally(&rows, true, |_| zone.clone());
        assert_eq!(monthly.len(), 1, "both weeks are in November");
        assert_eq!((monthly[0].period_start.as_str(), monthly[0].requests), ("2026-11-01", 6));
        let text = csv(&lines);
        assert!(text.starts_with("period_start,region_id,"));
        assert!(text.contains("2026-11-23,\"r\",bo,land,5,3,1,0.250,30,100,2,4.00,kiosk\n"), "{text}");
    }

    #[test]
    fn a_periods_and_the_reports_waits_are_over_the_requests_not_the_lines() {
        let monday = 1_795_392_000 - 8 * 3600 + 1800;
        let topic = |mut row: ReportRow, topic: &str| {
            row.topic = topic.into();
            row
        };
        // Land: three short waits. Family: one long one. Another region: one medium.
        let mut rows: Vec<ReportRow> =
            (0..3).map(|i| row("r", "matched", monday + i, Some(monday + i + 10), None)).collect();
        rows.push(topic(row("r", "matched", monday, Some(monday + 1000), None), "family"));
        rows.push(row("s", "matched", monday, Some(monday + 50), None));
        rows.push(row("s", "cancelled", monday + 7 * 86_400, None, None));
        let zone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let (lines, waits) = tally(&rows, false, |_| zone.clone());
        assert_eq!(lines.len(), 4);
        let find = |period: Option<&str>, region: Option<&str>| {
            waits
                .iter()
                .find(|w| w.period_start.as_deref() == period && w.region_id.as_deref() == region)
                .map(|w| (w.waits, w.wait_p50_secs, w.wait_p90_secs))
        };
        // Region r this week: 10, 10, 10, 1000. Its lines' medians weighted by
        // consultations would say (3 × 10 + 1000) / 4 = 257; the median is 10.
        assert_eq!(find(Some("2026-11-23"), Some("r")), Some((4, Some(10), Some(1000))));
        assert_eq!(find(Some("2026-11-23"), None), Some((5, Some(10), Some(1000))));
        assert_eq!(find(None, Some("s")), Some((1, Some(50), Some(50))));
        assert_eq!(find(None, None), Some((5, Some(10), Some(1000))));
        assert_eq!(find(Some("2026-11-30"), None), None, "nobody waited that week");
        assert_eq!(waits.len(), 6);
    }
}
