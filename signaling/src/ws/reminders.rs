//! The reminder loop: tells a lawyer and a terminal over their WebSockets when
//! an appointment is near and when it starts, and hands a started appointment
//! to the live path, where it becomes a consultation.

use std::sync::Arc;
use std::time::Duration;

use super::protocol::ServerMessage;
use super::registry::Connections;
use crate::http::views::AppointmentView;
use crate::live::{Command, Live};
use crate::store::{AppointmentRecord, Store};
use crate::unix_now;

fn tell_both(connections: &Connections, appointment: &AppointmentRecord, message: &ServerMessage) {
    let reached = connections.push_to_account(&appointment.lawyer_id, message)
        + connections.push_to_terminal(&appointment.terminal_id, message);
    tracing::info!(appointment = %appointment.id, reached, "appointment notice sent");
}

/// One pass: reminders that are due, then appointments that have started.
/// Each is taken (marked) in the database as it is sent, so a restart or a
/// second node never sends one twice.
pub async fn run_once(store: &Store, connections: &Connections, live: &Live, reminder_minutes: u32) {
    let now = unix_now();
    match store.take_due_reminders(now, i64::from(reminder_minutes) * 60).await {
        Ok(due) => {
            for a in &due {
                tell_both(
                    connections,
                    a,
                    &ServerMessage::AppointmentReminder { appointment: AppointmentView::from(a) },
                );
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read due reminders"),
    }
    match store.take_started(now).await {
        Ok(started) => {
            for a in started {
                tell_both(
                    connections,
                    &a,
                    &ServerMessage::AppointmentStarted { appointment: AppointmentView::from(&a) },
                );
                // The resident waits at the front, for the appointment's lawyer first.
                live.send(Command::AppointmentDue(a)).await;
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read started appointments"),
    }
}

/// Runs every `every` until the task is aborted.
pub async fn run(
    store: Store,
    connections: Arc<Connections>,
    live: Live,
    reminder_minutes: u32,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        run_once(&store, &connections, &live, reminder_minutes).await;
    }
}
