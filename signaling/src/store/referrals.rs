//! Referrals and the offices that receive them: a region's office per service,
//! its caseworkers, a referral from the lawyer's proposal to its outcome, and
//! the caseworkers' notes.

use super::{
    AppendAudit, AuditEntry, BeginWrite, ConflictExt, Store, StoreError, audited, new_id, with_pool,
};
use std::collections::BTreeMap;

use crate::ids::{AccountId, ConsultationId, OfficeId, ReferralId, RegionId, TerminalId};

/// An office's name in the languages its residents read, by language code
/// (`bo`: its Tibetan name), beside its own `name`: what a kiosk shows a
/// resident in that language. Kept as a JSON object in a text column.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct OfficeNames(pub BTreeMap<String, String>);

impl TryFrom<String> for OfficeNames {
    type Error = serde_json::Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&text)
    }
}

impl OfficeNames {
    fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OfficeRecord {
    pub id: OfficeId,
    pub region_id: RegionId,
    /// `legal_aid`, `mediation`, or another configured code.
    pub service: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub names: OfficeNames,
    /// How long the office has to decide once the resident agreed.
    pub decision_days: i64,
}

/// One of an office's caseworkers.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseworkerRow {
    pub office_id: OfficeId,
    pub account_id: AccountId,
    pub display_name: String,
}

/// A referral with its office's region, service and name, and the assignee's name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReferralRecord {
    pub id: ReferralId,
    /// Given when the resident agrees.
    pub code: Option<String>,
    pub consultation_id: ConsultationId,
    pub office_id: OfficeId,
    pub terminal_id: TerminalId,
    pub region_id: RegionId,
    pub service: String,
    pub office_name: String,
    #[sqlx(try_from = "String")]
    pub office_names: OfficeNames,
    pub topic: String,
    pub language: String,
    pub matter: String,
    pub contact: Option<String>,
    /// `proposed`, `new`, `accepted` or `closed`.
    pub status: String,
    pub outcome: Option<String>,
    pub assignee_id: Option<AccountId>,
    pub assignee_name: Option<String>,
    pub proposed_by: AccountId,
    pub proposed_at: i64,
    pub consented_at: Option<i64>,
    pub due_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub updated_at: i64,
}

impl ReferralRecord {
    /// Open past its due time.
    pub fn overdue(&self, now: i64) -> bool {
        matches!(self.status.as_str(), "new" | "accepted") && self.due_at.is_some_and(|due| now > due)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NoteRow {
    pub author_name: String,
    pub at: i64,
    pub text: String,
}

/// What the lawyer proposes.
#[derive(Debug, Clone)]
pub struct NewReferral<'a> {
    pub consultation_id: &'a ConsultationId,
    pub office_id: &'a OfficeId,
    pub terminal_id: &'a TerminalId,
    pub topic: &'a str,
    pub language: &'a str,
    pub matter: &'a str,
    pub proposed_by: &'a AccountId,
    pub now: i64,
}

/// Whose referrals to list: a caseworker's offices', or regions' (a
/// coordinator's; an admin's are all).
#[derive(Debug, Clone, Copy)]
pub enum ReferralScope<'a> {
    Offices(&'a [OfficeId]),
    Regions(&'a [RegionId]),
}

/// Which of them: `open` (new, accepted), `closed`, or `all` (never the
/// proposals a resident has not agreed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralFilter {
    Open,
    Closed,
    All,
}

impl ReferralFilter {
    fn code(self) -> &'static str {
        match self {
            ReferralFilter::Open => "open",
            ReferralFilter::Closed => "closed",
            ReferralFilter::All => "all",
        }
    }
}

/// A caseworker's change to a referral, each allowed only from some statuses.
#[derive(Debug, Clone, Copy)]
pub enum ReferralChange<'a> {
    /// new → accepted; the assignee stays, or becomes `by`.
    Accept {
        by: &'a AccountId,
    },
    Assign {
        to: &'a AccountId,
    },
    Close {
        outcome: &'a str,
    },
}

/// What expires, as instants: whatever is older goes. `None` keeps it for ever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiry {
    /// Consultations that ended before this lose their written record (the counts stay).
    pub records_before: Option<i64>,
    /// Referrals closed before this are deleted, with their notes.
    pub referrals_before: Option<i64>,
    /// Referrals closed before this lose the resident's contact.
    pub contacts_before: Option<i64>,
    /// Proposals made before this, never answered, are deleted.
    pub proposals_before: i64,
}

/// How many of each went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub records: u64,
    pub referrals: u64,
    pub contacts: u64,
    pub proposals: u64,
}

impl Swept {
    pub fn any(&self) -> bool {
        self.records + self.referrals + self.contacts + self.proposals > 0
    }
}

/// One office's referrals by status.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OfficeCounts {
    pub office_id: OfficeId,
    pub office_name: String,
    pub region_id: RegionId,
    pub service: String,
    pub new: i64,
    pub accepted: i64,
    pub overdue: i64,
    pub closed: i64,
}

macro_rules! referral_select {
    () => {
        "SELECT r.id, r.code, r.consultation_id, r.office_id, r.terminal_id, o.region_id, o.service,
                o.name AS office_name, o.names AS office_names, r.topic, r.language, r.matter, r.contact, r.status, r.outcome,
                r.assignee_id, a.display_name AS assignee_name, r.proposed_by, r.proposed_at,
                r.consented_at, r.due_at, r.closed_at, r.updated_at
         FROM referrals r JOIN referral_offices o ON o.id = r.office_id
         LEFT JOIN accounts a ON a.id = r.assignee_id "
    };
}

/// `$2` is the [`ReferralFilter`]'s code.
macro_rules! filtered {
    () => {
        " AND r.status <> 'proposed'
          AND ($2 = 'all' OR ($2 = 'open' AND r.status <> 'closed') OR ($2 = 'closed' AND r.status = 'closed'))
         ORDER BY COALESCE(r.due_at, r.proposed_at), r.id"
    };
}

macro_rules! counts_select {
    () => {
        "SELECT o.id AS office_id, o.name AS office_name, o.region_id, o.service,
                COUNT(CASE WHEN r.status = 'new' THEN 1 END) AS new,
                COUNT(CASE WHEN r.status = 'accepted' THEN 1 END) AS accepted,
                COUNT(CASE WHEN r.status IN ('new', 'accepted') AND r.due_at < $1 THEN 1 END) AS overdue,
                COUNT(CASE WHEN r.status = 'closed' THEN 1 END) AS closed
         FROM referral_offices o LEFT JOIN referrals r ON r.office_id = o.id "
    };
}

impl Store {
    pub async fn create_office(
        &self,
        region: &RegionId,
        service: &str,
        name: &str,
        names: &OfficeNames,
        decision_days: i64,
        audit: &AuditEntry,
    ) -> Result<OfficeId, StoreError> {
        let id = OfficeId::from(new_id());
        audited!(self, audit, |tx| {
            sqlx::query(
                "INSERT INTO referral_offices (id, region_id, service, name, names, decision_days, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(region)
            .bind(service)
            .bind(name)
            .bind(names.to_json())
            .bind(decision_days)
            .bind(crate::unix_now())
            .execute(&mut *tx)
            .await
            .on_conflict("an office for this service in this region")?
            .rows_affected()
        });
        Ok(id)
    }

    /// Renames the office (its names too), sets its decision period and its
    /// caseworkers (all of them, replacing those before). False when there is
    /// no such office.
    pub async fn update_office(
        &self,
        id: &OfficeId,
        name: &str,
        names: &OfficeNames,
        decision_days: i64,
        caseworkers: &[AccountId],
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            let found = sqlx::query(
                "UPDATE referral_offices SET name = $2, names = $3, decision_days = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(name)
            .bind(names.to_json())
            .bind(decision_days)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if found == 1 {
                sqlx::query("DELETE FROM office_caseworkers WHERE office_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for account in caseworkers {
                    sqlx::query(
                        "INSERT INTO office_caseworkers (office_id, account_id) VALUES ($1, $2)
                         ON CONFLICT (office_id, account_id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(account)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            found
        });
        Ok(done == 1)
    }

    pub async fn office(&self, id: &OfficeId) -> Result<Option<OfficeRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, region_id, service, name, names, decision_days FROM referral_offices WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// A region's offices, by service.
    pub async fn offices_in_region(&self, region: &RegionId) -> Result<Vec<OfficeRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, region_id, service, name, names, decision_days FROM referral_offices
                 WHERE region_id = $1 ORDER BY service",
            )
            .bind(region)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The offices `account` is a caseworker of.
    pub async fn offices_of_caseworker(&self, account: &AccountId) -> Result<Vec<OfficeRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT o.id, o.region_id, o.service, o.name, o.names, o.decision_days
                 FROM referral_offices o JOIN office_caseworkers c ON c.office_id = o.id
                 WHERE c.account_id = $1 ORDER BY o.region_id, o.service",
            )
            .bind(account)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The caseworkers of a region's offices.
    pub async fn caseworkers_in_region(&self, region: &RegionId) -> Result<Vec<CaseworkerRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT c.office_id, c.account_id, a.display_name
                 FROM office_caseworkers c JOIN referral_offices o ON o.id = c.office_id
                 JOIN accounts a ON a.id = c.account_id
                 WHERE o.region_id = $1 ORDER BY a.display_name, a.id",
            )
            .bind(region)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Whether `account` is a caseworker of `office`.
    pub async fn is_caseworker_of(&self, account: &AccountId, office: &OfficeId) -> Result<bool, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM office_caseworkers WHERE office_id = $1 AND account_id = $2",
            )
            .bind(office)
            .bind(account)
            .fetch_one(pool)
            .await?
        }) > 0)
    }

    /// A proposal waiting for the resident's answer.
    pub async fn propose_referral(
        &self,
        new: &NewReferral<'_>,
        audit: &AuditEntry,
    ) -> Result<ReferralId, StoreError> {
        let id = ReferralId::from(new_id());
        audited!(self, audit, |tx| {
            sqlx::query(
                "INSERT INTO referrals (id, consultation_id, office_id, terminal_id, topic, language, matter,
                                        status, proposed_by, proposed_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'proposed', $8, $9, $9)",
            )
            .bind(&id)
            .bind(new.consultation_id)
            .bind(new.office_id)
            .bind(new.terminal_id)
            .bind(new.topic)
            .bind(new.language)
            .bind(new.matter)
            .bind(new.proposed_by)
            .bind(new.now)
            .execute(&mut *tx)
            .await
            .on_conflict("a referral to this office from this consultation")?
            .rows_affected()
        });
        Ok(id)
    }

    pub async fn referral(&self, id: &ReferralId) -> Result<Option<ReferralRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(referral_select!(), "WHERE r.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// An agreed referral by its reference code.
    pub async fn referral_by_code(&self, code: &str) -> Result<Option<ReferralRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(referral_select!(), "WHERE r.code = $1 AND r.status <> 'proposed'"))
                .bind(code)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// A consultation's referrals, proposals included, oldest first.
    pub async fn referrals_of_consultation(
        &self,
        consultation: &ConsultationId,
    ) -> Result<Vec<ReferralRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                referral_select!(),
                "WHERE r.consultation_id = $1 ORDER BY r.proposed_at, r.id"
            ))
            .bind(consultation)
            .fetch_all(pool)
            .await?
        }))
    }

    /// A terminal's proposals made since `since` that wait for the resident's answer.
    pub async fn proposals_for_terminal(
        &self,
        terminal: &TerminalId,
        since: i64,
    ) -> Result<Vec<ReferralRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                referral_select!(),
                "WHERE r.terminal_id = $1 AND r.status = 'proposed' AND r.proposed_at >= $2 ORDER BY r.proposed_at, r.id"
            ))
            .bind(terminal)
            .bind(since)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Agreed referrals in `scope`, the soonest due first.
    pub async fn referrals(
        &self,
        scope: ReferralScope<'_>,
        filter: ReferralFilter,
    ) -> Result<Vec<ReferralRecord>, StoreError> {
        let filter = filter.code();
        let mut all: Vec<ReferralRecord> = Vec::new();
        match scope {
            ReferralScope::Offices(offices) => {
                for office in offices {
                    let rows: Vec<ReferralRecord> = with_pool!(self, |pool| {
                        sqlx::query_as(concat!(referral_select!(), "WHERE r.office_id = $1", filtered!()))
                            .bind(office)
                            .bind(filter)
                            .fetch_all(pool)
                            .await?
                    });
                    all.extend(rows);
                }
            }
            ReferralScope::Regions(regions) => {
                for region in regions {
                    let rows: Vec<ReferralRecord> = with_pool!(self, |pool| {
                        sqlx::query_as(concat!(referral_select!(), "WHERE o.region_id = $1", filtered!()))
                            .bind(region)
                            .bind(filter)
                            .fetch_all(pool)
                            .await?
                    });
                    all.extend(rows);
                }
            }
        }
        all.sort_by(|a, b| {
            (a.due_at.unwrap_or(a.proposed_at), &a.id).cmp(&(b.due_at.unwrap_or(b.proposed_at), &b.id))
        });
        Ok(all)
    }

    /// Counts per office in `scope`, every office listed (with zeros), as of `now`.
    pub async fn referral_counts(
        &self,
        scope: ReferralScope<'_>,
        now: i64,
    ) -> Result<Vec<OfficeCounts>, StoreError> {
        let mut all: Vec<OfficeCounts> = Vec::new();
        match scope {
            ReferralScope::Offices(offices) => {
                for office in offices {
                    let rows: Vec<OfficeCounts> = with_pool!(self, |pool| {
                        sqlx::query_as(concat!(
                            counts_select!(),
                            "WHERE o.id = $2 GROUP BY o.id, o.name, o.region_id, o.service"
                        ))
                        .bind(now)
                        .bind(office)
                        .fetch_all(pool)
                        .await?
                    });
                    all.extend(rows);
                }
            }
            ReferralScope::Regions(regions) => {
                for region in regions {
                    let rows: Vec<OfficeCounts> = with_pool!(self, |pool| {
                        sqlx::query_as(concat!(
                            counts_select!(),
                            "WHERE o.region_id = $2 GROUP BY o.id, o.name, o.region_id, o.service"
                        ))
                        .bind(now)
                        .bind(region)
                        .fetch_all(pool)
                        .await?
                    });
                    all.extend(rows);
                }
            }
        }
        all.sort_by(|a, b| (&a.region_id, &a.service).cmp(&(&b.region_id, &b.service)));
        Ok(all)
    }

    /// The resident agreed: the proposal gets its code and due time. False
    /// when it is no longer a proposal (answered before, or gone).
    pub async fn consent_referral(
        &self,
        id: &ReferralId,
        code: &str,
        contact: Option<&str>,
        now: i64,
        due_at: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            {
                let agreed = sqlx::query(
                "UPDATE referrals SET status = 'new', code = $2, contact = $3, consented_at = $4, due_at = $5,
                                      updated_at = $4
                 WHERE id = $1 AND status = 'proposed'",
            )
            .bind(id)
            .bind(code)
            .bind(contact)
            .bind(now)
            .bind(due_at)
            .execute(&mut *tx)
            .await
            .on_conflict("a referral with this code")?
            .rows_affected();
                if agreed == 1 {
                    sqlx::query(
                        "UPDATE consultations SET referrals_made = referrals_made + 1
                     WHERE id = (SELECT consultation_id FROM referrals WHERE id = $1)",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                agreed
            }
        });
        Ok(done == 1)
    }

    /// The resident said no: the proposal goes, and nothing of it is kept but
    /// the audit row. False when it is no longer a proposal.
    pub async fn decline_referral(&self, id: &ReferralId, audit: &AuditEntry) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            sqlx::query("DELETE FROM referrals WHERE id = $1 AND status = 'proposed'")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Deletes proposals made before `before` that nobody answered; how many.
    pub async fn forget_unanswered_referrals(&self, before: i64) -> Result<u64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM referrals WHERE status = 'proposed' AND proposed_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Deletes what has expired, in one transaction, with an audit row
    /// (`retention.swept`, with how many of each went, zeros too).
    pub async fn sweep_expired(&self, expiry: &Expiry) -> Result<Swept, StoreError> {
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut swept = Swept::default();
            if let Some(before) = expiry.records_before {
                swept.records = sqlx::query(
                    "UPDATE consultations SET summary = NULL WHERE summary IS NOT NULL AND ended_at < $1",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            if let Some(before) = expiry.referrals_before {
                swept.referrals =
                    sqlx::query("DELETE FROM referrals WHERE status = 'closed' AND closed_at < $1")
                        .bind(before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            if let Some(before) = expiry.contacts_before {
                swept.contacts = sqlx::query(
                    "UPDATE referrals SET contact = NULL WHERE contact IS NOT NULL AND status = 'closed' AND closed_at < $1",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            swept.proposals =
                sqlx::query("DELETE FROM referrals WHERE status = 'proposed' AND proposed_at < $1")
                    .bind(expiry.proposals_before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            // Zeros too: the row shows the sweep ran.
            let detail = serde_json::to_value(swept).unwrap_or_default();
            tx.append_audit(&AuditEntry { detail, ..AuditEntry::system("retention.swept") }).await?;
            tx.commit().await?;
            swept
        }))
    }

    /// A caseworker's change. False when the referral's status does not allow it.
    pub async fn change_referral(
        &self,
        id: &ReferralId,
        change: ReferralChange<'_>,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            let query = match change {
                ReferralChange::Accept { by } => sqlx::query(
                    "UPDATE referrals SET status = 'accepted', assignee_id = COALESCE(assignee_id, $3), updated_at = $2
                     WHERE id = $1 AND status = 'new'",
                )
                .bind(id)
                .bind(now)
                .bind(by),
                ReferralChange::Assign { to } => sqlx::query(
                    "UPDATE referrals SET assignee_id = $3, updated_at = $2
                     WHERE id = $1 AND status IN ('new', 'accepted')",
                )
                .bind(id)
                .bind(now)
                .bind(to),
                ReferralChange::Close { outcome } => sqlx::query(
                    "UPDATE referrals SET status = 'closed', outcome = $3, closed_at = $2, updated_at = $2
                     WHERE id = $1 AND status IN ('new', 'accepted')",
                )
                .bind(id)
                .bind(now)
                .bind(outcome),
            };
            query.execute(&mut *tx).await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// A caseworker's note. False when the referral is closed or gone.
    pub async fn add_referral_note(
        &self,
        id: &ReferralId,
        author: &AccountId,
        text: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            let open = sqlx::query(
                "UPDATE referrals SET updated_at = $2 WHERE id = $1 AND status IN ('new', 'accepted')",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if open == 1 {
                sqlx::query("INSERT INTO referral_notes (id, referral_id, author_id, at, text) VALUES ($1, $2, $3, $4, $5)")
                    .bind(new_id())
                    .bind(id)
                    .bind(author)
                    .bind(now)
                    .bind(text)
                    .execute(&mut *tx)
                    .await?;
            }
            open
        });
        Ok(done == 1)
    }

    /// A referral's notes, oldest first.
    pub async fn referral_notes(&self, id: &ReferralId) -> Result<Vec<NoteRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT a.display_name AS author_name, n.at, n.text
                 FROM referral_notes n JOIN accounts a ON a.id = n.author_id
                 WHERE n.referral_id = $1 ORDER BY n.at, n.id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        }))
    }
}
