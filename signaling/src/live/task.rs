//! The task that runs the [`Dispatcher`]: it turns [`Command`]s into
//! [`Input`]s, reads the clock, and carries out the [`Effect`]s: notices go
//! to the [`Outlet`], writes to the ordered writer, rooms to the relays, room
//! tokens are issued here. It also keeps the coordinators' subscriptions and
//! sends them the live view. No rule of the live path is decided here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes};
use tokio::sync::mpsc;

use super::dispatch::{Started, Then};
use super::writer::Writer;
use super::{
    Clock, Command, Dispatcher, Duty, Effect, Input, LiveConfig, LiveView, Notice, Outlet, Reach, To,
};
use crate::auth::tokens::{RoomGrant, TokenKind, Tokens};
use crate::ids::{RegionId, RoomId, room_of};
use crate::metrics::Metrics;
use crate::relay::Relays;
use crate::schedule::Scheduler;
use crate::store::{LiveWrite, Store, StoreError};
use crate::unix_now;

const TICK: Duration = Duration::from_millis(250);
/// How often a coordinator's view is sent when nothing changed (waits grow).
const VIEW_REFRESH: Duration = Duration::from_secs(5);
/// How often calls left on a dead relay (none other could take them) try to move again.
const STRANDED_RETRY: Duration = Duration::from_secs(5);

/// What the task works with.
pub(super) struct Parts {
    pub store: Store,
    pub tokens: Tokens,
    pub relays: Relays,
    pub outlet: Arc<dyn Outlet>,
    pub scheduler: Arc<Scheduler>,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct Subscriber {
    regions: Option<Vec<RegionId>>,
    outbox: mpsc::Sender<Message>,
    last: Option<(Instant, LiveView)>,
}

struct Task {
    dispatcher: Dispatcher,
    writes: Writer,
    tokens: Tokens,
    relays: Relays,
    outlet: Arc<dyn Outlet>,
    metrics: Arc<Metrics>,
    subscribers: HashMap<String, Subscriber>,
}

/// Loads what was waiting or open when the server stopped, and starts the
/// task, its writer, the duty loop and the watch on the relays.
pub(super) async fn start(
    config: LiveConfig,
    parts: Parts,
    me: mpsc::WeakSender<Command>,
    commands: mpsc::Receiver<Command>,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let Parts { store, tokens, relays, outlet, scheduler, metrics } = parts;
    let now = unix_now();
    let withdrawn = store.withdraw_pending_offers(now).await?;
    let every = Duration::from_secs(config.duty_check_secs);
    let mut task = Task {
        dispatcher: Dispatcher::new(config, Clock::real()),
        writes: Writer::start(store.clone(), me.clone()),
        tokens,
        relays: relays.clone(),
        outlet,
        metrics,
        subscribers: HashMap::new(),
    };
    let mut open = 0;
    for c in store.open_consultations().await? {
        if c.status != "active" {
            // Wrap-ups do not outlive a restart; the record can still be written.
            store.apply_live_write(LiveWrite::FinishWrapUp(c.id.clone()), now).await?;
            continue;
        }
        open += 1;
        let _ = task.input(Input::RestoreConsultation(c));
    }
    let waiting = store.waiting_requests().await?;
    let restored = waiting.len();
    for row in waiting {
        let _ = task.input(Input::RestoreRequest(row));
    }
    // Appointments announced just before the server stopped.
    for appointment in store.started_without_request(now).await? {
        let _ = task.input(Input::AppointmentDue(appointment));
    }
    tracing::info!(open, restored, withdrawn, "live path ready");
    let duty = tokio::spawn(duty_loop(scheduler, me.clone(), every));
    let lost = tokio::spawn(relays_lost(relays, me));
    Ok(tokio::spawn(async move {
        task.run(commands).await;
        duty.abort();
        lost.abort();
    }))
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut positions = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                _ = tick.tick() => {
                    let _ = self.input(Input::Tick);
                    self.push_views(Instant::now());
                }
                _ = positions.tick() => {
                    let _ = self.input(Input::Positions);
                }
            }
        }
    }

    /// Hands the dispatcher one input, now, and carries out what it decided.
    fn input(&mut self, input: Input) -> Result<(), crate::domain::Failure> {
        let result = self.dispatcher.handle(input, Clock::real());
        for effect in self.dispatcher.effects() {
            self.carry_out(effect);
        }
        result
    }

    fn command(&mut self, command: Command) {
        let (input, reply) = match command {
            Command::PersonConnected { info, .. } => (Input::PersonConnected(info), None),
            Command::PersonDisconnected { account, connection } => {
                (Input::PersonDisconnected { account, connection }, None)
            }
            Command::TerminalConnected { info, .. } => (Input::TerminalConnected(info), None),
            Command::TerminalDisconnected { terminal, .. } => {
                (Input::TerminalDisconnected { terminal }, None)
            }
            Command::Presence { account, want, reply } => (Input::Presence { account, want }, Some(reply)),
            Command::Request { terminal, language, topic, asked, received, reply } => {
                (Input::Request { terminal, language, topic, asked, received }, Some(reply))
            }
            Command::Cancel { terminal, request, reply } => {
                (Input::Cancel { terminal, request }, Some(reply))
            }
            Command::Accept { answer, reply } => (Input::Accept(answer), Some(reply)),
            Command::Decline { answer, reply } => (Input::Decline(answer), Some(reply)),
            Command::Hangup { participant, consultation, reply } => {
                (Input::Hangup { participant, consultation }, Some(reply))
            }
            Command::Rate { terminal, consultation, rating, reply } => {
                (Input::Rate { terminal, consultation, rating, reply }, None)
            }
            Command::RecordSaved { consultation } => (Input::RecordSaved { consultation }, None),
            Command::Duty(duty) => (Input::Duty(duty), None),
            Command::AppointmentDue(appointment) => (Input::AppointmentDue(appointment), None),
            Command::Stored(input) => (input, None),
            Command::Subscribe { connection, regions, outbox } => {
                self.subscribers.insert(connection, Subscriber { regions, outbox, last: None });
                return;
            }
            Command::Unsubscribe { connection } => {
                self.subscribers.remove(&connection);
                return;
            }
            Command::RelayLost(relay) => return self.relay_lost(relay),
        };
        let result = self.input(input);
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    fn carry_out(&mut self, effect: Effect) {
        match effect {
            Effect::Push { to, notice } => self.outlet.push(&to, &notice),
            Effect::Started { started, via } => self.started(&started, via),
            Effect::Write { write, then: None } => self.writes.send(write),
            Effect::Write { write, then: Some(Then::Reply(ack)) } => self.writes.send_then(write, ack),
            Effect::Write { write, then: Some(Then::Tell(to, notice)) } => {
                let (stored, on_disk) = tokio::sync::oneshot::channel();
                self.writes.send_then(write, stored);
                let outlet = Arc::clone(&self.outlet);
                tokio::spawn(async move {
                    let _ = on_disk.await;
                    outlet.push(&to, &notice);
                });
            }
            Effect::PlaceRoom { room, region, open } => {
                if let Err(error) = self.relays.place(&room, Some(&region)) {
                    // Participants' joins will try again.
                    tracing::warn!(consultation = %room, %error, "no relay for the consultation's room now");
                }
                if open {
                    self.open_room(room);
                }
            }
            Effect::OpenRoom { room } => self.open_room(room),
            Effect::CloseRoom { room } => {
                let (relays, room) = (self.relays.clone(), room);
                tokio::spawn(async move {
                    let _ = relays.close_room(&room).await;
                });
            }
            Effect::Rung { waited } => self.metrics.live_request_to_ring.observe(waited.as_secs_f64()),
            Effect::Began { channel } => self.metrics.consultation_began(channel.as_str()),
        }
    }

    /// Issues the participant a room token (naming the relay the room is on:
    /// a participant connected to another signaling node joins it there) and
    /// sends `consult.started`.
    fn started(&self, started: &Started, via: Option<String>) {
        let room = room_of(&started.consultation);
        let grant = RoomGrant {
            publish: vec!["audio".into(), "video".into()],
            relay: self.relays.placement(&room).and_then(|i| self.relays.name(i)),
            room,
        };
        let (token, _) = self.tokens.issue(
            TokenKind::Room,
            &started.participant,
            &started.consultation,
            started.token_ttl,
            Some(grant),
        );
        let participant = started.participant.as_str();
        match via {
            Some(connection) => {
                let only =
                    To::Account { account: participant.into(), reach: Reach::Only(connection.clone()) };
                self.outlet.push(&only, &started.notice(token.clone(), false));
                let others = To::Account { account: participant.into(), reach: Reach::Except(connection) };
                self.outlet.push(&others, &started.notice(token, true));
            }
            None => {
                let to = match started.role {
                    super::Role::Resident => To::Terminal(participant.into()),
                    _ => To::account(&participant.into()),
                };
                self.outlet.push(&to, &started.notice(token, false));
            }
        }
    }

    /// Opens a consultation's room on the relay it is placed on, in the
    /// background (a participant's join opens it too, if this is late).
    fn open_room(&self, room: RoomId) {
        let relays = self.relays.clone();
        tokio::spawn(async move {
            if let Err(error) = relays.open_room(&room).await {
                tracing::warn!(%error, %room, "cannot open the room now; it opens when the first participant joins");
            }
        });
    }

    /// Moves every consultation on a relay that stopped answering to another
    /// (in or near its terminal's region); the dispatcher sends each
    /// participant a fresh `consult.started`.
    fn relay_lost(&mut self, relay: usize) {
        for (id, region) in self.dispatcher.consultation_regions() {
            let room = room_of(&id);
            if self.relays.placement(&room) != Some(relay) {
                continue;
            }
            match self.relays.place(&room, Some(&region)) {
                Ok(to) => {
                    tracing::info!(consultation = %id, from = relay, to, "moving the call to another relay");
                    let _ = self.input(Input::RoomMoved { consultation: id });
                }
                Err(error) => {
                    tracing::error!(consultation = %id, %error, "the call's relay is gone and no other can take it now; trying again every few seconds");
                }
            }
        }
    }

    fn push_views(&mut self, now: Instant) {
        if self.subscribers.is_empty() {
            return;
        }
        let refresh = self
            .subscribers
            .values()
            .any(|s| s.last.as_ref().is_none_or(|(at, _)| now.duration_since(*at) >= VIEW_REFRESH));
        if !self.dispatcher.take_dirty() && !refresh {
            return;
        }
        let full = self.dispatcher.view(unix_now());
        let dispatcher = &self.dispatcher;
        self.subscribers.retain(|_, s| {
            let view = match &s.regions {
                None => full.clone(),
                Some(regions) => dispatcher.scoped(&full, regions),
            };
            let unchanged = s.last.as_ref().is_some_and(|(at, last)| {
                now.duration_since(*at) < VIEW_REFRESH && LiveView { at: last.at, ..view.clone() } == *last
            });
            if unchanged {
                return true;
            }
            let Ok(text) = serde_json::to_string(&Notice::LiveView(view.clone())) else { return true };
            s.last = Some((now, view));
            // A coordinator that does not read is dropped from the view (its
            // connection is being closed for the same reason).
            !matches!(
                s.outbox.try_send(Message::Text(Utf8Bytes::from(text))),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}

/// Tells the dispatcher of every relay node that stops answering, and again
/// every [`STRANDED_RETRY`] of each that still holds calls nothing could take
/// when it went down (they move once some relay can take them).
async fn relays_lost(relays: Relays, dispatcher: mpsc::WeakSender<Command>) {
    let mut lost = relays.lost();
    let mut retry = tokio::time::interval(STRANDED_RETRY);
    retry.tick().await;
    loop {
        let relay = tokio::select! {
            event = lost.recv() => match event {
                Ok(relay) => vec![relay],
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = retry.tick() => relays.stranded(),
        };
        let Some(dispatcher) = dispatcher.upgrade() else { break };
        for relay in relay {
            let _ = dispatcher.send(Command::RelayLost(relay)).await;
        }
    }
}

/// Looks at everyone's duty hours every `every`, off the dispatcher (a
/// snapshot can take a while to load), and hands it the result.
async fn duty_loop(scheduler: Arc<Scheduler>, dispatcher: mpsc::WeakSender<Command>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let snapshot = match scheduler.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%error, "cannot read duty hours");
                continue;
            }
        };
        let at = unix_now();
        let duty = snapshot
            .people
            .iter()
            .map(|p| {
                let id = &p.account.id;
                let day_start = super::local_day_start(&p.account.time_zone, at);
                (
                    id.clone(),
                    Duty {
                        on_duty: snapshot.is_on_duty(id, at),
                        regions: snapshot.regions_of(id).into_iter().collect(),
                        day_start,
                    },
                )
            })
            .collect();
        let Some(dispatcher) = dispatcher.upgrade() else { return };
        if dispatcher.send(Command::Duty(duty)).await.is_err() {
            return;
        }
    }
}
