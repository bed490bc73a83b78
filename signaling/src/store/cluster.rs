//! Messages between signaling nodes, through PostgreSQL's NOTIFY and LISTEN
//! (see [`crate::cluster`]). A message larger than a NOTIFY payload may be is
//! stored in `cluster_spill`, and its id is notified instead.

use sqlx::postgres::PgListener;

use super::{Pool, Store, StoreError};

/// The largest message sent inline; PostgreSQL refuses payloads of 8000 bytes
/// or more. Larger ones go through `cluster_spill`.
const INLINE: usize = 7_000;
/// How long a spilled message is kept for the nodes to read.
const SPILL_KEEP_SECS: i64 = 60;

fn postgres_only() -> StoreError {
    StoreError::Database(sqlx::Error::Configuration("several signaling nodes need PostgreSQL".into()))
}

/// A node's subscription to channels.
pub struct Notifications {
    listener: PgListener,
    store: Store,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifications")
    }
}

impl Notifications {
    /// The next message and its channel. `Ok(None)`: the connection to the
    /// database was lost and is being made again; messages may have been lost
    /// meanwhile. Not to be cancelled (a message read may be dropped): run
    /// it in a task of its own.
    pub async fn recv(&mut self) -> Result<Option<(String, String)>, StoreError> {
        let Some(notification) = self.listener.try_recv().await? else { return Ok(None) };
        let channel = notification.channel().to_owned();
        let payload = notification.payload();
        let body = match payload.strip_prefix('@').map(str::parse::<i64>) {
            Some(Ok(id)) => self.store.spilled(id).await?.unwrap_or_default(),
            _ => payload.to_owned(),
        };
        Ok(Some((channel, body)))
    }
}

impl Store {
    /// Listens on `channels`, on a connection of its own.
    pub async fn notifications(&self, channels: &[&str]) -> Result<Notifications, StoreError> {
        let Pool::Postgres(pool) = &self.pool else { return Err(postgres_only()) };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(Notifications { listener, store: self.clone() })
    }

    /// Sends `message` to every node listening on `channel`.
    pub async fn notify(&self, channel: &str, message: &str) -> Result<(), StoreError> {
        self.notify_all(&[(channel, message)]).await
    }

    /// Sends each `(channel, message)`, in this order, in one transaction:
    /// one round trip for a run of small messages, one more for each large
    /// one. Messages arrive in the order sent (PostgreSQL delivers a
    /// transaction's notifications in order, at commit); identical ones on
    /// one channel in one call arrive once.
    pub async fn notify_all(&self, messages: &[(&str, &str)]) -> Result<(), StoreError> {
        let Pool::Postgres(pool) = &self.pool else { return Err(postgres_only()) };
        let mut tx = pool.begin().await?;
        let mut run: (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        for (i, (channel, message)) in messages.iter().enumerate() {
            if message.len() <= INLINE {
                run.0.push(channel);
                run.1.push(message);
            }
            let last = i + 1 == messages.len();
            if (message.len() > INLINE || last) && !run.0.is_empty() {
                // The subquery keeps the array order for the notifications.
                sqlx::query(
                    "SELECT pg_notify(o.c, o.m) FROM (SELECT c, m FROM unnest($1::text[], $2::text[]) \
                     WITH ORDINALITY AS t(c, m, n) ORDER BY n) AS o",
                )
                .bind(std::mem::take(&mut run.0))
                .bind(std::mem::take(&mut run.1))
                .execute(&mut *tx)
                .await?;
            }
            if message.len() > INLINE {
                // The row is there before anyone hears of it: at commit.
                sqlx::query(
                    "WITH spilled AS (INSERT INTO cluster_spill (body, created_at) VALUES ($1, $2) RETURNING id) \
                     SELECT pg_notify($3, '@' || id) FROM spilled",
                )
                .bind(message)
                .bind(crate::unix_now())
                .bind(channel)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn spilled(&self, id: i64) -> Result<Option<String>, StoreError> {
        let Pool::Postgres(pool) = &self.pool else { return Err(postgres_only()) };
        Ok(sqlx::query_scalar("SELECT body FROM cluster_spill WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?)
    }

    /// Deletes spilled messages every node has had time to read.
    pub async fn forget_spilled(&self, now: i64) -> Result<u64, StoreError> {
        let Pool::Postgres(pool) = &self.pool else { return Ok(0) };
        let done = sqlx::query("DELETE FROM cluster_spill WHERE created_at < $1")
            .bind(now - SPILL_KEEP_SECS)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    /// Messages arrive in order, large ones through the spill table.
    #[tokio::test]
    async fn notifications_arrive_in_order_large_ones_too() {
        let (store, _dir) = crate::store::testing::store().await;
        if store.backend() != "postgres" {
            assert!(store.notify("cloudlaw_test", "x").await.is_err(), "SQLite has one node");
            return;
        }
        let mut heard = store.notifications(&["cloudlaw_test"]).await.unwrap();
        let large = "x".repeat(20_000);
        for message in ["first", large.as_str(), "third"] {
            store.notify("cloudlaw_test", message).await.unwrap();
        }
        // In one batch too, small and large mixed.
        let batch = ["a", "b", large.as_str(), "c", large.as_str()];
        store.notify_all(&batch.map(|m| ("cloudlaw_test", m))).await.unwrap();
        for expected in ["first", large.as_str(), "third"].iter().chain(&batch) {
            let (channel, body) = heard.recv().await.unwrap().unwrap();
            assert_eq!((channel.as_str(), body.len()), ("cloudlaw_test", expected.len()));
            assert_eq!(body, *expected);
        }
        assert_eq!(store.forget_spilled(crate::unix_now() + 61).await.unwrap(), 3);
    }
}
