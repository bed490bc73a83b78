//! Wall-clock arithmetic: local dates and minutes, and which instants a local
//! window covers.
//!
//! A window "14:00 to 18:00 on 2026-12-01 in Asia/Shanghai" means every instant
//! whose wall-clock time in that zone is on that date and at or after 14:00 and
//! before 18:00. Across daylight-saving changes that set can be shorter (clocks
//! jump forward over part of it), longer or even in two pieces (clocks fall back
//! and repeat part of it). [`window_instants`] computes it exactly by splitting
//! time at the zone's offset changes; [`local_day_minute`] answers the same
//! question for one instant. The property tests in `availability.rs` check that
//! the two always agree.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// An instant as seconds since the Unix epoch.
pub type Instant = i64;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn days_of(date: Date) -> i64 {
    days_from_civil(i64::from(date.year()), i64::from(date.month()), i64::from(date.day()))
}

/// The civil date `days` after 1970-01-01.
pub fn date_of(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date::new(year as i16, month as i8, day as i8).unwrap_or(Date::ZERO)
}

/// Monday = 0 ... Sunday = 6. 1970-01-01 was a Thursday.
pub fn weekday_of(days: i64) -> usize {
    (days + 3).rem_euclid(7) as usize
}

/// The first instant of a local date (days since the epoch) in `tz`.
pub fn start_of_day(tz: &TimeZone, day: i64) -> Instant {
    date_of(day).to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_second()).unwrap_or(day * 86_400)
}

/// The local date (as days since the epoch) and minute of the day of an instant.
pub fn local_day_minute(tz: &TimeZone, at: Instant) -> (i64, u16) {
    let offset = match Timestamp::from_second(at) {
        Ok(ts) => i64::from(tz.to_offset(ts).seconds()),
        Err(_) => 0,
    };
    let local = at + offset;
    (local.div_euclid(86_400), (local.rem_euclid(86_400) / 60) as u16)
}

/// Appends to `out` the instant intervals `[start, end)` during which the
/// wall-clock time in `tz` lies in `[day + start_minute, day + end_minute)`,
/// where `day` counts days since the epoch and minutes may reach 1440 (the next
/// midnight).
pub fn window_instants(
    tz: &TimeZone,
    day: i64,
    start_minute: u16,
    end_minute: u16,
    out: &mut Vec<(Instant, Instant)>,
) {
    if end_minute <= start_minute {
        return;
    }
    // The window as if the zone were UTC; the real instants are these minus the
    // offset in force, which differs by at most a day from UTC anywhere.
    let naive_start = day * 86_400 + i64::from(start_minute) * 60;
    let naive_end = day * 86_400 + i64::from(end_minute) * 60;
    let (lo, hi) = (naive_start - 86_400, naive_end + 86_400);
    let Ok(lo_ts) = Timestamp::from_second(lo) else { return };
    let mut segment_start = lo;
    let mut offset = i64::from(tz.to_offset(lo_ts).seconds());
    let mut push = |from: Instant, to: Instant, offset: i64| {
        let s = from.max(naive_start - offset);
        let e = to.min(naive_end - offset);
        if s < e {
            match out.last_mut() {
                Some(last) if last.1 == s => last.1 = e,
                _ => out.push((s, e)),
            }
        }
    };
    for transition in tz.following(lo_ts) {
        let at = transition.timestamp().as_second();
        if at >= hi {
            break;
        }
        push(segment_start, at, offset);
        segment_start = at;
        offset = i64::from(transition.offset().seconds());
    }
    push(segment_start, hi, offset);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn at(s: &str) -> Instant {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn civil_days_round_trip() {
        for days in -800_000..800_000i64 {
            if days % 997 != 0 {
                continue;
            }
            assert_eq!(days_of(date_of(days)), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(weekday_of(days_from_civil(2026, 11, 27)), 4, "a Friday");
    }

    #[test]
    fn plain_zone() {
        let mut out = Vec::new();
        let day = days_from_civil(2026, 12, 1);
        window_instants(&tz("Asia/Shanghai"), day, 14 * 60, 18 * 60, &mut out);
        assert_eq!(out, vec![(at("2026-12-01T06:00:00Z"), at("2026-12-01T10:00:00Z"))]);
    }

    #[test]
    fn spring_forward_shortens_a_window() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let mut out = Vec::new();
        window_instants(&tz("America/New_York"), days_from_civil(2026, 3, 8), 60, 4 * 60, &mut out);
        assert_eq!(
            out,
            vec![(at("2026-03-08T06:00:00Z"), at("2026-03-08T08:00:00Z"))],
            "01:00 EST to 04:00 EDT is two hours"
        );
        // A window entirely inside the skipped hour covers nothing.
        let mut out = Vec::new();
        window_instants(
            &tz("America/New_York"),
            days_from_civil(2026, 3, 8),
            2 * 60 + 10,
            2 * 60 + 50,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn fall_back_can_split_a_window() {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST.
        let mut out = Vec::new();
        window_instants(&tz("America/New_York"), days_from_civil(2026, 11, 1), 90, 3 * 60, &mut out);
        assert_eq!(
            out,
            vec![
                (at("2026-11-01T05:30:00Z"), at("2026-11-01T06:00:00Z")),
                (at("2026-11-01T06:30:00Z"), at("2026-11-01T08:00:00Z")),
            ],
            "01:30-02:00 EDT, then 01:30 EST to 03:00 EST"
        );
    }

    #[test]
    fn local_day_and_minute() {
        let (day, minute) = local_day_minute(&tz("Asia/Shanghai"), at("2026-12-01T17:30:00Z"));
        assert_eq!(date_of(day), Date::new(2026, 12, 2).unwrap());
        assert_eq!(minute, 90);
    }
}
