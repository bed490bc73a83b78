//! Accounts: people who sign in, their roles, languages, topics and weekly hours.

use super::{ConflictExt, Store, StoreError, new_id, with_pool};
use crate::domain::{Language, Role, Topic};
use crate::unix_now;

/// What it takes to create an account. The password arrives already hashed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub time_zone: String,
    pub roles: Vec<Role>,
    pub languages: Vec<Language>,
    pub topics: Vec<Topic>,
}

/// An account as stored (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub time_zone: String,
    pub active: bool,
    pub roles: Vec<Role>,
    pub languages: Vec<Language>,
    pub topics: Vec<Topic>,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    username: String,
    display_name: String,
    time_zone: String,
    active: bool,
}

impl Store {
    /// Creates an account with its roles, languages and topics in one transaction.
    /// A taken username is [`StoreError::Conflict`].
    pub async fn create_account(&self, account: &NewAccount) -> Result<String, StoreError> {
        let id = new_id();
        let now = unix_now();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO accounts (id, username, display_name, password_hash, time_zone, active, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6)",
            )
            .bind(&id)
            .bind(&account.username)
            .bind(&account.display_name)
            .bind(&account.password_hash)
            .bind(&account.time_zone)
            .bind(now)
            .execute(&mut *tx)
            .await
            .on_conflict("an account with this username")?;
            for role in &account.roles {
                sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(role.code())
                    .execute(&mut *tx)
                    .await?;
            }
            for language in &account.languages {
                sqlx::query("INSERT INTO account_languages (account_id, language) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(language.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            for topic in &account.topics {
                sqlx::query("INSERT INTO account_topics (account_id, topic) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(topic.code())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Option<AccountRecord>, StoreError> {
        let row = with_pool!(self, |pool| {
            sqlx::query_as::<_, AccountRow>(
                "SELECT id, username, display_name, time_zone, active FROM accounts WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?
        });
        match row {
            Some(row) => Ok(Some(self.complete_account(row).await?)),
            None => Ok(None),
        }
    }

    async fn complete_account(&self, row: AccountRow) -> Result<AccountRecord, StoreError> {
        let (roles, languages, topics) = with_pool!(self, |pool| {
            let roles: Vec<String> =
                sqlx::query_scalar("SELECT role FROM account_roles WHERE account_id = $1 ORDER BY role")
                    .bind(&row.id)
                    .fetch_all(pool)
                    .await?;
            let languages: Vec<String> = sqlx::query_scalar(
                "SELECT language FROM account_languages WHERE account_id = $1 ORDER BY language",
            )
            .bind(&row.id)
            .fetch_all(pool)
            .await?;
            let topics: Vec<String> =
                sqlx::query_scalar("SELECT topic FROM account_topics WHERE account_id = $1 ORDER BY topic")
                    .bind(&row.id)
                    .fetch_all(pool)
                    .await?;
            (roles, languages, topics)
        });
        Ok(AccountRecord {
            id: row.id,
            username: row.username,
            display_name: row.display_name,
            time_zone: row.time_zone,
            active: row.active,
            // The CHECK constraints keep these parseable; anything else is skipped, not fatal.
            roles: roles.iter().filter_map(|r| Role::from_code(r)).collect(),
            languages: languages.iter().filter_map(|l| Language::parse(l).ok()).collect(),
            topics: topics.iter().filter_map(|t| Topic::from_code(t)).collect(),
        })
    }

    /// Adds one weekly availability window, in the account's own time zone.
    /// `weekday` 0 is Monday; minutes count from local midnight, end exclusive.
    pub async fn add_weekly_availability(
        &self,
        account_id: &str,
        weekday: u8,
        start_minute: u16,
        end_minute: u16,
    ) -> Result<String, StoreError> {
        let id = new_id();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO availability_rules (id, account_id, weekday, start_minute, end_minute)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(account_id)
            .bind(i64::from(weekday))
            .bind(i64::from(start_minute))
            .bind(i64::from(end_minute))
            .execute(pool)
            .await?;
        });
        Ok(id)
    }

    /// How many weekly windows an account has.
    pub async fn weekly_availability_count(&self, account_id: &str) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM availability_rules WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(pool)
                .await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    fn account(username: &str) -> NewAccount {
        NewAccount {
            username: username.into(),
            display_name: "Test".into(),
            password_hash: "x".into(),
            time_zone: "Asia/Shanghai".into(),
            roles: vec![Role::Lawyer, Role::Interpreter],
            languages: vec![Language::parse("bo").unwrap()],
            topics: vec![Topic::Land],
        }
    }

    #[tokio::test]
    async fn create_read_and_conflict() {
        let (store, _dir) = testing::store().await;
        let id = store.create_account(&account("a")).await.unwrap();
        let read = store.account_by_username("a").await.unwrap().unwrap();
        assert_eq!(read.id, id);
        assert_eq!(read.roles, vec![Role::Interpreter, Role::Lawyer]);
        assert!(read.active);
        let again = store.create_account(&account("a")).await.unwrap_err();
        assert!(matches!(again, StoreError::Conflict(_)), "{again}");
        assert!(store.account_by_username("b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn availability_outside_a_day_is_refused_by_the_database() {
        let (store, _dir) = testing::store().await;
        let id = store.create_account(&account("a")).await.unwrap();
        store.add_weekly_availability(&id, 0, 0, 1440).await.unwrap();
        assert!(store.add_weekly_availability(&id, 7, 0, 60).await.is_err());
        assert!(store.add_weekly_availability(&id, 1, 600, 540).await.is_err());
        assert_eq!(store.weekly_availability_count(&id).await.unwrap(), 1);
    }
}
