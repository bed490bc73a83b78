//! One person's availability: weekly windows plus dated overrides, in their
//! own time zone, and roster duty rules for teams.

use std::collections::HashMap;

use jiff::tz::TimeZone;

use super::civil::{Instant, local_day_minute, weekday_of, window_instants};
use super::intervals::{minus_minutes, union};
use crate::ids::RegionId;

/// A window of minutes since local midnight, end exclusive (1440 = midnight).
pub type Minutes = (u16, u16);

/// When one person is available.
#[derive(Debug, Clone, Default)]
pub struct Availability {
    /// Monday = 0 ... Sunday = 6.
    pub weekly: [Vec<Minutes>; 7],
    /// Extra hours on a local date (days since the epoch).
    pub extra: HashMap<i64, Vec<Minutes>>,
    /// Hours off on a local date; they win over weekly and extra hours.
    pub off: HashMap<i64, Vec<Minutes>>,
}

fn covers(windows: &[Minutes], minute: u16) -> bool {
    windows.iter().any(|&(s, e)| s <= minute && minute < e)
}

impl Availability {
    /// Is the person available at this instant? (The fast path: one offset
    /// lookup and a few comparisons.)
    pub fn is_available(&self, tz: &TimeZone, at: Instant) -> bool {
        let (day, minute) = local_day_minute(tz, at);
        self.is_available_local(day, minute)
    }

    pub fn is_available_local(&self, day: i64, minute: u16) -> bool {
        let on = covers(&self.weekly[weekday_of(day)], minute)
            || self.extra.get(&day).is_some_and(|w| covers(w, minute));
        on && !self.is_off_local(day, minute)
    }

    pub fn is_off_local(&self, day: i64, minute: u16) -> bool {
        self.off.get(&day).is_some_and(|w| covers(w, minute))
    }

    /// The minute windows of one local date, overrides applied.
    pub fn day_windows(&self, day: i64) -> Vec<Minutes> {
        let mut windows = self.weekly[weekday_of(day)].clone();
        if let Some(extra) = self.extra.get(&day) {
            windows.extend_from_slice(extra);
        }
        match self.off.get(&day) {
            Some(off) => minus_minutes(&windows, off),
            None => windows,
        }
    }

    /// Every instant in `[from, to)` at which the person is available, as a union.
    pub fn intervals(&self, tz: &TimeZone, from: Instant, to: Instant) -> Vec<(Instant, Instant)> {
        let mut out = Vec::new();
        // Local dates that can touch [from, to) in any zone.
        let (first, last) = (from.div_euclid(86_400) - 1, to.div_euclid(86_400) + 1);
        for day in first..=last {
            for (s, e) in self.day_windows(day) {
                window_instants(tz, day, s, e, &mut out);
            }
        }
        super::intervals::clip(&union(out), from, to)
    }
}

/// A team's recurring duty for a region over a date range, in the region's zone.
#[derive(Debug, Clone)]
pub struct RosterRule {
    pub id: String,
    pub team_id: String,
    pub region_id: RegionId,
    /// Bit 0 = Monday ... bit 6 = Sunday.
    pub weekdays: u8,
    pub window: Minutes,
    /// Local dates, inclusive, as days since the epoch.
    pub first_day: i64,
    pub last_day: i64,
}

impl RosterRule {
    pub fn covers_local(&self, day: i64, minute: u16) -> bool {
        day >= self.first_day
            && day <= self.last_day
            && self.weekdays & (1 << weekday_of(day)) != 0
            && self.window.0 <= minute
            && minute < self.window.1
    }

    pub fn intervals(&self, tz: &TimeZone, from: Instant, to: Instant) -> Vec<(Instant, Instant)> {
        let mut out = Vec::new();
        let first = (from.div_euclid(86_400) - 1).max(self.first_day);
        let last = (to.div_euclid(86_400) + 1).min(self.last_day);
        for day in first..=last {
            if self.weekdays & (1 << weekday_of(day)) != 0 {
                window_instants(tz, day, self.window.0, self.window.1, &mut out);
            }
        }
        super::intervals::clip(&union(out), from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::civil::days_from_civil;
    use proptest::prelude::*;

    const ZONES: [&str; 8] = [
        "Asia/Shanghai",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe", // a 30-minute DST shift
        "Asia/Kathmandu",      // +05:45
        "Pacific/Chatham",     // +12:45/+13:45
        "America/Santiago",    // DST at midnight
        "UTC",
    ];

    fn window() -> impl Strategy<Value = Minutes> {
        (0u16..1440, 1u16..=600).prop_map(|(s, len)| (s, (s + len).min(1440)))
    }

    prop_compose! {
        fn availability()(
            weekly in proptest::collection::vec((0usize..7, window()), 0..10),
            extra in proptest::collection::vec((0i64..20, window()), 0..4),
            off in proptest::collection::vec((0i64..20, window()), 0..4),
        ) -> Availability {
            // Overrides fall on dates around the DST changes of 2026.
            let base = [days_from_civil(2026, 3, 5), days_from_civil(2026, 10, 22)];
            let mut a = Availability::default();
            for (day, w) in weekly { a.weekly[day].push(w); }
            for (i, (d, w)) in extra.into_iter().enumerate() { a.extra.entry(base[i % 2] + d).or_default().push(w); }
            for (i, (d, w)) in off.into_iter().enumerate() { a.off.entry(base[i % 2] + d).or_default().push(w); }
            a
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The point query and the interval expansion describe the same set of
        /// instants, in every zone, across daylight-saving changes.
        #[test]
        fn point_query_agrees_with_expansion(
            a in availability(),
            zone in 0usize..ZONES.len(),
            season in 0usize..2,
            offsets in proptest::collection::vec(0i64..(21 * 86_400), 40),
        ) {
            let tz = TimeZone::get(ZONES[zone]).unwrap();
            let start = [days_from_civil(2026, 3, 1), days_from_civil(2026, 10, 20)][season] * 86_400;
            let (from, to) = (start, start + 21 * 86_400);
            let intervals = a.intervals(&tz, from, to);
            for pair in intervals.windows(2) {
                prop_assert!(pair[0].1 < pair[1].0, "disjoint and sorted");
            }
            for offset in offsets {
                let at = from + offset;
                let inside = intervals.iter().any(|&(s, e)| s <= at && at < e);
                prop_assert_eq!(a.is_available(&tz, at), inside, "at {} in {}", at, ZONES[zone]);
            }
            // Edges are where mistakes hide: test each interval's first and last second.
            for &(s, e) in &intervals {
                prop_assert!(a.is_available(&tz, s));
                prop_assert!(a.is_available(&tz, e - 1));
                if s > from { prop_assert!(!a.is_available(&tz, s - 1)); }
                if e < to { prop_assert!(!a.is_available(&tz, e)); }
            }
        }

        /// A day off always wins.
        #[test]
        fn days_off_win(a in availability(), zone in 0usize..ZONES.len(), day in 0i64..20) {
            let tz = TimeZone::get(ZONES[zone]).unwrap();
            let mut a = a;
            let date = days_from_civil(2026, 3, 5) + day;
            a.off.insert(date, vec![(0, 1440)]);
            let intervals = a.intervals(&tz, (date - 2) * 86_400, (date + 3) * 86_400);
            let mut at = (date - 1) * 86_400;
            while at < (date + 2) * 86_400 {
                if local_day_minute(&tz, at).0 == date {
                    prop_assert!(!intervals.iter().any(|&(s, e)| s <= at && at < e));
                    prop_assert!(!a.is_available(&tz, at));
                }
                at += 600;
            }
        }

        #[test]
        fn roster_point_query_agrees_with_expansion(
            weekdays in 1u8..128,
            w in window(),
            zone in 0usize..ZONES.len(),
            offsets in proptest::collection::vec(0i64..(30 * 86_400), 40),
        ) {
            let tz = TimeZone::get(ZONES[zone]).unwrap();
            let first_day = days_from_civil(2026, 3, 1);
            let rule = RosterRule { id: "r".into(), team_id: "t".into(), region_id: "g".into(), weekdays, window: w, first_day: first_day + 3, last_day: first_day + 20 };
            let (from, to) = (first_day * 86_400, (first_day + 30) * 86_400);
            let intervals = rule.intervals(&tz, from, to);
            for offset in offsets {
                let at = from + offset;
                let (day, minute) = local_day_minute(&tz, at);
                let inside = intervals.iter().any(|&(s, e)| s <= at && at < e);
                prop_assert_eq!(rule.covers_local(day, minute), inside);
            }
        }
    }

    #[test]
    fn a_week_in_shanghai() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let mut a = Availability::default();
        a.weekly[0].push((14 * 60, 18 * 60)); // Mondays 14:00-18:00
        let monday = days_from_civil(2026, 11, 30);
        a.off.insert(monday, vec![(16 * 60, 1440)]);
        let got = a.intervals(&tz, monday * 86_400 - 8 * 3600, (monday + 7) * 86_400);
        assert_eq!(got, vec![(monday * 86_400 + 6 * 3600, monday * 86_400 + 8 * 3600)]);
    }
}
