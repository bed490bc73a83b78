//! Several `cloudlaw serve` nodes on one PostgreSQL database, serving as one
//! system.
//!
//! Every node accepts connections; one of them, the *leader*, runs the live
//! path ([`crate::live`]): the node that holds the serving lease. The others
//! (*followers*) send their connections' [`Command`]s to the leader with
//! NOTIFY on [`TO_LEADER`]; the leader sends its pushes, its replies and the
//! coordinators' views on [`FROM_LEADER`], and every node delivers to its own
//! connections what is for them. One dispatcher decides for every node, so a
//! resident on one node is matched with a lawyer on another, and nobody is
//! rung for two requests at once, as on a single node.
//!
//! What each side remembers of the other is kept small and rebuilt rather
//! than repaired:
//! - the leader tracks which connection of which node announced whom, so that
//!   it can let go of a follower's people when the follower stops sending its
//!   heartbeat ([`FORGET_AFTER`]), and ignores a disconnect it never heard the
//!   connect of;
//! - when the leadership changes (the leader died and another node took the
//!   lease), when the leader forgot a follower that is still alive, or when a
//!   node's listening connection was lost (and messages with it), the node
//!   closes its connections ([`LocalConnections::reconnect_all`]): the apps reconnect at once and
//!   announce themselves to the leader again. The new leader restores who
//!   waits and who talks from the database, as after a restart.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::auth::{Limits, SharedOutcome};
use crate::domain::{ErrorCode, Failure, Language, Topic};
use crate::ids::{AccountId, ConsultationId, ParticipantId, RegionId, RequestId, TerminalId};
use crate::live::{self, Command, Live, PersonInfo, TerminalInfo, WantedPresence};
use crate::outbox::{Pushed, Revocation};
use crate::store::{Notifications, ServingLease, Store, StoreError};

/// Followers' commands for the leader.
pub const TO_LEADER: &str = "cloudlaw_to_leader";
/// The leader's pushes, replies and views, for every node.
pub const FROM_LEADER: &str = "cloudlaw_from_leader";
/// Revocations, from any node to every node (they need no leader).
pub const REVOKED: &str = "cloudlaw_revoked";
/// Failed logins and enrollments, and logins that cleared an account's
/// failures, from any node to every node: the limits on failures hold across
/// nodes.
pub const ATTEMPTS: &str = "cloudlaw_attempts";
/// How often a follower says it is alive, and tries the lease.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A follower not heard from for this long is gone: its people are
/// disconnected (their grace periods start).
const FORGET_AFTER: Duration = Duration::from_secs(5);
/// How long a follower waits for the leader's reply to a command.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the leader deletes spilled messages every node has read.
const SPILL_SWEEP: Duration = Duration::from_secs(30);
/// The most messages sent in one transaction.
const SEND_BATCH: usize = 512;
/// A view queued for one remote coordinator.
const VIEW_QUEUE: usize = 8;

/// A follower's message to the leader.
#[derive(Debug, Serialize, Deserialize)]
struct ToLeader {
    from: String,
    /// Set when the sender waits for a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call: Option<u64>,
    command: Wire,
}

/// The commands a connection makes, as they travel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    PersonConnected {
        connection: String,
        info: Box<PersonInfo>,
    },
    PersonDisconnected {
        connection: String,
        account: AccountId,
    },
    TerminalConnected {
        connection: String,
        info: TerminalInfo,
    },
    TerminalDisconnected {
        connection: String,
        terminal: TerminalId,
    },
    Presence {
        account: AccountId,
        want: WantedPresence,
    },
    Request {
        terminal: TerminalId,
        language: Language,
        topic: Topic,
        #[serde(default)]
        asked: Option<crate::live::Asked>,
    },
    Cancel {
        terminal: TerminalId,
        request: RequestId,
    },
    Accept(live::Answer),
    Decline(live::Answer),
    Hangup {
        participant: ParticipantId,
        consultation: ConsultationId,
    },
    Rate {
        terminal: TerminalId,
        consultation: ConsultationId,
        rating: u8,
    },
    RecordSaved {
        consultation: ConsultationId,
    },
    Subscribe {
        connection: String,
        regions: Option<Vec<RegionId>>,
    },
    Unsubscribe {
        connection: String,
    },
    Heartbeat,
}

/// A revocation made on node `from` (which closed its own connections).
#[derive(Debug, Serialize, Deserialize)]
struct Revoke {
    from: String,
    revocation: Revocation,
}

/// What became of a login or enrollment on one node, for every node.
#[derive(Debug, Serialize, Deserialize)]
struct Attempt {
    from: String,
    /// Counts up per sending node: PostgreSQL folds identical payloads sent
    /// in one transaction, and each must count.
    n: u64,
    outcome: SharedOutcome,
}

/// The leader's message to every node.
#[derive(Debug, Serialize, Deserialize)]
struct FromLeader {
    leader: String,
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    /// This node leads now: every other node's connections announce
    /// themselves again.
    Hello,
    /// The answer to a follower's command (`Ok(n)`: rows changed, for a rating).
    Reply { to: String, call: u64, result: Result<u64, Failure> },
    /// A push to a person's or terminal's connections, wherever they are.
    Push { pushed: Pushed },
    /// A live view for one coordinator's connection on node `to`.
    View { to: String, connection: String, text: String },
    /// The leader let go of node `node`'s people (it had not heard from it).
    Forget { node: String },
}

/// A local caller waiting for the leader's reply.
#[derive(Debug)]
enum Waiting {
    Unit(oneshot::Sender<Result<(), Failure>>),
    Count(oneshot::Sender<Result<u64, Failure>>),
}

impl Waiting {
    fn answer(self, result: Result<u64, Failure>) {
        match self {
            Waiting::Unit(reply) => drop(reply.send(result.map(|_| ()))),
            Waiting::Count(reply) => drop(reply.send(result)),
        }
    }
}

/// What a command announced, by connection: what the leader undoes when
/// the connection's node goes away.
#[derive(Debug, Clone)]
enum Held {
    Person(AccountId),
    Terminal(TerminalId),
    Watcher,
}

#[derive(Debug)]
struct Follower {
    last_heard: Instant,
    connections: HashMap<String, Held>,
}

impl Follower {
    fn new() -> Follower {
        Follower { last_heard: Instant::now(), connections: HashMap::new() }
    }
}

/// The commands that undo everything `held` announced.
fn undo(connection: String, held: Held) -> Command {
    match held {
        Held::Person(account) => Command::PersonDisconnected { connection, account },
        Held::Terminal(terminal) => Command::TerminalDisconnected { connection, terminal },
        Held::Watcher => Command::Unsubscribe { connection },
    }
}

/// Whether the dispatcher should see `command` from this node, keeping track
/// of what each connection announced: a disconnect whose connect it never
/// saw (announced to an earlier leader) is dropped.
fn track(node: &mut Follower, command: &Command) -> bool {
    match command {
        Command::PersonConnected { connection, info } => {
            node.connections.insert(connection.clone(), Held::Person(info.person.id.clone())).is_none()
        }
        Command::TerminalConnected { connection, info } => {
            node.connections.insert(connection.clone(), Held::Terminal(info.id.clone())).is_none()
        }
        Command::Subscribe { connection, .. } => {
            node.connections.insert(connection.clone(), Held::Watcher);
            true
        }
        Command::PersonDisconnected { connection, .. }
        | Command::TerminalDisconnected { connection, .. }
        | Command::Unsubscribe { connection } => node.connections.remove(connection).is_some(),
        _ => true,
    }
}

/// A command as a follower sends it: the wire form, and what waits here for
/// the reply or the views.
#[derive(Debug)]
struct Outgoing {
    wire: Wire,
    waiting: Option<Waiting>,
    /// A coordinator's connection, and where its views go.
    watcher: Option<(String, mpsc::Sender<Message>)>,
}

fn outgoing(command: Command) -> Option<Outgoing> {
    let plain = |wire| Some(Outgoing { wire, waiting: None, watcher: None });
    let unit = |wire, reply| Some(Outgoing { wire, waiting: Some(Waiting::Unit(reply)), watcher: None });
    match command {
        Command::PersonConnected { connection, info } => plain(Wire::PersonConnected { connection, info }),
        Command::PersonDisconnected { connection, account } => {
            plain(Wire::PersonDisconnected { connection, account })
        }
        Command::TerminalConnected { connection, info } => {
            plain(Wire::TerminalConnected { connection, info })
        }
        Command::TerminalDisconnected { connection, terminal } => {
            plain(Wire::TerminalDisconnected { connection, terminal })
        }
        Command::Presence { account, want, reply } => unit(Wire::Presence { account, want }, reply),
        Command::Request { terminal, language, topic, asked, reply, .. } => {
            unit(Wire::Request { terminal, language, topic, asked }, reply)
        }
        Command::Cancel { terminal, request, reply } => unit(Wire::Cancel { terminal, request }, reply),
        Command::Accept { answer, reply } => unit(Wire::Accept(answer), reply),
        Command::Decline { answer, reply } => unit(Wire::Decline(answer), reply),
        Command::Hangup { participant, consultation, reply } => {
            unit(Wire::Hangup { participant, consultation }, reply)
        }
        Command::Rate { terminal, consultation, rating, reply } => Some(Outgoing {
            wire: Wire::Rate { terminal, consultation, rating },
            waiting: Some(Waiting::Count(reply)),
            watcher: None,
        }),
        Command::RecordSaved { consultation } => plain(Wire::RecordSaved { consultation }),
        Command::Subscribe { connection, regions, outbox } => Some(Outgoing {
            wire: Wire::Subscribe { connection: connection.clone(), regions },
            waiting: None,
            watcher: Some((connection, outbox)),
        }),
        Command::Unsubscribe { connection } => plain(Wire::Unsubscribe { connection }),
        // The leader's own (its scheduler, writer and relays make them).
        Command::Duty(_) | Command::AppointmentDue(_) | Command::Stored(_) | Command::RelayLost(_) => None,
    }
}

/// The reply to a follower's command, once the dispatcher gives it.
type Answer = std::pin::Pin<Box<dyn Future<Output = Result<u64, Failure>> + Send>>;

/// Starts the live path when this node becomes the leader: the dispatcher's
/// handle, and the tasks to stop with it.
pub type StartLive = Box<
    dyn Fn()
            -> std::pin::Pin<Box<dyn Future<Output = Result<(Live, Vec<JoinHandle<()>>), StoreError>> + Send>>
        + Send
        + Sync,
>;

/// This node's own open WebSocket connections, as the cluster uses them
/// (`ws::registry::Connections`, a layer above, implements it).
pub trait LocalConnections: Send + Sync {
    /// Queues a push of the live path's node on the connections here that it
    /// names; returns how many took it.
    fn deliver(&self, pushed: &Pushed) -> usize;
    /// Closes the connections here that a revocation made on another node names.
    fn apply(&self, revocation: &Revocation) -> usize;
    /// From now on, revocations made here also go to `others`.
    fn share_revocations(&self, others: mpsc::UnboundedSender<Revocation>);
    /// From now on, pushes made here also go to `fanout` (with `None`, no longer).
    fn fan_out(&self, fanout: Option<mpsc::UnboundedSender<Pushed>>);
    /// Closes every connection here for its client to reconnect at once and
    /// announce itself again; returns how many.
    fn reconnect_all(&self) -> usize;
}

/// One node's link to the others.
pub struct Link {
    me: String,
    store: Store,
    connections: Arc<dyn LocalConnections>,
    limits: Arc<Limits>,
    start_live: StartLive,
    /// (channel, message) to send, in order, by [`send_loop`].
    out: mpsc::UnboundedSender<(&'static str, String)>,
    sender: JoinHandle<()>,
    /// Set while this node leads.
    lead: Option<Lead>,
    /// The leader this follower last heard from.
    leader: Option<String>,
    calls: HashMap<u64, (Waiting, Instant)>,
    next_call: u64,
    /// Coordinators' connections here that watch the live view.
    watchers: HashMap<String, mpsc::Sender<Message>>,
}

struct Lead {
    live: Live,
    tasks: Vec<JoinHandle<()>>,
    /// By node id (this node's own too).
    nodes: HashMap<String, Follower>,
    /// The pushes of the dispatcher, for the other nodes.
    pushes: mpsc::UnboundedReceiver<Pushed>,
    lease: JoinHandle<()>,
    /// When old spilled messages were last deleted.
    spill_swept: Instant,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("me", &self.me).field("leading", &self.lead.is_some()).finish()
    }
}

/// Why [`Link::run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The node is stopping.
    Stopped,
    /// The connection that held the serving lease failed: another node may
    /// lead already, so this one must stop.
    LeaseLost,
}

impl Link {
    pub fn new(
        store: Store,
        connections: Arc<dyn LocalConnections>,
        limits: Arc<Limits>,
        start_live: StartLive,
    ) -> Link {
        let (out, queue) = mpsc::unbounded_channel();
        let sender = tokio::spawn(send_loop(store.clone(), queue));
        Link {
            me: crate::store::new_id(),
            store,
            connections,
            limits,
            start_live,
            out,
            sender,
            lead: None,
            leader: None,
            calls: HashMap::new(),
            next_call: 0,
            watchers: HashMap::new(),
        }
    }

    /// Carries this node's connections' `commands` to the live path, wherever
    /// it runs, and leads when the lease is free, until `stop` turns true.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Ended, StoreError> {
        // Every node listens to both: a node that takes the lease hears the
        // commands sent while it took it.
        let notifications = self.store.notifications(&[FROM_LEADER, TO_LEADER, REVOKED, ATTEMPTS]).await?;
        let (revoked_tx, mut revoked) = mpsc::unbounded_channel();
        self.connections.share_revocations(revoked_tx);
        let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
        self.limits.share_outcomes(outcomes_tx);
        let mut outcomes_sent = 0u64;
        let (heard_tx, mut heard) = mpsc::channel(1024);
        let listening = tokio::spawn(listen(notifications, heard_tx));
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (lease_lost_tx, mut lease_lost) = mpsc::channel::<()>(1);
        let ended = loop {
            tokio::select! {
                () = async { drop(stop.wait_for(|stopped| *stopped).await) } => break Ended::Stopped,
                _ = lease_lost.recv() => break Ended::LeaseLost,
                command = commands.recv() => match command {
                    Some(command) => self.local(command).await,
                    None => break Ended::Stopped,
                },
                message = heard.recv() => match message {
                    Some(Some((channel, body))) => self.heard(&channel, &body).await,
                    Some(None) => self.lost_messages(),
                    None => break Ended::Stopped,
                },
                Some(pushed) = async {
                    match self.lead.as_mut() {
                        Some(lead) => lead.pushes.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.emit(Event::Push { pushed }),
                Some(revocation) = revoked.recv() => {
                    self.send(REVOKED, &Revoke { from: self.me.clone(), revocation });
                }
                Some(outcome) = outcomes.recv() => {
                    outcomes_sent += 1;
                    self.send(ATTEMPTS, &Attempt { from: self.me.clone(), n: outcomes_sent, outcome });
                }
                _ = tick.tick() => self.tick(&lease_lost_tx).await,
            }
        };
        listening.abort();
        self.step_down();
        self.sender.abort();
        Ok(ended)
    }

    /// A command of this node's connections.
    async fn local(&mut self, command: Command) {
        if let Some(lead) = self.lead.as_mut() {
            let node = lead.nodes.entry(self.me.clone()).or_insert_with(Follower::new);
            if track(node, &command) {
                lead.live.send(command).await;
            }
            return;
        }
        let Some(Outgoing { wire, waiting, watcher }) = outgoing(command) else { return };
        if let Some((connection, outbox)) = watcher {
            self.watchers.insert(connection, outbox);
        }
        if let Wire::Unsubscribe { connection } = &wire {
            self.watchers.remove(connection);
        }
        let call = waiting.map(|waiting| {
            self.next_call += 1;
            self.calls.insert(self.next_call, (waiting, Instant::now()));
            self.next_call
        });
        self.send(TO_LEADER, &ToLeader { from: self.me.clone(), call, command: wire });
    }

    fn send(&self, channel: &'static str, message: &impl Serialize) {
        match serde_json::to_string(message) {
            Ok(text) => drop(self.out.send((channel, text))),
            Err(error) => tracing::error!(%error, "cannot encode a message for the other nodes"),
        }
    }

    fn emit(&self, event: Event) {
        send_now(&self.out, &FromLeader { leader: self.me.clone(), event });
    }

    async fn heard(&mut self, channel: &str, body: &str) {
        if channel == ATTEMPTS {
            match serde_json::from_str::<Attempt>(body) {
                Ok(attempt) if attempt.from != self.me => self.limits.apply(&attempt.outcome),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "a node sent an attempt's outcome this node cannot read")
                }
            }
            return;
        }
        if channel == REVOKED {
            match serde_json::from_str::<Revoke>(body) {
                Ok(revoke) if revoke.from != self.me => drop(self.connections.apply(&revoke.revocation)),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "a node sent a revocation this node cannot read"),
            }
            return;
        }
        if channel == TO_LEADER {
            if self.lead.is_none() {
                return; // for the leader
            }
            match serde_json::from_str::<ToLeader>(body) {
                Ok(message) => self.command_from(message).await,
                Err(error) => tracing::warn!(%error, "a node sent a command this node cannot read"),
            }
            return;
        }
        let message = match serde_json::from_str::<FromLeader>(body) {
            Ok(message) => message,
            Err(error) => return tracing::warn!(%error, "the leader sent a message this node cannot read"),
        };
        if message.leader == self.me {
            return; // our own, delivered here already
        }
        if self.lead.is_some() {
            // Two leaders would mean two live paths: the lease makes it impossible.
            return tracing::error!(other = %message.leader, "another node says it leads; ignored");
        }
        let new_leader = self.leader.as_deref() != Some(message.leader.as_str());
        if matches!(message.event, Event::Hello) || (new_leader && self.leader.is_some()) {
            self.reset("the live path moved to another signaling node");
        }
        if new_leader {
            tracing::info!(leader = %message.leader, "following the node that runs the live path");
            self.leader = Some(message.leader);
        }
        match message.event {
            Event::Hello => {}
            Event::Reply { to, call, result } if to == self.me => {
                if let Some((waiting, _)) = self.calls.remove(&call) {
                    waiting.answer(result);
                }
            }
            Event::Reply { .. } => {}
            Event::Push { pushed } => drop(self.connections.deliver(&pushed)),
            Event::View { to, connection, text } if to == self.me => {
                if let Some(outbox) = self.watchers.get(&connection) {
                    let _ = outbox.try_send(Message::Text(Utf8Bytes::from(text)));
                }
            }
            Event::View { .. } => {}
            Event::Forget { node } if node == self.me => {
                self.reset("the leader had lost touch with this node")
            }
            Event::Forget { .. } => {}
        }
    }

    /// The leader hears a follower's command.
    async fn command_from(&mut self, message: ToLeader) {
        let ToLeader { from, call, command } = message;
        let Some(lead) = self.lead.as_mut() else { return };
        let node = lead.nodes.entry(from.clone()).or_insert_with(Follower::new);
        node.last_heard = Instant::now();
        // The reply, when the follower waits for one, goes back once the dispatcher answers.
        let reply = |answered: oneshot::Receiver<Result<(), Failure>>| async move {
            answered.await.unwrap_or_else(|_| Err(gone())).map(|()| 0)
        };
        let mut answer: Option<Answer> = None;
        let mut unit = || {
            let (tx, rx) = oneshot::channel();
            answer = Some(Box::pin(reply(rx)));
            tx
        };
        let command = match command {
            Wire::Heartbeat => return,
            Wire::PersonConnected { connection, info } => Command::PersonConnected { connection, info },
            Wire::PersonDisconnected { connection, account } => {
                Command::PersonDisconnected { connection, account }
            }
            Wire::TerminalConnected { connection, info } => Command::TerminalConnected { connection, info },
            Wire::TerminalDisconnected { connection, terminal } => {
                Command::TerminalDisconnected { connection, terminal }
            }
            Wire::Presence { account, want } => Command::Presence { account, want, reply: unit() },
            Wire::Request { terminal, language, topic, asked } => {
                Command::Request { terminal, language, topic, asked, received: Instant::now(), reply: unit() }
            }
            Wire::Cancel { terminal, request } => Command::Cancel { terminal, request, reply: unit() },
            Wire::Accept(answer) => Command::Accept { answer, reply: unit() },
            Wire::Decline(answer) => Command::Decline { answer, reply: unit() },
            Wire::Hangup { participant, consultation } => {
                Command::Hangup { participant, consultation, reply: unit() }
            }
            Wire::Rate { terminal, consultation, rating } => {
                let (tx, rx) = oneshot::channel();
                answer = Some(Box::pin(async move { rx.await.unwrap_or_else(|_| Err(gone())) }));
                Command::Rate { terminal, consultation, rating, reply: tx }
            }
            Wire::RecordSaved { consultation } => Command::RecordSaved { consultation },
            Wire::Subscribe { connection, regions } => {
                let (outbox, views) = mpsc::channel(VIEW_QUEUE);
                let (out, me, to) = (self.out.clone(), self.me.clone(), from.clone());
                tokio::spawn(forward_views(views, out, me, to, connection.clone()));
                Command::Subscribe { connection, regions, outbox }
            }
            Wire::Unsubscribe { connection } => Command::Unsubscribe { connection },
        };
        if !track(node, &command) {
            return;
        }
        lead.live.send(command).await;
        if let (Some(call), Some(answer)) = (call, answer) {
            let (out, leader) = (self.out.clone(), self.me.clone());
            tokio::spawn(async move {
                let event = Event::Reply { to: from, call, result: answer.await };
                send_now(&out, &FromLeader { leader, event });
            });
        }
    }

    async fn tick(&mut self, lease_lost: &mpsc::Sender<()>) {
        let now = Instant::now();
        // Callers whose reply never came (the leader died meanwhile).
        let late: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) >= CALL_TIMEOUT)
            .map(|(call, _)| *call)
            .collect();
        for call in late {
            if let Some((waiting, _)) = self.calls.remove(&call) {
                waiting.answer(Err((
                    ErrorCode::Refused,
                    "the live path did not answer in time; try again".into(),
                )));
            }
        }
        if let Some(lead) = self.lead.as_mut() {
            let me = self.me.clone();
            let gone: Vec<String> = lead
                .nodes
                .iter()
                .filter(|(id, node)| **id != me && now.duration_since(node.last_heard) > FORGET_AFTER)
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                let Some(node) = lead.nodes.remove(&id) else { continue };
                tracing::warn!(node = %id, connections = node.connections.len(), "a signaling node went silent");
                for (connection, held) in node.connections {
                    lead.live.send(undo(connection, held)).await;
                }
                send_now(
                    &self.out,
                    &FromLeader { leader: self.me.clone(), event: Event::Forget { node: id } },
                );
            }
            if now.duration_since(lead.spill_swept) > SPILL_SWEEP {
                lead.spill_swept = now;
                if let Err(error) = self.store.forget_spilled(crate::unix_now()).await {
                    tracing::warn!(%error, "cannot delete old spilled messages");
                }
            }
            return;
        }
        self.send(TO_LEADER, &ToLeader { from: self.me.clone(), call: None, command: Wire::Heartbeat });
        match self.store.serving_lease().await {
            Ok(Some(lease)) => {
                if let Err(error) = self.take_lead(lease, lease_lost.clone()).await {
                    tracing::error!(%error, "cannot start the live path");
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot try the serving lease"),
        }
    }

    /// This node holds the lease now: it runs the live path.
    async fn take_lead(
        &mut self,
        mut lease: ServingLease,
        lease_lost: mpsc::Sender<()>,
    ) -> Result<(), StoreError> {
        let (live, tasks) = (self.start_live)().await?;
        let watch = tokio::spawn(async move {
            lease.lost().await;
            tracing::error!(
                "lost the connection that holds the serving lease: stopping (another node may lead now)"
            );
            let _ = lease_lost.send(()).await;
        });
        let (fanout, pushes) = mpsc::unbounded_channel();
        self.connections.fan_out(Some(fanout));
        let spill_swept = Instant::now();
        self.lead = Some(Lead { live, tasks, nodes: HashMap::new(), pushes, lease: watch, spill_swept });
        // Everyone here announced themselves to the old leader: again, to us.
        self.reset("this signaling node runs the live path now");
        self.leader = Some(self.me.clone());
        self.emit(Event::Hello);
        tracing::info!(node = %self.me, "this node runs the live path");
        Ok(())
    }

    fn step_down(&mut self) {
        if let Some(lead) = self.lead.take() {
            self.connections.fan_out(None);
            lead.lease.abort();
            for task in lead.tasks {
                task.abort();
            }
        }
    }

    /// Messages from the other nodes may have been lost (the listening
    /// connection failed and was made again): start afresh.
    fn lost_messages(&mut self) {
        tracing::warn!("the connection listening to the other nodes was lost: starting afresh");
        let Some(lead) = self.lead.as_mut() else { return self.reset("messages from the leader were lost") };
        // Followers' commands were lost: let everyone go, and have everyone announce themselves again.
        for (connection, held) in lead.nodes.drain().flat_map(|(_, node)| node.connections) {
            let live = lead.live.clone();
            tokio::spawn(async move { live.send(undo(connection, held)).await });
        }
        self.reset("messages from the other nodes were lost");
        self.emit(Event::Hello);
    }

    /// Forgets what waits for the leader and closes this node's connections
    /// for their clients to reconnect and announce themselves again.
    fn reset(&mut self, why: &str) {
        for (_, (waiting, _)) in self.calls.drain() {
            waiting.answer(Err(gone()));
        }
        self.watchers.clear();
        let closed = self.connections.reconnect_all();
        tracing::info!(closed, why, "connections asked to reconnect");
    }
}

fn gone() -> Failure {
    (ErrorCode::Refused, "the live path moved to another signaling node; try again".into())
}

fn send_now(out: &mpsc::UnboundedSender<(&'static str, String)>, message: &FromLeader) {
    if let Ok(text) = serde_json::to_string(message) {
        let _ = out.send((FROM_LEADER, text));
    }
}

/// Carries the views the dispatcher makes for a coordinator on another node
/// to that node, until the dispatcher drops the subscription.
async fn forward_views(
    mut views: mpsc::Receiver<Message>,
    out: mpsc::UnboundedSender<(&'static str, String)>,
    me: String,
    to: String,
    connection: String,
) {
    while let Some(view) = views.recv().await {
        let Message::Text(text) = view else { continue };
        let event =
            Event::View { to: to.clone(), connection: connection.clone(), text: text.as_str().to_owned() };
        send_now(&out, &FromLeader { leader: me.clone(), event });
    }
}

/// Hands on what the other nodes send, `None` when some may have been lost.
async fn listen(mut notifications: Notifications, heard: mpsc::Sender<Option<(String, String)>>) {
    loop {
        let message = match notifications.recv().await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "listening to the other signaling nodes failed");
                tokio::time::sleep(HEARTBEAT).await;
                continue;
            }
        };
        if heard.send(message).await.is_err() {
            return;
        }
    }
}

/// Sends the queued messages in the order they were made: whatever queued
/// up while the last batch was sent goes in one transaction.
async fn send_loop(store: Store, mut queue: mpsc::UnboundedReceiver<(&'static str, String)>) {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, SEND_BATCH).await > 0 {
        let messages: Vec<(&str, &str)> = batch.iter().map(|(c, m)| (*c, m.as_str())).collect();
        if let Err(error) = store.notify_all(&messages).await {
            tracing::warn!(%error, lost = messages.len(), "cannot send messages to the other signaling nodes");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(connection: &str, account: &str) -> Command {
        let info = PersonInfo {
            person: crate::matcher::Person {
                id: account.into(),
                lawyer: true,
                interpreter: false,
                languages: Default::default(),
                topics: Default::default(),
                regions: Default::default(),
                daily_cap: 1,
                taken_today: 0,
            },
            name: "Lawyer".into(),
            on_duty: true,
            day_start: 0,
        };
        Command::PersonConnected { connection: connection.into(), info: Box::new(info) }
    }

    #[test]
    fn a_disconnect_counts_only_after_its_own_connect() {
        let mut node = Follower::new();
        let gone = |c: &str| Command::PersonDisconnected { connection: c.into(), account: "a".into() };
        // A connection announced to an earlier leader goes away: nothing to undo.
        assert!(!track(&mut node, &gone("old")));
        assert!(track(&mut node, &person("new", "a")));
        assert!(!track(&mut node, &person("new", "a")), "announced twice counts once");
        assert!(track(&mut node, &gone("new")));
        assert!(!track(&mut node, &gone("new")));
        assert!(node.connections.is_empty());
    }

    #[test]
    fn commands_survive_the_wire() {
        let (reply, _answer) = oneshot::channel();
        let command = Command::Request {
            terminal: "t".into(),
            language: Language::parse("bo").unwrap(),
            topic: Topic::Land,
            asked: Some(crate::live::Asked { lawyer: "l".into(), appointment: Some("a".into()) }),
            received: Instant::now(),
            reply,
        };
        let Outgoing { wire, waiting, watcher } = outgoing(command).unwrap();
        assert!(matches!(waiting, Some(Waiting::Unit(_))) && watcher.is_none());
        let text =
            serde_json::to_string(&ToLeader { from: "n".into(), call: Some(3), command: wire }).unwrap();
        let back: ToLeader = serde_json::from_str(&text).unwrap();
        assert_eq!(back.call, Some(3));
        assert!(matches!(back.command, Wire::Request { ref terminal, ref asked, .. }
            if terminal == "t" && asked.as_ref().is_some_and(|a| a.appointment.as_deref() == Some("a"))));
        let text = serde_json::to_string(&outgoing(person("c", "a")).unwrap().wire).unwrap();
        assert!(matches!(serde_json::from_str(&text).unwrap(), Wire::PersonConnected { .. }));
        // What only the leader makes never travels.
        assert!(outgoing(Command::RelayLost(0)).is_none());
    }
}
