//! Consultations and their records.

use super::{AuditEntry, Store, StoreError, audited, new_id, with_pool};
use crate::domain::Topic;
use crate::ids::{AccountId, ConsultationId, RegionId, TerminalId};

/// A consultation to record (by the live path, or a test).
#[derive(Debug, Clone)]
pub struct NewConsultation {
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub lawyer_id: AccountId,
    pub interpreter_id: Option<AccountId>,
    pub topic: Topic,
    pub language: String,
    pub started_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsultationRecord {
    pub id: ConsultationId,
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub lawyer_id: AccountId,
    pub interpreter_id: Option<AccountId>,
    pub topic: String,
    pub language: String,
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub summary: Option<String>,
    pub outcome: Option<String>,
    pub rating: Option<i64>,
    /// A hotline caller's number is kept for a callback.
    pub callback: bool,
}

/// Whose consultations to list.
#[derive(Debug, Clone)]
pub enum ConsultationScope<'a> {
    /// Those the account took part in, as lawyer or interpreter.
    Participant(&'a AccountId),
    Terminal(&'a TerminalId),
    Regions(&'a [RegionId]),
}

/// A consultation as the service records count it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceRow {
    pub region_id: RegionId,
    pub lawyer_id: AccountId,
    pub interpreter_id: Option<AccountId>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub rating: Option<i64>,
    /// It was a booked appointment, kept.
    pub appointment: bool,
    /// Referrals the resident agreed to.
    pub referrals: i64,
}

macro_rules! consultation_columns {
    () => {
        "id, terminal_id, region_id, lawyer_id, interpreter_id, topic, language, status, started_at, ended_at, \
         summary, outcome, rating, \
         EXISTS (SELECT 1 FROM callback_numbers n WHERE n.consultation_id = consultations.id) AS callback"
    };
}

impl Store {
    pub async fn create_consultation(&self, new: &NewConsultation) -> Result<ConsultationId, StoreError> {
        let id = ConsultationId::from(new_id());
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO consultations (id, terminal_id, region_id, lawyer_id, interpreter_id, topic, language, status, started_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8)",
            )
            .bind(&id)
            .bind(&new.terminal_id)
            .bind(&new.region_id)
            .bind(&new.lawyer_id)
            .bind(&new.interpreter_id)
            .bind(new.topic.code())
            .bind(&new.language)
            .bind(new.started_at)
            .execute(pool)
            .await?;
        });
        Ok(id)
    }

    pub async fn consultation(&self, id: &ConsultationId) -> Result<Option<ConsultationRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!("SELECT ", consultation_columns!(), " FROM consultations WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Newest first, at most `limit`.
    pub async fn consultations(
        &self,
        scope: ConsultationScope<'_>,
        limit: i64,
    ) -> Result<Vec<ConsultationRecord>, StoreError> {
        Ok(match scope {
            ConsultationScope::Participant(account) => with_pool!(self, |pool| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    consultation_columns!(),
                    " FROM consultations WHERE lawyer_id = $1 OR interpreter_id = $1 ORDER BY started_at DESC LIMIT $2"
                ))
                .bind(account)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }),
            ConsultationScope::Terminal(terminal) => with_pool!(self, |pool| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    consultation_columns!(),
                    " FROM consultations WHERE terminal_id = $1 ORDER BY started_at DESC LIMIT $2"
                ))
                .bind(terminal)
                .bind(limit)
                .fetch_all(pool)
                .await?
            }),
            ConsultationScope::Regions(regions) => {
                let mut all = Vec::new();
                for region in regions {
                    let rows: Vec<ConsultationRecord> = with_pool!(self, |pool| {
                        sqlx::query_as(concat!(
                            "SELECT ",
                            consultation_columns!(),
                            " FROM consultations WHERE region_id = $1 ORDER BY started_at DESC LIMIT $2"
                        ))
                        .bind(region)
                        .bind(limit)
                        .fetch_all(pool)
                        .await?
                    });
                    all.extend(rows);
                }
                all.sort_by_key(|c| std::cmp::Reverse(c.started_at));
                all.truncate(limit.max(0) as usize);
                all
            }
        })
    }

    /// Consultations started in `[from, to)`, as the service records count them.
    pub async fn service_rows(&self, from: i64, to: i64) -> Result<Vec<ServiceRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT c.region_id, c.lawyer_id, c.interpreter_id, c.started_at, c.ended_at, c.rating,
                        EXISTS (SELECT 1 FROM appointments a WHERE a.consultation_id = c.id) AS appointment,
                        c.referrals_made AS referrals
                 FROM consultations c WHERE c.started_at >= $1 AND c.started_at < $2 ORDER BY c.started_at",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Writes the lawyer's record, with `audit`, in one transaction. False
    /// when there is no such consultation.
    pub async fn save_consultation_record(
        &self,
        id: &str,
        summary: &str,
        outcome: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            sqlx::query("UPDATE consultations SET summary = $2, outcome = $3 WHERE id = $1")
                .bind(id)
                .bind(summary)
                .bind(outcome)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Keeps a hotline caller's number for a callback (replacing one kept before).
    pub async fn keep_callback_number(
        &self,
        consultation: &ConsultationId,
        number: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO callback_numbers (consultation_id, number, stored_at) VALUES ($1, $2, $3)
                 ON CONFLICT (consultation_id) DO UPDATE SET number = $2, stored_at = $3",
            )
            .bind(consultation)
            .bind(number)
            .bind(crate::unix_now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Deletes the numbers kept since before `before`, and those of phone
    /// appointments that ended before it; how many went.
    pub async fn forget_callback_numbers(&self, before: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool| {
            let kept = sqlx::query("DELETE FROM callback_numbers WHERE stored_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected();
            let booked = sqlx::query(
                "UPDATE appointments SET phone_number = NULL WHERE phone_number IS NOT NULL AND ends_at < $1",
            )
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected();
            kept + booked
        }))
    }

    /// The number a consultation's caller may be called back on.
    pub async fn callback_number(&self, consultation: &ConsultationId) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT number FROM callback_numbers WHERE consultation_id = $1")
                .bind(consultation)
                .fetch_optional(pool)
                .await?
        }))
    }
}
