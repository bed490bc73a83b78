//! Aid teams, their members and the regions they are posted to.

use super::{AppendAudit, AuditEntry, BeginWrite, ConflictExt, Store, StoreError, new_id, with_pool};
use crate::ids::{AccountId, RegionId, TerminalId};
use crate::unix_now;

/// What a team is linked to; each list, when given, replaces the team's.
#[derive(Debug, Clone, Copy, Default)]
pub struct TeamLinks<'a> {
    /// Account ids (lawyers and interpreters).
    pub members: Option<&'a [AccountId]>,
    pub regions: Option<&'a [RegionId]>,
    pub terminals: Option<&'a [TerminalId]>,
}

/// Replaces, inside transaction `$tx`, each of `$links`' lists that is given.
macro_rules! write_links {
    ($tx:ident, $id:expr, $links:expr) => {
        fn strs<T: AsRef<str>>(ids: Option<&[T]>) -> Option<Vec<&str>> {
            ids.map(|ids| ids.iter().map(AsRef::as_ref).collect())
        }
        let links: [(Option<Vec<&str>>, &'static str, &'static str); 3] = [
            (
                strs($links.members),
                "DELETE FROM team_members WHERE team_id = $1",
                "INSERT INTO team_members (team_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ),
            (
                strs($links.regions),
                "DELETE FROM team_regions WHERE team_id = $1",
                "INSERT INTO team_regions (team_id, region_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ),
            (
                strs($links.terminals),
                "DELETE FROM team_terminals WHERE team_id = $1",
                "INSERT INTO team_terminals (team_id, terminal_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ),
        ];
        for (values, delete, insert) in links {
            let Some(values) = values else { continue };
            sqlx::query(delete).bind($id).execute(&mut *$tx).await?;
            for value in values {
                sqlx::query(insert).bind($id).bind(value).execute(&mut *$tx).await?;
            }
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamRecord {
    pub id: String,
    pub name: String,
}

impl Store {
    /// Creates a team with its links, and `audit` (its subject set to the new
    /// id), in one transaction; a taken name is [`StoreError::Conflict`], a
    /// link to nothing [`StoreError::Reference`], and either leaves nothing.
    pub async fn create_team(
        &self,
        name: &str,
        links: TeamLinks<'_>,
        audit: &AuditEntry,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let audit = AuditEntry { subject: id.clone(), ..audit.clone() };
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("INSERT INTO aid_teams (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(name)
                .bind(unix_now())
                .execute(&mut *tx)
                .await
                .on_conflict("a team with this name")?;
            write_links!(tx, &id, links);
            tx.append_audit(&audit).await?;
            tx.commit().await?;
        });
        Ok(id)
    }

    /// Replaces a team's members, regions and terminals (each when given),
    /// with `audit`, in one transaction.
    pub async fn set_team_links(
        &self,
        id: &str,
        links: TeamLinks<'_>,
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            write_links!(tx, id, links);
            tx.append_audit(audit).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn add_team_member(&self, team_id: &str, account_id: &AccountId) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO team_members (team_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(team_id)
            .bind(account_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn assign_team_region(&self, team_id: &str, region_id: &RegionId) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO team_regions (team_id, region_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(team_id)
            .bind(region_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn assign_coordinator_region(
        &self,
        account_id: &AccountId,
        region_id: &RegionId,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO coordinator_regions (account_id, region_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(account_id)
            .bind(region_id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Teams posted to a region, by name.
    pub async fn teams_for_region(&self, region_id: &RegionId) -> Result<Vec<TeamRecord>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT t.id, t.name FROM aid_teams t JOIN team_regions r ON r.team_id = t.id
                 WHERE r.region_id = $1 ORDER BY t.name",
            )
            .bind(region_id)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Usernames of a team's members, sorted.
    pub async fn team_member_usernames(&self, team_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT a.username FROM accounts a JOIN team_members m ON m.account_id = a.id
                 WHERE m.team_id = $1 ORDER BY a.username",
            )
            .bind(team_id)
            .fetch_all(pool)
            .await?
        }))
    }
}
