//! The ordered writer: applies the dispatcher's writes in order, on its own
//! task, so the dispatcher never waits on the database. Whatever queued up
//! while the last transaction ran goes into the next one: under load, one
//! commit carries hundreds of writes.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{Command, Input};
use crate::domain::{ErrorCode, Failure};
use crate::store::{LiveWrite, Store, StoreError};
use crate::unix_now;

/// Writes queued before the writer takes them into one transaction.
const WRITE_BATCH: usize = 512;

/// Applies a batch, trying again while the transaction fails as a whole (the
/// database is unreachable or locked for long): a lost call end would leave a
/// consultation open on disk for good. Gives up (and says so) only after
/// about ten minutes.
async fn apply_until_stored(
    store: &Store,
    batch: &[(LiveWrite, i64)],
) -> Result<Vec<Result<u64, StoreError>>, ()> {
    let mut wait = Duration::from_millis(100);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        match store.apply_live_writes(batch).await {
            Ok(results) => return Ok(results),
            Err(error) if Instant::now() < deadline => {
                tracing::error!(%error, writes = batch.len(), retry_in = ?wait, "live path: a batch of writes failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(error) => {
                tracing::error!(%error, writes = batch.len(), "live path: a batch of writes was lost");
                return Err(());
            }
        }
    }
}

/// Who waits for a write's outcome (rows changed).
type Ack = Option<oneshot::Sender<Result<u64, Failure>>>;

#[derive(Debug)]
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<(LiveWrite, i64, Ack)>,
}

impl Writer {
    pub(super) fn start(store: Store, dispatcher: mpsc::WeakSender<Command>) -> Writer {
        let (tx, mut rx) = mpsc::unbounded_channel::<(LiveWrite, i64, Ack)>();
        tokio::spawn(async move {
            let mut queued = Vec::with_capacity(WRITE_BATCH);
            while rx.recv_many(&mut queued, WRITE_BATCH).await > 0 {
                let (batch, acks): (Vec<(LiveWrite, i64)>, Vec<Ack>) =
                    queued.drain(..).map(|(write, at, ack)| ((write, at), ack)).unzip();
                let stored: Vec<Option<u64>> = match apply_until_stored(&store, &batch).await {
                    Ok(results) => results
                        .iter()
                        .zip(&batch)
                        .map(|(result, (write, _))| match result {
                            Ok(rows) => Some(*rows),
                            Err(error) => {
                                tracing::error!(%error, ?write, "live path: a write failed");
                                None
                            }
                        })
                        .collect(),
                    Err(()) => vec![None; batch.len()],
                };
                for (((write, _), ack), rows) in batch.into_iter().zip(acks).zip(stored) {
                    if let Some(ack) = ack {
                        let failed = (ErrorCode::Refused, "could not be recorded; try again".to_owned());
                        let _ = ack.send(rows.ok_or(failed));
                    }
                    let ok = rows.is_some();
                    let told = match write {
                        LiveWrite::Request(row) => Some(Input::Recorded { request: row.id, ok }),
                        // Failed or not, the lawyer is not kept from being rung.
                        LiveWrite::FinishWrapUp(consultation) => Some(Input::WrapUpStored { consultation }),
                        _ => None,
                    };
                    if let Some(command) = told
                        && let Some(dispatcher) = dispatcher.upgrade()
                    {
                        let _ = dispatcher.send(Command::Stored(command)).await;
                    }
                }
            }
        });
        Writer { tx }
    }

    pub(super) fn send(&self, write: LiveWrite) {
        let _ = self.tx.send((write, unix_now(), None));
    }

    /// Queues a write whose outcome someone waits for.
    pub(super) fn send_then(&self, write: LiveWrite, ack: oneshot::Sender<Result<u64, Failure>>) {
        let _ = self.tx.send((write, unix_now(), Some(ack)));
    }
}
