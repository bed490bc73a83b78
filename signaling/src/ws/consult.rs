//! A connection's part in the live path: it announces its owner to the
//! dispatcher ([`crate::live`]) when it opens and closes, and turns the
//! `presence.*`, `consult.*` and `live.*` messages into the dispatcher's
//! commands after checking that the sender's role may send them.

use axum::extract::ws::Message;
use tokio::sync::mpsc;

use super::call::Failure;
use super::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::auth::Principal;
use crate::domain::Role as AccountRole;
use crate::http::AppState;
use crate::ids::{AccountId, RegionId, TerminalId, kiosk, person};
use crate::live::{Answer, Command, PersonInfo, TerminalInfo, local_day_start};
use crate::unix_now;

/// What the live path knows this connection as.
#[derive(Debug, Clone)]
pub enum Member {
    Person {
        account: AccountId,
    },
    Terminal {
        terminal: TerminalId,
    },
    /// A coordinator or admin: may watch the live view.
    Watcher {
        account: AccountId,
        regions: Option<Vec<RegionId>>,
    },
    None,
}

/// Tells the dispatcher who has connected, with what the matcher needs to know of them.
pub async fn join(state: &AppState, principal: &Principal, connection: &str) -> Member {
    match principal {
        Principal::Terminal { terminal } => {
            let region_name = match state.store.region(&terminal.region_id).await {
                Ok(Some(region)) => region.name,
                _ => terminal.region_id.to_string(),
            };
            let info = TerminalInfo {
                id: terminal.id.clone(),
                name: format!("{} · {}", terminal.name, terminal.township),
                region_id: terminal.region_id.clone(),
                region_name,
                channel: crate::live::Channel::of(&terminal.channel),
            };
            state.live.send(Command::TerminalConnected { connection: connection.into(), info }).await;
            Member::Terminal { terminal: terminal.id.clone() }
        }
        Principal::Account { account, .. }
            if account.has_role(AccountRole::Lawyer) || account.has_role(AccountRole::Interpreter) =>
        {
            let now = unix_now();
            let day_start = local_day_start(&account.time_zone, now);
            let taken = state.store.consultations_taken_since(&account.id, day_start).await.unwrap_or(0);
            let (on_duty, regions, cap) = match state.scheduler.snapshot().await {
                Ok(snapshot) => (
                    snapshot.is_on_duty(&account.id, now),
                    snapshot.regions_of(&account.id),
                    snapshot.person(&account.id).and_then(|p| p.daily_cap),
                ),
                Err(error) => {
                    tracing::warn!(%error, "cannot read duty hours");
                    (false, Default::default(), None)
                }
            };
            let daily_cap = cap.map(|c| c.max(0) as u32).unwrap_or(state.live.config.default_daily_cap);
            let info = PersonInfo {
                person: crate::matcher::Person {
                    id: account.id.clone(),
                    lawyer: account.has_role(AccountRole::Lawyer),
                    interpreter: account.has_role(AccountRole::Interpreter),
                    languages: account.languages.iter().cloned().collect(),
                    topics: account.topics.iter().copied().collect(),
                    regions: regions.into_iter().collect(),
                    daily_cap,
                    taken_today: taken.max(0) as u32,
                },
                name: account.display_name.clone(),
                on_duty,
                day_start,
            };
            state
                .live
                .send(Command::PersonConnected { connection: connection.into(), info: Box::new(info) })
                .await;
            Member::Person { account: account.id.clone() }
        }
        Principal::Account { account, .. } if account.has_role(AccountRole::Admin) => {
            Member::Watcher { account: account.id.clone(), regions: None }
        }
        Principal::Account { account, .. } if account.has_role(AccountRole::Coordinator) => {
            Member::Watcher { account: account.id.clone(), regions: Some(account.regions.clone()) }
        }
        Principal::Account { .. } => Member::None,
    }
}

/// The connection closed.
pub async fn leave(state: &AppState, member: &Member, connection: &str) {
    match member {
        Member::Person { account } => {
            let command =
                Command::PersonDisconnected { connection: connection.into(), account: account.clone() };
            state.live.send(command).await
        }
        Member::Terminal { terminal } => {
            let command =
                Command::TerminalDisconnected { connection: connection.into(), terminal: terminal.clone() };
            state.live.send(command).await
        }
        Member::Watcher { .. } => {
            state.live.send(Command::Unsubscribe { connection: connection.into() }).await
        }
        Member::None => {}
    }
}

fn forbidden(what: &str) -> Failure {
    (ErrorCode::Forbidden, format!("only {what} may send this"))
}

/// Handles one live-path message. `Ok(Some(reply))` is sent back to the sender.
pub async fn handle(
    state: &AppState,
    member: &Member,
    connection: &str,
    outbox: &mpsc::Sender<Message>,
    message: ClientMessage,
) -> Result<Option<ServerMessage>, Failure> {
    let live = &state.live;
    match (message, member) {
        (ClientMessage::PresenceSet { state: want }, Member::Person { account }) => {
            live.presence(account, want).await.map(|_| None)
        }
        (ClientMessage::PresenceSet { .. }, _) => Err(forbidden("lawyers and interpreters")),
        (ClientMessage::ConsultAccept { request, id }, Member::Person { account }) => live
            .accept(Answer { account: account.clone(), connection: connection.into(), request, id })
            .await
            .map(|_| None),
        (ClientMessage::ConsultDecline { request, id }, Member::Person { account }) => live
            .decline(Answer { account: account.clone(), connection: connection.into(), request, id })
            .await
            .map(|_| None),
        (ClientMessage::ConsultAccept { .. } | ClientMessage::ConsultDecline { .. }, _) => {
            Err(forbidden("lawyers and interpreters"))
        }
        (
            ClientMessage::ConsultRequest { language, topic, lawyer, appointment },
            Member::Terminal { terminal },
        ) => {
            let asked = lawyer.map(|lawyer| crate::live::Asked { lawyer, appointment });
            live.request(terminal, language, topic, asked).await.map(|_| None)
        }
        (ClientMessage::ConsultCancel { request }, Member::Terminal { terminal }) => {
            live.cancel(terminal, &request).await.map(|_| None)
        }
        (ClientMessage::ConsultRequest { .. } | ClientMessage::ConsultCancel { .. }, _) => {
            Err(forbidden("terminals"))
        }
        (ClientMessage::ConsultHangup { consultation }, Member::Person { account }) => {
            live.hangup(&person(account), &consultation).await.map(|_| None)
        }
        (ClientMessage::ConsultHangup { consultation }, Member::Terminal { terminal }) => {
            live.hangup(&kiosk(terminal), &consultation).await.map(|_| None)
        }
        (ClientMessage::ConsultHangup { .. }, _) => Err(forbidden("a consultation's participants")),
        (ClientMessage::ConsultRate { consultation, rating }, Member::Terminal { terminal }) => {
            if !(1..=5).contains(&rating) {
                return Err((ErrorCode::Invalid, "rating: 1 to 5".into()));
            }
            if live.rate(terminal, &consultation, rating).await? == 1 {
                return Ok(Some(ServerMessage::ConsultRated { consultation, rating }));
            }
            // Nothing changed: say why.
            let record = state.store.consultation(&consultation).await.ok().flatten();
            match record.filter(|c| *terminal == *c.terminal_id) {
                None => Err((ErrorCode::NotFound, "no such consultation at this terminal".into())),
                Some(_) => Err((ErrorCode::Conflict, "already rated".into())),
            }
        }
        (ClientMessage::ConsultRate { .. }, _) => Err(forbidden("terminals")),
        (ClientMessage::LiveSubscribe {}, Member::Watcher { regions, .. }) => {
            live.send(Command::Subscribe {
                connection: connection.into(),
                regions: regions.clone(),
                outbox: outbox.clone(),
            })
            .await;
            Ok(None)
        }
        (ClientMessage::LiveUnsubscribe {}, Member::Watcher { .. }) => {
            live.send(Command::Unsubscribe { connection: connection.into() }).await;
            Ok(None)
        }
        (ClientMessage::LiveSubscribe {} | ClientMessage::LiveUnsubscribe {}, _) => {
            Err(forbidden("coordinators and admins"))
        }
        _ => Err((ErrorCode::Malformed, "not a live-path message".into())),
    }
}
