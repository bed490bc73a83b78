//! Token signing keys, login sessions and refresh tokens.

use super::{AuditEntry, Store, StoreError, audited, new_id, with_pool};
use crate::ids::AccountId;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
}

/// What a session looks like to a request that presents one of its tokens.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionState {
    pub account_id: AccountId,
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    pub account_active: bool,
}

impl SessionState {
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.account_active
    }
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// Unused until now; it is now marked used.
    Fresh {
        session_id: String,
    },
    /// Already used once: the token was copied. The caller revokes the session.
    Reused {
        session_id: String,
    },
    Unknown,
}

impl Store {
    /// Unretired signing keys, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT kid, private_key, public_key, created_at FROM signing_keys
                 WHERE retired_at IS NULL ORDER BY generation DESC",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn insert_signing_key(&self, row: &SigningKeyRow) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO signing_keys (kid, generation, private_key, public_key, created_at)
                 VALUES ($1, (SELECT COALESCE(MAX(generation), 0) + 1 FROM signing_keys), $2, $3, $4)",
            )
            .bind(&row.kid)
            .bind(&row.private_key)
            .bind(&row.public_key)
            .bind(row.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Retires a key: tokens it signed stop verifying. Returns false when no
    /// such unretired key exists.
    pub async fn retire_signing_key(&self, kid: &str, now: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("UPDATE signing_keys SET retired_at = $2 WHERE kid = $1 AND retired_at IS NULL")
                .bind(kid)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Opens a session, appending `audit` (its subject set to the session)
    /// in the same transaction.
    pub async fn create_session(
        &self,
        account_id: &AccountId,
        now: i64,
        expires_at: i64,
        source: &str,
        audit: &AuditEntry,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let audit = AuditEntry { subject: id.clone(), ..audit.clone() };
        audited!(self, &audit, |tx| {
            sqlx::query(
                "INSERT INTO sessions (id, account_id, created_at, expires_at, source) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(account_id)
            .bind(now)
            .bind(expires_at)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        });
        Ok(id)
    }

    pub async fn session_state(&self, session_id: &str) -> Result<Option<SessionState>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT s.account_id, s.revoked_at, s.expires_at, a.active AS account_active
                 FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = $1",
            )
            .bind(session_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Revokes one session, appending `audit` in the same transaction; true
    /// if it was live.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: i64,
        reason: &str,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(session_id)
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    pub async fn insert_refresh_token(
        &self,
        id: &str,
        session_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(session_id)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Marks a refresh token used, atomically: of two requests presenting the
    /// same token, exactly one gets [`RefreshUse::Fresh`].
    pub async fn use_refresh_token(&self, id: &str, now: i64) -> Result<RefreshUse, StoreError> {
        let fresh: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2
                 RETURNING session_id",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        if let Some(session_id) = fresh {
            return Ok(RefreshUse::Fresh { session_id });
        }
        let known: Option<(String, Option<i64>)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT session_id, used_at FROM refresh_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(match known {
            Some((session_id, Some(_))) => RefreshUse::Reused { session_id },
            _ => RefreshUse::Unknown,
        })
    }
}
