//! The audit log: appended, never changed, each row chained to the one before.

use sha2::{Digest, Sha256};

use super::{BeginWrite, Store, StoreError, per_backend, with_pool};
use crate::unix_now;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What to record. `actor` is `account:<id>`, `terminal:<id>`, `anonymous` or
/// `system`; `source` is where the request came from (an IP address).
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
    pub source: String,
}

impl AuditEntry {
    pub fn new(
        actor: &str,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
        source: &str,
    ) -> AuditEntry {
        AuditEntry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail,
            source: source.to_owned(),
        }
    }

    /// An entry for what the system does by itself (start-up, demo data, tests).
    pub fn system(action: &str) -> AuditEntry {
        AuditEntry { actor: "system".into(), action: action.into(), ..AuditEntry::default() }
    }
}

/// A row as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub source: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of a row: SHA-256 over its predecessor's hash and its own fields,
/// each prefixed by its length so that no two different rows hash alike.
fn chain_hash(fields: [&str; 8]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update(field.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(field.as_bytes());
        hasher.update(b";");
    }
    hex::encode(hasher.finalize())
}

impl AuditRow {
    /// What `hash` must be for this row's contents.
    pub fn expected_hash(&self) -> String {
        chain_hash([
            &self.prev_hash,
            &self.seq.to_string(),
            &self.at.to_string(),
            &self.actor,
            &self.action,
            &self.subject,
            &self.detail,
            &self.source,
        ])
    }
}

/// The first problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditProblem {
    /// The row's contents do not match its hash: it was edited.
    Altered { seq: i64 },
    /// The row does not follow the one before (a row was removed or inserted).
    BrokenChain { seq: i64 },
    /// A signed checkpoint names a row that is gone: rows were cut from the end.
    Truncated { checkpointed: i64, newest: i64 },
    /// A checkpointed row's hash is not the one signed: the log was rewritten
    /// (and its chain recomputed) up to there.
    Rewritten { seq: i64 },
    /// A checkpoint line is not one the deployment's audit key signed.
    ForgedCheckpoint { line: usize },
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditProblem::Altered { seq } => {
                write!(f, "row {seq} was altered: its contents do not match its hash")
            }
            AuditProblem::BrokenChain { seq } => {
                write!(f, "row {seq} does not follow the row before it: rows were removed or inserted")
            }
            AuditProblem::Truncated { checkpointed, newest } => write!(
                f,
                "row {checkpointed} was signed in a checkpoint but the log now ends at row {newest}: rows were cut from its end"
            ),
            AuditProblem::Rewritten { seq } => write!(
                f,
                "row {seq} is not the row signed in its checkpoint: the log was rewritten and its hashes recomputed"
            ),
            AuditProblem::ForgedCheckpoint { line } => {
                write!(f, "checkpoint line {line} is not signed by this deployment's audit key")
            }
        }
    }
}

/// Appending an entry inside a write transaction (one begun with
/// [`BeginWrite::begin_write`]), so that the entry commits with the change it
/// records, or neither does. The write lock that transaction holds keeps the
/// chain linear: no other append can run between reading the last row and
/// inserting the next.
pub(crate) trait AppendAudit {
    async fn append_audit(&mut self, entry: &AuditEntry) -> Result<i64, sqlx::Error>;
}

impl AppendAudit for sqlx::Transaction<'static, sqlx::Sqlite> {
    async fn append_audit(&mut self, entry: &AuditEntry) -> Result<i64, sqlx::Error> {
        sqlite::append(self, entry).await
    }
}

impl AppendAudit for sqlx::Transaction<'static, sqlx::Postgres> {
    async fn append_audit(&mut self, entry: &AuditEntry) -> Result<i64, sqlx::Error> {
        postgres::append(self, entry).await
    }
}

per_backend! {
    pub(super) async fn append(
        tx: &mut sqlx::Transaction<'static, Db>,
        entry: &AuditEntry,
    ) -> Result<i64, sqlx::Error> {
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut **tx)
                .await?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS.to_owned()),
        };
        let mut row = AuditRow {
            seq,
            at: unix_now(),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            subject: entry.subject.clone(),
            detail: if entry.detail.is_null() { "{}".to_owned() } else { entry.detail.to_string() },
            source: entry.source.clone(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.expected_hash();
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, source, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row.seq)
        .bind(row.at)
        .bind(&row.actor)
        .bind(&row.action)
        .bind(&row.subject)
        .bind(&row.detail)
        .bind(&row.source)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut **tx)
        .await?;
        Ok(seq)
    }
}

impl Store {
    /// Appends one entry that records no change of its own (a read, a refused
    /// attempt, a login). An entry that records a change is appended in the
    /// change's transaction instead (see [`AppendAudit`]).
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let seq = tx.append_audit(entry).await?;
            tx.commit().await?;
            seq
        }))
    }

    /// The newest row's sequence number and hash, if any.
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Rows after `after_seq`, oldest first, at most `limit`.
    pub async fn audit_rows(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, at, actor, action, subject, detail, source, prev_hash, hash FROM audit_log
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after_seq)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The newest rows, newest first, optionally for one actor or subject.
    pub async fn recent_audit(
        &self,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, at, actor, action, subject, detail, source, prev_hash, hash FROM audit_log
                 WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Walks the whole log; returns the number of rows, or the first problem.
    pub async fn verify_audit(&self) -> Result<Result<i64, AuditProblem>, StoreError> {
        self.verify_audit_from(None).await
    }

    /// Walks the log after `from` (a row's seq and hash, known good: a
    /// checkpoint), or all of it; returns the newest seq, or the first problem.
    pub async fn verify_audit_from(
        &self,
        from: Option<(i64, String)>,
    ) -> Result<Result<i64, AuditProblem>, StoreError> {
        let (mut expected_seq, mut expected_prev) = match from {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS.to_owned()),
        };
        loop {
            let rows = self.audit_rows(expected_seq - 1, 1000).await?;
            if rows.is_empty() {
                return Ok(Ok(expected_seq - 1));
            }
            for row in rows {
                if row.seq != expected_seq || row.prev_hash != expected_prev {
                    return Ok(Err(AuditProblem::BrokenChain { seq: row.seq }));
                }
                if row.expected_hash() != row.hash {
                    return Ok(Err(AuditProblem::Altered { seq: row.seq }));
                }
                expected_prev = row.hash;
                expected_seq += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry { actor: "system".into(), action: action.into(), ..AuditEntry::default() }
    }

    #[tokio::test]
    async fn chain_verifies_and_rows_cannot_be_changed() {
        let (store, _dir) = testing::store().await;
        for i in 0..5 {
            assert_eq!(store.append_audit(&entry(&format!("a{i}"))).await.unwrap(), i + 1);
        }
        assert_eq!(store.verify_audit().await.unwrap(), Ok(5));
        let update = with_pool!(store, |pool| {
            sqlx::query("UPDATE audit_log SET action = 'x' WHERE seq = 2").execute(pool).await.map(|_| ())
        });
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = with_pool!(store, |pool| sqlx::query("DELETE FROM audit_log WHERE seq = 2")
            .execute(pool)
            .await
            .map(|_| ()));
        assert!(delete.is_err());
    }

    #[tokio::test]
    async fn tampering_is_found() {
        let (store, _dir) = testing::store().await;
        for i in 0..4 {
            store.append_audit(&entry(&format!("a{i}"))).await.unwrap();
        }
        let drop_guard = match store.backend() {
            "postgres" => "DROP TRIGGER audit_log_no_update ON audit_log",
            _ => "DROP TRIGGER audit_log_no_update",
        };
        with_pool!(store, |pool| {
            sqlx::query(drop_guard).execute(pool).await.unwrap();
            sqlx::query("UPDATE audit_log SET subject = 'forged' WHERE seq = 3").execute(pool).await.unwrap();
        });
        assert_eq!(store.verify_audit().await.unwrap(), Err(AuditProblem::Altered { seq: 3 }));
    }

    #[tokio::test]
    async fn a_change_commits_with_its_audit_row_or_not_at_all() {
        let (store, _dir) = testing::store().await;
        let links = crate::store::TeamLinks::default();
        store.create_team("first", links, &entry("team.created")).await.unwrap();
        let rows = store.recent_audit(None, 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].action, "team.created");
        assert_eq!(rows[0].subject, store.teams().await.unwrap()[0].id, "the new id is the subject");
        // The audit row cannot be written: the change it records is not made either.
        let refuse = match store.backend() {
            "postgres" => {
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no audit'; END $$ LANGUAGE plpgsql;
                 CREATE TRIGGER refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse();"
            }
            _ => "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'no audit'); END",
        };
        with_pool!(store, |pool| sqlx::raw_sql(refuse).execute(pool).await.map(|_| ()).unwrap());
        assert!(store.create_team("second", links, &entry("team.created")).await.is_err());
        assert_eq!(store.teams().await.unwrap().len(), 1);
        // A reference to nothing is its own error, and leaves nothing behind.
        let allow = match store.backend() {
            "postgres" => "DROP TRIGGER refuse ON audit_log",
            _ => "DROP TRIGGER refuse",
        };
        with_pool!(store, |pool| sqlx::raw_sql(allow).execute(pool).await.map(|_| ()).unwrap());
        let regions = ["no-such-region".into()];
        let links = crate::store::TeamLinks { regions: Some(&regions), ..links };
        let error = store.create_team("third", links, &entry("team.created")).await.unwrap_err();
        assert!(matches!(error, StoreError::Reference(_)), "{error:?}");
        assert_eq!(store.teams().await.unwrap().len(), 1);
        assert_eq!(store.verify_audit().await.unwrap(), Ok(1));
    }

    #[tokio::test]
    async fn concurrent_appends_stay_one_chain() {
        let (store, _dir) = testing::store().await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.append_audit(&entry(&format!("c{i}"))).await }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.verify_audit().await.unwrap(), Ok(20));
    }
}
