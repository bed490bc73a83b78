//! The live path's rows: waiting requests, offers, and consultations starting
//! and ending. The dispatcher (`crate::live`) is their only writer, through one
//! ordered queue; reads here rebuild its state after a restart.

use super::{BeginWrite, ConflictExt, Store, StoreError, per_backend, with_backend, with_pool};

use crate::domain::Topic;
use crate::ids::{AccountId, AppointmentId, ConsultationId, RegionId, RequestId, TerminalId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RequestRow {
    pub id: RequestId,
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub language: String,
    pub topic: String,
    pub front: bool,
    pub preferred_lawyer_id: Option<AccountId>,
    pub created_at: i64,
    /// The appointment whose start this is.
    pub appointment_id: Option<AppointmentId>,
}

/// How a request stopped waiting (other than by a match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEnd {
    Cancelled,
    Abandoned,
}

#[derive(Debug, Clone)]
pub struct OfferRow {
    pub id: String,
    pub request_id: RequestId,
    pub account_id: AccountId,
    /// `lawyer` or `interpreter`.
    pub role: &'static str,
    pub offered_at: i64,
    pub deadline: i64,
}

/// What became of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferOutcome {
    Accepted,
    Declined,
    TimedOut,
    Withdrawn,
}

impl OfferOutcome {
    fn code(self) -> &'static str {
        match self {
            OfferOutcome::Accepted => "accepted",
            OfferOutcome::Declined => "declined",
            OfferOutcome::TimedOut => "timed_out",
            OfferOutcome::Withdrawn => "withdrawn",
        }
    }
}

/// A consultation that starts now, from a request.
#[derive(Debug, Clone)]
pub struct StartedConsultation {
    pub id: ConsultationId,
    pub request_id: RequestId,
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub lawyer_id: AccountId,
    pub interpreter_id: Option<AccountId>,
    pub topic: Topic,
    pub language: String,
    pub started_at: i64,
}

/// A consultation still open when the server starts.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenConsultation {
    pub id: ConsultationId,
    pub request_id: Option<RequestId>,
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub lawyer_id: AccountId,
    pub interpreter_id: Option<AccountId>,
    pub topic: String,
    pub language: String,
    pub status: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
}

/// One change the live path makes. The dispatcher's writer applies them in
/// order, many to a transaction ([`Store::apply_live_writes`]).
#[derive(Debug, Clone)]
pub enum LiveWrite {
    /// A new waiting request. `Conflict` when the terminal already has one.
    Request(RequestRow),
    /// A waiting request stops waiting without a match.
    CloseRequest(RequestId, RequestEnd),
    Offer(OfferRow),
    DecideOffer(String, OfferOutcome),
    /// The consultation is recorded and its request marked matched, together.
    Start(StartedConsultation),
    /// The call is over (with the reason): `wrap_up` while the lawyer writes the record.
    End(ConsultationId, String),
    /// Wrap-up is over (record saved, or its time ran out).
    FinishWrapUp(ConsultationId),
    /// A waiting request becomes an appointment's (its resident was already
    /// waiting when the appointment started), preferring its lawyer.
    AttachAppointment {
        request: RequestId,
        appointment: AppointmentId,
        lawyer: AccountId,
    },
    /// The resident's rating, once, after the call, from the terminal it took
    /// place at. Changes no row when any of that is not so.
    Rate {
        consultation: ConsultationId,
        terminal_id: TerminalId,
        rating: i64,
    },
}

per_backend! {
    pub(super) async fn apply_one(
        conn: &mut <Db as sqlx::Database>::Connection,
        write: &LiveWrite, at: i64) -> Result<u64, StoreError> {
        let done = match write {
            LiveWrite::Request(row) => sqlx::query(
                "INSERT INTO consultation_requests
                   (id, terminal_id, region_id, language, topic, status, front, preferred_lawyer_id, created_at,
                    appointment_id)
                 VALUES ($1, $2, $3, $4, $5, 'waiting', $6, $7, $8, $9)",
            )
            .bind(&row.id)
            .bind(&row.terminal_id)
            .bind(&row.region_id)
            .bind(&row.language)
            .bind(&row.topic)
            .bind(row.front)
            .bind(&row.preferred_lawyer_id)
            .bind(row.created_at)
            .bind(&row.appointment_id)
            .execute(&mut *conn)
            .await
            .on_conflict("a waiting request at this terminal")?,
            LiveWrite::CloseRequest(id, end) => {
                let (request, appointment) = match end {
                    RequestEnd::Cancelled => ("cancelled", "cancelled"),
                    RequestEnd::Abandoned => ("abandoned", "no_show"),
                };
                let done = sqlx::query(
                    "UPDATE consultation_requests SET status = $2, closed_at = $3 WHERE id = $1 AND status = 'waiting'",
                )
                .bind(id)
                .bind(request)
                .bind(at)
                .execute(&mut *conn)
                .await?;
                // An appointment's resident who cancelled, or never came.
                if done.rows_affected() == 1 {
                    sqlx::query(
                        "UPDATE appointments SET status = $2, updated_at = $3
                         WHERE id = (SELECT appointment_id FROM consultation_requests WHERE id = $1) AND status = 'booked'",
                    )
                    .bind(id)
                    .bind(appointment)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
                }
                done
            }
            LiveWrite::Offer(offer) => sqlx::query(
                "INSERT INTO consultation_offers (id, request_id, account_id, role, offered_at, deadline, outcome)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
            )
            .bind(&offer.id)
            .bind(&offer.request_id)
            .bind(&offer.account_id)
            .bind(offer.role)
            .bind(offer.offered_at)
            .bind(offer.deadline)
            .execute(&mut *conn)
            .await?,
            LiveWrite::DecideOffer(id, outcome) => sqlx::query(
                "UPDATE consultation_offers SET outcome = $2, decided_at = $3 WHERE id = $1 AND outcome = 'pending'",
            )
            .bind(id)
            .bind(outcome.code())
            .bind(at)
            .execute(&mut *conn)
            .await?,
            LiveWrite::Start(c) => {
                sqlx::query(
                    "INSERT INTO consultations
                       (id, terminal_id, region_id, lawyer_id, interpreter_id, topic, language, status, started_at, request_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9)",
                )
                .bind(&c.id)
                .bind(&c.terminal_id)
                .bind(&c.region_id)
                .bind(&c.lawyer_id)
                .bind(&c.interpreter_id)
                .bind(c.topic.code())
                .bind(&c.language)
                .bind(c.started_at)
                .bind(&c.request_id)
                .execute(&mut *conn)
                .await
                .on_conflict("an active consultation of one of its participants")?;
                sqlx::query(
                    "UPDATE consultation_requests SET status = 'matched', closed_at = $2, consultation_id = $3
                     WHERE id = $1 AND status = 'waiting'",
                )
                .bind(&c.request_id)
                .bind(c.started_at)
                .bind(&c.id)
                .execute(&mut *conn)
                .await?;
                // An appointment's consultation: the appointment is kept.
                sqlx::query(
                    "UPDATE appointments SET status = 'completed', consultation_id = $2, updated_at = $3
                     WHERE id = (SELECT appointment_id FROM consultation_requests WHERE id = $1) AND status = 'booked'",
                )
                .bind(&c.request_id)
                .bind(&c.id)
                .bind(c.started_at)
                .execute(&mut *conn)
                .await?
            }
            LiveWrite::End(id, reason) => sqlx::query(
                "UPDATE consultations SET status = 'wrap_up', ended_at = $2, end_reason = $3
                 WHERE id = $1 AND status = 'active'",
            )
            .bind(id)
            .bind(at)
            .bind(reason)
            .execute(&mut *conn)
            .await?,
            LiveWrite::AttachAppointment { request, appointment, lawyer } => sqlx::query(
                "UPDATE consultation_requests SET appointment_id = $2, preferred_lawyer_id = $3
                 WHERE id = $1 AND status = 'waiting'",
            )
            .bind(request)
            .bind(appointment)
            .bind(lawyer)
            .execute(&mut *conn)
            .await?,
            LiveWrite::Rate { consultation, terminal_id, rating } => sqlx::query(
                "UPDATE consultations SET rating = $3
                 WHERE id = $1 AND terminal_id = $2 AND status != 'active' AND rating IS NULL",
            )
            .bind(consultation)
            .bind(terminal_id)
            .bind(rating)
            .execute(&mut *conn)
            .await?,
            LiveWrite::FinishWrapUp(id) => {
                sqlx::query("UPDATE consultations SET status = 'ended' WHERE id = $1 AND status = 'wrap_up'")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }
}

/// A request with what became of it, for reports.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportRow {
    pub region_id: RegionId,
    pub language: String,
    pub topic: String,
    /// `waiting`, `matched`, `cancelled` or `abandoned`.
    pub status: String,
    pub created_at: i64,
    /// When its consultation started, if it was matched.
    pub started_at: Option<i64>,
    pub rating: Option<i64>,
    /// The terminal's channel: `kiosk`, or `phone` (the hotline).
    pub channel: String,
}

impl Store {
    /// Applies `writes` in order in one transaction, each at its time. A write
    /// that fails (a constraint) changes nothing and does not stop the others:
    /// its error is in its place in the result. Returns rows changed per write.
    pub async fn apply_live_writes(
        &self,
        writes: &[(LiveWrite, i64)],
    ) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
        // Writes almost never fail: first all of them in one transaction,
        // a statement each. Only if one fails is the batch done again with each
        // write in a savepoint, so that a failed one is undone whole and the
        // others still go in (PostgreSQL would otherwise refuse every statement
        // after a failed one). Savepoints cost two more round trips a write,
        // which under load is what limits the live path's writer.
        let all_went_in = with_backend!(self, |pool, backend| {
            let mut tx = pool.begin_write().await?;
            let mut results = Vec::with_capacity(writes.len());
            for (write, at) in writes {
                match backend::apply_one(&mut tx, write, *at).await {
                    Ok(rows) => results.push(Ok(rows)),
                    Err(_) => break,
                }
            }
            if results.len() == writes.len() {
                tx.commit().await?;
                Some(results)
            } else {
                tx.rollback().await?;
                None
            }
        });
        if let Some(results) = all_went_in {
            return Ok(results);
        }
        let mut results = Vec::with_capacity(writes.len());
        with_backend!(self, |pool, backend| {
            let mut tx = pool.begin_write().await?;
            for (write, at) in writes {
                let mut one = sqlx::Connection::begin(&mut *tx).await?;
                let result = backend::apply_one(&mut one, write, *at).await;
                if result.is_ok() {
                    one.commit().await?;
                } else {
                    one.rollback().await?;
                }
                results.push(result);
            }
            tx.commit().await?;
        });
        Ok(results)
    }

    /// One write, in its own transaction.
    pub async fn apply_live_write(&self, write: LiveWrite, at: i64) -> Result<u64, StoreError> {
        let mut results = self.apply_live_writes(&[(write, at)]).await?;
        results.pop().unwrap_or(Ok(0))
    }

    /// Every waiting request, oldest first.
    pub async fn waiting_requests(&self) -> Result<Vec<RequestRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, terminal_id, region_id, language, topic, front, preferred_lawyer_id, created_at,
                        appointment_id
                 FROM consultation_requests WHERE status = 'waiting' ORDER BY created_at",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Requests made in `[from, to)`, with their consultation's start and
    /// rating. A resident put back in the queue after a dropped call is not a
    /// new request: those are left out.
    pub async fn report_rows(&self, from: i64, to: i64) -> Result<Vec<ReportRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT r.region_id, r.language, r.topic, r.status, r.created_at, c.started_at, c.rating, t.channel
                 FROM consultation_requests r LEFT JOIN consultations c ON c.id = r.consultation_id
                 JOIN terminals t ON t.id = r.terminal_id
                 WHERE r.created_at >= $1 AND r.created_at < $2
                   AND NOT (r.front AND r.appointment_id IS NULL)",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Offers still pending when the server stopped: nobody is being rung now.
    pub async fn withdraw_pending_offers(&self, now: i64) -> Result<u64, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE consultation_offers SET outcome = 'withdrawn', decided_at = $1 WHERE outcome = 'pending'",
            )
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done)
    }

    /// Consultations in a call or in wrap-up.
    pub async fn open_consultations(&self) -> Result<Vec<OpenConsultation>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, request_id, terminal_id, region_id, lawyer_id, interpreter_id, topic, language, status,
                        started_at, ended_at
                 FROM consultations WHERE status IN ('active', 'wrap_up') ORDER BY started_at",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Consultations `account` has taken (as lawyer or interpreter) since `since`.
    pub async fn consultations_taken_since(&self, account: &str, since: i64) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM consultations
                 WHERE (lawyer_id = $1 OR interpreter_id = $1) AND started_at >= $2",
            )
            .bind(account)
            .bind(since)
            .fetch_one(pool)
            .await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[tokio::test]
    async fn one_waiting_request_per_terminal_and_one_active_consultation_per_person() {
        let (store, _dir) = testing::store().await;
        crate::demo::seed(&store).await.unwrap();
        let terminal = store.terminals_in_region(&"demo-garze".into()).await.unwrap().remove(0).id;
        let lawyer = store.account_by_username("demo-lawyer").await.unwrap().unwrap().id;
        let request = |id: &str| RequestRow {
            id: id.into(),
            terminal_id: terminal.clone(),
            region_id: "demo-garze".into(),
            language: "bo".into(),
            topic: "land".into(),
            front: false,
            preferred_lawyer_id: None,
            created_at: 100,
            appointment_id: None,
        };
        let write = |w: LiveWrite| store.apply_live_write(w, 300);
        write(LiveWrite::Request(request("r1"))).await.unwrap();
        assert!(matches!(write(LiveWrite::Request(request("r2"))).await, Err(StoreError::Conflict(_))));
        assert_eq!(store.waiting_requests().await.unwrap().len(), 1);
        let started = StartedConsultation {
            id: "c1".into(),
            request_id: "r1".into(),
            terminal_id: terminal.clone(),
            region_id: "demo-garze".into(),
            lawyer_id: lawyer.clone(),
            interpreter_id: None,
            topic: Topic::Land,
            language: "bo".into(),
            started_at: 200,
        };
        // In one batch: the second start fails alone, the others apply.
        let second = StartedConsultation { id: "c2".into(), request_id: "r2".into(), ..started.clone() };
        let results = store
            .apply_live_writes(&[
                (LiveWrite::Start(started.clone()), 200),
                (LiveWrite::Request(request("r2")), 200),
                (LiveWrite::Start(second), 200),
                (LiveWrite::CloseRequest("r2".into(), RequestEnd::Cancelled), 250),
            ])
            .await
            .unwrap();
        assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
        assert!(
            matches!(results[2], Err(StoreError::Conflict(_))),
            "the database refuses a lawyer in two active consultations"
        );
        assert!(store.waiting_requests().await.unwrap().is_empty(), "r1 matched, r2 cancelled");
        assert_eq!(store.open_consultations().await.unwrap().len(), 1, "the failed start changed nothing");
        let rate = |terminal: &str, rating: i64| LiveWrite::Rate {
            consultation: "c1".into(),
            terminal_id: terminal.into(),
            rating,
        };
        assert_eq!(write(rate(&terminal, 5)).await.unwrap(), 0, "not during the call");
        write(LiveWrite::End("c1".into(), "hung_up".into())).await.unwrap();
        assert_eq!(write(rate("elsewhere", 5)).await.unwrap(), 0, "not from another terminal");
        assert_eq!(write(rate(&terminal, 5)).await.unwrap(), 1);
        assert_eq!(write(rate(&terminal, 1)).await.unwrap(), 0, "once");
        assert_eq!(store.open_consultations().await.unwrap()[0].status, "wrap_up");
        write(LiveWrite::FinishWrapUp("c1".into())).await.unwrap();
        assert!(store.open_consultations().await.unwrap().is_empty());
        assert_eq!(store.consultations_taken_since(&lawyer, 0).await.unwrap(), 1);
        assert_eq!(write(LiveWrite::CloseRequest("r2".into(), RequestEnd::Abandoned)).await.unwrap(), 0);
    }
}
