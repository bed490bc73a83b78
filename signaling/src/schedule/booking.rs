//! The booking rules: when an appointment may start (on the slot grid, with
//! notice, within the horizon), what a booking with one lawyer holds (their
//! local day and cap, the buffer after it), and in what order round robin
//! tries the eligible lawyers. The store makes a booking atomic; the API
//! (`http/appointments.rs`) picks the place and the lawyers and answers.

use std::collections::HashMap;

use super::civil::{Instant, local_day_minute, start_of_day};
use super::{Person, ScheduleConfig, Snapshot};
use crate::ids::{AccountId, RegionId, TerminalId};
use crate::store::Booking;

/// Why a start is refused; each is a `400` with its `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefused {
    InThePast,
    OffGrid { slot_minutes: u32 },
    TooSoon { min_notice_minutes: u32 },
    TooFar { horizon_days: u32 },
}

impl StartRefused {
    pub fn code(&self) -> &'static str {
        match self {
            StartRefused::InThePast => "in_the_past",
            StartRefused::OffGrid { .. } => "off_grid",
            StartRefused::TooSoon { .. } => "too_soon",
            StartRefused::TooFar { .. } => "too_far",
        }
    }

    pub fn message(&self) -> String {
        match self {
            StartRefused::InThePast => "that time has passed".into(),
            StartRefused::OffGrid { slot_minutes } => {
                format!("appointments start every {slot_minutes} minutes")
            }
            StartRefused::TooSoon { min_notice_minutes } => {
                format!("book at least {min_notice_minutes} minutes ahead")
            }
            StartRefused::TooFar { horizon_days } => format!("book at most {horizon_days} days ahead"),
        }
    }
}

/// Checks a requested start against the grid, the notice and the horizon at
/// `now`; the appointment's end when it may start then.
pub fn check_start(config: &ScheduleConfig, start: Instant, now: Instant) -> Result<Instant, StartRefused> {
    if start <= now {
        return Err(StartRefused::InThePast);
    }
    if start % (i64::from(config.slot_minutes) * 60) != 0 {
        return Err(StartRefused::OffGrid { slot_minutes: config.slot_minutes });
    }
    if start < now + i64::from(config.min_notice_minutes) * 60 {
        return Err(StartRefused::TooSoon { min_notice_minutes: config.min_notice_minutes });
    }
    if start > now + i64::from(config.horizon_days) * 86_400 {
        return Err(StartRefused::TooFar { horizon_days: config.horizon_days });
    }
    Ok(start + i64::from(config.appointment_minutes) * 60)
}

/// Where and what an appointment is, apart from its lawyer and time.
#[derive(Debug, Clone, Copy)]
pub struct What<'a> {
    pub terminal_id: &'a TerminalId,
    pub region_id: &'a RegionId,
    pub language: &'a str,
    pub topic: &'a str,
    /// By phone: the resident's number (held instead of the terminal's time).
    pub phone: Option<&'a str>,
}

/// A booking of `[start, end)` with `person`: their local day and cap, the
/// configured buffer.
pub fn booking(
    config: &ScheduleConfig,
    snapshot: &Snapshot,
    person: &Person,
    what: What<'_>,
    (start, end): (Instant, Instant),
    booked_by: String,
) -> Booking {
    let tz = snapshot.zone_of(person);
    let day = local_day_minute(tz, start).0;
    Booking {
        terminal_id: what.terminal_id.clone(),
        region_id: what.region_id.clone(),
        lawyer_id: person.account.id.clone(),
        language: what.language.to_owned(),
        topic: what.topic.to_owned(),
        starts_at: start,
        ends_at: end,
        buffer_secs: i64::from(config.buffer_minutes) * 60,
        booked_by,
        day: (start_of_day(tz, day), start_of_day(tz, day + 1)),
        daily_cap: person.daily_cap.unwrap_or(i64::from(config.default_daily_cap)),
        phone: what.phone.map(str::to_owned),
    }
}

/// Round robin: the lawyers given an appointment longest ago (or never) first,
/// keeping the region's team members ahead of everyone else.
pub fn round_robin<'a>(
    mut candidates: Vec<(&'a Person, bool)>,
    last: &HashMap<AccountId, i64>,
) -> Vec<&'a Person> {
    candidates.sort_by_key(|(p, in_team)| {
        (!in_team, last.get(&p.account.id).copied().unwrap_or(i64::MIN), p.account.username.clone())
    });
    candidates.into_iter().map(|(p, _)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_must_be_ahead_on_the_grid_and_within_the_horizon() {
        let config = ScheduleConfig::default();
        let now = 1_800_000_000; // on the half-hour grid
        let grid = i64::from(config.slot_minutes) * 60;
        assert_eq!(check_start(&config, now, now), Err(StartRefused::InThePast));
        assert_eq!(check_start(&config, now + 7200 + 60, now).unwrap_err().code(), "off_grid");
        assert_eq!(check_start(&config, now + grid, now).unwrap_err().code(), "too_soon");
        let far = now + i64::from(config.horizon_days) * 86_400 + grid;
        assert_eq!(check_start(&config, far, now).unwrap_err().code(), "too_far");
        let start = now + 4 * 3600;
        assert_eq!(check_start(&config, start, now), Ok(start + i64::from(config.appointment_minutes) * 60));
    }
}
