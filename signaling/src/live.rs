//! The live path: residents waiting at terminals, lawyers and interpreters on
//! duty, offers, consultations, and the coordinators watching.
//!
//! One task, the dispatcher, owns all of it. WebSocket connections send it
//! [`Command`]s through [`Live`]; it feeds the [`Matcher`] and carries out
//! what the matcher decides: it rings people, starts consultations (a relay
//! room, room tokens for every participant), tells residents their place, and
//! pushes everything to the connections through [`Connections`]. Because one
//! task decides, nobody is rung for two requests or put in two consultations
//! by a race; the database's unique indexes say the same again.
//!
//! Durability: a new request is written before the resident is told it waits;
//! everything after that (offers, starts, ends) goes through one ordered
//! writer task, so the database sees events in the order they happened. After
//! a restart, [`Live::start`] loads waiting requests and open consultations;
//! their people get them back when they reconnect (the grace period counts
//! from the restart).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::auth::tokens::{RoomGrant, TokenKind, Tokens};
use crate::domain::{Language, Topic};
use crate::matcher::{self, Action, Event, Matcher, MatcherConfig, Waiter};
use crate::metrics::Metrics;
use crate::relay::Relays;
use crate::schedule::Scheduler;
use crate::store::{
    AppointmentRecord, LiveWrite, OfferOutcome, OfferRow, RequestEnd, RequestRow, StartedConsultation, Store,
    StoreError, new_id,
};
use crate::unix_now;
use crate::ws::call::Failure;
use crate::ws::protocol::{ErrorCode, ServerMessage, WantedPresence};
use crate::ws::registry::{Connections, Reach};

/// The live path's rules. All seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Languages a terminal may ask in (ISO 639-1).
    pub languages: Vec<String>,
    /// How long one person is rung before the request moves on.
    pub offer_timeout_secs: u64,
    /// When the matcher widens to ring 1 (anyone with the language and
    /// topic), ring 2 (anyone with the language) and ring 3 (any lawyer with
    /// an interpreter), counted from the request.
    pub ring_after_secs: [u64; 3],
    /// Missed offers in a row that put a person on break.
    pub max_missed: u32,
    /// How long someone who declined a request is not offered it again.
    pub decline_cooldown_secs: u64,
    /// How long a consultation waits for a participant whose connection dropped.
    pub grace_secs: u64,
    /// How long a lawyer has after a call to write the record before being rung again.
    pub wrap_up_secs: u64,
    /// How long a waiting request is kept for a terminal that went away.
    pub request_hold_secs: u64,
    /// Consultations a person takes a day unless their account says otherwise.
    pub default_daily_cap: u32,
    /// How long a consultation's room tokens last.
    pub room_token_ttl_secs: u64,
    /// The assumed length of a consultation, for wait estimates, until some have ended.
    pub average_consultation_secs: u64,
    /// How often everyone's duty hours are looked at again.
    pub duty_check_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            languages: vec!["bo".into(), "zh".into()],
            offer_timeout_secs: 20,
            ring_after_secs: [30, 60, 90],
            max_missed: 3,
            decline_cooldown_secs: 60,
            grace_secs: 60,
            wrap_up_secs: 300,
            request_hold_secs: 600,
            default_daily_cap: 20,
            room_token_ttl_secs: 4 * 3600,
            average_consultation_secs: 900,
            duty_check_secs: 30,
        }
    }
}

impl LiveConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.languages.is_empty() {
            return Err("live.languages must name at least one language".into());
        }
        for code in &self.languages {
            Language::parse(code).map_err(|e| format!("live.languages: {e}"))?;
        }
        if !(1..=600).contains(&self.offer_timeout_secs) {
            return Err("live.offer_timeout_secs must be between 1 and 600".into());
        }
        if !self.ring_after_secs.is_sorted() {
            return Err("live.ring_after_secs must not decrease".into());
        }
        if self.max_missed == 0 {
            return Err("live.max_missed must be at least 1".into());
        }
        if !(1..=3600).contains(&self.grace_secs) || !(1..=3600).contains(&self.duty_check_secs) {
            return Err("live.grace_secs and live.duty_check_secs must be between 1 and 3600".into());
        }
        if !(60..=86_400).contains(&self.room_token_ttl_secs) {
            return Err("live.room_token_ttl_secs must be between 60 and 86400".into());
        }
        Ok(())
    }

    fn matcher(&self) -> MatcherConfig {
        MatcherConfig {
            offer_timeout: Duration::from_secs(self.offer_timeout_secs),
            ring_after: self.ring_after_secs.map(Duration::from_secs),
            max_missed: self.max_missed,
            decline_cooldown: Duration::from_secs(self.decline_cooldown_secs),
        }
    }
}

/// A lawyer's or interpreter's state, as they and coordinators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Offline,
    Available,
    Ringing,
    InConsultation,
    WrapUp,
    Break,
}

/// A participant's part in a consultation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Resident,
    Lawyer,
    Interpreter,
}

/// Another participant, as a consultation's participants see each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The account or terminal id: the peer's media streams carry it as their id.
    pub participant: String,
    pub role: Role,
    pub name: String,
}

/// What a coordinator sees live: no consultation content, no resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct LiveView {
    pub at: i64,
    /// Per region: how many wait, and the longest wait.
    pub regions: Vec<RegionQueue>,
    /// Waiting requests in the order they are served.
    pub queue: Vec<QueueEntry>,
    pub people: Vec<PersonView>,
    pub consultations: Vec<ConsultationSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionQueue {
    pub region_id: String,
    pub waiting: usize,
    pub longest_wait_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    pub request: String,
    pub region_id: String,
    pub terminal_id: String,
    pub language: String,
    pub topic: Topic,
    pub waited_secs: u64,
    /// 1 = next; none while its terminal is away.
    pub position: Option<usize>,
    /// Someone is being rung for it.
    pub ringing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonView {
    pub id: String,
    pub name: String,
    pub lawyer: bool,
    pub interpreter: bool,
    pub languages: Vec<String>,
    pub state: PresenceState,
    pub on_duty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsultationSummary {
    pub id: String,
    pub region_id: String,
    pub language: String,
    pub topic: Topic,
    pub started_at: i64,
    pub lawyer: String,
    pub interpreter: Option<String>,
    /// Participants whose connection dropped (the room waits for them).
    pub waiting_for: Vec<Role>,
}

/// Who a connection belongs to, as the live path needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonInfo {
    pub person: matcher::Person,
    pub name: String,
    pub on_duty: bool,
    /// Local midnight of the person's today (daily caps count from it).
    pub day_start: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TerminalInfo {
    pub id: String,
    pub name: String,
    pub region_id: String,
    pub region_name: String,
}

/// What connections ask of the dispatcher.
#[derive(Debug)]
pub enum Command {
    /// A connection opened (`connection` is its id: the dispatcher counts
    /// connections per person; [`crate::cluster`] tracks them by id).
    PersonConnected {
        connection: String,
        info: Box<PersonInfo>,
    },
    PersonDisconnected {
        connection: String,
        account: String,
    },
    TerminalConnected {
        connection: String,
        info: TerminalInfo,
    },
    TerminalDisconnected {
        connection: String,
        terminal: String,
    },
    Presence {
        account: String,
        want: WantedPresence,
        reply: Reply,
    },
    Request {
        terminal: String,
        language: Language,
        topic: Topic,
        received: Instant,
        reply: Reply,
    },
    Cancel {
        terminal: String,
        request: String,
        reply: Reply,
    },
    Accept {
        answer: Answer,
        reply: Reply,
    },
    Decline {
        answer: Answer,
        reply: Reply,
    },
    /// A wrap-up's end is on disk: the lawyer may be rung again.
    WrapUpStored {
        consultation: String,
    },
    Hangup {
        participant: String,
        consultation: String,
        reply: Reply,
    },
    /// The resident's rating; the reply says how many rows it changed (0:
    /// no such consultation at this terminal, or already rated).
    Rate {
        terminal: String,
        consultation: String,
        rating: u8,
        reply: oneshot::Sender<Result<u64, Failure>>,
    },
    RecordSaved {
        consultation: String,
    },
    /// Who is on duty now, the regions of their teams and their day, by account.
    Duty(HashMap<String, Duty>),
    /// An appointment starts now.
    AppointmentDue(AppointmentRecord),
    /// The writer has stored a new request (or failed to).
    Recorded {
        request: String,
        ok: bool,
    },
    Subscribe {
        connection: String,
        regions: Option<Vec<String>>,
        outbox: mpsc::Sender<Message>,
    },
    Unsubscribe {
        connection: String,
    },
    /// A relay node stopped answering: its consultations move to another.
    RelayLost(usize),
}

type Reply = oneshot::Sender<Result<(), Failure>>;

/// A lawyer's or interpreter's answer to an offer, from one of their connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub account: String,
    /// The connection that answered: it gets the call (`consult.started`);
    /// the person's other connections hear the call is elsewhere.
    pub connection: String,
    pub request: String,
    /// The client's id for its message, echoed in the answer.
    #[serde(default)]
    pub id: Option<String>,
}

/// The handle connections use. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Live {
    tx: mpsc::Sender<Command>,
    pub config: Arc<LiveConfig>,
}

/// Commands queued for the dispatcher before senders wait.
const COMMAND_QUEUE: usize = 16_384;
const TICK: Duration = Duration::from_millis(250);
/// How often a coordinator's view is sent when nothing changed (waits grow).
const VIEW_REFRESH: Duration = Duration::from_secs(5);
/// How often calls left on a dead relay (none other could take them) try to move again.
const STRANDED_RETRY: Duration = Duration::from_secs(5);

fn gone() -> Failure {
    (ErrorCode::Refused, "the live service is shutting down".into())
}

impl Live {
    /// Loads what was waiting or open when the server stopped and starts the
    /// dispatcher and its writer.
    pub async fn start(
        config: LiveConfig,
        store: Store,
        tokens: Tokens,
        relays: Relays,
        connections: Arc<Connections>,
        scheduler: Arc<Scheduler>,
        metrics: Arc<Metrics>,
    ) -> Result<(Live, tokio::task::JoinHandle<()>), StoreError> {
        let now = unix_now();
        let withdrawn = store.withdraw_pending_offers(now).await?;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let mut dispatcher = Dispatcher {
            matcher: Matcher::new(config.matcher()),
            avg_consultation_secs: config.average_consultation_secs as f64,
            config: config.clone(),
            writes: Writer::start(store.clone(), tx.downgrade()),
            tokens,
            relays: relays.clone(),
            connections,
            metrics,
            people: HashMap::new(),
            terminals: HashMap::new(),
            requests: HashMap::new(),
            consultations: HashMap::new(),
            offers: HashMap::new(),
            subscribers: HashMap::new(),
            told: HashMap::new(),
            dirty: true,
            serving: HashMap::new(),
        };
        let mut open = 0;
        for c in store.open_consultations().await? {
            if c.status != "active" {
                // Wrap-ups do not outlive a restart; the record can still be written.
                store.apply_live_write(LiveWrite::FinishWrapUp(c.id.clone()), now).await?;
                continue;
            }
            open += 1;
            dispatcher.restore_consultation(c);
        }
        let waiting = store.waiting_requests().await?;
        let restored = waiting.len();
        for row in waiting {
            dispatcher.restore_request(row);
        }
        // Appointments announced just before the server stopped.
        for appointment in store.started_without_request(now).await? {
            dispatcher.appointment_due(appointment, Instant::now());
        }
        tracing::info!(open, restored, withdrawn, "live path ready");
        let every = Duration::from_secs(config.duty_check_secs);
        let duty = tokio::spawn(duty_loop(scheduler, tx.downgrade(), every));
        let lost = tokio::spawn(relays_lost(relays, tx.downgrade()));
        let task = tokio::spawn(async move {
            dispatcher.run(rx).await;
            duty.abort();
            lost.abort();
        });
        Ok((Live { tx, config: Arc::new(config) }, task))
    }

    /// A handle whose commands go to `tx`, not straight to a dispatcher: with
    /// several signaling nodes, [`crate::cluster::Link`] takes them to the
    /// node that runs the live path.
    pub fn forwarding(config: LiveConfig) -> (Live, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        (Live { tx, config: Arc::new(config) }, rx)
    }

    pub async fn send(&self, command: Command) {
        let _ = self.tx.send(command).await;
    }

    async fn ask(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), Failure> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    pub async fn presence(&self, account: &str, want: WantedPresence) -> Result<(), Failure> {
        self.ask(|reply| Command::Presence { account: account.into(), want, reply }).await
    }

    pub async fn request(&self, terminal: &str, language: Language, topic: Topic) -> Result<(), Failure> {
        let received = Instant::now();
        if !self.config.languages.iter().any(|l| l == language.as_str()) {
            return Err((
                ErrorCode::Invalid,
                format!("language: one of {}", self.config.languages.join(", ")),
            ));
        }
        self.ask(|reply| Command::Request { terminal: terminal.into(), language, topic, received, reply })
            .await
    }

    pub async fn cancel(&self, terminal: &str, request: &str) -> Result<(), Failure> {
        self.ask(|reply| Command::Cancel { terminal: terminal.into(), request: request.into(), reply }).await
    }

    pub async fn accept(
        &self,
        account: &str,
        connection: &str,
        request: &str,
        id: Option<String>,
    ) -> Result<(), Failure> {
        let answer =
            Answer { account: account.into(), connection: connection.into(), request: request.into(), id };
        self.ask(|reply| Command::Accept { answer, reply }).await
    }

    pub async fn decline(
        &self,
        account: &str,
        connection: &str,
        request: &str,
        id: Option<String>,
    ) -> Result<(), Failure> {
        let answer =
            Answer { account: account.into(), connection: connection.into(), request: request.into(), id };
        self.ask(|reply| Command::Decline { answer, reply }).await
    }

    /// Records a rating after the call, in order with the call's end.
    pub async fn rate(&self, terminal: &str, consultation: &str, rating: u8) -> Result<u64, Failure> {
        let (reply, answer) = oneshot::channel();
        let command =
            Command::Rate { terminal: terminal.into(), consultation: consultation.into(), rating, reply };
        self.tx.send(command).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    pub async fn hangup(&self, participant: &str, consultation: &str) -> Result<(), Failure> {
        self.ask(|reply| Command::Hangup {
            participant: participant.into(),
            consultation: consultation.into(),
            reply,
        })
        .await
    }
}

/// The local midnight of `now` in `zone` (UTC when the zone is unknown).
pub fn local_day_start(zone: &str, now: i64) -> i64 {
    use crate::schedule::civil::{local_day_minute, start_of_day};
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    start_of_day(&tz, local_day_minute(&tz, now).0)
}

/// One person's duty as of the last look.
#[derive(Debug, Clone, Default)]
pub struct Duty {
    pub on_duty: bool,
    pub regions: BTreeSet<String>,
    /// Local midnight of the person's today.
    pub day_start: i64,
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
                let day_start = local_day_start(&p.account.time_zone, at);
                (
                    id.clone(),
                    Duty {
                        on_duty: snapshot.is_on_duty(id, at),
                        regions: snapshot.regions_of(id),
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

// ---- the dispatcher

#[derive(Debug)]
struct PersonLive {
    info: PersonInfo,
    connections: u32,
    /// When the last connection closed.
    gone_at: Option<Instant>,
    want: WantedPresence,
    in_matcher: bool,
    ringing: Option<String>,
    consultation: Option<String>,
    /// The consultation whose record is being written, and until when.
    wrap_up: Option<(String, i64)>,
    /// The wrap-up's end is being written: the person is rung again once it is on disk.
    wrap_up_ending: bool,
}

#[derive(Debug)]
struct TerminalLive {
    info: TerminalInfo,
    connections: u32,
    gone_at: Option<Instant>,
    request: Option<String>,
    consultation: Option<String>,
    /// An appointment that started while the terminal was in another call:
    /// it becomes the terminal's request when the terminal is free.
    deferred: Option<AppointmentRecord>,
}

#[derive(Debug)]
struct RequestLive {
    terminal: String,
    region: String,
    language: Language,
    topic: Topic,
    created_at: i64,
    front: bool,
    preferred: Option<String>,
    in_matcher: bool,
    /// On disk: only then is the resident told it waits.
    recorded: bool,
    /// When the resident asked, until the first offer (for the latency metric).
    received: Option<Instant>,
}

#[derive(Debug)]
struct ConsultLive {
    request: String,
    terminal: String,
    region: String,
    language: String,
    topic: Topic,
    lawyer: String,
    interpreter: Option<String>,
    started_at: i64,
    /// Participants whose connection dropped, since when.
    absent: BTreeMap<String, Instant>,
}

impl ConsultLive {
    fn role_of(&self, participant: &str) -> Option<Role> {
        if participant == self.terminal {
            Some(Role::Resident)
        } else if participant == self.lawyer {
            Some(Role::Lawyer)
        } else if self.interpreter.as_deref() == Some(participant) {
            Some(Role::Interpreter)
        } else {
            None
        }
    }

    fn participants(&self) -> impl Iterator<Item = (&str, Role)> {
        [(self.terminal.as_str(), Role::Resident), (self.lawyer.as_str(), Role::Lawyer)]
            .into_iter()
            .chain(self.interpreter.as_deref().map(|i| (i, Role::Interpreter)))
    }
}

#[derive(Debug, Default)]
struct OfferLive {
    /// (person, offer row id)
    lawyer: Option<(String, String)>,
    interpreter: Option<(String, String)>,
    deadline: Option<Instant>,
    /// Who has accepted, on which connection (a three-way waits for both).
    accepted: Vec<(String, String)>,
}

#[derive(Debug)]
struct Subscriber {
    regions: Option<Vec<String>>,
    outbox: mpsc::Sender<Message>,
    last: Option<(Instant, LiveView)>,
}

struct Dispatcher {
    config: LiveConfig,
    matcher: Matcher,
    writes: Writer,
    tokens: Tokens,
    relays: Relays,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
    people: HashMap<String, PersonLive>,
    terminals: HashMap<String, TerminalLive>,
    requests: HashMap<String, RequestLive>,
    consultations: HashMap<String, ConsultLive>,
    /// The current offer of each request being rung.
    offers: HashMap<String, OfferLive>,
    subscribers: HashMap<String, Subscriber>,
    /// What each waiting terminal was last told: (position, estimate, nobody on duty).
    told: HashMap<String, (usize, Option<u64>, bool)>,
    /// Something a coordinator sees changed.
    dirty: bool,
    /// Per language, for this tick: (anyone on duty could take it, how many serve it).
    serving: HashMap<Language, (bool, usize)>,
    avg_consultation_secs: f64,
}

fn not_found(what: &str) -> Failure {
    (ErrorCode::NotFound, format!("no such {what} of yours"))
}

impl Dispatcher {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut positions = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.serving.clear();
                    let actions = self.matcher.handle(Event::Tick, now);
                    self.apply(actions, now);
                    self.expire(now);
                    self.push_views(now);
                }
                _ = positions.tick() => self.tell_positions(),
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        let now = Instant::now();
        self.dirty = true;
        match command {
            Command::PersonConnected { info, .. } => self.person_connected(*info, now),
            Command::PersonDisconnected { account, .. } => self.person_disconnected(&account, now),
            Command::TerminalConnected { info, .. } => self.terminal_connected(info, now),
            Command::TerminalDisconnected { terminal, .. } => self.terminal_disconnected(&terminal, now),
            Command::Presence { account, want, reply } => {
                let _ = reply.send(self.set_presence(&account, want, now));
            }
            Command::Request { terminal, language, topic, received, reply } => {
                let _ = reply.send(self.new_request(&terminal, language, topic, received, now));
            }
            Command::Recorded { request, ok: true } => self.recorded(&request),
            Command::Recorded { request, ok: false } => self.not_recorded(&request, now),
            Command::Cancel { terminal, request, reply } => {
                let _ = reply.send(self.cancel(&terminal, &request, now));
            }
            Command::Accept { answer, reply } => {
                let _ = reply.send(self.accept(answer, now));
            }
            Command::Decline { answer, reply } => {
                let _ = reply.send(self.decline(answer, now));
            }
            Command::WrapUpStored { consultation } => self.wrap_up_stored(&consultation, now),
            Command::Hangup { participant, consultation, reply } => {
                let result = match self.consultations.get(&consultation) {
                    Some(c) if c.role_of(&participant).is_some() => {
                        self.end_consultation(&consultation, "hung_up", false, now);
                        Ok(())
                    }
                    _ => Err(not_found("consultation")),
                };
                let _ = reply.send(result);
            }
            Command::Rate { terminal, consultation, rating, reply } => {
                if self.consultations.get(&consultation).is_some_and(|c| c.terminal == terminal) {
                    let _ = reply.send(Err((ErrorCode::Conflict, "rate after the call has ended".into())));
                } else {
                    // After the call's end in the writer's order, so never refused as too early.
                    let write =
                        LiveWrite::Rate { consultation, terminal_id: terminal, rating: rating.into() };
                    self.writes.send_then(write, reply);
                }
            }
            Command::RecordSaved { consultation } => {
                let lawyer = self
                    .people
                    .iter()
                    .find(|(_, p)| p.wrap_up.as_ref().is_some_and(|(c, _)| *c == consultation))
                    .map(|(id, _)| id.clone());
                if let Some(lawyer) = lawyer {
                    self.finish_wrap_up(&lawyer);
                }
            }
            Command::Subscribe { connection, regions, outbox } => {
                self.subscribers.insert(connection, Subscriber { regions, outbox, last: None });
            }
            Command::Unsubscribe { connection } => {
                self.subscribers.remove(&connection);
            }
            Command::Duty(duty) => self.apply_duty(duty),
            Command::AppointmentDue(appointment) => self.appointment_due(appointment, now),
            Command::RelayLost(relay) => self.relay_lost(relay),
        }
    }

    /// Moves every consultation on a relay that stopped answering to another
    /// (in or near its terminal's region), and sends each participant a fresh
    /// `consult.started` (`resumed`): the apps join the new room by themselves.
    fn relay_lost(&mut self, relay: usize) {
        let moving: Vec<(String, String)> = self
            .consultations
            .iter()
            .filter(|(id, _)| self.relays.placement(id) == Some(relay))
            .map(|(id, c)| (id.clone(), c.region.clone()))
            .collect();
        for (id, region) in moving {
            match self.relays.place(&id, Some(&region)) {
                Ok(to) => {
                    tracing::info!(consultation = %id, from = relay, to, "moving the call to another relay")
                }
                Err(error) => {
                    tracing::error!(consultation = %id, %error, "the call's relay is gone and no other can take it now; trying again every few seconds");
                    continue;
                }
            }
            self.open_room(&id);
            let participants: Vec<String> =
                self.consultations[&id].participants().map(|(p, _)| p.to_owned()).collect();
            for participant in participants {
                self.send_started(&id, &participant, true, None);
            }
        }
    }

    /// Opens a consultation's room on the relay it is placed on, in the
    /// background (a participant's join opens it too, if this is late).
    fn open_room(&self, room: &str) {
        let (relays, room) = (self.relays.clone(), room.to_owned());
        tokio::spawn(async move {
            if let Err(error) = relays.open_room(&room).await {
                tracing::warn!(%error, %room, "cannot open the room now; it opens when the first participant joins");
            }
        });
    }

    // ---- people

    fn person_connected(&mut self, info: PersonInfo, now: Instant) {
        let id = info.person.id.clone();
        let grace = Duration::from_secs(self.config.grace_secs);
        let p = self.people.entry(id.clone()).or_insert_with(|| PersonLive {
            info: info.clone(),
            connections: 0,
            gone_at: None,
            want: WantedPresence::Offline,
            in_matcher: false,
            ringing: None,
            consultation: None,
            wrap_up: None,
            wrap_up_ending: false,
        });
        // Keep the count of consultations already taken today when the day is the same.
        let taken = if p.info.day_start == info.day_start {
            p.info.person.taken_today.max(info.person.taken_today)
        } else {
            info.person.taken_today
        };
        p.info = info;
        p.info.person.taken_today = taken;
        p.connections += 1;
        if p.connections == 1 {
            // A short blip keeps what the person had chosen; a long absence does not.
            if p.gone_at.is_some_and(|at| now.saturating_duration_since(at) > grace) {
                p.want = WantedPresence::Offline;
            }
            p.gone_at = None;
        }
        // Languages, topics or teams may have changed.
        let update = p.in_matcher.then(|| p.info.person.clone());
        let consultation = p.consultation.clone();
        if let Some(person) = update {
            let actions = self.matcher.handle(Event::PersonAvailable(person), now);
            self.apply(actions, now);
        }
        if let Some(c) = consultation {
            self.returned(&c, &id);
        }
        self.sync_person(&id, now);
        self.tell_presence(&id);
        if let Some(request) = self.people.get(&id).and_then(|p| p.ringing.clone()) {
            self.send_offer(&request, &id, now);
        }
    }

    fn person_disconnected(&mut self, account: &str, now: Instant) {
        let Some(p) = self.people.get_mut(account) else { return };
        p.connections = p.connections.saturating_sub(1);
        if p.connections > 0 {
            return;
        }
        p.gone_at = Some(now);
        let consultation = p.consultation.clone();
        if let Some(c) = consultation {
            self.left(&c, account, now);
        }
        self.sync_person(account, now);
    }

    fn set_presence(&mut self, account: &str, want: WantedPresence, now: Instant) -> Result<(), Failure> {
        let p = self
            .people
            .get_mut(account)
            .ok_or((ErrorCode::Forbidden, "not a lawyer or interpreter".into()))?;
        p.want = want;
        if want == WantedPresence::Available && p.wrap_up.is_some() {
            self.finish_wrap_up(account);
        }
        self.sync_person(account, now);
        self.tell_presence(account);
        Ok(())
    }

    /// Brings the matcher in line with a person's state: in it while
    /// connected, on duty and available (or busy with a consultation it
    /// matched); out of it otherwise.
    fn sync_person(&mut self, id: &str, now: Instant) {
        let Some(p) = self.people.get_mut(id) else { return };
        if p.consultation.is_some() {
            return; // Busy in the matcher until the wrap-up ends.
        }
        let eligible = p.connections > 0 && p.want == WantedPresence::Available && p.info.on_duty;
        let actions = if p.wrap_up.is_some() {
            // Busy until the wrap-up ends; but one who went offline or off
            // duty meanwhile no longer counts as someone who could take a request.
            if eligible || !p.in_matcher {
                return;
            }
            p.in_matcher = false;
            self.matcher.handle(Event::PersonGone { person: id.into() }, now)
        } else if eligible && !p.in_matcher {
            p.in_matcher = true;
            self.matcher.handle(Event::PersonAvailable(p.info.person.clone()), now)
        } else if eligible {
            self.matcher.handle(Event::PersonReady { person: id.into() }, now)
        } else if p.in_matcher {
            p.in_matcher = false;
            self.matcher.handle(Event::PersonGone { person: id.into() }, now)
        } else {
            Vec::new()
        };
        self.apply(actions, now);
    }

    fn state_of(&self, p: &PersonLive) -> PresenceState {
        if p.consultation.is_some() {
            PresenceState::InConsultation
        } else if p.wrap_up.is_some() {
            PresenceState::WrapUp
        } else if p.connections == 0 || p.want == WantedPresence::Offline {
            PresenceState::Offline
        } else if p.ringing.is_some() {
            PresenceState::Ringing
        } else if p.want == WantedPresence::Break {
            PresenceState::Break
        } else {
            PresenceState::Available
        }
    }

    fn tell_presence(&self, id: &str) {
        let Some(p) = self.people.get(id) else { return };
        let message = ServerMessage::Presence {
            state: self.state_of(p),
            on_duty: p.info.on_duty,
            consultation: p.consultation.clone().or_else(|| p.wrap_up.as_ref().map(|(c, _)| c.clone())),
            wrap_up_until: p.wrap_up.as_ref().map(|(_, until)| *until),
        };
        self.connections.push_to_account(id, &message);
    }

    /// Ends a lawyer's wrap-up: written first, and only once it is on disk
    /// ([`Command::WrapUpStored`]) is the lawyer available again, so that
    /// nobody reads `wrap_up` from the API after the lawyer was told otherwise.
    fn finish_wrap_up(&mut self, lawyer: &str) {
        let Some(p) = self.people.get_mut(lawyer) else { return };
        let Some((consultation, _)) = &p.wrap_up else { return };
        if !p.wrap_up_ending {
            p.wrap_up_ending = true;
            self.writes.send(LiveWrite::FinishWrapUp(consultation.clone()));
        }
    }

    fn wrap_up_stored(&mut self, consultation: &str, now: Instant) {
        let Some((id, p)) =
            self.people.iter_mut().find(|(_, p)| p.wrap_up.as_ref().is_some_and(|(c, _)| c == consultation))
        else {
            return;
        };
        p.wrap_up = None;
        p.wrap_up_ending = false;
        let id = id.clone();
        self.sync_person(&id, now);
        self.tell_presence(&id);
    }

    /// Everyone's duty and teams as of now, from [`duty_loop`].
    fn apply_duty(&mut self, duty: HashMap<String, Duty>) {
        let now = Instant::now();
        let ids: Vec<String> =
            self.people.iter().filter(|(_, p)| p.connections > 0).map(|(id, _)| id.clone()).collect();
        for id in ids {
            let Some(p) = self.people.get_mut(&id) else { continue };
            let Duty { on_duty, regions, day_start } = duty.get(&id).cloned().unwrap_or_default();
            let new_day = day_start > p.info.day_start;
            if p.info.on_duty == on_duty && p.info.person.regions == regions && !new_day {
                continue;
            }
            p.info.on_duty = on_duty;
            p.info.person.regions = regions;
            if new_day {
                // Daily caps count from the person's own midnight.
                p.info.day_start = day_start;
                p.info.person.taken_today = 0;
            }
            if p.in_matcher {
                let person = p.info.person.clone();
                let actions = self.matcher.handle(Event::PersonAvailable(person), now);
                self.apply(actions, now);
            }
            self.sync_person(&id, now);
            self.tell_presence(&id);
            self.dirty = true;
        }
    }

    // ---- terminals and requests

    fn terminal_connected(&mut self, info: TerminalInfo, now: Instant) {
        let id = info.id.clone();
        let t = self.terminals.entry(id.clone()).or_insert_with(|| TerminalLive {
            info: info.clone(),
            connections: 0,
            gone_at: None,
            request: None,
            consultation: None,
            deferred: None,
        });
        t.info = info;
        t.connections += 1;
        t.gone_at = None;
        if t.connections > 1 {
            // Another screen of the same kiosk: tell it where things stand.
            let (request, consultation) = (t.request.clone(), t.consultation.clone());
            if let Some(c) = consultation {
                self.send_started(&c, &id, true, None);
            }
            if let Some(r) = request {
                self.told.remove(&r);
                self.tell_position(&r);
            }
            return;
        }
        let (request, consultation) = (t.request.clone(), t.consultation.clone());
        if let Some(c) = consultation {
            self.returned(&c, &id);
        }
        if let Some(r) = request {
            self.enter_matcher(&r, now);
            self.told.remove(&r);
            self.tell_position(&r);
        }
    }

    fn terminal_disconnected(&mut self, terminal: &str, now: Instant) {
        let Some(t) = self.terminals.get_mut(terminal) else { return };
        t.connections = t.connections.saturating_sub(1);
        if t.connections > 0 {
            return;
        }
        t.gone_at = Some(now);
        let (request, consultation) = (t.request.clone(), t.consultation.clone());
        if let Some(c) = consultation {
            self.left(&c, terminal, now);
        }
        // Nobody is rung for a resident who is not there; the request waits
        // for the terminal to come back (`request_hold_secs`).
        if let Some(r) = request
            && let Some(req) = self.requests.get_mut(&r)
            && req.in_matcher
        {
            req.in_matcher = false;
            let actions = self.matcher.handle(Event::Cancelled { request: r }, now);
            self.apply(actions, now);
        }
    }

    fn matcher_request(&self, id: &str) -> Option<matcher::Request> {
        let r = self.requests.get(id)?;
        Some(matcher::Request {
            id: id.into(),
            region: r.region.clone(),
            language: r.language.clone(),
            topic: r.topic,
        })
    }

    /// Puts a request its terminal is present for into the matcher, keeping its age.
    fn enter_matcher(&mut self, id: &str, now: Instant) {
        let Some(request) = self.matcher_request(id) else { return };
        let Some(r) = self.requests.get_mut(id) else { return };
        if r.in_matcher {
            return;
        }
        r.in_matcher = true;
        let waited = Duration::from_secs(unix_now().saturating_sub(r.created_at).max(0) as u64);
        let since = now.checked_sub(waited).unwrap_or(now);
        let event = Event::Requested(Waiter { request, since, front: r.front, lawyer: r.preferred.clone() });
        let actions = self.matcher.handle(event, now);
        self.apply(actions, now);
    }

    fn new_request(
        &mut self,
        terminal: &str,
        language: Language,
        topic: Topic,
        received: Instant,
        now: Instant,
    ) -> Result<(), Failure> {
        let t = self.terminals.get(terminal).ok_or_else(|| not_found("terminal"))?;
        if t.consultation.is_some() {
            return Err((ErrorCode::Conflict, "a consultation is open at this terminal".into()));
        }
        if t.request.is_some() {
            return Err((ErrorCode::Conflict, "this terminal already waits; cancel first".into()));
        }
        let row = RequestRow {
            id: new_id(),
            terminal_id: terminal.into(),
            region_id: t.info.region_id.clone(),
            language: language.as_str().into(),
            topic: topic.code().into(),
            front: false,
            preferred_lawyer_id: None,
            created_at: unix_now(),
            appointment_id: None,
        };
        self.writes.send(LiveWrite::Request(row.clone()));
        self.add_request(row, language, topic, Some(received), false, now);
        Ok(())
    }

    /// A request the terminal waits with. It is matched at once, but the
    /// resident is told its place only once it is on disk (`recorded`): a
    /// restart cannot forget a resident who was told they wait, and ringing
    /// a lawyer does not wait for the disk. (The writes are ordered: a
    /// consultation is never stored before its request.)
    fn add_request(
        &mut self,
        row: RequestRow,
        language: Language,
        topic: Topic,
        received: Option<Instant>,
        recorded: bool,
        now: Instant,
    ) {
        let id = row.id.clone();
        if let Some(t) = self.terminals.get_mut(&row.terminal_id) {
            t.request = Some(id.clone());
        }
        self.requests.insert(
            id.clone(),
            RequestLive {
                terminal: row.terminal_id,
                region: row.region_id,
                language,
                topic,
                created_at: row.created_at,
                front: row.front,
                preferred: row.preferred_lawyer_id,
                in_matcher: false,
                recorded,
                received,
            },
        );
        let present = self.terminals.get(&self.requests[&id].terminal).is_some_and(|t| t.connections > 0);
        if present {
            self.enter_matcher(&id, now);
            self.tell_position(&id);
        }
    }

    /// The request is on disk: the resident may be told it waits (unless it
    /// was matched in the meantime).
    fn recorded(&mut self, id: &str) {
        let Some(r) = self.requests.get_mut(id) else { return };
        r.recorded = true;
        self.tell_position(id);
    }

    /// The request could not be stored: the resident is asked to try again.
    fn not_recorded(&mut self, id: &str, now: Instant) {
        let Some(terminal) = self.requests.get(id).map(|r| r.terminal.clone()) else { return };
        self.close_request(id, RequestEnd::Cancelled, now);
        let message = ServerMessage::Error {
            code: ErrorCode::Refused,
            message: "the request could not be recorded; ask again".into(),
            id: None,
        };
        self.connections.push_to_terminal(&terminal, &message);
    }

    fn restore_request(&mut self, row: RequestRow) {
        let (Ok(language), Some(topic)) = (Language::parse(&row.language), Topic::from_code(&row.topic))
        else {
            return;
        };
        self.absent_terminal(&row.terminal_id, &row.region_id, Instant::now());
        self.add_request(row, language, topic, None, true, Instant::now());
    }

    /// A terminal known before it connects (after a restart, or for an
    /// appointment): away since `now`.
    fn absent_terminal(&mut self, id: &str, region: &str, now: Instant) -> &mut TerminalLive {
        self.terminals.entry(id.to_owned()).or_insert_with(|| TerminalLive {
            info: TerminalInfo {
                id: id.to_owned(),
                name: String::new(),
                region_id: region.to_owned(),
                region_name: String::new(),
            },
            connections: 0,
            gone_at: Some(now),
            request: None,
            consultation: None,
            deferred: None,
        })
    }

    /// An appointment starts: its resident waits at the front of the queue,
    /// offered first to the appointment's lawyer. A terminal that does not
    /// come within `request_hold_secs` makes it a no-show.
    fn appointment_due(&mut self, a: AppointmentRecord, now: Instant) {
        let (Ok(language), Some(topic)) = (Language::parse(&a.language), Topic::from_code(&a.topic)) else {
            return;
        };
        let t = self.absent_terminal(&a.terminal_id, &a.region_id, now);
        if let Some(request) = t.request.clone() {
            // The resident already waits: that request is the appointment's now
            // (completed, no-show or cancelled with it).
            if let Some(r) = self.requests.get_mut(&request) {
                r.preferred = Some(a.lawyer_id.clone());
            }
            self.writes.send(LiveWrite::AttachAppointment {
                request,
                appointment: a.id,
                lawyer: a.lawyer_id,
            });
            return;
        }
        if t.consultation.is_some() {
            // In another call: the appointment's resident is next at this
            // terminal, once it is free (see `run_deferred`).
            tracing::info!(appointment = %a.id, "appointment started during a consultation at its terminal");
            t.deferred = Some(a);
            return;
        }
        let row = RequestRow {
            id: new_id(),
            terminal_id: a.terminal_id,
            region_id: a.region_id,
            language: a.language,
            topic: a.topic,
            front: true,
            preferred_lawyer_id: Some(a.lawyer_id),
            created_at: unix_now(),
            appointment_id: Some(a.id),
        };
        self.writes.send(LiveWrite::Request(row.clone()));
        self.add_request(row, language, topic, None, false, now);
    }

    fn cancel(&mut self, terminal: &str, request: &str, now: Instant) -> Result<(), Failure> {
        let theirs = self.requests.get(request).is_some_and(|r| r.terminal == terminal);
        if !theirs {
            return Err(not_found("request"));
        }
        // The kiosk hears it once the cancel is on disk, so a restart in
        // between never brings back a request the resident was told is gone.
        let (stored, on_disk) = oneshot::channel();
        self.close_request_then(request, RequestEnd::Cancelled, now, Some(stored));
        let connections = Arc::clone(&self.connections);
        let (terminal, request) = (terminal.to_owned(), request.to_owned());
        tokio::spawn(async move {
            // Told either way: the request is closed here, and a failed write is logged.
            let _ = on_disk.await;
            connections.push_to_terminal(&terminal, &ServerMessage::ConsultCancelled { request });
        });
        Ok(())
    }

    fn close_request(&mut self, request: &str, end: RequestEnd, now: Instant) {
        self.close_request_then(request, end, now, None);
    }

    /// Closes a request; `stored` hears when the close is on disk.
    fn close_request_then(
        &mut self,
        request: &str,
        end: RequestEnd,
        now: Instant,
        stored: Option<oneshot::Sender<Result<u64, Failure>>>,
    ) {
        let Some(r) = self.requests.remove(request) else { return };
        if let Some(t) = self.terminals.get_mut(&r.terminal) {
            t.request = None;
        }
        self.told.remove(request);
        let write = LiveWrite::CloseRequest(request.into(), end);
        match stored {
            Some(ack) => self.writes.send_then(write, ack),
            None => self.writes.send(write),
        }
        if r.in_matcher {
            let actions = self.matcher.handle(Event::Cancelled { request: request.into() }, now);
            self.apply(actions, now);
        }
        self.run_deferred(&r.terminal, now);
    }

    /// A terminal that is free again takes up the appointment that started
    /// while it was busy: the resident waits at the front, for its lawyer.
    fn run_deferred(&mut self, terminal: &str, now: Instant) {
        let Some(t) = self.terminals.get_mut(terminal) else { return };
        if t.request.is_some() || t.consultation.is_some() {
            return;
        }
        if let Some(appointment) = t.deferred.take() {
            self.appointment_due(appointment, now);
        }
    }

    /// Tells a waiting terminal its place and estimated wait, when it changed.
    fn tell_position(&mut self, request: &str) {
        let position = self.matcher.position(request);
        // Who serves a language changes slowly; counted again every tick.
        let mut serving = std::mem::take(&mut self.serving);
        self.tell_position_at(request, position, &mut serving);
        self.serving = serving;
    }

    /// `serving` caches, per language, (whether anyone on duty could take
    /// it, how many serve it) for one pass over the queue.
    fn tell_position_at(
        &mut self,
        request: &str,
        position: Option<usize>,
        serving: &mut HashMap<Language, (bool, usize)>,
    ) {
        let (Some(r), Some(position)) = (self.requests.get(request), position) else { return };
        if !r.in_matcher || !r.recorded {
            return;
        }
        let (anyone, count) = match serving.get(&r.language) {
            Some(cached) => *cached,
            None => {
                let Some(m) = self.matcher_request(request) else { return };
                let counted = (self.matcher.anyone_could_take(&m), self.serving(&r.language));
                serving.insert(r.language.clone(), counted);
                counted
            }
        };
        let estimate = anyone.then(|| {
            let rounds = (position - 1) / count.max(1);
            self.config.offer_timeout_secs / 2 + (rounds as f64 * self.avg_consultation_secs) as u64
        });
        let told = (position, estimate, !anyone);
        if self.told.get(request) == Some(&told) {
            return;
        }
        self.told.insert(request.into(), told);
        let message = ServerMessage::ConsultQueued {
            request: request.into(),
            position,
            estimated_wait_secs: estimate,
            nobody_on_duty: !anyone,
        };
        self.connections.push_to_terminal(&r.terminal, &message);
    }

    /// Each waiting terminal's place, once a second (places move as others are served).
    fn tell_positions(&mut self) {
        let queue: Vec<String> = self.matcher.queue().into_iter().cloned().collect();
        let mut serving = HashMap::new();
        for (i, request) in queue.iter().enumerate() {
            self.tell_position_at(request, Some(i + 1), &mut serving);
        }
    }

    /// How many people on duty serve `language` (available, rung or in a call):
    /// the ones ahead in the queue share them, each taking an average consultation.
    fn serving(&self, language: &Language) -> usize {
        self.people
            .values()
            .filter(|p| p.in_matcher || p.consultation.is_some())
            .filter(|p| p.info.person.languages.contains(language))
            .count()
    }

    // ---- offers

    fn apply(&mut self, actions: Vec<Action>, now: Instant) {
        // Offers are sent once every action is recorded: a three-way offer's
        // lawyer must learn of the interpreter rung with them.
        let mut rung = Vec::new();
        for action in actions {
            self.dirty = true;
            match action {
                Action::Offer { request, person, deadline, interpreter } => {
                    let offer_id = new_id();
                    let at = unix_now();
                    let row = OfferRow {
                        id: offer_id.clone(),
                        request_id: request.clone(),
                        account_id: person.clone(),
                        role: if interpreter { "interpreter" } else { "lawyer" },
                        offered_at: at,
                        deadline: at + self.config.offer_timeout_secs as i64,
                    };
                    self.writes.send(LiveWrite::Offer(row));
                    let offer = self.offers.entry(request.clone()).or_default();
                    if interpreter {
                        offer.interpreter = Some((person.clone(), offer_id));
                    } else {
                        *offer = OfferLive {
                            lawyer: Some((person.clone(), offer_id)),
                            interpreter: None,
                            deadline: None,
                            accepted: Vec::new(),
                        };
                    }
                    offer.deadline = Some(deadline);
                    if let Some(p) = self.people.get_mut(&person) {
                        p.ringing = Some(request.clone());
                    }
                    rung.push((request.clone(), person));
                    if let Some(received) = self.requests.get_mut(&request).and_then(|r| r.received.take()) {
                        self.metrics.live_request_to_ring.observe(received.elapsed().as_secs_f64());
                    }
                }
                Action::Withdraw { request, person } => {
                    let timed_out = self.offers.get(&request).is_some_and(|o| {
                        o.deadline.is_some_and(|d| d <= now) && !o.accepted.iter().any(|(p, _)| *p == person)
                    });
                    self.end_offer(
                        &request,
                        &person,
                        if timed_out { OfferOutcome::TimedOut } else { OfferOutcome::Withdrawn },
                    );
                    self.connections
                        .push_to_account(&person, &ServerMessage::ConsultOfferWithdrawn { request });
                    self.tell_presence(&person);
                }
                Action::Holding { request, person } => {
                    tracing::info!(%request, %person, "accepted; waiting for the other of a three-way");
                }
                Action::Matched { request, lawyer, interpreter } => {
                    self.start_consultation(&request, &lawyer, interpreter.as_deref(), now);
                }
                Action::NobodyOnDuty { request } => {
                    tracing::info!(%request, "nobody on duty could take a request");
                }
                Action::OnBreak { person } => {
                    if let Some(p) = self.people.get_mut(&person) {
                        p.want = WantedPresence::Break;
                    }
                    self.sync_person(&person, now);
                    self.tell_presence(&person);
                }
            }
        }
        for (request, person) in rung {
            if self.is_offered(&request, &person).is_some() {
                self.send_offer(&request, &person, now);
                self.tell_presence(&person);
            }
        }
    }

    /// Records how one person's offer ended and frees them.
    fn end_offer(&mut self, request: &str, person: &str, outcome: OfferOutcome) {
        if let Some(offer) = self.offers.get_mut(request) {
            for slot in [&mut offer.lawyer, &mut offer.interpreter] {
                if let Some((_, id)) = slot.take_if(|(p, _)| p == person) {
                    self.writes.send(LiveWrite::DecideOffer(id, outcome));
                }
            }
            offer.accepted.retain(|(p, _)| p != person);
            if offer.lawyer.is_none() && offer.interpreter.is_none() {
                self.offers.remove(request);
            }
        }
        if let Some(p) = self.people.get_mut(person)
            && p.ringing.as_deref() == Some(request)
        {
            p.ringing = None;
        }
    }

    fn send_offer(&self, request: &str, person: &str, now: Instant) {
        let (Some(r), Some(offer)) = (self.requests.get(request), self.offers.get(request)) else { return };
        let as_interpreter = offer.interpreter.as_ref().is_some_and(|(p, _)| p == person);
        let region_name =
            self.terminals.get(&r.terminal).map(|t| t.info.region_name.clone()).unwrap_or_default();
        let message = ServerMessage::ConsultOffer {
            request: request.into(),
            role: if as_interpreter { Role::Interpreter } else { Role::Lawyer },
            language: r.language.as_str().into(),
            topic: r.topic,
            region_id: r.region.clone(),
            region_name,
            waited_secs: unix_now().saturating_sub(r.created_at).max(0) as u64,
            expires_in_secs: offer.deadline.map(|d| d.saturating_duration_since(now).as_secs()).unwrap_or(0),
            three_way: offer.interpreter.is_some(),
        };
        self.connections.push_to_account(person, &message);
    }

    fn is_offered(&self, request: &str, person: &str) -> Option<Role> {
        let offer = self.offers.get(request)?;
        if offer.lawyer.as_ref().is_some_and(|(p, _)| p == person) {
            Some(Role::Lawyer)
        } else if offer.interpreter.as_ref().is_some_and(|(p, _)| p == person) {
            Some(Role::Interpreter)
        } else {
            None
        }
    }

    /// An offer's answer: `consult.accepted` to the connection that sent it
    /// (saying whom a three-way still waits for), then, when this was the
    /// last acceptance, the consultation starts on the connections that accepted.
    fn accept(&mut self, answer: Answer, now: Instant) -> Result<(), Failure> {
        let Answer { account, connection, request, id } = answer;
        let Some(role) = self.is_offered(&request, &account) else {
            return Err((ErrorCode::NotFound, "no such offer to you (taken, withdrawn or timed out)".into()));
        };
        if let Some(offer) = self.offers.get_mut(&request) {
            offer.accepted.retain(|(p, _)| *p != account);
            offer.accepted.push((account.clone(), connection.clone()));
        }
        let event = Event::Accepted { request: request.clone(), person: account.clone() };
        let actions = self.matcher.handle(event, now);
        let holding =
            actions.iter().any(|a| matches!(a, Action::Holding { person, .. } if *person == account));
        let waiting_for =
            holding.then_some(if role == Role::Lawyer { Role::Interpreter } else { Role::Lawyer });
        let message = ServerMessage::ConsultAccepted { request, id, waiting_for };
        self.connections.push_to_account_reach(&account, Reach::Only(&connection), &message);
        self.apply(actions, now);
        Ok(())
    }

    fn decline(&mut self, answer: Answer, now: Instant) -> Result<(), Failure> {
        let Answer { account, connection, request, id } = answer;
        if self.is_offered(&request, &account).is_none() {
            return Err((ErrorCode::NotFound, "no such offer to you (taken, withdrawn or timed out)".into()));
        }
        self.end_offer(&request, &account, OfferOutcome::Declined);
        let actions =
            self.matcher.handle(Event::Declined { request: request.clone(), person: account.clone() }, now);
        let message = ServerMessage::ConsultDeclined { request, id };
        self.connections.push_to_account_reach(&account, Reach::Only(&connection), &message);
        self.tell_presence(&account);
        self.apply(actions, now);
        Ok(())
    }

    // ---- consultations

    fn start_consultation(&mut self, request: &str, lawyer: &str, interpreter: Option<&str>, now: Instant) {
        let Some(r) = self.requests.remove(request) else { return };
        self.told.remove(request);
        // Each person's call goes to the connection they accepted on.
        let via: HashMap<String, String> =
            self.offers.get(request).map(|o| o.accepted.iter().cloned().collect()).unwrap_or_default();
        for person in std::iter::once(lawyer).chain(interpreter) {
            self.end_offer(request, person, OfferOutcome::Accepted);
        }
        self.offers.remove(request);
        let id = new_id();
        let started_at = unix_now();
        self.writes.send(LiveWrite::Start(StartedConsultation {
            id: id.clone(),
            request_id: request.into(),
            terminal_id: r.terminal.clone(),
            region_id: r.region.clone(),
            lawyer_id: lawyer.into(),
            interpreter_id: interpreter.map(str::to_owned),
            topic: r.topic,
            language: r.language.as_str().into(),
            started_at,
        }));
        for person in std::iter::once(lawyer).chain(interpreter) {
            if let Some(p) = self.people.get_mut(person) {
                p.consultation = Some(id.clone());
                p.info.person.taken_today += 1;
            }
        }
        if let Some(t) = self.terminals.get_mut(&r.terminal) {
            t.request = None;
            t.consultation = Some(id.clone());
        }
        if let Err(error) = self.relays.place(&id, Some(&r.region)) {
            // Participants' joins will try again.
            tracing::warn!(consultation = %id, %error, "no relay for the consultation's room now");
        }
        self.open_room(&id);
        let c = ConsultLive {
            request: request.into(),
            terminal: r.terminal.clone(),
            region: r.region,
            language: r.language.as_str().into(),
            topic: r.topic,
            lawyer: lawyer.into(),
            interpreter: interpreter.map(str::to_owned),
            started_at,
            absent: BTreeMap::new(),
        };
        let participants: Vec<String> = c.participants().map(|(p, _)| p.to_owned()).collect();
        self.consultations.insert(id.clone(), c);
        tracing::info!(consultation = %id, %request, three_way = interpreter.is_some(), "consultation started");
        for participant in participants {
            self.send_started(&id, &participant, false, via.get(&participant).map(String::as_str));
            self.tell_presence(&participant);
        }
        let _ = now;
    }

    fn name_of(&self, participant: &str, role: Role) -> String {
        match role {
            Role::Resident => {
                self.terminals.get(participant).map(|t| t.info.name.clone()).unwrap_or_default()
            }
            _ => self.people.get(participant).map(|p| p.info.name.clone()).unwrap_or_default(),
        }
    }

    /// Sends a participant what it needs to join the consultation's room:
    /// to all its connections, or, `via` the one it accepted on, to that one
    /// (the person's others are told the call is `elsewhere`).
    fn send_started(&self, consultation: &str, participant: &str, resumed: bool, via: Option<&str>) {
        let Some(c) = self.consultations.get(consultation) else { return };
        let Some(role) = c.role_of(participant) else { return };
        // The relay it is on goes into the token: a participant connected to
        // another signaling node joins it there.
        let grant = RoomGrant {
            room: consultation.into(),
            publish: vec!["audio".into(), "video".into()],
            relay: self.relays.placement(consultation).and_then(|i| self.relays.name(i)),
        };
        let ttl = Duration::from_secs(self.config.room_token_ttl_secs);
        let (token, _) = self.tokens.issue(TokenKind::Room, participant, consultation, ttl, Some(grant));
        let peers: Vec<Peer> = c
            .participants()
            .filter(|(p, _)| *p != participant)
            .map(|(p, role)| Peer { participant: p.to_owned(), role, name: self.name_of(p, role) })
            .collect();
        let started = |elsewhere: bool| ServerMessage::ConsultStarted {
            consultation: consultation.into(),
            request: c.request.clone(),
            room: consultation.into(),
            token: token.clone(),
            role,
            language: c.language.clone(),
            topic: c.topic,
            peers: peers.clone(),
            resumed,
            elsewhere,
        };
        match via {
            Some(connection) if role != Role::Resident => {
                self.connections.push_to_account_reach(participant, Reach::Only(connection), &started(false));
                self.connections.push_to_account_reach(
                    participant,
                    Reach::Except(connection),
                    &started(true),
                );
            }
            _ => self.push(participant, role, &started(false)),
        }
    }

    fn push(&self, participant: &str, role: Role, message: &ServerMessage) {
        match role {
            Role::Resident => self.connections.push_to_terminal(participant, message),
            _ => self.connections.push_to_account(participant, message),
        };
    }

    /// A participant's connection went: the room waits for it (`grace_secs`).
    fn left(&mut self, consultation: &str, participant: &str, now: Instant) {
        let Some(c) = self.consultations.get_mut(consultation) else { return };
        let Some(role) = c.role_of(participant) else { return };
        c.absent.insert(participant.into(), now);
        let others: Vec<(String, Role)> =
            c.participants().filter(|(p, _)| *p != participant).map(|(p, r)| (p.to_owned(), r)).collect();
        let message = ServerMessage::ConsultPeer { consultation: consultation.into(), role, present: false };
        for (p, r) in others {
            self.push(&p, r, &message);
        }
    }

    /// A participant is back within the grace period: the same room, a fresh token.
    fn returned(&mut self, consultation: &str, participant: &str) {
        let Some(c) = self.consultations.get_mut(consultation) else { return };
        let Some(role) = c.role_of(participant) else { return };
        c.absent.remove(participant);
        let others: Vec<(String, Role)> =
            c.participants().filter(|(p, _)| *p != participant).map(|(p, r)| (p.to_owned(), r)).collect();
        let message = ServerMessage::ConsultPeer { consultation: consultation.into(), role, present: true };
        for (p, r) in others {
            self.push(&p, r, &message);
        }
        self.send_started(consultation, participant, true, None);
    }

    /// Ends the call. `requeue`: the resident waits again, at the front, for
    /// the same lawyer first.
    fn end_consultation(&mut self, id: &str, reason: &str, requeue: bool, now: Instant) {
        let Some(c) = self.consultations.remove(id) else { return };
        self.writes.send(LiveWrite::End(id.into(), reason.into()));
        let (relays, room) = (self.relays.clone(), id.to_owned());
        tokio::spawn(async move {
            let _ = relays.close_room(&room).await;
        });
        let ended_at = unix_now();
        let lasted = (ended_at - c.started_at).max(0) as f64;
        self.avg_consultation_secs = 0.9 * self.avg_consultation_secs + 0.1 * lasted.max(60.0);
        let wrap_up_until = ended_at + self.config.wrap_up_secs as i64;
        if let Some(p) = self.people.get_mut(&c.lawyer) {
            p.consultation = None;
            p.wrap_up = Some((id.into(), wrap_up_until));
        }
        if let Some(i) = &c.interpreter
            && let Some(p) = self.people.get_mut(i)
        {
            p.consultation = None;
        }
        if let Some(t) = self.terminals.get_mut(&c.terminal) {
            t.consultation = None;
        }
        tracing::info!(consultation = %id, reason, requeue, "consultation ended");
        for (participant, role) in c.participants() {
            let message = ServerMessage::ConsultEnded {
                consultation: id.into(),
                reason: reason.into(),
                wrap_up_until: (role == Role::Lawyer).then_some(wrap_up_until),
                requeued: requeue,
            };
            self.push(participant, role, &message);
        }
        self.tell_presence(&c.lawyer);
        if let Some(i) = &c.interpreter {
            self.sync_person(i, now);
            self.tell_presence(i);
        }
        if requeue {
            let row = RequestRow {
                id: new_id(),
                terminal_id: c.terminal.clone(),
                region_id: c.region.clone(),
                language: c.language.clone(),
                topic: c.topic.code().into(),
                front: true,
                preferred_lawyer_id: Some(c.lawyer.clone()),
                created_at: ended_at,
                appointment_id: None,
            };
            self.writes.send(LiveWrite::Request(row.clone()));
            if let Ok(language) = Language::parse(&c.language) {
                self.add_request(row, language, c.topic, None, false, now);
            }
        }
        self.run_deferred(&c.terminal, now);
    }

    fn restore_consultation(&mut self, c: crate::store::OpenConsultation) {
        let (Some(topic), Some(request)) = (Topic::from_code(&c.topic), c.request_id.clone()) else {
            // A consultation recorded outside the live path: nothing to resume.
            self.writes.send(LiveWrite::End(c.id.clone(), "server_restart".into()));
            self.writes.send(LiveWrite::FinishWrapUp(c.id.clone()));
            return;
        };
        let now = Instant::now();
        // Clients rejoin after the restart; the room opens on their first join.
        let _ = self.relays.place(&c.id, Some(&c.region_id));
        let live = ConsultLive {
            request,
            terminal: c.terminal_id.clone(),
            region: c.region_id.clone(),
            language: c.language.clone(),
            topic,
            lawyer: c.lawyer_id.clone(),
            interpreter: c.interpreter_id.clone(),
            started_at: c.started_at,
            absent: BTreeMap::new(),
        };
        let mut live = live;
        let participants: Vec<(String, Role)> = live.participants().map(|(p, r)| (p.to_owned(), r)).collect();
        for (participant, role) in &participants {
            live.absent.insert(participant.clone(), now);
            match role {
                Role::Resident => {
                    self.absent_terminal(participant, &c.region_id, now).consultation = Some(c.id.clone());
                }
                _ => {
                    self.people.insert(
                        participant.clone(),
                        PersonLive {
                            info: PersonInfo {
                                person: matcher::Person {
                                    id: participant.clone(),
                                    lawyer: *role == Role::Lawyer,
                                    interpreter: *role == Role::Interpreter,
                                    languages: BTreeSet::new(),
                                    topics: BTreeSet::new(),
                                    regions: BTreeSet::new(),
                                    daily_cap: 0,
                                    taken_today: 0,
                                },
                                name: String::new(),
                                on_duty: false,
                                day_start: 0,
                            },
                            connections: 0,
                            gone_at: Some(now),
                            want: WantedPresence::Offline,
                            in_matcher: false,
                            ringing: None,
                            consultation: Some(c.id.clone()),
                            wrap_up: None,
                            wrap_up_ending: false,
                        },
                    );
                }
            }
        }
        self.consultations.insert(c.id, live);
    }

    // ---- time

    fn expire(&mut self, now: Instant) {
        let grace = Duration::from_secs(self.config.grace_secs);
        let lost: Vec<(String, &'static str)> = self
            .consultations
            .iter()
            .filter_map(|(id, c)| {
                let gone =
                    |p: &str| c.absent.get(p).is_some_and(|at| now.saturating_duration_since(*at) >= grace);
                if gone(&c.terminal) {
                    Some((id.clone(), "resident_lost"))
                } else if gone(&c.lawyer) {
                    Some((id.clone(), "lawyer_lost"))
                } else {
                    None
                }
            })
            .collect();
        for (id, reason) in lost {
            self.end_consultation(&id, reason, true, now);
        }
        let at = unix_now();
        let wrapped: Vec<String> = self
            .people
            .iter()
            .filter(|(_, p)| p.wrap_up.as_ref().is_some_and(|(_, until)| *until <= at))
            .map(|(id, _)| id.clone())
            .collect();
        for id in wrapped {
            self.finish_wrap_up(&id);
        }
        let hold = Duration::from_secs(self.config.request_hold_secs);
        let abandoned: Vec<String> = self
            .requests
            .iter()
            .filter(|(_, r)| !r.in_matcher)
            .filter(|(_, r)| {
                self.terminals
                    .get(&r.terminal)
                    .and_then(|t| t.gone_at)
                    .is_some_and(|at| now.saturating_duration_since(at) >= hold)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in abandoned {
            tracing::info!(request = %id, "request abandoned: its terminal stayed away");
            self.close_request(&id, RequestEnd::Abandoned, now);
        }
        // Forget people long gone with nothing open.
        self.people.retain(|_, p| {
            p.connections > 0
                || p.consultation.is_some()
                || p.wrap_up.is_some()
                || p.gone_at.is_none_or(|at| now.saturating_duration_since(at) < grace)
        });
        self.terminals.retain(|_, t| {
            t.connections > 0
                || t.request.is_some()
                || t.consultation.is_some()
                || t.gone_at.is_none_or(|at| now.saturating_duration_since(at) < grace)
        });
    }

    // ---- coordinators

    fn view(&self) -> LiveView {
        let at = unix_now();
        let positions: HashMap<&String, usize> =
            self.matcher.queue().into_iter().enumerate().map(|(i, r)| (r, i + 1)).collect();
        let mut queue: Vec<QueueEntry> = self
            .requests
            .iter()
            .map(|(id, r)| QueueEntry {
                request: id.clone(),
                region_id: r.region.clone(),
                terminal_id: r.terminal.clone(),
                language: r.language.as_str().into(),
                topic: r.topic,
                waited_secs: at.saturating_sub(r.created_at).max(0) as u64,
                position: positions.get(id).copied(),
                ringing: self.offers.contains_key(id),
            })
            .collect();
        queue.sort_by_key(|q| (q.position.is_none(), q.position, std::cmp::Reverse(q.waited_secs)));
        let mut regions: BTreeMap<&str, RegionQueue> = BTreeMap::new();
        for q in &queue {
            let e = regions.entry(&q.region_id).or_insert_with(|| RegionQueue {
                region_id: q.region_id.clone(),
                waiting: 0,
                longest_wait_secs: 0,
            });
            e.waiting += 1;
            e.longest_wait_secs = e.longest_wait_secs.max(q.waited_secs);
        }
        let mut people: Vec<PersonView> = self
            .people
            .values()
            .map(|p| PersonView {
                id: p.info.person.id.clone(),
                name: p.info.name.clone(),
                lawyer: p.info.person.lawyer,
                interpreter: p.info.person.interpreter,
                languages: p.info.person.languages.iter().map(|l| l.as_str().to_owned()).collect(),
                state: self.state_of(p),
                on_duty: p.info.on_duty,
            })
            .collect();
        people.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let mut consultations: Vec<ConsultationSummary> = self
            .consultations
            .iter()
            .map(|(id, c)| ConsultationSummary {
                id: id.clone(),
                region_id: c.region.clone(),
                language: c.language.clone(),
                topic: c.topic,
                started_at: c.started_at,
                lawyer: self.name_of(&c.lawyer, Role::Lawyer),
                interpreter: c.interpreter.as_ref().map(|i| self.name_of(i, Role::Interpreter)),
                waiting_for: c.absent.keys().filter_map(|p| c.role_of(p)).collect(),
            })
            .collect();
        consultations.sort_by_key(|c| c.started_at);
        LiveView { at, regions: regions.into_values().collect(), queue, people, consultations }
    }

    /// The part of `view` a coordinator of `regions` may see: their regions'
    /// queue and consultations, and the people of their regions' teams or
    /// working on their regions' requests.
    fn scoped(&self, view: &LiveView, regions: &[String]) -> LiveView {
        let mine = |r: &String| regions.contains(r);
        let mut involved: BTreeSet<&str> = BTreeSet::new();
        for c in self.consultations.values().filter(|c| mine(&c.region)) {
            involved.insert(&c.lawyer);
            involved.extend(c.interpreter.as_deref());
        }
        for (request, offer) in &self.offers {
            if self.requests.get(request).is_some_and(|r| mine(&r.region)) {
                involved.extend(offer.lawyer.iter().chain(&offer.interpreter).map(|(p, _)| p.as_str()));
            }
        }
        LiveView {
            at: view.at,
            regions: view.regions.iter().filter(|r| mine(&r.region_id)).cloned().collect(),
            queue: view.queue.iter().filter(|q| mine(&q.region_id)).cloned().collect(),
            people: view
                .people
                .iter()
                .filter(|p| {
                    involved.contains(p.id.as_str())
                        || self.people.get(&p.id).is_some_and(|l| l.info.person.regions.iter().any(mine))
                })
                .cloned()
                .collect(),
            consultations: view.consultations.iter().filter(|c| mine(&c.region_id)).cloned().collect(),
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
        if !self.dirty && !refresh {
            return;
        }
        self.dirty = false;
        let full = self.view();
        let scoped: Vec<(String, LiveView)> = self
            .subscribers
            .iter()
            .map(|(connection, s)| {
                let view = match &s.regions {
                    None => full.clone(),
                    Some(regions) => self.scoped(&full, regions),
                };
                (connection.clone(), view)
            })
            .collect();
        self.subscribers.retain(|connection, s| {
            let Some((_, view)) = scoped.iter().find(|(c, _)| c == connection) else { return true };
            let unchanged = s.last.as_ref().is_some_and(|(at, last)| {
                now.duration_since(*at) < VIEW_REFRESH && LiveView { at: last.at, ..view.clone() } == *last
            });
            if unchanged {
                return true;
            }
            let Ok(text) = serde_json::to_string(&ServerMessage::LiveView(view.clone())) else { return true };
            s.last = Some((now, view.clone()));
            // A coordinator that does not read is dropped from the view (its
            // connection is being closed for the same reason).
            !matches!(
                s.outbox.try_send(Message::Text(Utf8Bytes::from(text))),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}

// ---- the ordered writer

/// Writes queued before the writer takes them into one transaction.
const WRITE_BATCH: usize = 512;

/// Applies the dispatcher's writes in order, on its own task, so the
/// dispatcher never waits on the database. Whatever queued up while the last
/// transaction ran goes into the next one: under load, one commit carries
/// hundreds of writes.
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
struct Writer {
    tx: mpsc::UnboundedSender<(LiveWrite, i64, Ack)>,
}

impl Writer {
    fn start(store: Store, dispatcher: mpsc::WeakSender<Command>) -> Writer {
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
                        LiveWrite::Request(row) => Some(Command::Recorded { request: row.id, ok }),
                        // Failed or not, the lawyer is not kept from being rung.
                        LiveWrite::FinishWrapUp(consultation) => Some(Command::WrapUpStored { consultation }),
                        _ => None,
                    };
                    if let Some(command) = told
                        && let Some(dispatcher) = dispatcher.upgrade()
                    {
                        let _ = dispatcher.send(command).await;
                    }
                }
            }
        });
        Writer { tx }
    }

    fn send(&self, write: LiveWrite) {
        let _ = self.tx.send((write, unix_now(), None));
    }

    /// Queues a write whose outcome someone waits for.
    fn send_then(&self, write: LiveWrite, ack: oneshot::Sender<Result<u64, Failure>>) {
        let _ = self.tx.send((write, unix_now(), Some(ack)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_starts_at_local_midnight() {
        // 2026-11-27 01:30 in Shanghai is 2026-11-26 17:30 UTC.
        let at = 1_795_714_200; // 2026-11-26T17:30:00Z
        let start = local_day_start("Asia/Shanghai", at);
        assert_eq!(start, 1_795_708_800, "2026-11-26T16:00:00Z is midnight in Shanghai");
        assert_eq!(local_day_start("Nowhere/Unknown", at), at - at.rem_euclid(86_400));
    }

    #[test]
    fn config_is_checked() {
        assert!(LiveConfig::default().validate().is_ok());
        let bad = LiveConfig { languages: vec!["Tibetan".into()], ..LiveConfig::default() };
        assert!(bad.validate().is_err());
        let bad = LiveConfig { ring_after_secs: [60, 30, 90], ..LiveConfig::default() };
        assert!(bad.validate().is_err());
    }
}
