//! Regions and the terminals (kiosks) in their townships.

use super::{
    AppendAudit, AuditEntry, BeginWrite, ConflictExt, Store, StoreError, audited, new_id, with_pool,
};
use crate::domain::Language;
use crate::ids::{RegionId, TerminalId};
use crate::unix_now;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegionRecord {
    pub id: RegionId,
    pub name: String,
    pub parent_id: Option<RegionId>,
    pub time_zone: String,
}

/// A terminal to register. The enrollment code arrives hashed.
#[derive(Debug, Clone)]
pub struct NewTerminal {
    pub name: String,
    pub township: String,
    pub region_id: RegionId,
    pub languages: Vec<Language>,
    pub enrollment_code_hash: String,
    pub enrollment_expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TerminalRecord {
    pub id: TerminalId,
    pub name: String,
    pub township: String,
    pub region_id: RegionId,
    pub enrolled_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The id inside the terminal's current device credential; none when not
    /// enrolled or revoked.
    pub credential_id: Option<String>,
    /// `kiosk`, or `phone` for the hotline's phone lines.
    pub channel: String,
    #[sqlx(skip)]
    pub languages: Vec<Language>,
}

/// The columns of [`TerminalRecord`], as a literal so queries stay `&'static str`.
macro_rules! terminal_columns {
    () => {
        "id, name, township, region_id, enrolled_at, revoked_at, credential_id, channel"
    };
}

impl Store {
    /// Creates a region with the given id, or returns the existing one unchanged.
    pub async fn ensure_region(&self, region: &RegionRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO regions (id, name, parent_id, time_zone, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&region.id)
            .bind(&region.name)
            .bind(&region.parent_id)
            .bind(&region.time_zone)
            .bind(unix_now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Creates a region; an existing id is [`StoreError::Conflict`].
    pub async fn create_region(&self, region: &RegionRecord, audit: &AuditEntry) -> Result<(), StoreError> {
        audited!(self, audit, |tx| {
            sqlx::query("INSERT INTO regions (id, name, parent_id, time_zone, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&region.id)
                .bind(&region.name)
                .bind(&region.parent_id)
                .bind(&region.time_zone)
                .bind(unix_now())
                .execute(&mut *tx)
                .await
                .on_conflict("a region with this id")?;
        });
        Ok(())
    }

    pub async fn region(&self, id: &RegionId) -> Result<Option<RegionRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, parent_id, time_zone FROM regions WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Registers a terminal with its languages, and `audit` (its subject set
    /// to the new id); returns the id.
    pub async fn create_terminal(
        &self,
        terminal: &NewTerminal,
        audit: &AuditEntry,
    ) -> Result<TerminalId, StoreError> {
        let id = TerminalId::from(new_id());
        let audit = AuditEntry { subject: id.to_string(), ..audit.clone() };
        audited!(self, &audit, |tx| {
            sqlx::query(
                "INSERT INTO terminals (id, name, township, region_id, enrollment_code_hash, enrollment_expires_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(&terminal.name)
            .bind(&terminal.township)
            .bind(&terminal.region_id)
            .bind(&terminal.enrollment_code_hash)
            .bind(terminal.enrollment_expires_at)
            .bind(unix_now())
            .execute(&mut *tx)
            .await
            .on_conflict("a terminal with this id")?;
            for language in &terminal.languages {
                sqlx::query("INSERT INTO terminal_languages (terminal_id, language) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(language.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        });
        Ok(id)
    }

    pub async fn terminals_in_region(&self, region_id: &RegionId) -> Result<Vec<TerminalRecord>, StoreError> {
        let rows: Vec<TerminalRecord> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                terminal_columns!(),
                " FROM terminals WHERE region_id = $1 ORDER BY name, id"
            ))
            .bind(region_id)
            .fetch_all(pool)
            .await?
        });
        self.with_terminal_languages(rows).await
    }

    pub async fn terminal(&self, id: &TerminalId) -> Result<Option<TerminalRecord>, StoreError> {
        let rows: Vec<TerminalRecord> = with_pool!(self, |pool| {
            sqlx::query_as(concat!("SELECT ", terminal_columns!(), " FROM terminals WHERE id = $1"))
                .bind(id)
                .fetch_all(pool)
                .await?
        });
        Ok(self.with_terminal_languages(rows).await?.pop())
    }

    async fn with_terminal_languages(
        &self,
        mut rows: Vec<TerminalRecord>,
    ) -> Result<Vec<TerminalRecord>, StoreError> {
        for row in &mut rows {
            let languages: Vec<String> = with_pool!(self, |pool| {
                sqlx::query_scalar(
                    "SELECT language FROM terminal_languages WHERE terminal_id = $1 ORDER BY language",
                )
                .bind(&row.id)
                .fetch_all(pool)
                .await?
            });
            row.languages = languages.iter().filter_map(|l| Language::parse(l).ok()).collect();
        }
        Ok(rows)
    }

    /// Gives a terminal a new one-time enrollment code (by its fingerprint).
    pub async fn set_enrollment_code(
        &self,
        id: &TerminalId,
        code_hash: &str,
        expires_at: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            sqlx::query(
                "UPDATE terminals SET enrollment_code_hash = $2, enrollment_expires_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(code_hash)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .on_conflict("a terminal with this enrollment code")?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Consumes an unexpired enrollment code, atomically: the terminal gets
    /// `credential_id` and the code is gone, so it works once. Returns the
    /// terminal's id, or `None` for an unknown, used or expired code. An
    /// enrollment appends `audit` (its actor and subject the terminal) in the
    /// same transaction.
    pub async fn enroll_terminal(
        &self,
        code_hash: &str,
        credential_id: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<Option<TerminalId>, StoreError> {
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let enrolled: Option<TerminalId> = sqlx::query_scalar(
                "UPDATE terminals SET enrolled_at = $3, credential_id = $2, revoked_at = NULL,
                        enrollment_code_hash = NULL, enrollment_expires_at = NULL
                 WHERE enrollment_code_hash = $1 AND enrollment_expires_at > $3
                 RETURNING id",
            )
            .bind(code_hash)
            .bind(credential_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = &enrolled {
                let audit =
                    AuditEntry { actor: format!("terminal:{id}"), subject: id.to_string(), ..audit.clone() };
                tx.append_audit(&audit).await?;
                tx.commit().await?;
            }
            enrolled
        }))
    }

    /// The region's phone lines (terminals of channel `phone`), creating
    /// them up to `count`: each is enrolled at once, its credential held by
    /// the gateway that made it.
    pub async fn phone_lines(
        &self,
        region_id: &RegionId,
        count: usize,
    ) -> Result<Vec<TerminalRecord>, StoreError> {
        let mut existing: Vec<TerminalRecord> = with_pool!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                terminal_columns!(),
                " FROM terminals WHERE region_id = $1 AND channel = 'phone' AND revoked_at IS NULL ORDER BY created_at, id"
            ))
            .bind(region_id)
            .fetch_all(pool)
            .await?
        });
        while existing.len() < count {
            let id = TerminalId::from(new_id());
            let number = existing.len() + 1;
            let now = unix_now();
            let audit = AuditEntry { subject: id.to_string(), ..AuditEntry::system("phone.line_created") };
            audited!(self, &audit, |tx| {
                sqlx::query(
                    "INSERT INTO terminals (id, name, township, region_id, enrolled_at, credential_id, channel, created_at)
                     VALUES ($1, $2, '-', $3, $4, $5, 'phone', $4)",
                )
                .bind(&id)
                .bind(format!("12348 · {number}"))
                .bind(region_id)
                .bind(now)
                .bind(new_id())
                .execute(&mut *tx)
                .await?;
            });
            match self.terminal(&id).await? {
                Some(line) => existing.push(line),
                None => return Err(StoreError::Database(sqlx::Error::RowNotFound)),
            }
        }
        Ok(existing)
    }

    /// What a phone line shows while a call holds it: the caller's masked number.
    pub async fn set_phone_line_caller(&self, id: &TerminalId, masked: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE terminals SET township = $2 WHERE id = $1 AND channel = 'phone'")
                .bind(id)
                .bind(masked)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Revokes a terminal's credential and any pending code at once (a stolen kiosk).
    pub async fn revoke_terminal(
        &self,
        id: &TerminalId,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            sqlx::query(
                "UPDATE terminals SET revoked_at = $2, credential_id = NULL,
                        enrollment_code_hash = NULL, enrollment_expires_at = NULL
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Every region, by name.
    pub async fn regions(&self) -> Result<Vec<RegionRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, parent_id, time_zone FROM regions ORDER BY name, id")
                .fetch_all(pool)
                .await?
        }))
    }
}
