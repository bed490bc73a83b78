//! Availability, rosters, teams' coverage, appointments and calendar feeds.

use super::{
    AppendAudit, AuditEntry, BeginWrite, ConflictExt, Store, StoreError, audited, new_id, per_backend,
    with_backend, with_pool,
};
use crate::ids::{AccountId, AppointmentId, ConsultationId, RegionId, TerminalId};
use crate::unix_now;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WeeklyRow {
    pub account_id: AccountId,
    pub weekday: i64,
    pub start_minute: i64,
    pub end_minute: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OverrideRow {
    pub account_id: AccountId,
    /// `YYYY-MM-DD`, local to the account.
    pub date: String,
    pub start_minute: i64,
    pub end_minute: i64,
    /// `extra` or `off`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RosterRow {
    pub id: String,
    pub team_id: String,
    pub region_id: RegionId,
    pub weekdays: i64,
    pub start_minute: i64,
    pub end_minute: i64,
    pub starts_on: String,
    pub ends_on: String,
}

/// Everything the scheduler's in-memory snapshot is built from.
#[derive(Debug, Default)]
pub struct ScheduleRows {
    pub weekly: Vec<WeeklyRow>,
    pub overrides: Vec<OverrideRow>,
    pub rosters: Vec<RosterRow>,
    /// (team, account)
    pub members: Vec<(String, String)>,
    /// (team, region)
    pub team_regions: Vec<(String, String)>,
    /// (account, daily cap)
    pub daily_caps: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppointmentRecord {
    pub id: AppointmentId,
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub lawyer_id: AccountId,
    pub language: String,
    pub topic: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub status: String,
    pub booked_by: String,
    pub created_at: i64,
    pub consultation_id: Option<ConsultationId>,
    /// `kiosk`, or `phone`: the lawyer calls the resident at `phone_number`.
    pub channel: String,
    /// A phone appointment's number, until `phone.callback_days` after it ends.
    pub phone_number: Option<String>,
}

impl AppointmentRecord {
    pub fn by_phone(&self) -> bool {
        self.channel == "phone"
    }
}

macro_rules! appointment_columns {
    () => {
        "id, terminal_id, region_id, lawyer_id, language, topic, starts_at, ends_at, status, booked_by, created_at, consultation_id, channel, phone_number"
    };
}

/// One attempt to book an appointment with one lawyer.
#[derive(Debug, Clone)]
pub struct Booking {
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub lawyer_id: AccountId,
    pub language: String,
    pub topic: String,
    pub starts_at: i64,
    pub ends_at: i64,
    /// Lawyer time held after the appointment, in seconds.
    pub buffer_secs: i64,
    pub booked_by: String,
    /// The lawyer's local day around `starts_at`, and how many appointments
    /// they take in it.
    pub day: (i64, i64),
    pub daily_cap: i64,
    /// By phone: the number called, held against a double booking instead of
    /// the terminal (one of the region's phone lines).
    pub phone: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookOutcome {
    Booked(AppointmentId),
    /// The terminal already has an appointment then.
    TerminalBusy,
    /// The lawyer is booked then (or within the buffer).
    LawyerBusy,
    /// The lawyer's day is full.
    CapReached,
    /// (Rescheduling) the appointment is no longer booked.
    NotBooked,
}

/// Five-minute ticks covering `[from, to)`.
pub const TICK_SECS: i64 = 300;

fn ticks(from: i64, to: i64) -> impl Iterator<Item = i64> {
    from.div_euclid(TICK_SECS)..(to + TICK_SECS - 1).div_euclid(TICK_SECS)
}

/// Whose appointments to list.
#[derive(Debug, Clone, Copy)]
pub enum AppointmentScope<'a> {
    Lawyer(&'a AccountId),
    Terminal(&'a TerminalId),
    Region(&'a RegionId),
}

impl Store {
    pub async fn schedule_rows(&self) -> Result<ScheduleRows, StoreError> {
        Ok(with_pool!(self, |pool| {
            ScheduleRows {
                weekly: sqlx::query_as("SELECT account_id, weekday, start_minute, end_minute FROM availability_rules")
                    .fetch_all(pool)
                    .await?,
                overrides: sqlx::query_as(
                    "SELECT account_id, date, start_minute, end_minute, kind FROM availability_overrides",
                )
                .fetch_all(pool)
                .await?,
                rosters: sqlx::query_as(
                    "SELECT id, team_id, region_id, weekdays, start_minute, end_minute, starts_on, ends_on FROM duty_rosters",
                )
                .fetch_all(pool)
                .await?,
                members: sqlx::query_as("SELECT team_id, account_id FROM team_members").fetch_all(pool).await?,
                team_regions: sqlx::query_as("SELECT team_id, region_id FROM team_regions").fetch_all(pool).await?,
                daily_caps: sqlx::query_as("SELECT id, daily_cap FROM accounts WHERE daily_cap IS NOT NULL")
                    .fetch_all(pool)
                    .await?,
            }
        }))
    }

    pub async fn availability_of(
        &self,
        account_id: &AccountId,
    ) -> Result<(Vec<WeeklyRow>, Vec<OverrideRow>), StoreError> {
        Ok(with_pool!(self, |pool| {
            (
                sqlx::query_as(
                    "SELECT account_id, weekday, start_minute, end_minute FROM availability_rules
                     WHERE account_id = $1 ORDER BY weekday, start_minute",
                )
                .bind(account_id)
                .fetch_all(pool)
                .await?,
                sqlx::query_as(
                    "SELECT account_id, date, start_minute, end_minute, kind FROM availability_overrides
                     WHERE account_id = $1 ORDER BY date, start_minute",
                )
                .bind(account_id)
                .fetch_all(pool)
                .await?,
            )
        }))
    }

    /// Replaces a person's weekly windows and overrides, with `audit`, in one
    /// transaction.
    pub async fn replace_availability(
        &self,
        account_id: &AccountId,
        weekly: &[WeeklyRow],
        overrides: &[OverrideRow],
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        audited!(self, audit, |tx| {
            sqlx::query("DELETE FROM availability_rules WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM availability_overrides WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            for w in weekly {
                sqlx::query(
                    "INSERT INTO availability_rules (id, account_id, weekday, start_minute, end_minute) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(new_id())
                .bind(account_id)
                .bind(w.weekday)
                .bind(w.start_minute)
                .bind(w.end_minute)
                .execute(&mut *tx)
                .await?;
            }
            for o in overrides {
                sqlx::query(
                    "INSERT INTO availability_overrides (id, account_id, date, start_minute, end_minute, kind)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(new_id())
                .bind(account_id)
                .bind(&o.date)
                .bind(o.start_minute)
                .bind(o.end_minute)
                .bind(&o.kind)
                .execute(&mut *tx)
                .await?;
            }
        });
        Ok(())
    }

    pub async fn teams(&self) -> Result<Vec<super::TeamRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name FROM aid_teams ORDER BY name").fetch_all(pool).await?
        }))
    }

    pub async fn team(&self, id: &str) -> Result<Option<super::TeamRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name FROM aid_teams WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A team's member ids, region ids and terminal ids.
    pub async fn team_links(
        &self,
        id: &str,
    ) -> Result<(Vec<AccountId>, Vec<RegionId>, Vec<TerminalId>), StoreError> {
        Ok(with_pool!(self, |pool| {
            (
                sqlx::query_scalar(
                    "SELECT account_id FROM team_members WHERE team_id = $1 ORDER BY account_id",
                )
                .bind(id)
                .fetch_all(pool)
                .await?,
                sqlx::query_scalar(
                    "SELECT region_id FROM team_regions WHERE team_id = $1 ORDER BY region_id",
                )
                .bind(id)
                .fetch_all(pool)
                .await?,
                sqlx::query_scalar(
                    "SELECT terminal_id FROM team_terminals WHERE team_id = $1 ORDER BY terminal_id",
                )
                .bind(id)
                .fetch_all(pool)
                .await?,
            )
        }))
    }

    /// Stores a roster and `audit` (its subject set to the new id) in one transaction.
    pub async fn create_roster(&self, roster: &RosterRow, audit: &AuditEntry) -> Result<String, StoreError> {
        let id = new_id();
        let audit = AuditEntry { subject: id.clone(), ..audit.clone() };
        audited!(self, &audit, |tx| {
            sqlx::query(
                "INSERT INTO duty_rosters (id, team_id, region_id, weekdays, start_minute, end_minute, starts_on, ends_on, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&id)
            .bind(&roster.team_id)
            .bind(&roster.region_id)
            .bind(roster.weekdays)
            .bind(roster.start_minute)
            .bind(roster.end_minute)
            .bind(&roster.starts_on)
            .bind(&roster.ends_on)
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
        });
        Ok(id)
    }

    pub async fn roster(&self, id: &str) -> Result<Option<RosterRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, team_id, region_id, weekdays, start_minute, end_minute, starts_on, ends_on FROM duty_rosters WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    pub async fn rosters_for_region(&self, region_id: &RegionId) -> Result<Vec<RosterRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, team_id, region_id, weekdays, start_minute, end_minute, starts_on, ends_on FROM duty_rosters
                 WHERE region_id = $1 ORDER BY starts_on, id",
            )
            .bind(region_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Deletes a roster, with `audit`, in one transaction.
    pub async fn delete_roster(&self, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            sqlx::query("DELETE FROM duty_rosters WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Books in one transaction: the appointment, then the terminal's claims,
    /// then the lawyer's (with the buffer), then the day's count. Any conflict
    /// rolls the whole attempt back. A booking appends `audit` (its subject
    /// set to the new appointment) in the same transaction.
    pub async fn book(&self, b: &Booking, audit: &AuditEntry) -> Result<BookOutcome, StoreError> {
        let id = AppointmentId::from(new_id());
        let audit = AuditEntry { subject: id.to_string(), ..audit.clone() };
        let now = unix_now();
        with_backend!(self, |pool, backend| {
            // The first statement writes, so on SQLite the transaction holds the
            // write lock from the start and concurrent bookings queue instead of
            // failing to upgrade a read lock.
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO appointments (id, terminal_id, region_id, lawyer_id, language, topic, starts_at, ends_at, status, booked_by, created_at, updated_at, channel, phone_number)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'booked', $9, $10, $10, $11, $12)",
            )
            .bind(&id)
            .bind(&b.terminal_id)
            .bind(&b.region_id)
            .bind(&b.lawyer_id)
            .bind(&b.language)
            .bind(&b.topic)
            .bind(b.starts_at)
            .bind(b.ends_at)
            .bind(&b.booked_by)
            .bind(now)
            .bind(if b.phone.is_some() { "phone" } else { "kiosk" })
            .bind(&b.phone)
            .execute(&mut *tx)
            .await?;
            if let Some(refused) = backend::hold(&mut tx, b, &id).await? {
                return Ok(refused);
            }
            tx.append_audit(&audit).await?;
            tx.commit().await?;
            Ok(BookOutcome::Booked(id))
        })
    }

    /// Moves a booked appointment to a new time with the same lawyer and
    /// terminal, with `audit`, atomically; a refusal when the new time is taken.
    pub async fn reschedule(
        &self,
        id: &AppointmentId,
        b: &Booking,
        audit: &AuditEntry,
    ) -> Result<BookOutcome, StoreError> {
        with_backend!(self, |pool, backend| {
            let mut tx = pool.begin_write().await?;
            let moved = sqlx::query(
                "UPDATE appointments SET starts_at = $2, ends_at = $3, updated_at = $4, reminded_at = NULL, due_notified_at = NULL
                 WHERE id = $1 AND status = 'booked'",
            )
                .bind(id)
                .bind(b.starts_at)
                .bind(b.ends_at)
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
            // Cancelled meanwhile: nothing to move, and its freed time stays free.
            if moved.rows_affected() != 1 {
                return Ok(BookOutcome::NotBooked);
            }
            sqlx::query("DELETE FROM schedule_claims WHERE appointment_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if let Some(refused) = backend::hold(&mut tx, b, id).await? {
                return Ok(refused);
            }
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(BookOutcome::Booked(id.clone()))
        })
    }

    /// Sets a booked appointment's final status and frees what it held.
    /// False when it was not booked.
    /// The change and `audit` commit together.
    pub async fn close_appointment(
        &self,
        id: &str,
        status: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE appointments SET status = $2, updated_at = $3 WHERE id = $1 AND status = 'booked'",
            )
            .bind(id)
            .bind(status)
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            if status == "cancelled" {
                sqlx::query("DELETE FROM schedule_claims WHERE appointment_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn appointment(&self, id: &AppointmentId) -> Result<Option<AppointmentRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!("SELECT ", appointment_columns!(), " FROM appointments WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Appointments starting in `[from, to)`, by start.
    pub async fn appointments(
        &self,
        scope: AppointmentScope<'_>,
        from: i64,
        to: i64,
    ) -> Result<Vec<AppointmentRecord>, StoreError> {
        let (sql, key) = match scope {
            AppointmentScope::Lawyer(id) => (
                concat!(
                    "SELECT ",
                    appointment_columns!(),
                    " FROM appointments WHERE lawyer_id = $1 AND starts_at >= $2 AND starts_at < $3 ORDER BY starts_at"
                ),
                id.as_str(),
            ),
            AppointmentScope::Terminal(id) => (
                concat!(
                    "SELECT ",
                    appointment_columns!(),
                    " FROM appointments WHERE terminal_id = $1 AND starts_at >= $2 AND starts_at < $3 ORDER BY starts_at"
                ),
                id.as_str(),
            ),
            AppointmentScope::Region(id) => (
                concat!(
                    "SELECT ",
                    appointment_columns!(),
                    " FROM appointments WHERE region_id = $1 AND starts_at >= $2 AND starts_at < $3 ORDER BY starts_at"
                ),
                id.as_str(),
            ),
        };
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(sql).bind(key).bind(from).bind(to).fetch_all(pool).await?
        }))
    }

    /// Booked appointments overlapping `[from, to)`, any lawyer: (lawyer, start, end).
    pub async fn booked_between(&self, from: i64, to: i64) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT lawyer_id, starts_at, ends_at FROM appointments WHERE status = 'booked' AND ends_at > $1 AND starts_at < $2",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }))
    }

    /// When each lawyer was last given an appointment, for round robin.
    pub async fn last_assignments(&self) -> Result<Vec<(AccountId, i64)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT lawyer_id, MAX(created_at) FROM appointments GROUP BY lawyer_id")
                .fetch_all(pool)
                .await?
        }))
    }

    /// Booked appointments whose reminder is due (starting within `lead` seconds) and not yet sent;
    /// marks them reminded.
    pub async fn take_due_reminders(
        &self,
        now: i64,
        lead: i64,
    ) -> Result<Vec<AppointmentRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "UPDATE appointments SET reminded_at = $1 WHERE status = 'booked' AND reminded_at IS NULL
                 AND starts_at > $1 AND starts_at <= $1 + $2 RETURNING ",
                appointment_columns!()
            ))
            .bind(now)
            .bind(lead)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Booked appointments that have started and were not yet announced; marks them.
    pub async fn take_started(&self, now: i64) -> Result<Vec<AppointmentRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "UPDATE appointments SET due_notified_at = $1 WHERE status = 'booked' AND due_notified_at IS NULL
                 AND starts_at <= $1 AND ends_at > $1 RETURNING ",
                appointment_columns!()
            ))
            .bind(now)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Appointments whose start was announced but that never reached the live
    /// path (the server stopped in between): still booked, not over, with no
    /// request of theirs.
    pub async fn started_without_request(&self, now: i64) -> Result<Vec<AppointmentRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                appointment_columns!(),
                " FROM appointments a WHERE status = 'booked' AND due_notified_at IS NOT NULL AND ends_at > $1
                 AND NOT EXISTS (SELECT 1 FROM consultation_requests r WHERE r.appointment_id = a.id)"
            ))
            .bind(now)
            .fetch_all(pool)
            .await?
        }))
    }

    /// (account, region) for every team member and every region their teams are posted to.
    pub async fn member_regions(&self) -> Result<Vec<(AccountId, RegionId)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT DISTINCT m.account_id, r.region_id FROM team_members m JOIN team_regions r ON r.team_id = m.team_id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Regions whose teams include this person.
    pub async fn regions_of_member(&self, account_id: &AccountId) -> Result<Vec<RegionId>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT r.region_id FROM team_members m JOIN team_regions r ON r.team_id = m.team_id
                 WHERE m.account_id = $1 ORDER BY r.region_id",
            )
            .bind(account_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Sets (or replaces) a person's calendar feed token, with `audit`, in one transaction.
    pub async fn set_calendar_token(
        &self,
        account_id: &AccountId,
        token_hash: &str,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        audited!(self, audit, |tx| {
            sqlx::query(
                "INSERT INTO calendar_feeds (account_id, token_hash, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
            )
            .bind(account_id)
            .bind(token_hash)
            .bind(unix_now())
            .execute(&mut *tx)
            .await
            .on_conflict("a calendar token")?;
        });
        Ok(())
    }

    /// Ends a person's calendar feed, with `audit`, in one transaction.
    pub async fn delete_calendar_token(
        &self,
        account_id: &AccountId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            sqlx::query("DELETE FROM calendar_feeds WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    pub async fn calendar_owner(&self, token_hash: &str) -> Result<Option<AccountId>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT account_id FROM calendar_feeds WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
        }))
    }
}

per_backend! {
    /// Holds the terminal's time and the lawyer's (with the buffer), then checks
    /// the lawyer's day; returns why not when any of it fails.
    pub(super) async fn hold(
        tx: &mut sqlx::Transaction<'static, Db>,
        b: &Booking,
        appointment_id: &AppointmentId,
    ) -> Result<Option<BookOutcome>, StoreError> {
        // By phone, the resident's time is their number's (kept as a
        // fingerprint); at a kiosk, the terminal's.
        let resident = match &b.phone {
            Some(number) => format!("phone:{}", crate::password::fingerprint(number)),
            None => format!("terminal:{}", b.terminal_id),
        };
        if claim(tx, &resident, b.starts_at, b.ends_at, appointment_id).await?.is_err() {
            return Ok(Some(BookOutcome::TerminalBusy));
        }
        let lawyer = format!("lawyer:{}", b.lawyer_id);
        if claim(tx, &lawyer, b.starts_at, b.ends_at + b.buffer_secs, appointment_id).await?.is_err() {
            return Ok(Some(BookOutcome::LawyerBusy));
        }
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM appointments WHERE lawyer_id = $1 AND status IN ('booked', 'completed')
             AND starts_at >= $2 AND starts_at < $3",
        )
        .bind(&b.lawyer_id)
        .bind(b.day.0)
        .bind(b.day.1)
        .fetch_one(&mut **tx)
        .await?;
        Ok((taken > b.daily_cap).then_some(BookOutcome::CapReached))
    }

    /// Inserts one claim per tick; `Ok(Err(()))` when any tick is already held.
    async fn claim(
        tx: &mut sqlx::Transaction<'static, Db>,
        resource: &str,
        from: i64,
        to: i64,
        appointment_id: &AppointmentId,
    ) -> Result<Result<(), ()>, StoreError> {
        for tick in ticks(from, to) {
            // DO NOTHING rather than a caught error: on PostgreSQL a failed
            // statement would leave the transaction unusable.
            let inserted = sqlx::query(
                "INSERT INTO schedule_claims (resource, tick, appointment_id) VALUES ($1, $2, $3)
                 ON CONFLICT (resource, tick) DO NOTHING",
            )
            .bind(resource)
            .bind(tick)
            .bind(appointment_id)
            .execute(&mut **tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Ok(Err(()));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::ticks;

    #[test]
    fn ticks_cover_partial_edges() {
        assert_eq!(ticks(0, 1800).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
        assert_eq!(ticks(0, 1801).count(), 7);
        assert_eq!(ticks(299, 301).collect::<Vec<_>>(), vec![0, 1]);
    }
}

#[cfg(test)]
mod race_tests {
    use super::*;
    use crate::store::testing;
    use crate::store::{NewAccount, NewTerminal, RegionRecord};

    /// Two handles on one database, as two signaling nodes have, book the same
    /// half hour at once: for one lawyer from seven terminals, then at one
    /// terminal with seven lawyers. Exactly one booking wins each time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_bookings_from_two_nodes_yield_one() {
        let (first, config, _dir) = testing::store_and_config().await;
        let second = Store::open(&config).await.unwrap();
        let region =
            RegionRecord { id: "r".into(), name: "R".into(), parent_id: None, time_zone: "UTC".into() };
        first.ensure_region(&region).await.unwrap();
        let mut lawyers = Vec::new();
        let mut terminals = Vec::new();
        for i in 0..8 {
            lawyers.push(
                first
                    .create_account(
                        &NewAccount {
                            username: format!("l{i}"),
                            display_name: "L".into(),
                            password_hash: "x".into(),
                            time_zone: "UTC".into(),
                            roles: vec![crate::domain::Role::Lawyer],
                            languages: vec![],
                            topics: vec![],
                        },
                        &[],
                        &crate::store::AuditEntry::system("account.created"),
                    )
                    .await
                    .unwrap(),
            );
            terminals.push(
                first
                    .create_terminal(
                        &NewTerminal {
                            name: format!("t{i}"),
                            township: "T".into(),
                            region_id: "r".into(),
                            languages: vec![],
                            enrollment_code_hash: format!("h{i}"),
                            enrollment_expires_at: 0,
                        },
                        &crate::store::AuditEntry::system("terminal.registered"),
                    )
                    .await
                    .unwrap(),
            );
        }
        let start = 1_800_000_000;
        let booking = |lawyer: &str, terminal: &str| Booking {
            terminal_id: terminal.into(),
            region_id: "r".into(),
            lawyer_id: lawyer.into(),
            language: "zh".into(),
            topic: "land".into(),
            starts_at: start,
            ends_at: start + 1800,
            buffer_secs: 600,
            booked_by: "test".into(),
            day: (start - 3600, start + 86_400),
            daily_cap: 10,
            phone: None,
        };
        let race = |bookings: Vec<Booking>| {
            let tasks: Vec<_> = bookings
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    let store = if i % 2 == 0 { first.clone() } else { second.clone() };
                    tokio::spawn(async move {
                        store.book(&b, &crate::store::AuditEntry::system("appointment.booked")).await.unwrap()
                    })
                })
                .collect();
            async move {
                let mut outcomes = Vec::new();
                for task in tasks {
                    outcomes.push(task.await.unwrap());
                }
                outcomes
            }
        };

        let one_lawyer = race(terminals[..7].iter().map(|t| booking(&lawyers[0], t)).collect()).await;
        let won = one_lawyer.iter().filter(|o| matches!(o, BookOutcome::Booked(_))).count();
        assert_eq!(won, 1, "{one_lawyer:?}");
        assert!(one_lawyer.iter().all(|o| matches!(o, BookOutcome::Booked(_) | BookOutcome::LawyerBusy)));

        let one_terminal = race(lawyers[1..].iter().map(|l| booking(l, &terminals[7])).collect()).await;
        let won = one_terminal.iter().filter(|o| matches!(o, BookOutcome::Booked(_))).count();
        assert_eq!(won, 1, "{one_terminal:?}");
        assert!(one_terminal.iter().all(|o| matches!(o, BookOutcome::Booked(_) | BookOutcome::TerminalBusy)));

        let booked = second.appointments(AppointmentScope::Region(&"r".into()), 0, i64::MAX).await.unwrap();
        assert_eq!(booked.len(), 2, "{booked:?}");
    }
}

#[cfg(test)]
mod model_tests {
    //! Booking against a model: a random sequence of bookings, cancellations
    //! and reschedules, run on a real database and on a plain in-memory model.
    //! Every outcome must match the model, and at the end no lawyer (with the
    //! buffer) and no terminal holds two overlapping appointments, and no
    //! lawyer's day exceeds the cap.

    use super::*;
    use crate::store::testing;
    use crate::store::{NewAccount, NewTerminal, RegionRecord};
    use proptest::prelude::*;

    const SLOT: i64 = 1800;
    const LENGTH: i64 = 1800;
    const BUFFER: i64 = 600;
    const CAP: i64 = 3;
    const BASE: i64 = 1_796_083_200; // a midnight, UTC

    #[derive(Debug, Clone)]
    enum Op {
        Book { lawyer: usize, terminal: usize, slot: i64 },
        Cancel { nth: usize },
        Reschedule { nth: usize, slot: i64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..3, 0usize..3, 0i64..12).prop_map(|(lawyer, terminal, slot)| Op::Book { lawyer, terminal, slot }),
            1 => (0usize..20).prop_map(|nth| Op::Cancel { nth }),
            1 => (0usize..20, 0i64..12).prop_map(|(nth, slot)| Op::Reschedule { nth, slot }),
        ]
    }

    #[derive(Debug, Clone)]
    struct Held {
        id: AppointmentId,
        lawyer: usize,
        terminal: usize,
        start: i64,
    }

    fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
        a.0 < b.1 && b.0 < a.1
    }

    /// What the model says booking `(lawyer, terminal, start)` should do, ignoring `except`.
    fn expected(
        held: &[Held],
        lawyer: usize,
        terminal: usize,
        start: i64,
        except: Option<&str>,
    ) -> BookOutcome {
        let others = || held.iter().filter(|h| Some(h.id.as_str()) != except);
        let tick = |t: i64| t.div_euclid(TICK_SECS);
        // Claims are whole ticks, as in the database.
        let span = |s: i64, e: i64| (tick(s), (e + TICK_SECS - 1).div_euclid(TICK_SECS));
        if others().any(|h| {
            h.terminal == terminal && overlaps(span(h.start, h.start + LENGTH), span(start, start + LENGTH))
        }) {
            return BookOutcome::TerminalBusy;
        }
        if others().any(|h| {
            h.lawyer == lawyer
                && overlaps(span(h.start, h.start + LENGTH + BUFFER), span(start, start + LENGTH + BUFFER))
        }) {
            return BookOutcome::LawyerBusy;
        }
        if others().filter(|h| h.lawyer == lawyer).count() as i64 + 1 > CAP {
            return BookOutcome::CapReached;
        }
        BookOutcome::Booked(AppointmentId::default())
    }

    fn same_kind(a: &BookOutcome, b: &BookOutcome) -> bool {
        std::mem::discriminant(a) == std::mem::discriminant(b)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn bookings_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let (store, _dir) = testing::store().await;
                store.ensure_region(&RegionRecord { id: "r".into(), name: "R".into(), parent_id: None, time_zone: "UTC".into() }).await.unwrap();
                let mut lawyers = Vec::new();
                for i in 0..3 {
                    lawyers.push(store.create_account(&NewAccount {
                        username: format!("l{i}"), display_name: "L".into(), password_hash: "x".into(),
                        time_zone: "UTC".into(), roles: vec![crate::domain::Role::Lawyer], languages: vec![], topics: vec![],
                    }, &[], &crate::store::AuditEntry::system("account.created")).await.unwrap());
                }
                let mut terminals = Vec::new();
                for i in 0..3 {
                    terminals.push(store.create_terminal(&NewTerminal {
                        name: format!("t{i}"), township: "T".into(), region_id: "r".into(), languages: vec![],
                        enrollment_code_hash: format!("h{i}"), enrollment_expires_at: 0,
                    }, &crate::store::AuditEntry::system("terminal.registered")).await.unwrap());
                }
                let booking = |lawyer: usize, terminal: usize, start: i64| Booking {
                    terminal_id: terminals[terminal].clone(), region_id: "r".into(), lawyer_id: lawyers[lawyer].clone(),
                    language: "zh".into(), topic: "land".into(), starts_at: start, ends_at: start + LENGTH,
                    buffer_secs: BUFFER, booked_by: "test".into(), day: (BASE, BASE + 86_400), daily_cap: CAP,
                    phone: None,
                };
                let mut held: Vec<Held> = Vec::new();
                for op in ops {
                    match op {
                        Op::Book { lawyer, terminal, slot } => {
                            let start = BASE + slot * SLOT;
                            let want = expected(&held, lawyer, terminal, start, None);
                            let got = store.book(&booking(lawyer, terminal, start), &crate::store::AuditEntry::system("appointment.booked")).await.unwrap();
                            prop_assert!(same_kind(&want, &got), "book {:?}: model {:?}, database {:?}", (lawyer, terminal, slot), want, got);
                            if let BookOutcome::Booked(id) = got {
                                held.push(Held { id, lawyer, terminal, start });
                            }
                        }
                        Op::Cancel { nth } => {
                            if held.is_empty() { continue; }
                            let h = held.remove(nth % held.len());
                            prop_assert!(store.close_appointment(&h.id, "cancelled", &crate::store::AuditEntry::system("appointment.closed")).await.unwrap());
                            prop_assert!(!store.close_appointment(&h.id, "cancelled", &crate::store::AuditEntry::system("appointment.closed")).await.unwrap(), "only once");
                        }
                        Op::Reschedule { nth, slot } => {
                            if held.is_empty() { continue; }
                            let k = nth % held.len();
                            let h = held[k].clone();
                            let start = BASE + slot * SLOT;
                            let want = expected(&held, h.lawyer, h.terminal, start, Some(&h.id));
                            let got = store.reschedule(&h.id, &booking(h.lawyer, h.terminal, start), &crate::store::AuditEntry::system("appointment.rescheduled")).await.unwrap();
                            prop_assert!(same_kind(&want, &got), "reschedule: model {:?}, database {:?}", want, got);
                            if matches!(got, BookOutcome::Booked(_)) {
                                held[k].start = start;
                            }
                        }
                    }
                }
                // A cancelled appointment cannot be brought back by a reschedule racing the cancel.
                if let Some(h) = held.first().cloned() {
                    prop_assert!(store.close_appointment(&h.id, "cancelled", &crate::store::AuditEntry::system("appointment.closed")).await.unwrap());
                    let revived = store.reschedule(&h.id, &booking(h.lawyer, h.terminal, BASE + 11 * SLOT), &crate::store::AuditEntry::system("appointment.rescheduled")).await.unwrap();
                    prop_assert_eq!(revived, BookOutcome::NotBooked);
                    held.remove(0);
                }
                // The database agrees with the model, and the invariants hold in it.
                let stored: Vec<AppointmentRecord> = store.appointments(AppointmentScope::Region(&"r".into()), 0, i64::MAX).await.unwrap()
                    .into_iter().filter(|a| a.status == "booked").collect();
                prop_assert_eq!(stored.len(), held.len());
                for a in &stored {
                    let h = held.iter().find(|h| h.id == a.id).expect("in the model");
                    prop_assert_eq!(a.starts_at, h.start);
                    for b in &stored {
                        if a.id == b.id { continue; }
                        if a.lawyer_id == b.lawyer_id {
                            prop_assert!(!overlaps((a.starts_at, a.ends_at + BUFFER), (b.starts_at, b.ends_at + BUFFER)));
                        }
                        if a.terminal_id == b.terminal_id {
                            prop_assert!(!overlaps((a.starts_at, a.ends_at), (b.starts_at, b.ends_at)));
                        }
                    }
                    prop_assert!(stored.iter().filter(|b| b.lawyer_id == a.lawyer_id).count() as i64 <= CAP);
                }
                Ok(())
            })?;
        }
    }
}
