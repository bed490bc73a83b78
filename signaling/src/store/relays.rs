//! Relay nodes that registered themselves.

use super::{AppendAudit, AuditEntry, BeginWrite, Store, StoreError, with_pool};

/// A relay node as it registered.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RelayRegistrationRow {
    pub name: String,
    pub region_id: Option<String>,
    pub control_url: String,
    pub last_seen_at: i64,
}

/// What a registration told that the store did not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationNews {
    /// A name never registered before.
    New,
    /// The same address and region as last time.
    Renewed,
    /// Another address or region than last time.
    Changed,
}

impl Store {
    /// Records that relay node `name` is at `control_url` and serves
    /// `region_id`, as of `now` (a node registers again every few seconds).
    /// Says whether that is news: a new node, or one that moved or changed
    /// region. News appends `audit` in the same transaction, as
    /// `relay.registered` or `relay.moved`; a renewal appends nothing.
    pub async fn register_relay(
        &self,
        name: &str,
        region_id: Option<&str>,
        control_url: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<RegistrationNews, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let before: Option<(Option<String>, String)> =
                sqlx::query_as("SELECT region_id, control_url FROM relay_registrations WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await?;
            sqlx::query(
                "INSERT INTO relay_registrations (name, region_id, control_url, first_seen_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (name) DO UPDATE SET region_id = excluded.region_id,
                     control_url = excluded.control_url, last_seen_at = excluded.last_seen_at",
            )
            .bind(name)
            .bind(region_id)
            .bind(control_url)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let news = match before {
                None => RegistrationNews::New,
                Some((region, url)) if region.as_deref() == region_id && url == control_url => {
                    RegistrationNews::Renewed
                }
                Some(_) => RegistrationNews::Changed,
            };
            let action = match news {
                RegistrationNews::New => Some("relay.registered"),
                RegistrationNews::Changed => Some("relay.moved"),
                RegistrationNews::Renewed => None,
            };
            if let Some(action) = action {
                tx.append_audit(&AuditEntry { action: action.into(), ..audit.clone() }).await?;
            }
            tx.commit().await?;
            Ok(news)
        })
    }

    /// The relay nodes that registered at `since` or later, by name.
    pub async fn relay_registrations(&self, since: i64) -> Result<Vec<RelayRegistrationRow>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, region_id, control_url, last_seen_at FROM relay_registrations
                 WHERE last_seen_at >= $1 ORDER BY name",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::RegistrationNews;
    use crate::store::AuditEntry;
    use crate::store::testing::store;

    #[tokio::test]
    async fn a_registration_is_kept_fresh_and_old_ones_are_not_listed() {
        let (store, _dir) = store().await;
        let audit = AuditEntry::default();
        let garze =
            |url: &'static str, now| store.register_relay("garze-1", Some("demo-garze"), url, now, &audit);
        assert_eq!(garze("ws://10.0.0.5:7901/control", 100).await.unwrap(), RegistrationNews::New);
        assert_eq!(garze("ws://10.0.0.5:7901/control", 110).await.unwrap(), RegistrationNews::Renewed);
        store.register_relay("spare", None, "ws://10.0.0.6:7901/control", 100, &audit).await.unwrap();
        // garze-1 moved, and registers again later; spare went quiet.
        assert_eq!(garze("ws://10.0.0.7:7901/control", 200).await.unwrap(), RegistrationNews::Changed);
        let fresh = store.relay_registrations(150).await.unwrap();
        assert_eq!(fresh.len(), 1);
        assert_eq!(
            (fresh[0].name.as_str(), fresh[0].control_url.as_str()),
            ("garze-1", "ws://10.0.0.7:7901/control")
        );
        assert_eq!(fresh[0].region_id.as_deref(), Some("demo-garze"));
        assert_eq!(store.relay_registrations(0).await.unwrap().len(), 2);
        let elsewhere =
            store.register_relay("garze-1", None, "ws://10.0.0.7:7901/control", 210, &audit).await;
        assert_eq!(elsewhere.unwrap(), RegistrationNews::Changed, "another region");
        // News is audited with the change; renewals are not.
        let actions: Vec<String> =
            store.recent_audit(None, 10).await.unwrap().into_iter().rev().map(|r| r.action).collect();
        assert_eq!(actions, ["relay.registered", "relay.registered", "relay.moved", "relay.moved"]);
    }
}
