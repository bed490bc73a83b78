//! The matcher: which waiting resident is offered to which lawyer, and when.
//!
//! Plain synchronous code, like the relay's room: [`Matcher::handle`] takes an
//! [`Event`] and the time and returns [`Action`]s (offer this request to this
//! person until this deadline, withdraw an offer, match, tell a resident their
//! place, put a person on break). The live path (issue #5) feeds it from
//! WebSocket messages and the scheduler, and carries out its actions; the rules
//! live here, tested without a network, and property-tested for the
//! invariants: nobody is in two consultations or rung for two requests at
//! once, no request is lost, and the longest-waiting request is served first.
//!
//! The rules:
//! - Only people who are connected, on duty and available are offered
//!   anything. Each offer goes to one person, for [`MatcherConfig::offer_timeout`].
//! - A request widens in rings as it waits ([`MatcherConfig::ring_after`]):
//!   (0) the aid team posted to the terminal's region, with the language and
//!   topic; (1) anyone with the language and topic; (2) anyone with the
//!   language; (3) any lawyer together with an interpreter for the language.
//! - Within a ring, the person idle longest goes first; nobody beyond their
//!   daily cap is offered anything.
//! - A decline or a timeout moves the request on to the next person, and that
//!   person is not offered the same request again for
//!   [`MatcherConfig::decline_cooldown`]; [`MatcherConfig::max_missed`] missed
//!   offers in a row put a person on break.
//! - Requests are served in order of waiting (requeued ones, whose call
//!   dropped, at the front); a request first goes to the lawyer it had, if
//!   they are available.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::domain::{Language, Topic};

pub type RequestId = String;
pub type PersonId = String;

#[derive(Debug, Clone, PartialEq)]
pub struct MatcherConfig {
    pub offer_timeout: Duration,
    /// When each ring after the first opens, counted from the request's arrival.
    pub ring_after: [Duration; 3],
    pub max_missed: u32,
    /// How long a person who declined (or let time out) a request is not
    /// offered that same request again. Long enough not to pester, short
    /// enough that a resident is not stranded when only one lawyer is on duty.
    pub decline_cooldown: Duration,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        Self {
            offer_timeout: Duration::from_secs(20),
            ring_after: [Duration::from_secs(30), Duration::from_secs(60), Duration::from_secs(90)],
            max_missed: 3,
            decline_cooldown: Duration::from_secs(60),
        }
    }
}

/// A person the matcher may ring.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub lawyer: bool,
    pub interpreter: bool,
    pub languages: BTreeSet<Language>,
    pub topics: BTreeSet<Topic>,
    /// Regions whose aid teams this person belongs to.
    pub regions: BTreeSet<String>,
    pub daily_cap: u32,
    /// Consultations already taken today.
    pub taken_today: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub region: String,
    pub language: Language,
    pub topic: Topic,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Connected and on duty (or its details changed). Starts available.
    PersonAvailable(Person),
    /// Disconnected, off duty, or busy elsewhere.
    PersonGone {
        person: PersonId,
    },
    /// Back from a break, or done with a consultation and its wrap-up. A
    /// matched person stays busy until this.
    PersonReady {
        person: PersonId,
    },
    Requested(Request),
    /// A request that was already waiting (since `since`) before this
    /// matcher knew it: after a restart, or when its terminal comes back.
    Restored {
        request: Request,
        since: Instant,
        front: bool,
        lawyer: Option<PersonId>,
    },
    /// A resident whose call dropped for good: back at the front, to the same lawyer if possible.
    Requeued {
        request: Request,
        lawyer: Option<PersonId>,
    },
    Cancelled {
        request: RequestId,
    },
    Accepted {
        request: RequestId,
        person: PersonId,
    },
    Declined {
        request: RequestId,
        person: PersonId,
    },
    /// Time passes: offers time out, rings widen.
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Offer {
        request: RequestId,
        person: PersonId,
        deadline: Instant,
        /// Rung as the interpreter of a three-way consultation (the lawyer
        /// is offered the same request in the action before).
        interpreter: bool,
    },
    Withdraw {
        request: RequestId,
        person: PersonId,
    },
    /// The request is matched; an interpreter joins when the ring needed one.
    Matched {
        request: RequestId,
        lawyer: PersonId,
        interpreter: Option<PersonId>,
    },
    /// Nobody on duty could ever take it (no one speaks the language): say so at once.
    NobodyOnDuty {
        request: RequestId,
    },
    OnBreak {
        person: PersonId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Available { since: Instant },
    Ringing { since: Instant },
    Busy,
    Break,
}

#[derive(Debug, Clone)]
struct PersonEntry {
    person: Person,
    state: State,
    missed: u32,
}

#[derive(Debug, Clone)]
struct Waiting {
    request: Request,
    arrived: Instant,
    /// Requeued requests go before all others, in their own order.
    front: bool,
    preferred: Option<PersonId>,
    /// Who declined or let it time out, and when.
    declined: BTreeMap<PersonId, Instant>,
    /// The lawyer (and interpreter) currently rung, until the deadline.
    offer: Option<(PersonId, Option<PersonId>, Instant)>,
}

#[derive(Debug, Default)]
pub struct Matcher {
    config: MatcherConfig,
    people: BTreeMap<PersonId, PersonEntry>,
    /// The available people, longest idle first: picking someone walks this
    /// from the front and stops at the first who fits, so a thousand people
    /// on duty cost little more than ten.
    idle: BTreeSet<(Instant, PersonId)>,
    waiting: Vec<Waiting>,
}

impl Matcher {
    pub fn new(config: MatcherConfig) -> Matcher {
        Matcher { config, people: BTreeMap::new(), idle: BTreeSet::new(), waiting: Vec::new() }
    }

    /// Changes a person's state, keeping the idle order in step.
    fn set_state(&mut self, id: &str, state: State) {
        let Some(p) = self.people.get_mut(id) else { return };
        if let State::Available { since } = p.state {
            self.idle.remove(&(since, p.person.id.clone()));
        }
        if let State::Available { since } = state {
            self.idle.insert((since, p.person.id.clone()));
        }
        p.state = state;
    }

    /// Waiting requests in the order they are served.
    pub fn queue(&self) -> Vec<&RequestId> {
        let mut order: Vec<&Waiting> = self.waiting.iter().collect();
        order.sort_by_key(|w| (!w.front, w.arrived));
        order.into_iter().map(|w| &w.request.id).collect()
    }

    /// A request's place in the queue (1 = next), if it waits.
    pub fn position(&self, request: &str) -> Option<usize> {
        self.queue().iter().position(|r| *r == request).map(|i| i + 1)
    }

    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::PersonAvailable(person) => {
                let state = match self.people.get(&person.id).map(|p| p.state) {
                    Some(s @ (State::Ringing { .. } | State::Busy | State::Break)) => s,
                    Some(s @ State::Available { .. }) => s,
                    None => State::Available { since: now },
                };
                let missed = self.people.get(&person.id).map(|p| p.missed).unwrap_or(0);
                if let State::Available { since } = state {
                    self.idle.insert((since, person.id.clone()));
                }
                self.people.insert(person.id.clone(), PersonEntry { person, state, missed });
            }
            Event::PersonGone { person } => {
                self.withdraw_offers_to(&person, &mut out);
                self.set_state(&person, State::Busy);
                self.people.remove(&person);
            }
            Event::PersonReady { person } => {
                if let Some(p) = self.people.get_mut(&person)
                    && matches!(p.state, State::Busy | State::Break)
                {
                    p.missed = 0;
                    self.set_state(&person, State::Available { since: now });
                }
            }
            Event::Requested(request) => {
                if !self.anyone_could_take(&request) {
                    out.push(Action::NobodyOnDuty { request: request.id.clone() });
                }
                self.waiting.push(Waiting {
                    request,
                    arrived: now,
                    front: false,
                    preferred: None,
                    declined: BTreeMap::new(),
                    offer: None,
                });
            }
            Event::Restored { request, since, front, lawyer } => {
                self.waiting.retain(|w| w.request.id != request.id);
                self.waiting.push(Waiting {
                    request,
                    arrived: since,
                    front,
                    preferred: lawyer,
                    declined: BTreeMap::new(),
                    offer: None,
                });
            }
            Event::Requeued { request, lawyer } => {
                self.waiting.retain(|w| w.request.id != request.id);
                self.waiting.push(Waiting {
                    request,
                    arrived: now,
                    front: true,
                    preferred: lawyer,
                    declined: BTreeMap::new(),
                    offer: None,
                });
            }
            Event::Cancelled { request } => {
                if let Some(i) = self.waiting.iter().position(|w| w.request.id == request) {
                    let w = self.waiting.remove(i);
                    if let Some((lawyer, interpreter, _)) = w.offer {
                        self.release(&lawyer, now);
                        out.push(Action::Withdraw { request: request.clone(), person: lawyer });
                        if let Some(i) = interpreter {
                            self.release(&i, now);
                            out.push(Action::Withdraw { request, person: i });
                        }
                    }
                }
            }
            Event::Accepted { request, person } => {
                let Some(i) = self.waiting.iter().position(|w| {
                    w.request.id == request && w.offer.as_ref().is_some_and(|(l, _, _)| *l == person)
                }) else {
                    return out; // Too late, or not theirs: ignored.
                };
                let w = self.waiting.remove(i);
                let Some((lawyer, interpreter, _)) = w.offer else { return out };
                for id in std::iter::once(&lawyer).chain(interpreter.as_ref()) {
                    if let Some(p) = self.people.get_mut(id) {
                        p.missed = 0;
                        p.person.taken_today += 1;
                    }
                    self.set_state(id, State::Busy);
                }
                out.push(Action::Matched { request, lawyer, interpreter });
            }
            Event::Declined { request, person } => {
                // The lawyer or the interpreter of a three-way offer may decline:
                // the decliner is not asked again for a while; the other is freed.
                if let Some(w) = self.waiting.iter_mut().find(|w| w.request.id == request)
                    && let Some((lawyer, interpreter, _)) =
                        w.offer.take_if(|(l, i, _)| *l == person || i.as_deref() == Some(person.as_str()))
                {
                    w.declined.insert(person.clone(), now);
                    for id in std::iter::once(lawyer).chain(interpreter) {
                        self.release(&id, now);
                        if id != person {
                            out.push(Action::Withdraw { request: request.clone(), person: id });
                        }
                    }
                }
            }
            Event::Tick => {
                let expired: Vec<(RequestId, PersonId, Option<PersonId>)> = self
                    .waiting
                    .iter()
                    .filter_map(|w| match &w.offer {
                        Some((l, i, deadline)) if *deadline <= now => {
                            Some((w.request.id.clone(), l.clone(), i.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                for (request, lawyer, interpreter) in expired {
                    if let Some(w) = self.waiting.iter_mut().find(|w| w.request.id == request) {
                        w.offer = None;
                        w.declined.insert(lawyer.clone(), now);
                    }
                    out.push(Action::Withdraw { request: request.clone(), person: lawyer.clone() });
                    if let Some(i) = interpreter {
                        self.release(&i, now);
                        out.push(Action::Withdraw { request: request.clone(), person: i });
                    }
                    let on_break = match self.people.get_mut(&lawyer) {
                        Some(p) => {
                            p.missed += 1;
                            p.missed >= self.config.max_missed
                        }
                        None => false,
                    };
                    if on_break {
                        self.set_state(&lawyer, State::Break);
                        out.push(Action::OnBreak { person: lawyer });
                    } else {
                        self.release(&lawyer, now);
                    }
                }
            }
        }
        self.dispatch(now, &mut out);
        out
    }

    /// A person whose offer ended without a match is available again, keeping
    /// their place in the idle order.
    fn release(&mut self, person: &str, now: Instant) {
        let _ = now;
        if let Some(p) = self.people.get(person)
            && let State::Ringing { since } = p.state
        {
            self.set_state(person, State::Available { since });
        }
    }

    fn withdraw_offers_to(&mut self, person: &str, out: &mut Vec<Action>) {
        let mut freed = Vec::new();
        for w in &mut self.waiting {
            if let Some((lawyer, interpreter, _)) = &w.offer
                && (lawyer == person || interpreter.as_deref() == Some(person))
            {
                let (lawyer, interpreter) = (lawyer.clone(), interpreter.clone());
                w.offer = None;
                for id in std::iter::once(lawyer).chain(interpreter) {
                    if id != person {
                        freed.push(id.clone());
                    }
                    out.push(Action::Withdraw { request: w.request.id.clone(), person: id });
                }
            }
        }
        for id in freed {
            if let Some(p) = self.people.get(&id)
                && let State::Ringing { since } = p.state
            {
                self.set_state(&id, State::Available { since });
            }
        }
    }

    /// Whether anyone the matcher knows (available, rung, busy or on a
    /// break) could ever take `request`: false means nobody suitable is on duty.
    pub fn anyone_could_take(&self, request: &Request) -> bool {
        let lawyer_speaks =
            self.people.values().any(|p| p.person.lawyer && p.person.languages.contains(&request.language));
        let interpreter = self
            .people
            .values()
            .any(|p| p.person.interpreter && p.person.languages.contains(&request.language));
        let any_lawyer = self.people.values().any(|p| p.person.lawyer);
        lawyer_speaks || (interpreter && any_lawyer)
    }

    fn ring(&self, w: &Waiting, now: Instant) -> usize {
        let waited = now.saturating_duration_since(w.arrived);
        self.config.ring_after.iter().filter(|after| waited >= **after).count()
    }

    fn available(&self, id: &str) -> Option<Instant> {
        match self.people.get(id)?.state {
            State::Available { since } => Some(since),
            _ => None,
        }
    }

    fn recently_declined(&self, w: &Waiting, person: &str, now: Instant) -> bool {
        w.declined
            .get(person)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.config.decline_cooldown)
    }

    /// The longest-idle available person passing `eligible`, who has not just declined.
    fn pick(&self, w: &Waiting, now: Instant, eligible: impl Fn(&Person) -> bool) -> Option<PersonId> {
        self.idle
            .iter()
            .filter_map(|(_, id)| self.people.get(id))
            .filter(|p| p.person.taken_today < p.person.daily_cap)
            .filter(|p| eligible(&p.person))
            .find(|p| !self.recently_declined(w, &p.person.id, now))
            .map(|p| p.person.id.clone())
    }

    /// Makes offers for waiting requests, in queue order, to available people.
    fn dispatch(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut order: Vec<usize> = (0..self.waiting.len()).collect();
        order.sort_by_key(|&i| (!self.waiting[i].front, self.waiting[i].arrived));
        for i in order {
            if self.waiting[i].offer.is_some() {
                continue;
            }
            let w = &self.waiting[i];
            let (language, topic, region) = (&w.request.language, w.request.topic, &w.request.region);
            let preferred = w
                .preferred
                .clone()
                .filter(|p| !self.recently_declined(w, p, now) && self.available(p).is_some());
            let ring = self.ring(w, now);
            let speaks = |p: &Person| p.lawyer && p.languages.contains(language);
            let choice = preferred.map(|l| (l, None)).or_else(|| {
                let team = self
                    .pick(w, now, |p| speaks(p) && p.topics.contains(&topic) && p.regions.contains(region));
                let any_topic = || self.pick(w, now, |p| speaks(p) && p.topics.contains(&topic));
                let any = || self.pick(w, now, speaks);
                let with_interpreter = || {
                    let lawyer = self.pick(w, now, |p| p.lawyer)?;
                    let interpreter = self.pick(w, now, |p| {
                        p.interpreter && p.id != lawyer && p.languages.contains(language)
                    })?;
                    Some((lawyer, Some(interpreter)))
                };
                match ring {
                    0 => team.map(|l| (l, None)),
                    1 => team.or_else(any_topic).map(|l| (l, None)),
                    2 => team.or_else(any_topic).or_else(any).map(|l| (l, None)),
                    _ => team.or_else(any_topic).or_else(any).map(|l| (l, None)).or_else(with_interpreter),
                }
            });
            let Some((lawyer, interpreter)) = choice else { continue };
            let deadline = now + self.config.offer_timeout;
            for id in std::iter::once(&lawyer).chain(interpreter.as_ref()) {
                if let Some(p) = self.people.get(id)
                    && let State::Available { since } = p.state
                {
                    self.set_state(id, State::Ringing { since });
                }
            }
            let request = self.waiting[i].request.id.clone();
            out.push(Action::Offer {
                request: request.clone(),
                person: lawyer.clone(),
                deadline,
                interpreter: false,
            });
            if let Some(interpreter) = &interpreter {
                out.push(Action::Offer { request, person: interpreter.clone(), deadline, interpreter: true });
            }
            self.waiting[i].offer = Some((lawyer, interpreter, deadline));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lang(code: &str) -> Language {
        Language::parse(code).unwrap()
    }

    fn lawyer(id: &str, languages: &[&str], regions: &[&str]) -> Person {
        Person {
            id: id.into(),
            lawyer: true,
            interpreter: false,
            languages: languages.iter().map(|l| lang(l)).collect(),
            topics: [Topic::Land, Topic::Family].into(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            daily_cap: 10,
            taken_today: 0,
        }
    }

    fn interpreter(id: &str, languages: &[&str]) -> Person {
        Person { lawyer: false, interpreter: true, ..lawyer(id, languages, &[]) }
    }

    fn request(id: &str, language: &str, topic: Topic) -> Request {
        Request { id: id.into(), region: "garze".into(), language: lang(language), topic }
    }

    fn offers(actions: &[Action]) -> Vec<(String, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Offer { request, person, .. } => Some((request.clone(), person.clone())),
                _ => None,
            })
            .collect()
    }

    fn o(r: &str, p: &str) -> (String, String) {
        (r.into(), p.into())
    }

    #[test]
    fn the_region_team_first_then_wider_rings() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        m.handle(Event::PersonAvailable(lawyer("city", &["bo"], &[])), t0);
        m.handle(Event::PersonAvailable(lawyer("team", &["bo"], &["garze"])), t0 + Duration::from_secs(1));
        let a = m.handle(Event::Requested(request("r1", "bo", Topic::Land)), t0 + Duration::from_secs(2));
        assert_eq!(offers(&a), vec![o("r1", "team")], "the region's team before the longer-idle city lawyer");
        // The team lawyer declines; ring 0 has nobody else, so the request waits for ring 1.
        let a = m.handle(
            Event::Declined { request: "r1".into(), person: "team".into() },
            t0 + Duration::from_secs(3),
        );
        assert!(offers(&a).is_empty());
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(2 + 30));
        assert_eq!(offers(&a), vec![o("r1", "city")]);
    }

    #[test]
    fn longest_idle_first_and_daily_caps() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        let mut capped = lawyer("capped", &["zh"], &["garze"]);
        capped.taken_today = 10;
        m.handle(Event::PersonAvailable(capped), t0);
        m.handle(Event::PersonAvailable(lawyer("b", &["zh"], &["garze"])), t0 + Duration::from_secs(5));
        m.handle(Event::PersonAvailable(lawyer("a", &["zh"], &["garze"])), t0 + Duration::from_secs(1));
        let a = m.handle(Event::Requested(request("r1", "zh", Topic::Family)), t0 + Duration::from_secs(10));
        assert_eq!(
            offers(&a),
            vec![o("r1", "a")],
            "idle since 1 s beats idle since 5 s; the capped one is skipped"
        );
        let a = m.handle(Event::Requested(request("r2", "zh", Topic::Family)), t0 + Duration::from_secs(11));
        assert_eq!(offers(&a), vec![o("r2", "b")], "a is ringing: one request at a time");
    }

    #[test]
    fn timeouts_move_on_and_repeated_misses_mean_break() {
        let t0 = Instant::now();
        let config = MatcherConfig { max_missed: 2, ..MatcherConfig::default() };
        let mut m = Matcher::new(config);
        m.handle(Event::PersonAvailable(lawyer("sleepy", &["zh"], &["garze"])), t0);
        m.handle(Event::PersonAvailable(lawyer("awake", &["zh"], &["garze"])), t0 + Duration::from_secs(1));
        let a = m.handle(Event::Requested(request("r1", "zh", Topic::Land)), t0 + Duration::from_secs(2));
        assert_eq!(offers(&a), vec![o("r1", "sleepy")]);
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(22));
        assert!(a.contains(&Action::Withdraw { request: "r1".into(), person: "sleepy".into() }));
        assert_eq!(offers(&a), vec![o("r1", "awake")], "moves on at the timeout");
        m.handle(
            Event::Accepted { request: "r1".into(), person: "awake".into() },
            t0 + Duration::from_secs(23),
        );
        let a = m.handle(Event::Requested(request("r2", "zh", Topic::Land)), t0 + Duration::from_secs(24));
        assert_eq!(offers(&a), vec![o("r2", "sleepy")]);
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(44));
        assert!(a.contains(&Action::OnBreak { person: "sleepy".into() }), "{a:?}");
        // On break: not offered r3 until ready again.
        let a = m.handle(Event::Requested(request("r3", "zh", Topic::Land)), t0 + Duration::from_secs(45));
        assert!(offers(&a).is_empty());
        // Back after the cooldown on r2: the older request first.
        let a = m.handle(Event::PersonReady { person: "sleepy".into() }, t0 + Duration::from_secs(110));
        assert_eq!(offers(&a), vec![o("r2", "sleepy")], "the older request first");
    }

    #[test]
    fn an_interpreter_joins_when_no_lawyer_speaks_the_language() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        m.handle(Event::PersonAvailable(lawyer("zh-lawyer", &["zh"], &["garze"])), t0);
        m.handle(Event::PersonAvailable(interpreter("tsering", &["bo", "zh"])), t0);
        let a = m.handle(Event::Requested(request("r1", "bo", Topic::Land)), t0);
        assert!(offers(&a).is_empty(), "not before the last ring");
        assert!(
            !a.contains(&Action::NobodyOnDuty { request: "r1".into() }),
            "an interpreter can make it work"
        );
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(90));
        assert_eq!(offers(&a), vec![o("r1", "zh-lawyer"), o("r1", "tsering")]);
        let a = m.handle(
            Event::Accepted { request: "r1".into(), person: "zh-lawyer".into() },
            t0 + Duration::from_secs(91),
        );
        assert_eq!(
            a,
            vec![Action::Matched {
                request: "r1".into(),
                lawyer: "zh-lawyer".into(),
                interpreter: Some("tsering".into())
            }]
        );
    }

    #[test]
    fn nobody_on_duty_is_said_at_once_and_cancel_withdraws() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        let a = m.handle(Event::Requested(request("r1", "bo", Topic::Land)), t0);
        assert_eq!(a, vec![Action::NobodyOnDuty { request: "r1".into() }]);
        let a = m.handle(Event::PersonAvailable(lawyer("l", &["bo"], &["garze"])), t0);
        assert_eq!(offers(&a), vec![o("r1", "l")], "a request that waits is served when someone comes");
        let a = m.handle(Event::Cancelled { request: "r1".into() }, t0);
        assert_eq!(a, vec![Action::Withdraw { request: "r1".into(), person: "l".into() }]);
        assert!(m.queue().is_empty());
        let late = m.handle(Event::Accepted { request: "r1".into(), person: "l".into() }, t0);
        assert!(late.is_empty(), "accepting a cancelled request does nothing");
    }

    #[test]
    fn a_dropped_resident_goes_to_the_front_and_back_to_their_lawyer() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        m.handle(Event::Requested(request("waiting", "zh", Topic::Land)), t0);
        m.handle(Event::PersonAvailable(lawyer("other", &["zh"], &["garze"])), t0);
        m.handle(Event::Accepted { request: "waiting".into(), person: "other".into() }, t0);
        m.handle(Event::Requested(request("later", "zh", Topic::Land)), t0 + Duration::from_secs(1));
        m.handle(Event::PersonAvailable(lawyer("theirs", &["zh"], &["garze"])), t0 + Duration::from_secs(1));
        // "theirs" is now ringing for "later"; a consultation of "theirs" dropped earlier is requeued.
        m.handle(
            Event::Declined { request: "later".into(), person: "theirs".into() },
            t0 + Duration::from_secs(2),
        );
        let a = m.handle(
            Event::Requeued { request: request("dropped", "zh", Topic::Land), lawyer: Some("theirs".into()) },
            t0 + Duration::from_secs(3),
        );
        assert_eq!(offers(&a), vec![o("dropped", "theirs")]);
        assert_eq!(m.queue(), vec!["dropped", "later"], "at the front");
    }

    // ---- invariants under random sequences of events

    #[derive(Debug, Clone)]
    enum Step {
        Available(usize),
        Gone(usize),
        Ready(usize),
        Request(u8, bool),
        Cancel(usize),
        Accept(usize),
        Decline(usize),
        Advance(u64),
        End(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0usize..5).prop_map(Step::Available),
            1 => (0usize..5).prop_map(Step::Gone),
            2 => (0usize..5).prop_map(Step::Ready),
            3 => (any::<u8>(), any::<bool>()).prop_map(|(n, bo)| Step::Request(n, bo)),
            1 => (0usize..8).prop_map(Step::Cancel),
            3 => (0usize..8).prop_map(Step::Accept),
            2 => (0usize..8).prop_map(Step::Decline),
            2 => (1u64..40).prop_map(Step::Advance),
            1 => (0usize..5).prop_map(Step::End),
        ]
    }

    fn people() -> Vec<Person> {
        vec![
            lawyer("l0", &["bo", "zh"], &["garze"]),
            lawyer("l1", &["zh"], &["garze"]),
            lawyer("l2", &["zh"], &[]),
            interpreter("i0", &["bo", "zh"]),
            Person { interpreter: true, ..lawyer("li", &["bo"], &[]) },
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn nobody_double_booked_nothing_lost_oldest_first(steps in proptest::collection::vec(step(), 1..80)) {
            let mut m = Matcher::new(MatcherConfig::default());
            let mut now = Instant::now();
            let people = people();
            let mut requests: Vec<String> = Vec::new();
            // Model: each request is waiting, matched or cancelled; each person is in at most one consultation.
            let mut open: BTreeSet<String> = BTreeSet::new();
            let mut done: BTreeSet<String> = BTreeSet::new();
            let mut in_call: BTreeMap<String, String> = BTreeMap::new();
            let mut ringing: BTreeMap<String, String> = BTreeMap::new(); // person -> request
            for step in steps {
                let event = match step {
                    Step::Available(i) => Event::PersonAvailable(people[i].clone()),
                    Step::Gone(i) => {
                        in_call.retain(|p, _| *p != people[i].id);
                        Event::PersonGone { person: people[i].id.clone() }
                    }
                    Step::Ready(i) => {
                        if in_call.contains_key(&people[i].id) { continue; }
                        Event::PersonReady { person: people[i].id.clone() }
                    }
                    Step::Request(n, bo) => {
                        let id = format!("r{}-{n}", requests.len());
                        requests.push(id.clone());
                        open.insert(id.clone());
                        let topic = if n % 2 == 0 { Topic::Land } else { Topic::Family };
                        Event::Requested(request(&id, if bo { "bo" } else { "zh" }, topic))
                    }
                    Step::Cancel(k) => {
                        let Some(id) = requests.get(k).cloned() else { continue };
                        if open.remove(&id) { done.insert(id.clone()); }
                        Event::Cancelled { request: id }
                    }
                    Step::Accept(k) => {
                        let Some((person, request)) = ringing.iter().nth(k % ringing.len().max(1)).map(|(p, r)| (p.clone(), r.clone())) else { continue };
                        Event::Accepted { request, person }
                    }
                    Step::Decline(k) => {
                        let Some((person, request)) = ringing.iter().nth(k % ringing.len().max(1)).map(|(p, r)| (p.clone(), r.clone())) else { continue };
                        // A lawyer's decline frees them without an action (an interpreter rung
                        // with them gets a Withdraw).
                        if m.waiting.iter().any(|w| w.request.id == request && w.offer.as_ref().is_some_and(|(l, i, _)| *l == person || i.as_deref() == Some(person.as_str()))) {
                            ringing.remove(&person);
                        }
                        Event::Declined { request, person }
                    }
                    Step::Advance(s) => {
                        now += Duration::from_secs(s);
                        Event::Tick
                    }
                    Step::End(i) => {
                        // The consultation and its wrap-up are over.
                        if in_call.remove(&people[i].id).is_none() { continue; }
                        Event::PersonReady { person: people[i].id.clone() }
                    }
                };
                let queue_before: Vec<String> = m.queue().into_iter().cloned().collect();
                for action in m.handle(event, now) {
                    match action {
                        Action::Offer { request, person, .. } => {
                            prop_assert!(!in_call.contains_key(&person), "{person} offered while in a consultation");
                            prop_assert!(!ringing.contains_key(&person), "{person} rung for two requests");
                            prop_assert!(open.contains(&request), "offer for a request not waiting");
                            ringing.insert(person, request);
                        }
                        Action::Withdraw { person, request } => {
                            prop_assert_eq!(ringing.remove(&person), Some(request));
                        }
                        Action::Matched { request, lawyer, interpreter } => {
                            prop_assert!(open.remove(&request), "matched twice or not waiting");
                            done.insert(request.clone());
                            // Oldest first: nothing that waited longer and that this lawyer could take stays unserved...
                            // checked in its simplest form: the matched request was waiting.
                            prop_assert!(queue_before.contains(&request));
                            for p in std::iter::once(lawyer).chain(interpreter) {
                                prop_assert!(!in_call.contains_key(&p), "{p} in two consultations");
                                prop_assert_eq!(ringing.remove(&p), Some(request.clone()));
                                in_call.insert(p, request.clone());
                            }
                        }
                        Action::OnBreak { person } => { ringing.remove(&person); }
                        Action::NobodyOnDuty { .. } => {}
                    }
                }
                // Declines release the ringing person without an action.
                ringing.retain(|p, r| m.waiting.iter().any(|w| &w.request.id == r && w.offer.as_ref().is_some_and(|(l, i, _)| l == p || i.as_deref() == Some(p.as_str()))));
                // The idle order is exactly the available people.
                let derived: BTreeSet<(Instant, String)> = m.people.values().filter_map(|p| match p.state {
                    State::Available { since } => Some((since, p.person.id.clone())),
                    _ => None,
                }).collect();
                prop_assert_eq!(&derived, &m.idle);
                // No request is lost: every request is waiting in the matcher, or matched, or cancelled.
                let queued: BTreeSet<String> = m.queue().into_iter().cloned().collect();
                prop_assert_eq!(&queued, &open);
                for r in &requests {
                    prop_assert!(open.contains(r) ^ done.contains(r), "{r} lost");
                }
            }
        }

        /// Offers go out in queue order: with one person and many requests, the
        /// first offer is always for the request that has waited longest.
        #[test]
        fn the_longest_waiting_request_is_offered_first(gaps in proptest::collection::vec(0u64..10, 1..10)) {
            let t0 = Instant::now();
            let mut m = Matcher::new(MatcherConfig::default());
            let mut at = t0;
            for (k, gap) in gaps.iter().enumerate() {
                at += Duration::from_secs(*gap);
                m.handle(Event::Requested(request(&format!("r{k}"), "zh", Topic::Land)), at);
            }
            let a = m.handle(Event::PersonAvailable(lawyer("l", &["zh"], &["garze"])), at);
            prop_assert_eq!(offers(&a), vec![o("r0", "l")]);
        }
    }
}
