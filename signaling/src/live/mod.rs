//! The live path: residents waiting at terminals, lawyers and interpreters on
//! duty, offers, consultations, and the coordinators watching.
//!
//! One task owns all of it. WebSocket connections send it [`Command`]s
//! through [`Live`]. The decisions are plain code, [`dispatch::Dispatcher`]:
//! it takes [`dispatch::Input`]s, feeds the [`crate::matcher::Matcher`], and
//! returns [`dispatch::Effect`]s: notices for people and terminals (in this
//! module's own words, [`Notice`]; the WebSocket layer sends them as they are,
//! through the [`Outlet`] it implements), writes, rooms to open and close,
//! room tokens to issue. The task (`task.rs`) carries them out. Because one
//! task decides, nobody is rung for two requests or put in two consultations
//! by a race; the database's unique indexes say the same again.
//!
//! Durability: a new request is written before the resident is told it waits;
//! everything after that (offers, starts, ends) goes through one ordered
//! writer task, so the database sees events in the order they happened. After
//! a restart, [`Live::start`] loads waiting requests and open consultations;
//! their people get them back when they reconnect (the grace period counts
//! from the restart).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::auth::tokens::Tokens;
use crate::domain::{ErrorCode, Failure, Language, Topic};
use crate::ids::{
    AccountId, AppointmentId, ConsultationId, ParticipantId, RegionId, RequestId, RoomId, TerminalId,
};
use crate::matcher::{self, MatcherConfig};
use crate::metrics::Metrics;
use crate::relay::Relays;
use crate::schedule::Scheduler;
use crate::store::{AppointmentRecord, Store, StoreError};

pub mod dispatch;
mod task;
mod writer;

pub use dispatch::{Clock, Dispatcher, Effect, Input};

/// The live path's rules. All seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Languages a terminal may ask in (ISO 639-1).
    pub languages: Vec<String>,
    /// How long one person is rung before the request moves on.
    pub offer_timeout_secs: u64,
    /// How long a request waits for busy people of ring 0 (the region's
    /// team), 1 (anyone with the language and topic) and 2 (anyone with the
    /// language) before ring 1, 2 and 3 (any lawyer with an interpreter) may
    /// be rung instead, counted from the request. Empty rings never hold it.
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

    pub fn matcher(&self) -> MatcherConfig {
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

/// How a resident reaches the service: a kiosk, or the hotline (audio only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    #[default]
    Kiosk,
    Phone,
}

impl Channel {
    /// A terminal's `channel` column.
    pub fn of(column: &str) -> Channel {
        if column == "phone" { Channel::Phone } else { Channel::Kiosk }
    }

    /// As the column, the protocol and the metrics' label write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Kiosk => "kiosk",
            Channel::Phone => "phone",
        }
    }
}

/// Who a call the server placed on a phone line is for: the lawyer who asked
/// for it is rung first, and an appointment's call keeps that appointment
/// (its request waits at the front, and completes it when the call begins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    pub lawyer: AccountId,
    pub appointment: Option<AppointmentId>,
}

/// Another participant, as a consultation's participants see each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The account or terminal id: the peer's media streams carry it as their id.
    pub participant: ParticipantId,
    pub role: Role,
    pub name: String,
    /// The resident's channel (a phone caller sends audio only); absent for lawyers and interpreters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
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
    pub region_id: RegionId,
    pub waiting: usize,
    pub longest_wait_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    pub request: RequestId,
    pub region_id: RegionId,
    pub terminal_id: TerminalId,
    pub language: String,
    pub topic: Topic,
    pub waited_secs: u64,
    /// 1 = next; none while its terminal is away.
    pub position: Option<usize>,
    /// Someone is being rung for it.
    pub ringing: bool,
    pub channel: Channel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonView {
    pub id: AccountId,
    pub name: String,
    pub lawyer: bool,
    pub interpreter: bool,
    pub languages: Vec<String>,
    pub state: PresenceState,
    pub on_duty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsultationSummary {
    pub id: ConsultationId,
    pub region_id: RegionId,
    pub language: String,
    pub topic: Topic,
    pub started_at: i64,
    pub lawyer: String,
    pub interpreter: Option<String>,
    /// Participants whose connection dropped (the room waits for them).
    pub waiting_for: Vec<Role>,
    pub channel: Channel,
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
    pub id: TerminalId,
    pub name: String,
    pub region_id: RegionId,
    pub region_name: String,
    #[serde(default)]
    pub channel: Channel,
}

/// What a lawyer or interpreter asks to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WantedPresence {
    Available,
    Break,
    Offline,
}

/// Which of a person's connections a notice goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    All,
    /// The connection (by its id) that asked.
    Only(String),
    /// All but that one.
    Except(String),
}

/// Who a notice is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    Account { account: AccountId, reach: Reach },
    Terminal(TerminalId),
}

impl To {
    /// All of a person's connections.
    pub fn account(id: &AccountId) -> To {
        To::Account { account: id.clone(), reach: Reach::All }
    }
}

/// What the live path tells people and terminals. Each is a WebSocket
/// message as it is (PROTOCOL.md); the WebSocket layer sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// The recipient's own state as the matcher sees it: `offline`,
    /// `available`, `ringing`, `in_consultation`, `wrap_up`, `break`. Only
    /// `available` people who are `on_duty` (by their hours or a roster) are rung.
    Presence {
        state: PresenceState,
        on_duty: bool,
        /// The consultation the person is in, or writing the record of.
        #[serde(skip_serializing_if = "Option::is_none")]
        consultation: Option<ConsultationId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        wrap_up_until: Option<i64>,
    },
    /// A terminal's request is waiting: its place (1 = next) and an estimate.
    /// `nobody_on_duty`: no one who could take it is on duty now (offer an
    /// appointment); it keeps waiting until cancelled.
    #[serde(rename = "consult.queued")]
    ConsultQueued {
        request: RequestId,
        position: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        estimated_wait_secs: Option<u64>,
        nobody_on_duty: bool,
    },
    #[serde(rename = "consult.cancelled")]
    ConsultCancelled { request: RequestId },
    /// A lawyer (or, in a three-way, an interpreter) is rung: accept or
    /// decline before `expires_in_secs`.
    #[serde(rename = "consult.offer")]
    ConsultOffer {
        request: RequestId,
        role: Role,
        language: String,
        topic: Topic,
        region_id: RegionId,
        region_name: String,
        waited_secs: u64,
        expires_in_secs: u64,
        three_way: bool,
    },
    /// The answer to `consult.accept`, to the connection that sent it. When
    /// `waiting_for` names a role (a three-way: `interpreter` or `lawyer`),
    /// the call starts once they accept too; otherwise `consult.started`
    /// follows at once.
    #[serde(rename = "consult.accepted")]
    ConsultAccepted {
        request: RequestId,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        waiting_for: Option<Role>,
    },
    /// The answer to `consult.decline`, to the connection that sent it.
    #[serde(rename = "consult.declined")]
    ConsultDeclined {
        request: RequestId,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// The offer is gone (taken, timed out, cancelled by the resident, or in
    /// a three-way the other person declined or did not answer).
    #[serde(rename = "consult.offer_withdrawn")]
    ConsultOfferWithdrawn { request: RequestId },
    /// The consultation is on: join the room with `token` (`rtc.join`). Sent
    /// again, with a fresh token and `resumed`, to a participant who comes back.
    /// A lawyer's or interpreter's other connections (another tab) get it with
    /// `elsewhere`: the call was taken on the connection that accepted.
    #[serde(rename = "consult.started")]
    ConsultStarted {
        consultation: ConsultationId,
        request: RequestId,
        room: RoomId,
        token: String,
        role: Role,
        language: String,
        topic: Topic,
        peers: Vec<Peer>,
        resumed: bool,
        elsewhere: bool,
    },
    /// Another participant's connection went (`present: false`) or came back.
    #[serde(rename = "consult.peer")]
    ConsultPeer { consultation: ConsultationId, role: Role, present: bool },
    /// The call is over (`hung_up`, `resident_lost`, `lawyer_lost`). The lawyer
    /// is in wrap-up until `wrap_up_until`; a resident whose lawyer was lost
    /// waits again at the front of the queue (`requeued`).
    #[serde(rename = "consult.ended")]
    ConsultEnded {
        consultation: ConsultationId,
        reason: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        wrap_up_until: Option<i64>,
        requeued: bool,
    },
    /// The coordinator's live view of their regions (no consultation content).
    #[serde(rename = "live.view")]
    LiveView(LiveView),
    /// Something the recipient asked for failed later (a request that could
    /// not be stored).
    Error { code: ErrorCode, message: String },
}

/// Where notices go: the WebSocket layer's open connections.
pub trait Outlet: Send + Sync + std::fmt::Debug {
    fn push(&self, to: &To, notice: &Notice);
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
        reply: Reply,
    },
    Request {
        terminal: TerminalId,
        language: Language,
        topic: Topic,
        /// Who a phone line's callback is for (ignored from kiosks).
        asked: Option<Asked>,
        received: Instant,
        reply: Reply,
    },
    Cancel {
        terminal: TerminalId,
        request: RequestId,
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
    Hangup {
        participant: ParticipantId,
        consultation: ConsultationId,
        reply: Reply,
    },
    /// The resident's rating; the reply says how many rows it changed (0:
    /// no such consultation at this terminal, or already rated).
    Rate {
        terminal: TerminalId,
        consultation: ConsultationId,
        rating: u8,
        reply: oneshot::Sender<Result<u64, Failure>>,
    },
    RecordSaved {
        consultation: ConsultationId,
    },
    /// Who is on duty now, the regions of their teams and their day, by account.
    Duty(HashMap<AccountId, Duty>),
    /// An appointment starts now.
    AppointmentDue(AppointmentRecord),
    /// From the writer: a new request or a wrap-up's end is on disk (or
    /// could not be stored).
    Stored(Input),
    Subscribe {
        connection: String,
        regions: Option<Vec<RegionId>>,
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
    pub account: AccountId,
    /// The connection that answered: it gets the call (`consult.started`);
    /// the person's other connections hear the call is elsewhere.
    pub connection: String,
    pub request: RequestId,
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

fn gone() -> Failure {
    (ErrorCode::Refused, "the live service is shutting down".into())
}

impl Live {
    /// Loads what was waiting or open when the server stopped and starts the
    /// dispatcher's task and its writer.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        config: LiveConfig,
        store: Store,
        tokens: Tokens,
        relays: Relays,
        outlet: Arc<dyn Outlet>,
        scheduler: Arc<Scheduler>,
        metrics: Arc<Metrics>,
    ) -> Result<(Live, tokio::task::JoinHandle<()>), StoreError> {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let parts = task::Parts { store, tokens, relays, outlet, scheduler, metrics };
        let task = task::start(config.clone(), parts, tx.downgrade(), rx).await?;
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

    pub async fn presence(&self, account: &AccountId, want: WantedPresence) -> Result<(), Failure> {
        self.ask(|reply| Command::Presence { account: account.into(), want, reply }).await
    }

    pub async fn request(
        &self,
        terminal: &TerminalId,
        language: Language,
        topic: Topic,
        asked: Option<Asked>,
    ) -> Result<(), Failure> {
        let received = Instant::now();
        if !self.config.languages.iter().any(|l| l == language.as_str()) {
            return Err((
                ErrorCode::Invalid,
                format!("language: one of {}", self.config.languages.join(", ")),
            ));
        }
        self.ask(|reply| Command::Request {
            terminal: terminal.into(),
            language,
            topic,
            asked,
            received,
            reply,
        })
        .await
    }

    pub async fn cancel(&self, terminal: &TerminalId, request: &RequestId) -> Result<(), Failure> {
        self.ask(|reply| Command::Cancel { terminal: terminal.into(), request: request.into(), reply }).await
    }

    pub async fn accept(&self, answer: Answer) -> Result<(), Failure> {
        self.ask(|reply| Command::Accept { answer, reply }).await
    }

    pub async fn decline(&self, answer: Answer) -> Result<(), Failure> {
        self.ask(|reply| Command::Decline { answer, reply }).await
    }

    /// Records a rating after the call, in order with the call's end.
    pub async fn rate(
        &self,
        terminal: &TerminalId,
        consultation: &ConsultationId,
        rating: u8,
    ) -> Result<u64, Failure> {
        let (reply, answer) = oneshot::channel();
        let command =
            Command::Rate { terminal: terminal.into(), consultation: consultation.into(), rating, reply };
        self.tx.send(command).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    pub async fn hangup(
        &self,
        participant: &ParticipantId,
        consultation: &ConsultationId,
    ) -> Result<(), Failure> {
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
    pub regions: BTreeSet<RegionId>,
    /// Local midnight of the person's today.
    pub day_start: i64,
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
