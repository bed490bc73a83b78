//! The scheduler: who is on duty when, what a region's coverage is, and which
//! lawyer an appointment goes to.
//!
//! - [`civil`]: wall-clock arithmetic across time zones and DST changes.
//! - [`availability`]: one person's weekly windows and overrides; roster rules.
//! - [`intervals`]: unions, gaps and clipping of instant intervals.
//! - [`ical`]: the iCalendar feed.
//! - [`reminders`]: the loop that tells both sides when an appointment nears and starts.
//!
//! Queries run on an in-memory [`Snapshot`] of everyone's availability, rosters
//! and teams, rebuilt from the database after any change made through this
//! process and at least every [`SNAPSHOT_MAX_AGE`] (for changes made by other
//! nodes). "On duty now" is then a few comparisons per person; a week's
//! coverage is an interval expansion and a sort.
//!
//! Definitions:
//! - A person is *available* at an instant when their wall-clock time falls in
//!   a weekly window or an `extra` override of that date, and not in an `off`
//!   override.
//! - A person is *on duty for a region* when they belong to a team posted to the
//!   region and are either available or inside one of the team's duty rosters
//!   for that region, and not off.
//! - A person is *on duty* (anywhere) when available, or inside any roster, and not off.

pub mod availability;
pub mod booking;
pub mod civil;
pub mod ical;
pub mod intervals;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant as MonoInstant};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::domain::{Language, Role, Topic};
use crate::ids::{AccountId, RegionId};
use crate::store::{AccountRecord, Store, StoreError};
use availability::{Availability, RosterRule};
use civil::{Instant, days_of, local_day_minute};

/// How long a snapshot is trusted without a local change.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(10);

/// Appointment rules. All minutes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Appointments start on this grid (UTC-aligned).
    pub slot_minutes: u32,
    /// How long an appointment lasts.
    pub appointment_minutes: u32,
    /// Lawyer time kept free after each appointment.
    pub buffer_minutes: u32,
    /// How far ahead an appointment must be booked.
    pub min_notice_minutes: u32,
    /// How far ahead it may be booked, in days.
    pub horizon_days: u32,
    /// Appointments a lawyer takes a day unless their account says otherwise.
    pub default_daily_cap: u32,
    /// When both sides are reminded before an appointment.
    pub reminder_minutes: u32,
    /// How often, in seconds, the reminder loop looks for due notices.
    pub reminder_check_secs: u32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            slot_minutes: 30,
            appointment_minutes: 30,
            buffer_minutes: 10,
            min_notice_minutes: 60,
            horizon_days: 90,
            default_daily_cap: 6,
            reminder_minutes: 30,
            reminder_check_secs: 15,
        }
    }
}

impl ScheduleConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(5..=240).contains(&self.slot_minutes) || !self.slot_minutes.is_multiple_of(5) {
            return Err("schedule.slot_minutes must be a multiple of 5 between 5 and 240".into());
        }
        if !(5..=240).contains(&self.appointment_minutes) || !self.appointment_minutes.is_multiple_of(5) {
            return Err("schedule.appointment_minutes must be a multiple of 5 between 5 and 240".into());
        }
        if self.buffer_minutes > 120 || !self.buffer_minutes.is_multiple_of(5) {
            return Err("schedule.buffer_minutes must be a multiple of 5 up to 120".into());
        }
        if !(1..=3600).contains(&self.reminder_check_secs) {
            return Err("schedule.reminder_check_secs must be between 1 and 3600".into());
        }
        if !(1..=366).contains(&self.horizon_days) {
            return Err("schedule.horizon_days must be between 1 and 366".into());
        }
        Ok(())
    }
}

/// Why a person is on duty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum DutyReason {
    /// Their own availability.
    Availability,
    /// A team roster.
    Roster { team_id: String, roster_id: String },
}

/// One person in the snapshot.
#[derive(Debug, Clone)]
pub struct Person {
    pub account: AccountRecord,
    zone: usize,
    pub availability: Availability,
    pub daily_cap: Option<i64>,
}

/// Everyone's schedule, in memory.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub people: Vec<Person>,
    index: HashMap<AccountId, usize>,
    zones: Vec<TimeZone>,
    zone_names: HashMap<String, usize>,
    /// With the index of the region's zone.
    rosters: Vec<(RosterRule, usize)>,
    /// team -> people indexes
    members: HashMap<String, Vec<usize>>,
    /// person -> teams
    teams_of: HashMap<usize, Vec<String>>,
    /// region -> teams
    region_teams: HashMap<RegionId, Vec<String>>,
    region_zone: HashMap<RegionId, usize>,
}

/// Parses a `YYYY-MM-DD` date into days since the epoch.
pub fn parse_day(date: &str) -> Option<i64> {
    date.parse::<Date>().ok().map(days_of)
}

impl Snapshot {
    fn zone_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.zone_names.get(name) {
            return i;
        }
        let tz = TimeZone::get(name).unwrap_or_else(|_| {
            tracing::warn!(zone = name, "unknown time zone in the database; using UTC");
            TimeZone::UTC
        });
        self.zones.push(tz);
        self.zone_names.insert(name.to_owned(), self.zones.len() - 1);
        self.zones.len() - 1
    }

    pub async fn load(store: &Store) -> Result<Snapshot, StoreError> {
        let accounts = store.accounts().await?;
        let rows = store.schedule_rows().await?;
        let regions = store.regions().await?;
        let mut snap = Snapshot::default();
        let caps: HashMap<String, i64> = rows.daily_caps.into_iter().collect();
        for account in accounts {
            if !account.active || !(account.has_role(Role::Lawyer) || account.has_role(Role::Interpreter)) {
                continue;
            }
            let zone = snap.zone_index(&account.time_zone.clone());
            let daily_cap = caps.get(account.id.as_str()).copied();
            snap.index.insert(account.id.clone(), snap.people.len());
            snap.people.push(Person { account, zone, availability: Availability::default(), daily_cap });
        }
        for w in rows.weekly {
            if let Some(&i) = snap.index.get(w.account_id.as_str()) {
                snap.people[i].availability.weekly[w.weekday.clamp(0, 6) as usize]
                    .push((w.start_minute as u16, w.end_minute as u16));
            }
        }
        for o in rows.overrides {
            let (Some(&i), Some(day)) = (snap.index.get(o.account_id.as_str()), parse_day(&o.date)) else {
                continue;
            };
            let window = (o.start_minute as u16, o.end_minute as u16);
            let availability = &mut snap.people[i].availability;
            let map = if o.kind == "off" { &mut availability.off } else { &mut availability.extra };
            map.entry(day).or_default().push(window);
        }
        for region in &regions {
            let zone = snap.zone_index(&region.time_zone);
            snap.region_zone.insert(region.id.clone(), zone);
        }
        for (team, account) in rows.members {
            if let Some(&i) = snap.index.get(account.as_str()) {
                snap.members.entry(team.clone()).or_default().push(i);
                snap.teams_of.entry(i).or_default().push(team);
            }
        }
        for (team, region) in rows.team_regions {
            snap.region_teams.entry(RegionId::from(region)).or_default().push(team);
        }
        for r in rows.rosters {
            let (Some(first_day), Some(last_day)) = (parse_day(&r.starts_on), parse_day(&r.ends_on)) else {
                continue;
            };
            let zone = snap.region_zone.get(&r.region_id).copied().unwrap_or(0);
            let rule = RosterRule {
                id: r.id,
                team_id: r.team_id,
                region_id: r.region_id,
                weekdays: r.weekdays as u8,
                window: (r.start_minute as u16, r.end_minute as u16),
                first_day,
                last_day,
            };
            snap.rosters.push((rule, zone));
        }
        if snap.zones.is_empty() {
            snap.zones.push(TimeZone::UTC);
        }
        Ok(snap)
    }

    pub fn person(&self, account_id: &AccountId) -> Option<&Person> {
        self.index.get(account_id).map(|&i| &self.people[i])
    }

    pub fn zone_of(&self, person: &Person) -> &TimeZone {
        &self.zones[person.zone]
    }

    /// The roster that has `person` on duty at `at` (for `region`, or any).
    fn roster_duty(&self, person: usize, region: Option<&RegionId>, at: Instant) -> Option<DutyReason> {
        let teams = self.teams_of.get(&person)?;
        self.rosters.iter().find_map(|(rule, zone)| {
            let relevant = teams.contains(&rule.team_id) && region.is_none_or(|r| *r == rule.region_id);
            if !relevant {
                return None;
            }
            let (day, minute) = local_day_minute(&self.zones[*zone], at);
            rule.covers_local(day, minute)
                .then(|| DutyReason::Roster { team_id: rule.team_id.clone(), roster_id: rule.id.clone() })
        })
    }

    fn duty_of(&self, i: usize, region: Option<&RegionId>, at: Instant) -> Option<DutyReason> {
        let person = &self.people[i];
        let (day, minute) = local_day_minute(&self.zones[person.zone], at);
        if person.availability.is_off_local(day, minute) {
            return None;
        }
        if person.availability.is_available_local(day, minute) {
            return Some(DutyReason::Availability);
        }
        self.roster_duty(i, region, at)
    }

    /// Whether `account_id` is on duty anywhere at `at` (their own hours or a roster).
    pub fn is_on_duty(&self, account_id: &AccountId, at: Instant) -> bool {
        self.index.get(account_id).is_some_and(|&i| self.duty_of(i, None, at).is_some())
    }

    /// The regions whose posted teams `account_id` belongs to.
    pub fn regions_of(&self, account_id: &AccountId) -> std::collections::BTreeSet<RegionId> {
        let Some(teams) = self.index.get(account_id).and_then(|i| self.teams_of.get(i)) else {
            return Default::default();
        };
        self.region_teams
            .iter()
            .filter(|(_, posted)| posted.iter().any(|t| teams.contains(t)))
            .map(|(region, _)| region.clone())
            .collect()
    }

    /// Who is on duty for `region` at `at`: members of the teams posted there.
    pub fn on_duty_for_region(&self, region: &RegionId, at: Instant) -> Vec<(&Person, DutyReason)> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for team in self.region_teams.get(region).into_iter().flatten() {
            for &i in self.members.get(team).into_iter().flatten() {
                if seen.contains(&i) {
                    continue;
                }
                seen.push(i);
                if let Some(reason) = self.duty_of(i, Some(region), at) {
                    out.push((&self.people[i], reason));
                }
            }
        }
        out
    }

    /// Who is on duty anywhere at `at`. Each zone's local time and each
    /// roster are evaluated once, not once per person.
    pub fn on_duty(&self, at: Instant) -> Vec<(&Person, DutyReason)> {
        let local: Vec<(i64, u16)> = self.zones.iter().map(|tz| local_day_minute(tz, at)).collect();
        let rostered: HashMap<&str, &RosterRule> = self
            .rosters
            .iter()
            .filter(|(rule, zone)| {
                let (day, minute) = local[*zone];
                rule.covers_local(day, minute)
            })
            .map(|(rule, _)| (rule.team_id.as_str(), rule))
            .collect();
        let mut out = Vec::new();
        for (i, person) in self.people.iter().enumerate() {
            let (day, minute) = local[person.zone];
            if person.availability.is_off_local(day, minute) {
                continue;
            }
            if person.availability.is_available_local(day, minute) {
                out.push((person, DutyReason::Availability));
                continue;
            }
            let roster =
                self.teams_of.get(&i).into_iter().flatten().find_map(|team| rostered.get(team.as_str()));
            if let Some(rule) = roster {
                out.push((
                    person,
                    DutyReason::Roster { team_id: rule.team_id.clone(), roster_id: rule.id.clone() },
                ));
            }
        }
        out
    }

    /// The instants in `[from, to)` at which `person` is on duty (for `region`
    /// when given, counting that region's rosters).
    pub fn duty_intervals(
        &self,
        person: &Person,
        region: Option<&RegionId>,
        from: Instant,
        to: Instant,
    ) -> Vec<(Instant, Instant)> {
        let i = self.index[&person.account.id];
        let tz = &self.zones[person.zone];
        let mut all = person.availability.intervals(tz, from, to);
        if let Some(teams) = self.teams_of.get(&i) {
            for (rule, zone) in &self.rosters {
                if teams.contains(&rule.team_id) && region.is_none_or(|r| *r == rule.region_id) {
                    all.extend(rule.intervals(&self.zones[*zone], from, to));
                }
            }
        }
        let all = intervals::union(all);
        // Days off win over rosters too.
        let mut off = Vec::new();
        let (first, last) = (from.div_euclid(86_400) - 1, to.div_euclid(86_400) + 1);
        for (&day, windows) in &person.availability.off {
            if day >= first && day <= last {
                for &(s, e) in windows {
                    civil::window_instants(tz, day, s, e, &mut off);
                }
            }
        }
        subtract(&all, &intervals::union(off))
    }

    /// When someone with `language` is on duty for `region` in `[from, to)`.
    pub fn coverage(
        &self,
        region: &RegionId,
        language: &Language,
        from: Instant,
        to: Instant,
    ) -> Vec<(Instant, Instant)> {
        let mut all = Vec::new();
        let mut seen = Vec::new();
        for team in self.region_teams.get(region).into_iter().flatten() {
            for &i in self.members.get(team).into_iter().flatten() {
                if seen.contains(&i) {
                    continue;
                }
                seen.push(i);
                let person = &self.people[i];
                if person.account.languages.contains(language) {
                    all.extend(self.duty_intervals(person, Some(region), from, to));
                }
            }
        }
        intervals::union(all)
    }

    /// The zone of a region (UTC when unknown).
    pub fn region_zone(&self, region: &RegionId) -> &TimeZone {
        self.region_zone.get(region).map(|&i| &self.zones[i]).unwrap_or(&self.zones[0])
    }

    /// Active lawyers who speak `language` and know `topic`, with whether they
    /// belong to a team posted to `region` (they are asked first).
    pub fn candidates(&self, region: &RegionId, language: &Language, topic: Topic) -> Vec<(&Person, bool)> {
        let team_members: Vec<usize> = self
            .region_teams
            .get(region)
            .into_iter()
            .flatten()
            .flat_map(|t| self.members.get(t).into_iter().flatten().copied())
            .collect();
        self.people
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                let a = &p.account;
                a.has_role(Role::Lawyer) && a.languages.contains(language) && a.topics.contains(&topic)
            })
            .map(|(i, p)| (p, team_members.contains(&i)))
            .collect()
    }

    /// True when `person` is on duty for the whole of `[start, end)`.
    pub fn on_duty_through(
        &self,
        person: &Person,
        region: Option<&RegionId>,
        start: Instant,
        end: Instant,
    ) -> bool {
        intervals::contains(&self.duty_intervals(person, region, start, end), start, end)
    }

    /// Candidates on duty for the whole of `[start, end)`.
    pub fn eligible_lawyers(
        &self,
        region: &RegionId,
        language: &Language,
        topic: Topic,
        start: Instant,
        end: Instant,
    ) -> Vec<(&Person, bool)> {
        self.candidates(region, language, topic)
            .into_iter()
            .filter(|(p, in_team)| {
                let region = in_team.then_some(region);
                // The point query first: most people are not on duty at the start,
                // and only those who are need their intervals expanded.
                let i = self.index[&p.account.id];
                self.duty_of(i, region, start).is_some() && self.on_duty_through(p, region, start, end)
            })
            .collect()
    }
}

/// `a` minus `b`, both unions.
fn subtract(a: &[(Instant, Instant)], b: &[(Instant, Instant)]) -> Vec<(Instant, Instant)> {
    let mut out = Vec::new();
    for &(s, e) in a {
        out.extend(intervals::gaps(b, s, e));
    }
    out
}

/// The scheduler service: a snapshot cache over the store.
#[derive(Debug)]
pub struct Scheduler {
    store: Store,
    pub config: ScheduleConfig,
    changes: AtomicU64,
    // A std lock around an Arc: readers clone the Arc and let go at once.
    current: RwLock<Option<(Arc<Snapshot>, u64, MonoInstant)>>,
    /// One load at a time: callers who find the snapshot stale while another
    /// loads it wait for that one instead of loading their own.
    loading: tokio::sync::Mutex<()>,
}

impl Scheduler {
    pub fn new(store: Store, config: ScheduleConfig) -> Scheduler {
        Scheduler {
            store,
            config,
            changes: AtomicU64::new(0),
            current: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Call after any change to availability, rosters, teams or accounts.
    pub fn invalidate(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let generation = self.changes.load(Ordering::SeqCst);
        let current = self.current.read().ok()?;
        let (snapshot, loaded_generation, loaded_at) = current.as_ref()?;
        (*loaded_generation == generation && loaded_at.elapsed() < SNAPSHOT_MAX_AGE)
            .then(|| Arc::clone(snapshot))
    }

    /// A snapshot no older than the last local change and [`SNAPSHOT_MAX_AGE`].
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _loading = self.loading.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let generation = self.changes.load(Ordering::SeqCst);
        let snapshot = Arc::new(Snapshot::load(&self.store).await?);
        if let Ok(mut current) = self.current.write() {
            *current = Some((Arc::clone(&snapshot), generation, MonoInstant::now()));
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::civil::days_from_civil;
    use proptest::prelude::*;

    fn account(id: &str, languages: &[&str]) -> AccountRecord {
        AccountRecord {
            id: id.into(),
            username: id.into(),
            display_name: id.into(),
            time_zone: "Asia/Shanghai".into(),
            active: true,
            roles: vec![Role::Lawyer],
            languages: languages.iter().map(|l| Language::parse(l).unwrap()).collect(),
            topics: vec![Topic::Land],
            regions: vec![],
        }
    }

    const ZONES: [&str; 3] = ["Asia/Shanghai", "America/New_York", "Europe/London"];

    prop_compose! {
        fn person()(
            zone in 0usize..ZONES.len(),
            in_team in any::<bool>(),
            speaks_bo in any::<bool>(),
            weekly in proptest::collection::vec((0usize..7, 0u16..1400, 1u16..600), 0..4),
            off in proptest::collection::vec((0i64..14, 0u16..1400, 1u16..1440), 0..2),
        ) -> (usize, bool, bool, Availability) {
            let mut a = Availability::default();
            for (day, s, len) in weekly { a.weekly[day].push((s, (s + len).min(1440))); }
            for (d, s, len) in off {
                a.off.entry(days_from_civil(2026, 3, 2) + d).or_default().push((s, (s + len).min(1440)));
            }
            (zone, in_team, speaks_bo, a)
        }
    }

    fn snapshot(people: Vec<(usize, bool, bool, Availability)>, rosters: Vec<(u8, u16, u16)>) -> Snapshot {
        let mut snap = Snapshot::default();
        for name in ZONES {
            snap.zone_index(name);
        }
        snap.region_zone.insert("r".into(), 0);
        snap.region_teams.insert("r".into(), vec!["t".into()]);
        for (i, (zone, in_team, speaks_bo, availability)) in people.into_iter().enumerate() {
            let id = format!("p{i}");
            let languages: &[&str] = if speaks_bo { &["bo", "zh"] } else { &["zh"] };
            snap.index.insert(id.as_str().into(), i);
            snap.people.push(Person {
                account: account(&id, languages),
                zone,
                availability,
                daily_cap: None,
            });
            if in_team {
                snap.members.entry("t".into()).or_default().push(i);
                snap.teams_of.entry(i).or_default().push("t".into());
            }
        }
        for (k, (weekdays, s, len)) in rosters.into_iter().enumerate() {
            let rule = RosterRule {
                id: format!("roster{k}"),
                team_id: "t".into(),
                region_id: "r".into(),
                weekdays: weekdays.max(1),
                window: (s, (s + len).min(1440)),
                first_day: days_from_civil(2026, 3, 4),
                last_day: days_from_civil(2026, 3, 12),
            };
            snap.rosters.push((rule, 0));
        }
        snap
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A region's coverage for a language is exactly the set of instants at
        /// which someone on duty for the region speaks it, across DST changes
        /// (2026-03-08 in New York), days off and rosters.
        #[test]
        fn coverage_is_someone_on_duty_who_speaks_it(
            people in proptest::collection::vec(person(), 1..6),
            rosters in proptest::collection::vec((1u8..128, 0u16..1400, 1u16..600), 0..3),
            probes in proptest::collection::vec(0i64..(14 * 86_400), 60),
        ) {
            let snap = snapshot(people, rosters);
            let from = days_from_civil(2026, 3, 2) * 86_400;
            let to = from + 14 * 86_400;
            let bo = Language::parse("bo").unwrap();
            let covered = snap.coverage(&"r".into(), &bo, from, to);
            let gaps = intervals::gaps(&covered, from, to);
            let total: i64 = covered.iter().chain(&gaps).map(|(s, e)| e - s).sum();
            prop_assert_eq!(total, to - from, "covered and gaps tile the range");
            for probe in probes {
                let at = from + probe;
                let in_coverage = covered.iter().any(|&(s, e)| s <= at && at < e);
                let someone = snap.on_duty_for_region(&"r".into(), at).iter().any(|(p, _)| p.account.languages.contains(&bo));
                prop_assert_eq!(in_coverage, someone, "at {}", at);
            }
        }

        /// "On duty anywhere" agrees, person by person, with each person's own duty.
        #[test]
        fn on_duty_anywhere_agrees_with_each_person(
            people in proptest::collection::vec(person(), 1..6),
            rosters in proptest::collection::vec((1u8..128, 0u16..1400, 1u16..600), 0..3),
            probes in proptest::collection::vec(0i64..(14 * 86_400), 30),
        ) {
            let snap = snapshot(people, rosters);
            let from = days_from_civil(2026, 3, 2) * 86_400;
            for probe in probes {
                let at = from + probe;
                let fast: Vec<&str> = snap.on_duty(at).iter().map(|(p, _)| p.account.id.as_str()).collect();
                let slow: Vec<&str> = (0..snap.people.len())
                    .filter(|&i| snap.duty_of(i, None, at).is_some())
                    .map(|i| snap.people[i].account.id.as_str())
                    .collect();
                prop_assert_eq!(fast, slow);
            }
        }
    }
}
