//! The store: every SQL statement the server runs lives under this module.
//!
//! [`Store`] is a cheap-to-clone handle over a connection pool. Its methods are
//! grouped one file per area. Queries are written once, with `$1`-style
//! placeholders and portable SQL; [`Pool`] names the backends and the
//! `with_pool!` macro runs the same statement on whichever one is configured, so
//! another backend is a new variant and a migrations folder, not a rewrite.
//!
//! SQLite (the default) is opened in WAL mode with foreign keys enforced and a
//! busy timeout, so concurrent writers wait instead of failing. PostgreSQL is
//! chosen by a `postgres://` `database_url`; its schema is `migrations/postgres`,
//! the same tables as `migrations/sqlite`. On both, a transaction that writes
//! holds the database's one write lock from its first statement
//! ([`BeginWrite`]), so every store transaction runs as if alone, whichever
//! process (signaling node) runs it.

mod accounts;
mod audit;
mod auth;
mod cluster;
mod consultations;
mod live;
mod places;
mod referrals;
mod relays;
mod schedule;
mod teams;

pub use accounts::{AccountPatch, AccountRecord, Credentials, NewAccount};
pub(crate) use audit::AppendAudit;
pub use audit::{AuditEntry, AuditProblem, AuditRow, GENESIS};
pub use auth::{RefreshUse, SessionState, SigningKeyRow};
pub use cluster::Notifications;
pub use consultations::{ConsultationRecord, ConsultationScope, NewConsultation, ServiceRow};
pub use live::{
    LiveWrite, OfferOutcome, OfferRow, OpenConsultation, ReportRow, RequestEnd, RequestRow,
    StartedConsultation,
};
pub use places::{NewTerminal, RegionRecord, TerminalRecord};
pub use referrals::{
    CaseworkerRow, Expiry, NewReferral, NoteRow, OfficeCounts, OfficeNames, OfficeRecord, ReferralChange,
    ReferralFilter, ReferralRecord, ReferralScope, Swept,
};
pub use relays::{RegistrationNews, RelayRegistrationRow};
pub use schedule::{
    AppointmentRecord, AppointmentScope, BookOutcome, Booking, OverrideRow, RosterRow, ScheduleRows,
    TICK_SECS, WeeklyRow,
};
pub use teams::{TeamLinks, TeamRecord};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// The database backends this build can use.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the configured backend's pool.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// `with_pool!` inside one write transaction that also appends `$audit` (see
/// [`AppendAudit`]): `$body` runs with `$tx`, then the entry is appended and
/// both commit together. An error in `$body` rolls back both.
macro_rules! audited {
    ($store:expr, $audit:expr, |$tx:ident| $body:expr) => {
        $crate::store::with_pool!($store, |pool| {
            let mut $tx = $crate::store::BeginWrite::begin_write(pool).await?;
            let out = $body;
            $crate::store::AppendAudit::append_audit(&mut $tx, $audit).await?;
            $tx.commit().await?;
            out
        })
    };
}
pub(crate) use audited;

/// For helpers that take a connection or transaction: defines `$item`s twice,
/// in a `sqlite` and a `postgres` submodule of the calling module, each with
/// `Db` naming its backend. `with_backend!` calls the configured one's.
macro_rules! per_backend {
    ($($item:item)*) => {
        mod sqlite {
            use super::*;
            type Db = sqlx::Sqlite;
            $($item)*
        }
        mod postgres {
            use super::*;
            type Db = sqlx::Postgres;
            $($item)*
        }
    };
}
pub(crate) use per_backend;

/// `with_pool!` that also binds `$backend` to the calling module's
/// [`per_backend!`] submodule for the configured backend.
macro_rules! with_backend {
    ($store:expr, |$pool:ident, $backend:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => {
                use sqlite as $backend;
                $body
            }
            $crate::store::Pool::Postgres($pool) => {
                use postgres as $backend;
                $body
            }
        }
    };
}
pub(crate) use with_backend;

/// Why a store operation failed. Callers map these to user-facing errors; the
/// database's own message is for the logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory {path}: {reason}")]
    DataDir { path: PathBuf, reason: String },
    #[error("cannot open the database {target}: {source}")]
    Open {
        /// The file, or "at database_url" (a URL may hold a password).
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed (nothing of it was applied): {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A foreign key named a row that does not exist (or a row still named
    /// elsewhere was to go). Callers check what they can first, for a clearer
    /// message; this is the net under them. The transaction rolled back.
    #[error("a reference to something that does not exist: {0}")]
    Reference(#[source] sqlx::Error),
    /// A value broke a check or not-null constraint. The transaction rolled back.
    #[error("a value the database refuses: {0}")]
    Constraint(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let Some(db) = error.as_database_error() else { return StoreError::Database(error) };
        if db.is_foreign_key_violation() {
            StoreError::Reference(error)
        } else if db.is_check_violation() || matches!(db.kind(), sqlx::error::ErrorKind::NotNullViolation) {
            StoreError::Constraint(error)
        } else {
            StoreError::Database(error)
        }
    }
}

/// Starting a transaction that will write, holding the write lock.
///
/// On SQLite a plain `BEGIN` takes the write lock only at the first write; a
/// transaction that reads first and then writes while another connection has
/// written meanwhile fails at once with "database is locked", without waiting.
/// `BEGIN IMMEDIATE` takes the lock up front, so concurrent writers queue
/// (up to the busy timeout) instead. Every store transaction writes, so every
/// one starts here.
///
/// PostgreSQL gets the same semantics from a transaction-scoped advisory lock
/// taken first thing: store transactions (read a chain's last hash, check a
/// lawyer's day, then write) run one at a time across every node, as on SQLite,
/// without serialization failures to retry. The lock is released at commit or
/// rollback. Single statements outside a transaction do not take it; the
/// constraints (a double booking's claims, one waiting request per terminal,
/// one active consultation per person) hold whatever runs concurrently.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

/// The advisory lock key of store write transactions ("cloudlaw" in ASCII).
const WRITE_LOCK: i64 = 0x636c_6f75_646c_6177;

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }
}

/// Turns a unique-constraint violation into [`StoreError::Conflict`].
pub(crate) trait ConflictExt<T> {
    fn on_conflict(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> ConflictExt<T> for Result<T, sqlx::Error> {
    fn on_conflict(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|error| match error.as_database_error() {
            Some(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => error.into(),
        })
    }
}

/// A handle to the database. Clone it freely: clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// Where the database is: `database_url` (PostgreSQL or SQLite), or else
/// SQLite in `data_dir`. (`config::Config` gives its own.)
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub database_url: Option<&'a SecretString>,
    pub data_dir: &'a std::path::Path,
}

impl Store {
    /// Opens (creating when missing) the database at `location`.
    pub async fn open<'a>(location: impl Into<Location<'a>>) -> Result<Store, StoreError> {
        let config: Location<'a> = location.into();
        if let Some(url) = config.database_url.filter(|url| is_postgres_url(url.expose_secret())) {
            return Self::open_postgres(url.expose_secret()).await;
        }
        let (options, target) = match config.database_url {
            Some(url) => {
                let target = "at database_url".to_owned();
                let options = SqliteConnectOptions::from_str(url.expose_secret())
                    .map_err(|source| StoreError::Open { target: target.clone(), source })?;
                (options, target)
            }
            None => {
                prepare_data_dir(config.data_dir)?;
                let file = config.data_dir.join("cloudlaw.db");
                (SqliteConnectOptions::new().filename(&file), file.display().to_string())
            }
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target, source })?;
        Ok(Store { pool: Pool::Sqlite(pool) })
    }

    async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let target = "at database_url".to_owned();
        let options = PgConnectOptions::from_str(url)
            .map_err(|source| StoreError::Open { target: target.clone(), source })?
            .application_name("cloudlaw");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { target, source })?;
        Ok(Store { pool: Pool::Postgres(pool) })
    }

    /// Applies the migrations this binary knows and the database lacks, each in
    /// its own transaction. Returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let before = self.applied_migrations().await;
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(self.applied_migrations().await.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> usize {
        // The table does not exist before the first migration: that is zero applied.
        with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
                .map(|n| n as usize)
                .unwrap_or(0)
        })
    }

    /// True when the database answers.
    pub async fn ping(&self) -> bool {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// A short name for logs and `/healthz`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }
}

/// The advisory lock key a serving node holds on PostgreSQL ("cloudsrv").
const SERVING_LOCK: i64 = 0x636c_6f75_6473_7276;

/// Held while a `cloudlaw serve` owns the database's live path (see
/// [`Store::serving_lease`]). Dropping it lets the next one in.
#[derive(Debug)]
pub struct ServingLease {
    connection: Option<sqlx::PgConnection>,
}

impl ServingLease {
    /// Completes when the lease can no longer be trusted: its connection to
    /// PostgreSQL failed, so the server has let the lock go and another node
    /// may hold it now. Never, on SQLite.
    pub async fn lost(&mut self) {
        let Some(connection) = self.connection.as_mut() else {
            return std::future::pending().await;
        };
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let check = tokio::time::timeout(
                Duration::from_secs(3),
                sqlx::query("SELECT 1").execute(&mut *connection),
            );
            if !matches!(check.await, Ok(Ok(_))) {
                return;
            }
        }
    }
}

impl Store {
    /// One live path per database: the dispatcher keeps who waits and who is
    /// rung in this process's memory, so two active `cloudlaw serve`s on the
    /// same PostgreSQL database would ring the same lawyer twice. On
    /// PostgreSQL this takes a session advisory lock on a connection of its
    /// own, held as long as the lease (and released by the server if this
    /// process dies); `None` when another process holds it. SQLite needs none:
    /// its file belongs to one machine's data directory.
    pub async fn serving_lease(&self) -> Result<Option<ServingLease>, StoreError> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(Some(ServingLease { connection: None }));
        };
        let mut connection = pool.acquire().await?.detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SERVING_LOCK)
            .fetch_one(&mut connection)
            .await?;
        Ok(got.then_some(ServingLease { connection: Some(connection) }))
    }
}

/// True for the URLs that select PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Creates the data directory and proves it is writable, so that a wrong path
/// fails at start with its name rather than later with a database error.
fn prepare_data_dir(dir: &Path) -> Result<(), StoreError> {
    let fail = |reason: String| StoreError::DataDir { path: dir.to_path_buf(), reason };
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create it: {e}")))?;
    let probe = dir.join(".cloudlaw-write-probe");
    std::fs::write(&probe, b"").map_err(|e| fail(format!("not writable: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// For tests that run against PostgreSQL: with `TEST_POSTGRES_URL` set
/// to a superuser URL (`scripts/test` starts a throwaway server and sets it),
/// creates the database `name` unless it exists and returns its URL; `None`
/// when the variable is unset, meaning SQLite.
#[doc(hidden)]
pub async fn test_database(name: &str) -> Option<String> {
    let admin = std::env::var("TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())?;
    Some(create_database(&admin, name).await)
}

/// Creates the database `name` (unless it exists) on the PostgreSQL server
/// of the superuser URL `admin`, and returns its URL. For tests and the
/// load tools; panics on failure.
#[doc(hidden)]
pub async fn create_database(admin: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("PostgreSQL: connect");
    assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "database name {name:?}");
    // A name cannot be a bound parameter; it is checked above.
    let created =
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await;
    match created {
        Ok(_) => {}
        // 42P04: it exists already (a second handle on a test's database).
        Err(error) if error.as_database_error().and_then(|e| e.code()).as_deref() == Some("42P04") => {}
        Err(error) => panic!("CREATE DATABASE {name}: {error}"),
    }
    let _ = conn.close().await;
    let (base, params) = admin.split_once('?').unwrap_or((admin, ""));
    let (server, _database) = base.rsplit_once('/').expect("PostgreSQL: a URL with a database");
    if params.is_empty() { format!("{server}/{name}") } else { format!("{server}/{name}?{params}") }
}

/// A fresh id for a new row.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::config::Config;

    /// A migrated store in a temporary directory that lives as long as the guard.
    /// On PostgreSQL (see [`test_database`]) in a new database of its own.
    pub async fn store() -> (Store, tempfile::TempDir) {
        let (store, _config, dir) = store_and_config().await;
        (store, dir)
    }

    /// [`store`], with the configuration that opens more handles on the same
    /// database (as more signaling nodes would).
    pub async fn store_and_config() -> (Store, Config, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("unit_{}", new_id().replace('-', ""));
        let database_url = test_database(&database).await.map(Into::into);
        let config = Config { data_dir: dir.path().to_path_buf(), database_url, ..Config::default() };
        let store = Store::open(&config).await.unwrap();
        store.migrate().await.unwrap();
        (store, config, dir)
    }

    /// Runs `sql` (one or more statements), as someone with the database's rights would.
    pub async fn execute(store: &Store, sql: &'static str) {
        with_pool!(store, |pool| sqlx::raw_sql(sql).execute(pool).await.map(|_| ()).unwrap());
    }

    /// Drops the triggers that keep the audit log append-only, as its owner could.
    pub async fn drop_audit_guards(store: &Store) {
        let sql = match store.backend() {
            "postgres" => {
                "DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_delete ON audit_log;"
            }
            _ => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        };
        execute(store, sql).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[tokio::test]
    async fn migrates_once_and_enforces_foreign_keys() {
        let (store, _dir) = testing::store().await;
        assert_eq!(store.migrate().await.unwrap(), 0, "second run applies nothing");
        assert!(store.ping().await);
        let orphan = with_pool!(store, |pool| {
            sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ('nobody', 'lawyer')")
                .execute(pool)
                .await
                .map(|_| ())
        });
        assert!(orphan.is_err(), "foreign keys are enforced");
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(&Config { data_dir: dir.path().to_path_buf(), ..Config::default() }).await.unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("0001_ok.sql"), "CREATE TABLE first_table (x INTEGER);").unwrap();
        std::fs::write(
            folder.path().join("0002_breaks.sql"),
            "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);",
        )
        .unwrap();
        let migrator = Migrator::new(folder.path()).await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else { unreachable!("opened on SQLite") };
        assert!(migrator.run(pool).await.is_err());
        let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .unwrap();
        assert!(tables.contains(&"first_table".to_owned()), "{tables:?}");
        assert!(!tables.contains(&"half_done".to_owned()), "the failed migration left {tables:?}");
        let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap();
        assert_eq!(versions, [1], "only the whole migration is recorded");
    }

    #[tokio::test]
    async fn unwritable_data_dir_is_named() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let config = Config { data_dir: file.path().join("sub"), ..Config::default() };
        let error = Store::open(&config).await.unwrap_err();
        assert!(error.to_string().contains(&file.path().display().to_string()), "{error}");
    }
}
