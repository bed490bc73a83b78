//! The whole dispatcher on simulated time: no sockets, no sleeping, no
//! database. Random people and kiosks connect and go away (several tabs,
//! reconnects), ask, cancel, accept, decline, let offers time out, hang up,
//! write records, go on and off duty, and the server restarts (a new
//! dispatcher restored from what was written). A model of the database takes
//! the dispatcher's writes; a model of each screen takes its notices. After
//! every step the test checks:
//!
//! - nobody is rung for two requests at once, nor while over their daily cap;
//! - nobody is in two consultations, nor matched during a wrap-up;
//! - no request is lost (every waiting request is the dispatcher's, and the
//!   other way round) or served twice, and a terminal waits once;
//! - a three-way never starts without both the lawyer and the interpreter
//!   having accepted;
//! - first in, first served within a ring: a lawyer rung for a request was
//!   not free for an older one in its first ring;
//! - every waiting resident is rung within 1 s whenever someone eligible is
//!   free: someone of the region's team, or someone of a later ring when no
//!   one of the nearer rings is even busy, or a lawyer and an interpreter
//!   when no lawyer speaks the language.
//!
//! A failure prints its seed; `LIVE_SIM_SEED=<seed>` replays just that one,
//! `LIVE_SIM_SEEDS=<n>` runs more.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::{Clock, Dispatcher, Effect, Input, Started, Then};
use crate::domain::{Language, Topic};
use crate::ids::{AccountId, ConsultationId, ParticipantId, RegionId, RequestId, TerminalId, kiosk};
use crate::live::{
    Answer, Duty, LiveConfig, Notice, PersonInfo, PresenceState, Role, TerminalInfo, To, WantedPresence,
};
use crate::matcher::Person;
use crate::store::{LiveWrite, OpenConsultation, RequestRow};

/// SplitMix64: small, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() { None } else { Some(&items[self.below(items.len())]) }
    }
}

fn lang(code: &str) -> Language {
    Language::parse(code).expect("language")
}

struct Someone {
    id: &'static str,
    lawyer: bool,
    interpreter: bool,
    languages: &'static [&'static str],
    topics: &'static [Topic],
    region: Option<&'static str>,
    cap: u32,
}

const PEOPLE: &[Someone] = &[
    Someone {
        id: "l-bo-r1",
        lawyer: true,
        interpreter: false,
        languages: &["bo", "zh"],
        topics: &[Topic::Land, Topic::Family],
        region: Some("r1"),
        cap: 3,
    },
    Someone {
        id: "l-zh-r1",
        lawyer: true,
        interpreter: false,
        languages: &["zh"],
        topics: &[Topic::Land, Topic::Debt],
        region: Some("r1"),
        cap: 3,
    },
    Someone {
        id: "l-zh",
        lawyer: true,
        interpreter: false,
        languages: &["zh"],
        topics: &[Topic::Land, Topic::Family, Topic::Debt, Topic::Labour],
        region: None,
        cap: 2,
    },
    Someone {
        id: "l-bo-r2",
        lawyer: true,
        interpreter: false,
        languages: &["bo"],
        topics: &[Topic::Family],
        region: Some("r2"),
        cap: 3,
    },
    Someone {
        id: "i-1",
        lawyer: false,
        interpreter: true,
        languages: &["bo", "zh"],
        topics: &[],
        region: None,
        cap: 4,
    },
    Someone {
        id: "i-2",
        lawyer: false,
        interpreter: true,
        languages: &["bo", "zh"],
        topics: &[],
        region: None,
        cap: 4,
    },
];

const TERMINALS: &[(&str, &str)] = &[("t1", "r1"), ("t2", "r1"), ("t3", "r2"), ("t4", "r2")];
const TOPICS: &[Topic] = &[Topic::Land, Topic::Family, Topic::Debt, Topic::Labour];
const EPOCH: i64 = 1_800_000_000;

/// Who may be rung in a ring.
type Eligible<'a> = Box<dyn Fn(&Someone) -> bool + 'a>;

fn someone(id: &str) -> &'static Someone {
    PEOPLE.iter().find(|p| p.id == id).expect("a person of the simulation")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Closed,
    Served,
}

#[derive(Debug, Clone)]
struct RequestModel {
    row: RequestRow,
    status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallStatus {
    Active,
    WrapUp,
    Ended,
}

#[derive(Debug, Clone)]
struct CallModel {
    request: RequestId,
    terminal: TerminalId,
    region: RegionId,
    lawyer: AccountId,
    interpreter: Option<AccountId>,
    language: String,
    topic: Topic,
    started_at: i64,
    status: CallStatus,
}

struct Sim {
    seed: u64,
    rng: Rng,
    config: LiveConfig,
    d: Dispatcher,
    t0: Instant,
    /// Simulated milliseconds since the start.
    ms: u64,
    next_connection: u64,
    // The screens: connections, what each person asked to be and was last told.
    tabs: HashMap<AccountId, Vec<String>>,
    kiosks: HashMap<TerminalId, u32>,
    wants: HashMap<AccountId, WantedPresence>,
    off_duty: BTreeSet<AccountId>,
    told: HashMap<AccountId, (PresenceState, bool)>,
    /// person -> (request, when the offer times out, in ms)
    ringing: BTreeMap<AccountId, (RequestId, u64)>,
    accepted: BTreeSet<(AccountId, RequestId)>,
    /// (person, request) -> when they declined or let it time out (ms).
    declined: HashMap<(AccountId, RequestId), u64>,
    // The database.
    requests: BTreeMap<RequestId, RequestModel>,
    calls: BTreeMap<ConsultationId, CallModel>,
    taken: HashMap<AccountId, u32>,
    /// Writer acknowledgements still on their way: (due ms, input).
    acks: Vec<(u64, Input)>,
    /// Requests someone free could take, since when (ms).
    unserved_since: HashMap<RequestId, u64>,
    /// Offers made while handling the current input: (person, request).
    new_offers: Vec<(AccountId, RequestId)>,
    log: Vec<String>,
    rung: u32,
    served: u32,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let config = LiveConfig::default();
        let t0 = Instant::now();
        let clock = Clock { now: t0, at: EPOCH };
        Sim {
            seed,
            rng: Rng(seed),
            d: Dispatcher::new(config.clone(), clock).counting_ids_from(0),
            config,
            t0,
            ms: 0,
            next_connection: 0,
            tabs: HashMap::new(),
            kiosks: HashMap::new(),
            wants: HashMap::new(),
            off_duty: BTreeSet::new(),
            told: HashMap::new(),
            ringing: BTreeMap::new(),
            accepted: BTreeSet::new(),
            declined: HashMap::new(),
            requests: BTreeMap::new(),
            calls: BTreeMap::new(),
            taken: HashMap::new(),
            acks: Vec::new(),
            unserved_since: HashMap::new(),
            new_offers: Vec::new(),
            log: Vec::new(),
            rung: 0,
            served: 0,
        }
    }

    fn clock(&self) -> Clock {
        Clock { now: self.t0 + Duration::from_millis(self.ms), at: EPOCH + (self.ms / 1000) as i64 }
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<&String> = self
            .log
            .iter()
            .rev()
            .take(std::env::var("LIVE_SIM_LOG").ok().and_then(|n| n.parse().ok()).unwrap_or(40))
            .rev()
            .collect();
        panic!(
            "live simulation, seed {seed}, at {ms} ms: {what}\nreplay: LIVE_SIM_SEED={seed} cargo test -p signaling --lib simulation\nlast steps:\n{}",
            tail.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
            seed = self.seed,
            ms = self.ms,
        )
    }

    fn feed(&mut self, input: Input) -> Result<(), crate::domain::Failure> {
        self.log.push(format!("{:>7} {}", self.ms, describe(&input)));
        let result = self.d.handle(input, self.clock());
        for effect in self.d.effects() {
            self.effect(effect);
        }
        self.check_first_in_first_served();
        result
    }

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::Push { to, notice } => self.notice(to, notice),
            Effect::Started { started, via } => self.started(started, via),
            Effect::Write { write, then } => {
                self.write(write);
                match then {
                    Some(Then::Reply(reply)) => drop(reply.send(Ok(1))),
                    Some(Then::Tell(to, notice)) => self.notice(to, notice),
                    None => {}
                }
            }
            Effect::PlaceRoom { .. }
            | Effect::OpenRoom { .. }
            | Effect::CloseRoom { .. }
            | Effect::Rung { .. }
            | Effect::Began { .. } => {}
        }
    }

    fn notice(&mut self, to: To, notice: Notice) {
        let To::Account { account, .. } = to else { return };
        match &notice {
            Notice::ConsultOffer { request, .. } => {
                self.log.push(format!("          -> offer {account} {request}"))
            }
            Notice::ConsultOfferWithdrawn { request } => {
                self.log.push(format!("          -> withdrawn {account} {request}"))
            }
            Notice::Presence { state, .. } => {
                self.log.push(format!("          -> presence {account} {state:?}"))
            }
            _ => {}
        }
        match notice {
            Notice::Presence { state, on_duty, .. } => {
                self.told.insert(account, (state, on_duty));
            }
            Notice::ConsultOffer { request, .. } => {
                if let Some((other, _)) = self.ringing.get(&account)
                    && *other != request
                {
                    self.fail(format!("{account} rung for {request} while rung for {other}"));
                }
                if self.ringing.contains_key(&account) {
                    return; // The same offer again, to a connection that came back.
                }
                let cap = someone(&account).cap;
                if self.taken.get(&account).copied().unwrap_or(0) >= cap {
                    let live =
                        self.d.people.get(&account).map(|p| (p.info.person.taken_today, p.info.day_start));
                    let live = (live, self.d.matcher.person(&account).map(|(p, _)| p.taken_today));
                    self.fail(format!(
                        "{account} rung over their daily cap of {cap} (the dispatcher counts {live:?})"
                    ));
                }
                if self.in_call(&account) {
                    self.fail(format!("{account} rung during a consultation or its wrap-up"));
                }
                let deadline = self.ms + self.config.offer_timeout_secs * 1000;
                self.ringing.insert(account.clone(), (request.clone(), deadline));
                self.new_offers.push((account, request));
                self.rung += 1;
            }
            Notice::ConsultOfferWithdrawn { request } => {
                if let Some((r, deadline)) = self.ringing.get(&account).cloned()
                    && r == request
                {
                    self.ringing.remove(&account);
                    let key = (account, request);
                    // Let time out without accepting: the matcher does not ring them for it again for a while.
                    if self.ms >= deadline && !self.accepted.contains(&key) {
                        self.declined.insert(key.clone(), self.ms);
                    }
                    self.accepted.remove(&key);
                }
            }
            _ => {}
        }
    }

    fn started(&mut self, started: Started, via: Option<String>) {
        if started.resumed || started.role == Role::Resident {
            return;
        }
        let key = (AccountId::from(started.participant.as_str()), started.request.clone());
        if !self.accepted.contains(&key) {
            self.fail(format!("{} joined {} without accepting it", key.0, key.1));
        }
        if let Some(connection) = &via
            && !self.tabs.get(started.participant.as_str()).is_some_and(|t| t.contains(connection))
        {
            self.fail(format!("consult.started via {connection}, not a connection of {}", key.0));
        }
        self.accepted.remove(&key);
    }

    fn write(&mut self, write: LiveWrite) {
        match write {
            LiveWrite::Request(row) => {
                let id = row.id.clone();
                if self
                    .requests
                    .values()
                    .any(|r| r.status == Status::Waiting && r.row.terminal_id == row.terminal_id)
                {
                    self.fail(format!("{} waits twice", row.terminal_id));
                }
                self.requests.insert(id.clone(), RequestModel { row, status: Status::Waiting });
                let due = self.ms + self.rng.below(300) as u64;
                self.acks.push((due, Input::Recorded { request: id, ok: true }));
            }
            LiveWrite::CloseRequest(id, _) => match self.requests.get_mut(&id) {
                Some(r) if r.status == Status::Waiting => r.status = Status::Closed,
                _ => self.fail(format!("closed {id}, which was not waiting")),
            },
            LiveWrite::Start(c) => {
                self.log.push(format!(
                    "          -> start {} {} {:?} {}",
                    c.request_id, c.lawyer_id, c.interpreter_id, c.id
                ));
                match self.requests.get(&c.request_id).map(|r| r.status) {
                    Some(Status::Waiting) => {
                        if let Some(r) = self.requests.get_mut(&c.request_id) {
                            r.status = Status::Served;
                        }
                    }
                    Some(status) => self.fail(format!("{} served while {status:?}", c.request_id)),
                    None => self.fail(format!("{} served but never asked", c.request_id)),
                }
                for person in std::iter::once(&c.lawyer_id).chain(c.interpreter_id.as_ref()) {
                    if self.in_call(person) {
                        self.fail(format!("{person} matched while in a consultation or its wrap-up"));
                    }
                    if !self.accepted.contains(&(person.clone(), c.request_id.clone())) {
                        self.fail(format!("{} started with {person}, who had not accepted", c.request_id));
                    }
                    *self.taken.entry(person.clone()).or_default() += 1;
                    self.ringing.remove(person);
                }
                self.served += 1;
                self.calls.insert(
                    c.id,
                    CallModel {
                        request: c.request_id,
                        terminal: c.terminal_id,
                        region: c.region_id,
                        lawyer: c.lawyer_id,
                        interpreter: c.interpreter_id,
                        language: c.language,
                        topic: c.topic,
                        started_at: c.started_at,
                        status: CallStatus::Active,
                    },
                );
            }
            LiveWrite::End(id, _) => {
                // Only the lawyer writes a record; the interpreter is free at once (`in_call`).
                if let Some(c) = self.calls.get_mut(&id) {
                    c.status = CallStatus::WrapUp;
                }
            }
            LiveWrite::FinishWrapUp(id) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.status = CallStatus::Ended;
                }
                let due = self.ms + self.rng.below(300) as u64;
                self.acks.push((due, Input::WrapUpStored { consultation: id }));
            }
            LiveWrite::Offer(_)
            | LiveWrite::DecideOffer(..)
            | LiveWrite::AttachAppointment { .. }
            | LiveWrite::Rate { .. } => {}
        }
    }

    /// Whether `person` is busy with a call: in it, or (a lawyer) writing its record.
    fn in_call(&self, person: &str) -> bool {
        self.calls.values().any(|c| match c.status {
            CallStatus::Active => c.lawyer == person || c.interpreter.as_deref() == Some(person),
            CallStatus::WrapUp => c.lawyer == person,
            CallStatus::Ended => false,
        })
    }

    fn info(&self, id: &str) -> PersonInfo {
        let p = someone(id);
        PersonInfo {
            person: Person {
                id: id.into(),
                lawyer: p.lawyer,
                interpreter: p.interpreter,
                languages: p.languages.iter().map(|l| lang(l)).collect(),
                topics: p.topics.iter().copied().collect(),
                regions: p.region.map(RegionId::from).into_iter().collect(),
                daily_cap: p.cap,
                taken_today: self.taken.get(id).copied().unwrap_or(0),
            },
            name: id.into(),
            on_duty: !self.off_duty.contains(id),
            day_start: EPOCH - 3600,
        }
    }

    // ---- the checks

    /// Requests waiting in the model are exactly the dispatcher's.
    fn check_nothing_lost(&self) {
        let model: BTreeSet<&RequestId> =
            self.requests.iter().filter(|(_, r)| r.status == Status::Waiting).map(|(id, _)| id).collect();
        let live: BTreeSet<&RequestId> = self.d.requests.keys().collect();
        if model != live {
            self.fail(format!("waiting on disk {model:?}, in the dispatcher {live:?}"));
        }
        let open: BTreeSet<&ConsultationId> =
            self.calls.iter().filter(|(_, c)| c.status == CallStatus::Active).map(|(id, _)| id).collect();
        let live: BTreeSet<&ConsultationId> = self.d.consultations.keys().collect();
        if open != live {
            self.fail(format!("open on disk {open:?}, in the dispatcher {live:?}"));
        }
    }

    fn declined(&self, person: &str, request: &str) -> bool {
        self.declined
            .get(&(AccountId::from(person), RequestId::from(request)))
            .is_some_and(|at| self.ms.saturating_sub(*at) < self.config.decline_cooldown_secs * 1000)
    }

    /// Connected, on duty, wanting calls, and under their cap.
    fn present(&self, person: &str) -> bool {
        self.tabs.get(person).is_some_and(|t| !t.is_empty())
            && !self.off_duty.contains(person)
            && self.wants.get(person) == Some(&WantedPresence::Available)
            && self.taken.get(person).copied().unwrap_or(0) < someone(person).cap
    }

    /// Free for `request` now, as the person's own screen says.
    fn free(&self, person: &str, request: &str) -> bool {
        self.present(person)
            && self.told.get(person) == Some(&(PresenceState::Available, true))
            && !self.ringing.contains_key(person)
            && !self.in_call(person)
            && !self.declined(person, request)
    }

    /// Could take `request` but is busy (rung for another, in a call or its record).
    fn busy(&self, person: &str, request: &str) -> bool {
        self.present(person)
            && !self.declined(person, request)
            && (self.ringing.get(person).is_some_and(|(r, _)| r != request) || self.in_call(person))
    }

    /// Whether someone free could take `request` now, by the rule residents are promised.
    fn must_be_rung(&self, id: &str) -> bool {
        let Some(r) = self.requests.get(id).map(|r| &r.row) else { return false };
        let (language, topic) = (lang(&r.language), Topic::from_code(&r.topic).expect("topic"));
        let speaks = |p: &Someone| p.lawyer && p.languages.iter().any(|l| lang(l) == language);
        let rings: [Eligible; 3] = [
            Box::new(|p| speaks(p) && p.topics.contains(&topic) && p.region == Some(r.region_id.as_str())),
            Box::new(|p| speaks(p) && p.topics.contains(&topic)),
            Box::new(speaks),
        ];
        for ring in &rings {
            if PEOPLE.iter().any(|p| ring(p) && self.free(p.id, id)) {
                return true;
            }
            if PEOPLE.iter().any(|p| ring(p) && self.busy(p.id, id)) {
                return false; // It may wait for them (until the next ring opens).
            }
        }
        let lawyer = PEOPLE.iter().find(|p| p.lawyer && self.free(p.id, id));
        let interpreter = PEOPLE.iter().any(|i| {
            i.interpreter
                && lawyer.is_some_and(|l| l.id != i.id)
                && i.languages.iter().any(|l| lang(l) == language)
                && self.free(i.id, id)
        });
        lawyer.is_some() && interpreter
    }

    /// Every waiting resident is rung within 1 s of someone eligible being free.
    fn check_rung_in_time(&mut self) {
        let waiting: Vec<RequestId> = self
            .d
            .requests
            .iter()
            .filter(|(id, r)| r.in_matcher && !self.d.offers.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        self.unserved_since.retain(|id, _| waiting.contains(id));
        for id in waiting {
            if !self.must_be_rung(&id) {
                self.unserved_since.remove(&id);
                continue;
            }
            let since = *self.unserved_since.entry(id.clone()).or_insert(self.ms);
            if self.ms - since > 1000 {
                let r = &self.requests[&id].row;
                let people: Vec<String> = PEOPLE
                    .iter()
                    .map(|p| {
                        format!(
                            "{}: free {} busy {} told {:?} ringing {:?}",
                            p.id,
                            self.free(p.id, &id),
                            self.busy(p.id, &id),
                            self.told.get(p.id),
                            self.ringing.get(p.id)
                        )
                    })
                    .collect();
                self.fail(format!(
                    "{id} ({} {} in {}) not rung {} ms after someone free could take it; {people:#?}",
                    r.language,
                    r.topic,
                    r.region_id,
                    self.ms - since
                ));
            }
        }
    }

    /// A lawyer rung for a request was not free for an older one of their first ring.
    fn check_first_in_first_served(&mut self) {
        let offers = std::mem::take(&mut self.new_offers);
        let queue: Vec<RequestId> = self.d.matcher.queue().into_iter().cloned().collect();
        for (person, request) in offers {
            let p = someone(&person);
            if !p.lawyer || self.d.offers.get(&request).is_some_and(|o| o.interpreter.is_some()) {
                continue;
            }
            let Some(place) = queue.iter().position(|r| *r == request) else { continue };
            for older in &queue[..place] {
                let Some(r) = self.requests.get(older).map(|r| &r.row) else { continue };
                let first_ring = p.languages.iter().any(|l| *l == r.language)
                    && p.topics.iter().any(|t| t.code() == r.topic)
                    && p.region == Some(r.region_id.as_str());
                let rung = self.d.offers.contains_key(older);
                if first_ring && !rung && !self.declined(&person, older) {
                    self.fail(format!("{person} rung for {request} before {older}, which waited longer"));
                }
            }
        }
    }

    fn check(&mut self) {
        self.check_nothing_lost();
    }

    // ---- what people do

    fn step(&mut self) {
        let roll = self.rng.below(100);
        let person = self.rng.pick(PEOPLE).map(|p| AccountId::from(p.id)).expect("people");
        let (terminal, region) = *self.rng.pick(TERMINALS).expect("terminals");
        match roll {
            0..=7 => {
                // A person opens a console (another tab).
                self.next_connection += 1;
                let connection = format!("c{}", self.next_connection);
                let tabs = self.tabs.entry(person.clone()).or_default();
                if tabs.len() < 2 {
                    tabs.push(connection);
                    let info = Box::new(self.info(&person));
                    let _ = self.feed(Input::PersonConnected(info));
                }
            }
            8..=10 => {
                if let Some(tabs) = self.tabs.get_mut(&person)
                    && !tabs.is_empty()
                {
                    let i = self.rng.below(tabs.len());
                    let connection = tabs.remove(i);
                    let _ = self.feed(Input::PersonDisconnected { account: person, connection });
                }
            }
            11..=19 => {
                let want = match self.rng.below(10) {
                    0 => WantedPresence::Break,
                    1 => WantedPresence::Offline,
                    _ => WantedPresence::Available,
                };
                if self.tabs.get(&person).is_some_and(|t| !t.is_empty())
                    && self.feed(Input::Presence { account: person.clone(), want }).is_ok()
                {
                    self.wants.insert(person, want);
                }
            }
            20..=25 => {
                let kiosk = self.kiosks.entry(terminal.into()).or_default();
                if *kiosk < 2 {
                    *kiosk += 1;
                    if *kiosk == 1 {
                        // Back at the kiosk: the matcher takes the request afresh.
                        self.declined.retain(|(_, r), _| {
                            self.d.requests.get(r).is_none_or(|live| live.terminal != terminal)
                        });
                    }
                    let info = TerminalInfo {
                        id: terminal.into(),
                        name: terminal.into(),
                        region_id: region.into(),
                        region_name: region.into(),
                        channel: Default::default(),
                    };
                    let _ = self.feed(Input::TerminalConnected(info));
                }
            }
            26..=28 => {
                if let Some(kiosk) = self.kiosks.get_mut(terminal)
                    && *kiosk > 0
                {
                    *kiosk -= 1;
                    let _ = self.feed(Input::TerminalDisconnected { terminal: terminal.into() });
                }
            }
            29..=40 => {
                if self.kiosks.get(terminal).copied().unwrap_or(0) > 0 {
                    let language = lang(if self.rng.below(2) == 0 { "bo" } else { "zh" });
                    let topic = *self.rng.pick(TOPICS).expect("topics");
                    let received = self.clock().now;
                    let _ = self.feed(Input::Request {
                        terminal: terminal.into(),
                        language,
                        topic,
                        asked: None,
                        received,
                    });
                }
            }
            41..=42 => {
                let waiting = self.d.terminals.get(terminal).and_then(|t| t.request.clone());
                if let Some(request) = waiting
                    && self.kiosks.get(terminal).copied().unwrap_or(0) > 0
                {
                    let _ = self.feed(Input::Cancel { terminal: terminal.into(), request });
                }
            }
            43..=60 => {
                // Someone rung answers, from one of their tabs; sometimes after the offer ended.
                let rung: Vec<(AccountId, RequestId)> =
                    self.ringing.iter().map(|(p, (r, _))| (p.clone(), r.clone())).collect();
                let Some((person, request)) = self.rng.pick(&rung).cloned() else { return };
                let Some(connection) = self.tabs.get(&person).and_then(|t| t.first()).cloned() else {
                    return;
                };
                let answer =
                    Answer { account: person.clone(), connection, request: request.clone(), id: None };
                if self.rng.below(4) == 0 {
                    // Free again as soon as the decline is handled (it may ring them for another).
                    let before = self.ringing.remove(&person);
                    let key = (person.clone(), request.clone());
                    let was_accepted = self.accepted.remove(&key);
                    self.declined.insert(key.clone(), self.ms);
                    if self.feed(Input::Decline(answer)).is_err() {
                        if let Some(before) = before {
                            self.ringing.insert(person, before);
                        }
                        if was_accepted {
                            self.accepted.insert(key.clone());
                        }
                        self.declined.remove(&key);
                    }
                } else {
                    self.accepted.insert((person.clone(), request.clone()));
                    if self.feed(Input::Accept(answer)).is_err() {
                        self.accepted.remove(&(person, request));
                    }
                }
            }
            61..=65 => {
                let open: Vec<(ConsultationId, ParticipantId)> = self
                    .calls
                    .iter()
                    .filter(|(_, c)| c.status == CallStatus::Active)
                    .map(|(id, c)| {
                        let who = match self.rng.below(3) {
                            0 => kiosk(&c.terminal),
                            1 => crate::ids::person(&c.lawyer),
                            _ => crate::ids::person(c.interpreter.as_ref().unwrap_or(&c.lawyer)),
                        };
                        (id.clone(), who)
                    })
                    .collect();
                if let Some((consultation, participant)) = self.rng.pick(&open).cloned() {
                    let _ = self.feed(Input::Hangup { participant, consultation });
                }
            }
            66..=68 => {
                let writing: Vec<ConsultationId> = self
                    .calls
                    .iter()
                    .filter(|(_, c)| c.status == CallStatus::WrapUp)
                    .map(|(id, _)| id.clone())
                    .collect();
                if let Some(consultation) = self.rng.pick(&writing).cloned() {
                    let _ = self.feed(Input::RecordSaved { consultation });
                }
            }
            69 => {
                // Duty hours change: someone goes off duty, or back on.
                if !self.off_duty.remove(&person) {
                    self.off_duty.insert(person);
                }
                let duty = PEOPLE
                    .iter()
                    .map(|p| {
                        let duty = Duty {
                            on_duty: !self.off_duty.contains(p.id),
                            regions: p.region.map(RegionId::from).into_iter().collect(),
                            day_start: EPOCH - 3600,
                        };
                        (AccountId::from(p.id), duty)
                    })
                    .collect();
                let _ = self.feed(Input::Duty(duty));
            }
            70 if self.rng.below(8) == 0 => self.restart(),
            _ => {
                let long = self.rng.below(5) == 0;
                let quarters = 1 + self.rng.below(if long { 120 } else { 8 });
                self.advance(quarters);
            }
        }
        self.check();
    }

    /// Time passes, a quarter of a second at a time, as the task ticks.
    fn advance(&mut self, quarters: usize) {
        for _ in 0..quarters {
            self.ms += 250;
            let due: Vec<Input> = {
                let (due, later): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut self.acks).into_iter().partition(|(at, _)| *at <= self.ms);
                self.acks = later;
                due.into_iter().map(|(_, input)| input).collect()
            };
            for input in due {
                let _ = self.feed(input);
            }
            let _ = self.feed(Input::Tick);
            if self.ms.is_multiple_of(1000) {
                let _ = self.feed(Input::Positions);
            }
            self.check();
            self.check_rung_in_time();
        }
    }

    /// The server restarts: a new dispatcher, restored from the database;
    /// every connection is gone, and comes back as people return.
    fn restart(&mut self) {
        self.log.push(format!("{:>7} -- restart --", self.ms));
        for c in self.calls.values_mut() {
            if c.status == CallStatus::WrapUp {
                c.status = CallStatus::Ended; // Wrap-ups do not outlive a restart.
            }
        }
        // Ids go on from where the last run left them, as random ones would not clash.
        let next = 1_000_000 * (1 + self.ms);
        self.d = Dispatcher::new(self.config.clone(), self.clock()).counting_ids_from(next);
        self.acks.clear();
        self.tabs.clear();
        self.kiosks.clear();
        self.wants.clear();
        self.told.clear();
        self.ringing.clear();
        self.accepted.clear();
        self.declined.clear();
        self.unserved_since.clear();
        let open: Vec<(ConsultationId, CallModel)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.status == CallStatus::Active)
            .map(|(id, c)| (id.clone(), c.clone()))
            .collect();
        for (id, c) in open {
            let row = OpenConsultation {
                id,
                request_id: Some(c.request),
                terminal_id: c.terminal,
                region_id: c.region,
                lawyer_id: c.lawyer,
                interpreter_id: c.interpreter,
                topic: c.topic.code().into(),
                language: c.language,
                status: "active".into(),
                started_at: c.started_at,
                ended_at: None,
            };
            let _ = self.feed(Input::RestoreConsultation(row));
        }
        let mut waiting: Vec<RequestRow> =
            self.requests.values().filter(|r| r.status == Status::Waiting).map(|r| r.row.clone()).collect();
        waiting.sort_by_key(|r| r.created_at);
        for row in waiting {
            let _ = self.feed(Input::RestoreRequest(row));
        }
    }
}

fn describe(input: &Input) -> String {
    match input {
        Input::PersonConnected(info) => format!("connected {}", info.person.id),
        Input::Accept(a) => format!("accept {} {}", a.account, a.request),
        Input::Decline(a) => format!("decline {} {}", a.account, a.request),
        Input::Tick => "tick".into(),
        other => {
            let text = format!("{other:?}");
            text.chars().take(160).collect()
        }
    }
}

fn run(seed: u64, steps: usize) -> (u32, u32) {
    let mut sim = Sim::new(seed);
    for _ in 0..steps {
        sim.step();
        if sim.log.len() > 4000 {
            sim.log.drain(..2000);
        }
    }
    (sim.rung, sim.served)
}

#[test]
fn the_whole_live_path_on_simulated_time_keeps_its_promises() {
    if let Ok(seed) = std::env::var("LIVE_SIM_SEED") {
        let seed = seed.parse().expect("LIVE_SIM_SEED is a number");
        run(seed, 600);
        return;
    }
    let seeds: u64 = std::env::var("LIVE_SIM_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let (mut rung, mut served) = (0, 0);
    for seed in 0..seeds {
        let (r, s) = run(seed, 600);
        rung += r;
        served += s;
    }
    // The simulation is worth something only if calls really happen in it.
    assert!(served > seeds as u32, "only {served} consultations in {seeds} runs ({rung} offers)");
}
