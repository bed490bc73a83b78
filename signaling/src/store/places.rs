//! Regions and the terminals (kiosks) in their townships.

use super::{ConflictExt, Store, StoreError, new_id, with_pool};
use crate::domain::Language;
use crate::unix_now;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegionRecord {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub time_zone: String,
}

/// A terminal to register. The enrollment code arrives hashed.
#[derive(Debug, Clone)]
pub struct NewTerminal {
    pub name: String,
    pub township: String,
    pub region_id: String,
    pub languages: Vec<Language>,
    pub enrollment_code_hash: String,
    pub enrollment_expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TerminalRecord {
    pub id: String,
    pub name: String,
    pub township: String,
    pub region_id: String,
    pub enrolled_at: Option<i64>,
    pub revoked_at: Option<i64>,
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

    pub async fn region(&self, id: &str) -> Result<Option<RegionRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, parent_id, time_zone FROM regions WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Registers a terminal with its languages; returns its id.
    pub async fn create_terminal(&self, terminal: &NewTerminal) -> Result<String, StoreError> {
        let id = new_id();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
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
            tx.commit().await?;
        });
        Ok(id)
    }

    pub async fn terminals_in_region(&self, region_id: &str) -> Result<Vec<TerminalRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, township, region_id, enrolled_at, revoked_at FROM terminals
                 WHERE region_id = $1 ORDER BY name",
            )
            .bind(region_id)
            .fetch_all(pool)
            .await?
        }))
    }
}
