//! Accounts: people who sign in, their roles, languages, topics and weekly hours.

use std::collections::HashMap;

use super::{
    AppendAudit, AuditEntry, BeginWrite, ConflictExt, Store, StoreError, audited, new_id, with_pool,
};
use crate::domain::{Language, Role, Topic};
use crate::ids::{AccountId, RegionId};
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
    pub id: AccountId,
    pub username: String,
    pub display_name: String,
    pub time_zone: String,
    pub active: bool,
    pub roles: Vec<Role>,
    pub languages: Vec<Language>,
    pub topics: Vec<Topic>,
    /// Regions a coordinator answers for.
    pub regions: Vec<RegionId>,
}

impl AccountRecord {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Changes to an account; `None` leaves a field as it is. Lists replace.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub display_name: Option<String>,
    pub time_zone: Option<String>,
    pub active: Option<bool>,
    pub roles: Option<Vec<Role>>,
    pub languages: Option<Vec<Language>>,
    pub topics: Option<Vec<Topic>>,
    /// The regions a coordinator answers for.
    pub regions: Option<Vec<RegionId>>,
}

/// What login needs: never leaves the server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    pub id: AccountId,
    pub password_hash: String,
    pub active: bool,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: AccountId,
    username: String,
    display_name: String,
    time_zone: String,
    active: bool,
}

impl Store {
    /// Creates an account with its roles, languages, topics and (for a
    /// coordinator) `regions`, and `audit` (its subject set to the new id), in
    /// one transaction. A taken username is [`StoreError::Conflict`].
    pub async fn create_account(
        &self,
        account: &NewAccount,
        regions: &[RegionId],
        audit: &AuditEntry,
    ) -> Result<AccountId, StoreError> {
        let id = AccountId::from(new_id());
        let now = unix_now();
        let audit = AuditEntry { subject: id.to_string(), ..audit.clone() };
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
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
            for region in regions {
                sqlx::query("INSERT INTO coordinator_regions (account_id, region_id) VALUES ($1, $2)")
                    .bind(&id)
                    .bind(region)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.append_audit(&audit).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Option<AccountRecord>, StoreError> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, AccountRow>(
                "SELECT id, username, display_name, time_zone, active FROM accounts WHERE username = $1",
            )
            .bind(username)
            .fetch_all(pool)
            .await?
        });
        Ok(self.complete_accounts(rows).await?.pop())
    }

    pub async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, AccountRow>(
                "SELECT id, username, display_name, time_zone, active FROM accounts WHERE id = $1",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        Ok(self.complete_accounts(rows).await?.pop())
    }

    /// Every account, by username.
    pub async fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, AccountRow>(
                "SELECT id, username, display_name, time_zone, active FROM accounts ORDER BY username",
            )
            .fetch_all(pool)
            .await?
        });
        self.complete_accounts(rows).await
    }

    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, password_hash, active FROM accounts WHERE username = $1")
                .bind(username)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn password_hash(&self, id: &AccountId) -> Result<Option<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Fills in roles, languages, topics and regions with one query each,
    /// whatever the number of accounts.
    async fn complete_accounts(&self, rows: Vec<AccountRow>) -> Result<Vec<AccountRecord>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let single = (rows.len() == 1).then(|| rows[0].id.clone());
        let filter = single.unwrap_or_default();
        let (roles, languages, topics, regions) = with_pool!(self, |pool| {
            let fetch = |sql: &'static str| {
                sqlx::query_as::<_, (String, String)>(sql).bind(filter.clone()).fetch_all(pool)
            };
            (
                fetch("SELECT account_id, role FROM account_roles WHERE $1 = '' OR account_id = $1 ORDER BY role").await?,
                fetch("SELECT account_id, language FROM account_languages WHERE $1 = '' OR account_id = $1 ORDER BY language").await?,
                fetch("SELECT account_id, topic FROM account_topics WHERE $1 = '' OR account_id = $1 ORDER BY topic").await?,
                fetch("SELECT account_id, region_id FROM coordinator_regions WHERE $1 = '' OR account_id = $1 ORDER BY region_id").await?,
            )
        });
        let group = |pairs: Vec<(String, String)>| {
            let mut map: HashMap<String, Vec<String>> = HashMap::new();
            for (id, value) in pairs {
                map.entry(id).or_default().push(value);
            }
            map
        };
        let (mut roles, mut languages, mut topics, mut regions) =
            (group(roles), group(languages), group(topics), group(regions));
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = row.id.as_str();
                let roles = roles.remove(id).unwrap_or_default();
                let languages = languages.remove(id).unwrap_or_default();
                let topics = topics.remove(id).unwrap_or_default();
                AccountRecord {
                    regions: regions.remove(id).unwrap_or_default().into_iter().map(RegionId::from).collect(),
                    // The CHECK constraints keep these parseable; anything else is skipped.
                    roles: roles.iter().filter_map(|r| Role::from_code(r)).collect(),
                    languages: languages.iter().filter_map(|l| Language::parse(l).ok()).collect(),
                    topics: topics.iter().filter_map(|t| Topic::from_code(t)).collect(),
                    id: row.id,
                    username: row.username,
                    display_name: row.display_name,
                    time_zone: row.time_zone,
                    active: row.active,
                }
            })
            .collect())
    }

    /// Applies a patch and appends `audit`, in one transaction. Deactivating
    /// an account also ends its sessions and its calendar feed. False (and
    /// nothing written) when there is no such account.
    pub async fn update_account(
        &self,
        id: &AccountId,
        patch: &AccountPatch,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let found = sqlx::query(
                "UPDATE accounts SET
                    display_name = COALESCE($2, display_name),
                    time_zone = COALESCE($3, time_zone),
                    active = COALESCE($4, active),
                    updated_at = $5
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&patch.display_name)
            .bind(&patch.time_zone)
            .bind(patch.active)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !found {
                return Ok(false);
            }
            if let Some(roles) = &patch.roles {
                sqlx::query("DELETE FROM account_roles WHERE account_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for role in roles {
                    sqlx::query("INSERT INTO account_roles (account_id, role) VALUES ($1, $2)")
                        .bind(id)
                        .bind(role.code())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if let Some(languages) = &patch.languages {
                sqlx::query("DELETE FROM account_languages WHERE account_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for language in languages {
                    sqlx::query("INSERT INTO account_languages (account_id, language) VALUES ($1, $2)")
                        .bind(id)
                        .bind(language.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if let Some(topics) = &patch.topics {
                sqlx::query("DELETE FROM account_topics WHERE account_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for topic in topics {
                    sqlx::query("INSERT INTO account_topics (account_id, topic) VALUES ($1, $2)")
                        .bind(id)
                        .bind(topic.code())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if let Some(regions) = &patch.regions {
                sqlx::query("DELETE FROM coordinator_regions WHERE account_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for region in regions {
                    sqlx::query("INSERT INTO coordinator_regions (account_id, region_id) VALUES ($1, $2)")
                        .bind(id)
                        .bind(region)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if patch.active == Some(false) {
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = 'account deactivated'
                     WHERE account_id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM calendar_feeds WHERE account_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.append_audit(audit).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Sets a new password hash, ends the account's sessions (whoever held
    /// the old password is signed out) and appends `audit`, in one
    /// transaction.
    pub async fn set_password_hash(
        &self,
        id: &AccountId,
        password_hash: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let done = audited!(self, audit, |tx| {
            let done = sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = 'password reset'
                 WHERE account_id = $1 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            done
        });
        Ok(done == 1)
    }

    /// Adds one weekly availability window, in the account's own time zone.
    /// `weekday` 0 is Monday; minutes count from local midnight, end exclusive.
    pub async fn add_weekly_availability(
        &self,
        account_id: &AccountId,
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
    pub async fn weekly_availability_count(&self, account_id: &AccountId) -> Result<i64, StoreError> {
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
        let id = store
            .create_account(&account("a"), &[], &crate::store::AuditEntry::system("account.created"))
            .await
            .unwrap();
        let read = store.account_by_username("a").await.unwrap().unwrap();
        assert_eq!(read.id, id);
        assert_eq!(read.roles, vec![Role::Interpreter, Role::Lawyer]);
        assert!(read.active);
        let again = store
            .create_account(&account("a"), &[], &crate::store::AuditEntry::system("account.created"))
            .await
            .unwrap_err();
        assert!(matches!(again, StoreError::Conflict(_)), "{again}");
        assert!(store.account_by_username("b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn availability_outside_a_day_is_refused_by_the_database() {
        let (store, _dir) = testing::store().await;
        let id = store
            .create_account(&account("a"), &[], &crate::store::AuditEntry::system("account.created"))
            .await
            .unwrap();
        store.add_weekly_availability(&id, 0, 0, 1440).await.unwrap();
        assert!(store.add_weekly_availability(&id, 7, 0, 60).await.is_err());
        assert!(store.add_weekly_availability(&id, 1, 600, 540).await.is_err());
        assert_eq!(store.weekly_availability_count(&id).await.unwrap(), 1);
    }
}
