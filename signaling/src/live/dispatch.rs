//! The dispatcher's decisions, as plain code: [`Dispatcher`] holds who is
//! connected, waiting, rung and in a call; [`Dispatcher::handle`] takes one
//! [`Input`] at one [`Clock`] reading and queues the [`Effect`]s that carry
//! the decision out: notices for participants, database writes, rooms to
//! place, open and close, room tokens to issue. It does no I/O and reads no
//! clock of its own, so the whole live path can be driven on simulated time
//! (the simulation test beside it). The task in `task.rs` runs it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{
    Channel, ConsultationSummary, Duty, LiveConfig, LiveView, Notice, Peer, PersonInfo, PersonView,
    PresenceState, QueueEntry, Reach, RegionQueue, Role, TerminalInfo, To, WantedPresence,
};
use crate::domain::{ErrorCode, Failure, Language, Topic};
use crate::ids::{
    AccountId, ConsultationId, ParticipantId, RegionId, RequestId, RoomId, TerminalId, room_of,
};
use crate::live::Answer;
use crate::matcher::{self, Action, Event, Matcher, Waiter};
use crate::store::{
    AppointmentRecord, LiveWrite, OfferOutcome, OfferRow, OpenConsultation, RequestEnd, RequestRow,
    StartedConsultation,
};

#[cfg(test)]
#[path = "simulation.rs"]
mod simulation;

/// The time an input is handled at: monotonic for durations, and the wall
/// clock (seconds since the Unix epoch) for what is stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: Instant,
    pub at: i64,
}

impl Clock {
    /// The real time.
    pub fn real() -> Clock {
        Clock { now: Instant::now(), at: crate::unix_now() }
    }
}

/// What the dispatcher is told: by connections (through [`super::Command`]),
/// the writer, the duty loop, the relays and the clock.
#[derive(Debug)]
pub enum Input {
    PersonConnected(Box<PersonInfo>),
    PersonDisconnected {
        account: AccountId,
        /// The connection's id.
        connection: String,
    },
    TerminalConnected(TerminalInfo),
    TerminalDisconnected {
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
        /// Who a phone line's callback is for (ignored from kiosks).
        asked: Option<super::Asked>,
        /// When the resident's message was read (for the request-to-ring latency).
        received: Instant,
    },
    Cancel {
        terminal: TerminalId,
        request: RequestId,
    },
    Accept(Answer),
    Decline(Answer),
    Hangup {
        participant: ParticipantId,
        consultation: ConsultationId,
    },
    /// The resident's rating; `reply` hears how many rows it changed.
    Rate {
        terminal: TerminalId,
        consultation: ConsultationId,
        rating: u8,
        reply: oneshot::Sender<Result<u64, Failure>>,
    },
    RecordSaved {
        consultation: ConsultationId,
    },
    /// A wrap-up's end is on disk.
    WrapUpStored {
        consultation: ConsultationId,
    },
    Duty(HashMap<AccountId, Duty>),
    AppointmentDue(AppointmentRecord),
    /// A new request is on disk (or could not be stored).
    Recorded {
        request: RequestId,
        ok: bool,
    },
    /// The consultation's room was placed on another relay (its own was lost).
    RoomMoved {
        consultation: ConsultationId,
    },
    /// Open when the server stopped (at start-up).
    RestoreConsultation(OpenConsultation),
    /// Waiting when the server stopped (at start-up).
    RestoreRequest(RequestRow),
    /// Time passes: offers time out, rings widen, grace periods and wrap-ups end.
    Tick,
    /// Tell each waiting terminal its place, if it changed.
    Positions,
}

/// What the dispatcher decided is to be done, in order.
#[derive(Debug)]
pub enum Effect {
    /// Tell a person's or a terminal's connections.
    Push {
        to: To,
        notice: Notice,
    },
    /// A participant joins a consultation: issue it a room token (naming the
    /// relay the room is on) and send `consult.started`, `via` the connection
    /// that accepted (the person's others hear it is elsewhere) or to all.
    Started {
        started: Started,
        via: Option<String>,
    },
    /// Store this, in order with every other write; then do `then`.
    Write {
        write: LiveWrite,
        then: Option<Then>,
    },
    /// Place a consultation's room on a relay in or near `region`, and open
    /// it there now (or, `open: false`, when its first participant joins).
    PlaceRoom {
        room: RoomId,
        region: RegionId,
        open: bool,
    },
    /// Open a room on the relay it was placed on (after a move).
    OpenRoom {
        room: RoomId,
    },
    CloseRoom {
        room: RoomId,
    },
    /// A new request was rung for the first time, `waited` after it was read.
    Rung {
        waited: Duration,
    },
    /// A consultation began, with a resident of this channel.
    Began {
        channel: Channel,
    },
}

/// What happens once a write is on disk.
#[derive(Debug)]
pub enum Then {
    /// Answer with the rows it changed.
    Reply(oneshot::Sender<Result<u64, Failure>>),
    /// Push a notice (failed write or not: the write is logged).
    Tell(To, Notice),
}

/// A participant's `consult.started`, but for the room token, which the
/// task issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub participant: ParticipantId,
    pub consultation: ConsultationId,
    pub request: RequestId,
    pub role: Role,
    pub language: String,
    pub topic: Topic,
    pub peers: Vec<Peer>,
    pub resumed: bool,
    pub token_ttl: Duration,
}

impl Started {
    pub fn notice(&self, token: String, elsewhere: bool) -> Notice {
        Notice::ConsultStarted {
            consultation: self.consultation.clone(),
            request: self.request.clone(),
            room: room_of(&self.consultation),
            token,
            role: self.role,
            language: self.language.clone(),
            topic: self.topic,
            peers: self.peers.clone(),
            resumed: self.resumed,
            elsewhere,
        }
    }
}

#[derive(Debug)]
struct PersonLive {
    info: PersonInfo,
    connections: u32,
    /// When the last connection closed.
    gone_at: Option<Instant>,
    want: WantedPresence,
    in_matcher: bool,
    ringing: Option<RequestId>,
    consultation: Option<ConsultationId>,
    /// The consultation whose record is being written, and until when.
    wrap_up: Option<(ConsultationId, i64)>,
    /// The wrap-up's end is being written: the person is rung again once it is on disk.
    wrap_up_ending: bool,
}

#[derive(Debug)]
struct TerminalLive {
    info: TerminalInfo,
    connections: u32,
    gone_at: Option<Instant>,
    request: Option<RequestId>,
    consultation: Option<ConsultationId>,
    /// An appointment that started while the terminal was in another call:
    /// it becomes the terminal's request when the terminal is free.
    deferred: Option<AppointmentRecord>,
}

#[derive(Debug)]
struct RequestLive {
    terminal: TerminalId,
    region: RegionId,
    language: Language,
    topic: Topic,
    created_at: i64,
    front: bool,
    preferred: Option<AccountId>,
    in_matcher: bool,
    /// On disk: only then is the resident told it waits.
    recorded: bool,
    /// When the resident asked, until the first offer (for the latency metric).
    received: Option<Instant>,
}

#[derive(Debug)]
struct ConsultLive {
    request: RequestId,
    terminal: TerminalId,
    region: RegionId,
    language: String,
    topic: Topic,
    lawyer: AccountId,
    interpreter: Option<AccountId>,
    started_at: i64,
    /// Participants whose connection dropped, since when.
    absent: BTreeMap<ParticipantId, Instant>,
}

impl ConsultLive {
    fn role_of(&self, participant: &str) -> Option<Role> {
        if self.terminal == *participant {
            Some(Role::Resident)
        } else if self.lawyer == *participant {
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
    lawyer: Option<(AccountId, String)>,
    interpreter: Option<(AccountId, String)>,
    deadline: Option<Instant>,
    /// Who has accepted, on which connection while it is open (a three-way waits for both).
    accepted: Vec<(AccountId, Option<String>)>,
}

/// The live path's state and rules: [`Dispatcher::handle`] takes an
/// [`Input`] at a [`Clock`] reading, changes the state, and queues the
/// [`Effect`]s that carry the decision out ([`Dispatcher::effects`]).
#[derive(Debug)]
pub struct Dispatcher {
    config: LiveConfig,
    matcher: Matcher,
    /// The time of the input being handled.
    clock: Clock,
    /// What to do, in order, since the last [`Dispatcher::effects`].
    out: Vec<Effect>,
    /// Ids of new requests, offers and consultations: random, or counted
    /// (for a simulation that must replay exactly).
    counted_ids: Option<u64>,
    people: HashMap<AccountId, PersonLive>,
    terminals: HashMap<TerminalId, TerminalLive>,
    requests: HashMap<RequestId, RequestLive>,
    consultations: HashMap<ConsultationId, ConsultLive>,
    /// The current offer of each request being rung.
    offers: HashMap<RequestId, OfferLive>,
    /// What each waiting request's terminal was last told: (position, estimate, nobody on duty).
    told: HashMap<RequestId, (usize, Option<u64>, bool)>,
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
    pub fn new(config: LiveConfig, clock: Clock) -> Dispatcher {
        Dispatcher {
            matcher: Matcher::new(config.matcher()),
            avg_consultation_secs: config.average_consultation_secs as f64,
            config,
            clock,
            out: Vec::new(),
            counted_ids: None,
            people: HashMap::new(),
            terminals: HashMap::new(),
            requests: HashMap::new(),
            consultations: HashMap::new(),
            offers: HashMap::new(),
            told: HashMap::new(),
            dirty: true,
            serving: HashMap::new(),
        }
    }

    /// Makes ids `n`, `n+1`, ... instead of random ones: the same inputs then
    /// give the same effects, to the byte.
    pub fn counting_ids_from(mut self, n: u64) -> Dispatcher {
        self.counted_ids = Some(n);
        self
    }

    /// A new request's, offer's or consultation's id.
    fn new_id<Id: From<String>>(&mut self) -> Id {
        Id::from(match &mut self.counted_ids {
            Some(n) => {
                *n += 1;
                format!("id-{n:08}")
            }
            None => crate::store::new_id(),
        })
    }

    /// What to carry out for the inputs handled since the last call, in order.
    pub fn effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }

    /// Whether anything a coordinator sees changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The open consultations and their regions (to move those on a relay that was lost).
    pub fn consultation_regions(&self) -> Vec<(ConsultationId, RegionId)> {
        self.consultations.iter().map(|(id, c)| (id.clone(), c.region.clone())).collect()
    }

    fn now(&self) -> Instant {
        self.clock.now
    }

    /// Seconds since the Unix epoch, as of the input being handled.
    fn at(&self) -> i64 {
        self.clock.at
    }

    fn effect(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    fn write(&mut self, write: LiveWrite) {
        self.out.push(Effect::Write { write, then: None });
    }

    fn tell(&mut self, to: To, notice: Notice) {
        self.out.push(Effect::Push { to, notice });
    }

    /// Handles one input at `clock`. The answer is for whoever sent it; the
    /// effects wait in [`Dispatcher::effects`].
    pub fn handle(&mut self, input: Input, clock: Clock) -> Result<(), Failure> {
        self.clock = clock;
        let now = clock.now;
        if !matches!(input, Input::Tick | Input::Positions) {
            self.dirty = true;
        }
        match input {
            Input::PersonConnected(info) => self.person_connected(*info, now),
            Input::PersonDisconnected { account, connection } => {
                self.person_disconnected(&account, &connection, now)
            }
            Input::TerminalConnected(info) => self.terminal_connected(info, now),
            Input::TerminalDisconnected { terminal } => self.terminal_disconnected(&terminal, now),
            Input::Presence { account, want } => return self.set_presence(&account, want, now),
            Input::Request { terminal, language, topic, asked, received } => {
                return self.new_request(&terminal, language, topic, asked, received, now);
            }
            Input::Recorded { request, ok: true } => self.recorded(&request),
            Input::Recorded { request, ok: false } => self.not_recorded(&request, now),
            Input::Cancel { terminal, request } => return self.cancel(&terminal, &request, now),
            Input::Accept(answer) => return self.accept(answer, now),
            Input::Decline(answer) => return self.decline(answer, now),
            Input::WrapUpStored { consultation } => self.wrap_up_stored(&consultation, now),
            Input::Hangup { participant, consultation } => {
                return match self.consultations.get(&consultation) {
                    Some(c) if c.role_of(&participant).is_some() => {
                        self.end_consultation(&consultation, "hung_up", false, now);
                        Ok(())
                    }
                    _ => Err(not_found("consultation")),
                };
            }
            Input::Rate { terminal, consultation, rating, reply } => {
                if self.consultations.get(&consultation).is_some_and(|c| c.terminal == terminal) {
                    let _ = reply.send(Err((ErrorCode::Conflict, "rate after the call has ended".into())));
                } else {
                    // After the call's end in the writer's order, so never refused as too early.
                    let write =
                        LiveWrite::Rate { consultation, terminal_id: terminal, rating: rating.into() };
                    self.effect(Effect::Write { write, then: Some(Then::Reply(reply)) });
                }
            }
            Input::RecordSaved { consultation } => {
                let lawyer = self
                    .people
                    .iter()
                    .find(|(_, p)| p.wrap_up.as_ref().is_some_and(|(c, _)| *c == consultation))
                    .map(|(id, _)| id.clone());
                if let Some(lawyer) = lawyer {
                    self.finish_wrap_up(&lawyer);
                }
            }
            Input::Duty(duty) => self.apply_duty(duty),
            Input::AppointmentDue(appointment) => self.appointment_due(appointment, now),
            Input::RoomMoved { consultation } => self.room_moved(&consultation),
            Input::RestoreConsultation(c) => self.restore_consultation(c),
            Input::RestoreRequest(row) => self.restore_request(row),
            Input::Tick => {
                self.serving.clear();
                let actions = self.matcher.handle(Event::Tick, now);
                self.apply(actions, now);
                self.expire(now);
            }
            Input::Positions => self.tell_positions(),
        }
        Ok(())
    }

    /// A consultation's room moved to another relay (its relay stopped
    /// answering): each participant gets a fresh `consult.started`
    /// (`resumed`), and the apps join the new room by themselves.
    fn room_moved(&mut self, id: &ConsultationId) {
        let Some(c) = self.consultations.get(id) else { return };
        let participants: Vec<String> = c.participants().map(|(p, _)| p.to_owned()).collect();
        self.effect(Effect::OpenRoom { room: room_of(id) });
        for participant in participants {
            self.send_started(id, &participant, true, None);
        }
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

    fn person_disconnected(&mut self, account: &AccountId, connection: &str, now: Instant) {
        // A three-way accepted on this connection, still waiting for the
        // other: the call will go to whichever connection the person has then.
        for offer in self.offers.values_mut() {
            for (person, on) in &mut offer.accepted {
                if person == account && on.as_deref() == Some(connection) {
                    *on = None;
                }
            }
        }
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

    fn set_presence(
        &mut self,
        account: &AccountId,
        want: WantedPresence,
        now: Instant,
    ) -> Result<(), Failure> {
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
    fn sync_person(&mut self, id: &AccountId, now: Instant) {
        let Some(p) = self.people.get_mut(id) else { return };
        let eligible = p.connections > 0 && p.want == WantedPresence::Available && p.info.on_duty;
        let actions = if p.consultation.is_some() || p.wrap_up.is_some() {
            // Busy in the matcher until the wrap-up ends; but one who went
            // offline or off duty meanwhile is no one a request may wait for.
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

    fn tell_presence(&mut self, id: &AccountId) {
        let Some(p) = self.people.get(id) else { return };
        let message = Notice::Presence {
            state: self.state_of(p),
            on_duty: p.info.on_duty,
            consultation: p.consultation.clone().or_else(|| p.wrap_up.as_ref().map(|(c, _)| c.clone())),
            wrap_up_until: p.wrap_up.as_ref().map(|(_, until)| *until),
        };
        self.tell(To::account(id), message);
    }

    /// Ends a lawyer's wrap-up: written first, and only once it is on disk
    /// ([`Command::WrapUpStored`]) is the lawyer available again, so that
    /// nobody reads `wrap_up` from the API after the lawyer was told otherwise.
    fn finish_wrap_up(&mut self, lawyer: &AccountId) {
        let Some(p) = self.people.get_mut(lawyer) else { return };
        let Some((consultation, _)) = &p.wrap_up else { return };
        if !p.wrap_up_ending {
            p.wrap_up_ending = true;
            let write = LiveWrite::FinishWrapUp(consultation.clone());
            self.write(write);
        }
    }

    fn wrap_up_stored(&mut self, consultation: &ConsultationId, now: Instant) {
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
    fn apply_duty(&mut self, duty: HashMap<AccountId, Duty>) {
        let now = self.now();
        let ids: Vec<AccountId> =
            self.people.iter().filter(|(_, p)| p.connections > 0).map(|(id, _)| id.clone()).collect();
        let mut ids = ids;
        ids.sort();
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
        if t.info.channel == Channel::Phone {
            // A phone line that connects carries a new call: whatever the line
            // held before (restored after a restart) was another caller's.
            if let Some(r) = request {
                let _ = self.cancel(&id, &r, now);
            }
            if let Some(c) = consultation {
                self.end_consultation(&c, "hung_up", false, now);
            }
            return;
        }
        if let Some(c) = consultation {
            self.returned(&c, &id);
        }
        if let Some(r) = request {
            self.enter_matcher(&r, now);
            self.told.remove(&r);
            self.tell_position(&r);
        }
    }

    fn terminal_disconnected(&mut self, terminal: &TerminalId, now: Instant) {
        let Some(t) = self.terminals.get_mut(terminal) else { return };
        t.connections = t.connections.saturating_sub(1);
        if t.connections > 0 {
            return;
        }
        t.gone_at = Some(now);
        let (request, consultation) = (t.request.clone(), t.consultation.clone());
        if t.info.channel == Channel::Phone {
            // A phone line closes when its call is over: that caller will not
            // come back, and the line's next caller must not inherit them.
            if let Some(r) = request {
                let _ = self.cancel(terminal, &r, now);
            }
            if let Some(c) = consultation {
                self.end_consultation(&c, "hung_up", false, now);
            }
            return;
        }
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

    fn matcher_request(&self, id: &RequestId) -> Option<matcher::Request> {
        let r = self.requests.get(id)?;
        Some(matcher::Request {
            id: id.into(),
            region: r.region.clone(),
            language: r.language.clone(),
            topic: r.topic,
        })
    }

    /// Puts a request its terminal is present for into the matcher, keeping its age.
    fn enter_matcher(&mut self, id: &RequestId, now: Instant) {
        let Some(request) = self.matcher_request(id) else { return };
        let at = self.at();
        let Some(r) = self.requests.get_mut(id) else { return };
        if r.in_matcher {
            return;
        }
        r.in_matcher = true;
        let waited = Duration::from_secs(at.saturating_sub(r.created_at).max(0) as u64);
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
        asked: Option<super::Asked>,
        received: Instant,
        now: Instant,
    ) -> Result<(), Failure> {
        let t = self.terminals.get(terminal).ok_or_else(|| not_found("terminal"))?;
        // Only a phone line names a lawyer: a callback the lawyer asked for
        // (an appointment's waits at the front, as a kiosk's does).
        let asked = asked.filter(|_| t.info.channel == Channel::Phone);
        let (preferred, appointment) = match asked {
            Some(super::Asked { lawyer, appointment }) => (Some(lawyer), appointment),
            None => (None, None),
        };
        if t.consultation.is_some() {
            return Err((ErrorCode::Conflict, "a consultation is open at this terminal".into()));
        }
        if t.request.is_some() {
            return Err((ErrorCode::Conflict, "this terminal already waits; cancel first".into()));
        }
        let region_id = t.info.region_id.clone();
        let row = RequestRow {
            id: self.new_id(),
            terminal_id: terminal.into(),
            region_id,
            language: language.as_str().into(),
            topic: topic.code().into(),
            front: appointment.is_some(),
            preferred_lawyer_id: preferred,
            created_at: self.at(),
            appointment_id: appointment,
        };
        self.write(LiveWrite::Request(row.clone()));
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
    fn recorded(&mut self, id: &RequestId) {
        let Some(r) = self.requests.get_mut(id) else { return };
        r.recorded = true;
        self.tell_position(id);
    }

    /// The request could not be stored: the resident is asked to try again.
    fn not_recorded(&mut self, id: &RequestId, now: Instant) {
        let Some(terminal) = self.requests.get(id).map(|r| r.terminal.clone()) else { return };
        self.close_request(id, RequestEnd::Cancelled, now);
        let message = Notice::Error {
            code: ErrorCode::Refused,
            message: "the request could not be recorded; ask again".into(),
        };
        self.tell(To::Terminal(terminal), message);
    }

    fn restore_request(&mut self, row: RequestRow) {
        let (Ok(language), Some(topic)) = (Language::parse(&row.language), Topic::from_code(&row.topic))
        else {
            return;
        };
        let now = self.now();
        self.absent_terminal(&row.terminal_id, &row.region_id, now);
        self.add_request(row, language, topic, None, true, now);
    }

    /// A terminal known before it connects (after a restart, or for an
    /// appointment): away since `now`.
    fn absent_terminal(&mut self, id: &TerminalId, region: &RegionId, now: Instant) -> &mut TerminalLive {
        self.terminals.entry(id.to_owned()).or_insert_with(|| TerminalLive {
            info: TerminalInfo {
                id: id.to_owned(),
                name: String::new(),
                region_id: region.to_owned(),
                region_name: String::new(),
                channel: Channel::default(),
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
        if a.by_phone() {
            // Nobody comes to a phone line: its lawyer calls the resident
            // (the call's request keeps the appointment).
            return;
        }
        let t = self.absent_terminal(&a.terminal_id, &a.region_id, now);
        if let Some(request) = t.request.clone() {
            // The resident already waits: that request is the appointment's now
            // (completed, no-show or cancelled with it).
            if let Some(r) = self.requests.get_mut(&request) {
                r.preferred = Some(a.lawyer_id.clone());
            }
            self.write(LiveWrite::AttachAppointment { request, appointment: a.id, lawyer: a.lawyer_id });
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
            id: self.new_id(),
            terminal_id: a.terminal_id,
            region_id: a.region_id,
            language: a.language,
            topic: a.topic,
            front: true,
            preferred_lawyer_id: Some(a.lawyer_id),
            created_at: self.at(),
            appointment_id: Some(a.id),
        };
        self.write(LiveWrite::Request(row.clone()));
        self.add_request(row, language, topic, None, false, now);
    }

    fn cancel(&mut self, terminal: &TerminalId, request: &RequestId, now: Instant) -> Result<(), Failure> {
        let theirs = self.requests.get(request).is_some_and(|r| r.terminal == *terminal);
        if !theirs {
            return Err(not_found("request"));
        }
        // The kiosk hears it once the cancel is on disk, so a restart in
        // between never brings back a request the resident was told is gone.
        // Told either way: the request is closed here, and a failed write is logged.
        let then = Then::Tell(
            To::Terminal(terminal.to_owned()),
            Notice::ConsultCancelled { request: request.into() },
        );
        self.close_request_then(request, RequestEnd::Cancelled, now, Some(then));
        Ok(())
    }

    fn close_request(&mut self, request: &RequestId, end: RequestEnd, now: Instant) {
        self.close_request_then(request, end, now, None);
    }

    /// Closes a request; `stored` hears when the close is on disk.
    fn close_request_then(&mut self, request: &RequestId, end: RequestEnd, now: Instant, then: Option<Then>) {
        let Some(r) = self.requests.remove(request) else { return };
        if let Some(t) = self.terminals.get_mut(&r.terminal) {
            t.request = None;
        }
        self.told.remove(request);
        let write = LiveWrite::CloseRequest(request.into(), end);
        self.effect(Effect::Write { write, then });
        if r.in_matcher {
            let actions = self.matcher.handle(Event::Cancelled { request: request.into() }, now);
            self.apply(actions, now);
        }
        self.run_deferred(&r.terminal, now);
    }

    /// A terminal that is free again takes up the appointment that started
    /// while it was busy: the resident waits at the front, for its lawyer.
    fn run_deferred(&mut self, terminal: &TerminalId, now: Instant) {
        let Some(t) = self.terminals.get_mut(terminal) else { return };
        if t.request.is_some() || t.consultation.is_some() {
            return;
        }
        if let Some(appointment) = t.deferred.take() {
            self.appointment_due(appointment, now);
        }
    }

    /// Tells a waiting terminal its place and estimated wait, when it changed.
    fn tell_position(&mut self, request: &RequestId) {
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
        request: &RequestId,
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
        let message = Notice::ConsultQueued {
            request: request.into(),
            position,
            estimated_wait_secs: estimate,
            nobody_on_duty: !anyone,
        };
        let terminal = r.terminal.clone();
        self.tell(To::Terminal(terminal), message);
    }

    /// Each waiting terminal's place, once a second (places move as others are served).
    fn tell_positions(&mut self) {
        let queue: Vec<RequestId> = self.matcher.queue().into_iter().cloned().collect();
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
                    let offer_id: String = self.new_id();
                    let at = self.at();
                    let row = OfferRow {
                        id: offer_id.clone(),
                        request_id: request.clone(),
                        account_id: person.clone(),
                        role: if interpreter { "interpreter" } else { "lawyer" },
                        offered_at: at,
                        deadline: at + self.config.offer_timeout_secs as i64,
                    };
                    self.write(LiveWrite::Offer(row));
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
                        let waited = now.saturating_duration_since(received);
                        self.effect(Effect::Rung { waited });
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
                    self.tell(To::account(&person), Notice::ConsultOfferWithdrawn { request });
                    self.tell_presence(&person);
                }
                Action::Holding { request, person } => {
                    tracing::info!(%request, %person, "accepted; waiting for the other of a three-way");
                }
                Action::Matched { request, lawyer, interpreter } => {
                    self.start_consultation(&request, &lawyer, interpreter.as_ref());
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
    fn end_offer(&mut self, request: &RequestId, person: &AccountId, outcome: OfferOutcome) {
        if let Some(offer) = self.offers.get_mut(request) {
            for slot in [&mut offer.lawyer, &mut offer.interpreter] {
                if let Some((_, id)) = slot.take_if(|(p, _)| p == person) {
                    self.out.push(Effect::Write { write: LiveWrite::DecideOffer(id, outcome), then: None });
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

    fn send_offer(&mut self, request: &RequestId, person: &AccountId, now: Instant) {
        let (Some(r), Some(offer)) = (self.requests.get(request), self.offers.get(request)) else { return };
        let as_interpreter = offer.interpreter.as_ref().is_some_and(|(p, _)| p == person);
        let region_name =
            self.terminals.get(&r.terminal).map(|t| t.info.region_name.clone()).unwrap_or_default();
        let message = Notice::ConsultOffer {
            request: request.into(),
            role: if as_interpreter { Role::Interpreter } else { Role::Lawyer },
            language: r.language.as_str().into(),
            topic: r.topic,
            region_id: r.region.clone(),
            region_name,
            waited_secs: self.at().saturating_sub(r.created_at).max(0) as u64,
            expires_in_secs: offer.deadline.map(|d| d.saturating_duration_since(now).as_secs()).unwrap_or(0),
            three_way: offer.interpreter.is_some(),
        };
        self.tell(To::account(person), message);
    }

    fn is_offered(&self, request: &RequestId, person: &AccountId) -> Option<Role> {
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
            offer.accepted.push((account.clone(), Some(connection.clone())));
        }
        let event = Event::Accepted { request: request.clone(), person: account.clone() };
        let actions = self.matcher.handle(event, now);
        let holding =
            actions.iter().any(|a| matches!(a, Action::Holding { person, .. } if *person == account));
        let waiting_for =
            holding.then_some(if role == Role::Lawyer { Role::Interpreter } else { Role::Lawyer });
        let message = Notice::ConsultAccepted { request, id, waiting_for };
        self.tell(To::Account { account: account.clone(), reach: Reach::Only(connection) }, message);
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
        let message = Notice::ConsultDeclined { request, id };
        self.tell(To::Account { account: account.clone(), reach: Reach::Only(connection) }, message);
        self.tell_presence(&account);
        self.apply(actions, now);
        Ok(())
    }

    // ---- consultations

    fn start_consultation(
        &mut self,
        request: &RequestId,
        lawyer: &AccountId,
        interpreter: Option<&AccountId>,
    ) {
        let Some(r) = self.requests.remove(request) else { return };
        self.told.remove(request);
        // Each person's call goes to the connection they accepted on.
        let via: HashMap<AccountId, String> = self
            .offers
            .get(request)
            .map(|o| o.accepted.iter().filter_map(|(p, c)| Some((p.clone(), c.clone()?))).collect())
            .unwrap_or_default();
        for person in std::iter::once(lawyer).chain(interpreter) {
            self.end_offer(request, person, OfferOutcome::Accepted);
        }
        self.offers.remove(request);
        let id: ConsultationId = self.new_id();
        let started_at = self.at();
        self.write(LiveWrite::Start(StartedConsultation {
            id: id.clone(),
            request_id: request.into(),
            terminal_id: r.terminal.clone(),
            region_id: r.region.clone(),
            lawyer_id: lawyer.into(),
            interpreter_id: interpreter.cloned(),
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
        self.effect(Effect::PlaceRoom { room: room_of(&id), region: r.region.clone(), open: true });
        let channel = self.channel_of(&r.terminal);
        self.effect(Effect::Began { channel });
        let c = ConsultLive {
            request: request.into(),
            terminal: r.terminal.clone(),
            region: r.region,
            language: r.language.as_str().into(),
            topic: r.topic,
            lawyer: lawyer.into(),
            interpreter: interpreter.cloned(),
            started_at,
            absent: BTreeMap::new(),
        };
        let participants: Vec<String> = c.participants().map(|(p, _)| p.to_owned()).collect();
        self.consultations.insert(id.clone(), c);
        tracing::info!(consultation = %id, %request, three_way = interpreter.is_some(), "consultation started");
        for participant in participants {
            self.send_started(&id, &participant, false, via.get(participant.as_str()).map(String::as_str));
            self.tell_presence(&participant.as_str().into());
        }
    }

    fn channel_of(&self, terminal: &TerminalId) -> Channel {
        self.terminals.get(terminal).map(|t| t.info.channel).unwrap_or_default()
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
    fn send_started(
        &mut self,
        consultation: &ConsultationId,
        participant: &str,
        resumed: bool,
        via: Option<&str>,
    ) {
        let Some(c) = self.consultations.get(consultation) else { return };
        let Some(role) = c.role_of(participant) else { return };
        let peers: Vec<Peer> = c
            .participants()
            .filter(|(p, _)| *p != participant)
            .map(|(p, role)| Peer {
                participant: p.into(),
                role,
                name: self.name_of(p, role),
                channel: (role == Role::Resident).then(|| self.channel_of(&p.into())),
            })
            .collect();
        let started = Started {
            participant: participant.into(),
            consultation: consultation.to_owned(),
            request: c.request.clone(),
            role,
            language: c.language.clone(),
            topic: c.topic,
            peers,
            resumed,
            token_ttl: Duration::from_secs(self.config.room_token_ttl_secs),
        };
        let via = via.filter(|_| role != Role::Resident).map(str::to_owned);
        self.effect(Effect::Started { started, via });
    }

    fn push(&mut self, participant: &str, role: Role, message: Notice) {
        let to = match role {
            Role::Resident => To::Terminal(participant.into()),
            _ => To::account(&participant.into()),
        };
        self.tell(to, message);
    }

    /// A participant's connection went: the room waits for it (`grace_secs`).
    fn left(&mut self, consultation: &ConsultationId, participant: &str, now: Instant) {
        let Some(c) = self.consultations.get_mut(consultation) else { return };
        let Some(role) = c.role_of(participant) else { return };
        c.absent.insert(participant.into(), now);
        let others: Vec<(String, Role)> =
            c.participants().filter(|(p, _)| *p != participant).map(|(p, r)| (p.to_owned(), r)).collect();
        let message = Notice::ConsultPeer { consultation: consultation.into(), role, present: false };
        for (p, r) in others {
            self.push(&p, r, message.clone());
        }
    }

    /// A participant is back within the grace period: the same room, a fresh token.
    fn returned(&mut self, consultation: &ConsultationId, participant: &str) {
        let Some(c) = self.consultations.get_mut(consultation) else { return };
        let Some(role) = c.role_of(participant) else { return };
        c.absent.remove(participant);
        let others: Vec<(String, Role)> =
            c.participants().filter(|(p, _)| *p != participant).map(|(p, r)| (p.to_owned(), r)).collect();
        let message = Notice::ConsultPeer { consultation: consultation.into(), role, present: true };
        for (p, r) in others {
            self.push(&p, r, message.clone());
        }
        self.send_started(consultation, participant, true, None);
    }

    /// Ends the call. `requeue`: the resident waits again, at the front, for
    /// the same lawyer first.
    fn end_consultation(&mut self, id: &ConsultationId, reason: &str, requeue: bool, now: Instant) {
        let Some(c) = self.consultations.remove(id) else { return };
        self.write(LiveWrite::End(id.into(), reason.into()));
        self.effect(Effect::CloseRoom { room: room_of(id) });
        let ended_at = self.at();
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
            let message = Notice::ConsultEnded {
                consultation: id.into(),
                reason: reason.into(),
                wrap_up_until: (role == Role::Lawyer).then_some(wrap_up_until),
                requeued: requeue,
            };
            self.push(participant, role, message);
        }
        self.tell_presence(&c.lawyer);
        if let Some(i) = &c.interpreter {
            self.sync_person(i, now);
            self.tell_presence(i);
        }
        if requeue {
            let row = RequestRow {
                id: self.new_id(),
                terminal_id: c.terminal.clone(),
                region_id: c.region.clone(),
                language: c.language.clone(),
                topic: c.topic.code().into(),
                front: true,
                preferred_lawyer_id: Some(c.lawyer.clone()),
                created_at: ended_at,
                appointment_id: None,
            };
            self.write(LiveWrite::Request(row.clone()));
            if let Ok(language) = Language::parse(&c.language) {
                self.add_request(row, language, c.topic, None, false, now);
            }
        }
        self.run_deferred(&c.terminal, now);
    }

    fn restore_consultation(&mut self, c: crate::store::OpenConsultation) {
        let (Some(topic), Some(request)) = (Topic::from_code(&c.topic), c.request_id.clone()) else {
            // A consultation recorded outside the live path: nothing to resume.
            self.write(LiveWrite::End(c.id.clone(), "server_restart".into()));
            self.write(LiveWrite::FinishWrapUp(c.id.clone()));
            return;
        };
        let now = self.now();
        // Clients rejoin after the restart; the room opens on their first join.
        self.effect(Effect::PlaceRoom { room: room_of(&c.id), region: c.region_id.clone(), open: false });
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
            live.absent.insert(participant.as_str().into(), now);
            match role {
                Role::Resident => {
                    self.absent_terminal(&participant.as_str().into(), &c.region_id, now).consultation =
                        Some(c.id.clone());
                }
                _ => {
                    self.people.insert(
                        participant.as_str().into(),
                        PersonLive {
                            info: PersonInfo {
                                person: matcher::Person {
                                    id: participant.as_str().into(),
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
        let lost: Vec<(ConsultationId, &'static str)> = self
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
        // In a stable order: the same inputs give the same effects.
        let mut lost = lost;
        lost.sort();
        for (id, reason) in lost {
            self.end_consultation(&id, reason, true, now);
        }
        let at = self.at();
        let wrapped: Vec<AccountId> = self
            .people
            .iter()
            .filter(|(_, p)| p.wrap_up.as_ref().is_some_and(|(_, until)| *until <= at))
            .map(|(id, _)| id.clone())
            .collect();
        // In a stable order: the same inputs give the same effects.
        let mut wrapped = wrapped;
        wrapped.sort();
        for id in wrapped {
            self.finish_wrap_up(&id);
        }
        let hold = Duration::from_secs(self.config.request_hold_secs);
        let abandoned: Vec<RequestId> = self
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
        // In a stable order: the same inputs give the same effects.
        let mut abandoned = abandoned;
        abandoned.sort();
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

    /// Everything a coordinator may see (an admin sees all of it).
    pub fn view(&self, at: i64) -> LiveView {
        let positions: HashMap<&RequestId, usize> =
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
                channel: self.channel_of(&r.terminal),
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
                channel: self.channel_of(&c.terminal),
            })
            .collect();
        consultations.sort_by_key(|c| c.started_at);
        LiveView { at, regions: regions.into_values().collect(), queue, people, consultations }
    }

    /// The part of `view` a coordinator of `regions` may see: their regions'
    /// queue and consultations, and the people of their regions' teams or
    /// working on their regions' requests.
    pub fn scoped(&self, view: &LiveView, regions: &[RegionId]) -> LiveView {
        let mine = |r: &RegionId| regions.contains(r);
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
}
