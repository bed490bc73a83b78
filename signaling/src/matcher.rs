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
//! - People are rung in rings of preference: (0) the aid team posted to the
//!   terminal's region, with the language and topic; (1) anyone with the
//!   language and topic; (2) anyone with the language; (3) any lawyer
//!   together with an interpreter for the language. A request goes to the
//!   first ring that has someone available for it now. A ring with nobody
//!   available in it is skipped at once, unless someone in it could take the
//!   request but is busy (rung for another request, in a call, writing a
//!   record): then the request waits for them until the next ring opens
//!   ([`MatcherConfig::ring_after`], counted from the request's arrival).
//! - A three-way offer (ring 3) rings the lawyer and the interpreter
//!   together and matches only when both have accepted, in either order. If
//!   either declines or lets it time out, the other is released without a
//!   missed-offer mark and the request moves on.
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

pub use crate::ids::AccountId as PersonId;
pub use crate::ids::{RegionId, RequestId};

#[derive(Debug, Clone, PartialEq)]
pub struct MatcherConfig {
    pub offer_timeout: Duration,
    /// How long, counted from the request's arrival, it waits for busy people
    /// of the first ring before ring 1, 2 and 3 may be rung instead. Rings
    /// with nobody in them (available or busy) do not hold a request at all.
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
    pub regions: BTreeSet<RegionId>,
    pub daily_cap: u32,
    /// Consultations already taken today.
    pub taken_today: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub region: RegionId,
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
    /// A request waits (the only way in): a new one (`since` now), one that
    /// waited before this matcher knew it (after a restart, or when its
    /// terminal comes back), or a resident whose call dropped for good
    /// (`front`, to the same `lawyer` if possible). A request already waiting
    /// under the same id is replaced.
    Requested(Waiter),
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

/// A request as it enters the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiter {
    pub request: Request,
    /// When the resident started waiting (its place in the queue).
    pub since: Instant,
    /// Before every request that is not (a dropped call, an appointment).
    pub front: bool,
    /// Offered to this lawyer first, when available.
    pub lawyer: Option<PersonId>,
}

impl Waiter {
    /// A new request, waiting from `now`.
    pub fn new(request: Request, now: Instant) -> Waiter {
        Waiter { request, since: now, front: false, lawyer: None }
    }
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
    /// One of a three-way offer has accepted; the request waits for the other.
    Holding {
        request: RequestId,
        person: PersonId,
    },
    /// The request is matched (with its interpreter, when the ring needed
    /// one: both have accepted).
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
    offer: Option<Offer>,
}

#[derive(Debug, Clone)]
struct Offer {
    lawyer: PersonId,
    interpreter: Option<PersonId>,
    deadline: Instant,
    /// Who of them has accepted (a three-way waits for both).
    accepted: BTreeSet<PersonId>,
}

impl Offer {
    fn people(&self) -> impl Iterator<Item = &PersonId> {
        std::iter::once(&self.lawyer).chain(self.interpreter.as_ref())
    }

    fn includes(&self, person: &str) -> bool {
        self.people().any(|p| p == person)
    }
}

/// Per kind of request (rings open, language, topic, region): who to ring.
type ChoiceMemo =
    std::collections::HashMap<(usize, Language, Topic, RegionId), Option<(PersonId, Option<PersonId>)>>;

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

    /// A person as the matcher knows them, and whether they are available (for tests).
    #[cfg(test)]
    pub fn person(&self, id: &str) -> Option<(&Person, bool)> {
        self.people.get(id).map(|p| (&p.person, matches!(p.state, State::Available { .. })))
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
                    Some(s) => s,
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
            Event::Requested(Waiter { request, since, front, lawyer }) => {
                if let Some(i) = self.waiting.iter().position(|w| w.request.id == request.id) {
                    self.end_offer(i, &mut out);
                    self.waiting.remove(i);
                }
                if !self.anyone_could_take(&request) {
                    out.push(Action::NobodyOnDuty { request: request.id.clone() });
                }
                self.waiting.push(Waiting {
                    request,
                    arrived: since,
                    front,
                    preferred: lawyer,
                    declined: BTreeMap::new(),
                    offer: None,
                });
            }
            Event::Cancelled { request } => {
                if let Some(i) = self.waiting.iter().position(|w| w.request.id == request) {
                    self.end_offer(i, &mut out);
                    self.waiting.remove(i);
                }
            }
            Event::Accepted { request, person } => {
                let Some(i) = self.waiting.iter().position(|w| {
                    w.request.id == request && w.offer.as_ref().is_some_and(|o| o.includes(&person))
                }) else {
                    return out; // Too late, or not theirs: ignored.
                };
                let Some(offer) = self.waiting[i].offer.as_mut() else { return out };
                offer.accepted.insert(person.clone());
                if offer.people().any(|p| !offer.accepted.contains(p)) {
                    // A three-way: the first to accept waits for the other.
                    out.push(Action::Holding { request, person });
                    return out;
                }
                let w = self.waiting.remove(i);
                let Some(Offer { lawyer, interpreter, .. }) = w.offer else { return out };
                for id in std::iter::once(&lawyer).chain(interpreter.as_ref()) {
                    if let Some(p) = self.people.get_mut(id) {
                        p.missed = 0;
                        p.person.taken_today += 1;
                    }
                    self.set_state(id, State::Busy);
                }
                out.push(Action::Matched { request, lawyer, interpreter });
                // Nobody became free: no other request can be rung now that could not before.
                return out;
            }
            Event::Declined { request, person } => {
                // The lawyer or the interpreter of a three-way offer may decline
                // (even after accepting): the decliner is not asked again for a
                // while; the other is freed, unmarked.
                if let Some(i) = self.waiting.iter().position(|w| {
                    w.request.id == request && w.offer.as_ref().is_some_and(|o| o.includes(&person))
                }) {
                    self.waiting[i].declined.insert(person.clone(), now);
                    if let Some(offer) = self.waiting[i].offer.take() {
                        for id in offer.people() {
                            self.release(id);
                            if *id != person {
                                out.push(Action::Withdraw { request: request.clone(), person: id.clone() });
                            }
                        }
                    }
                }
            }
            Event::Tick => {
                for i in 0..self.waiting.len() {
                    let Some(offer) = self.waiting[i].offer.take_if(|o| o.deadline <= now) else { continue };
                    let request = self.waiting[i].request.id.clone();
                    for id in offer.people() {
                        out.push(Action::Withdraw { request: request.clone(), person: id.clone() });
                        if offer.accepted.contains(id) {
                            // Accepted and waited for the other: no mark.
                            self.release(id);
                            continue;
                        }
                        self.waiting[i].declined.insert(id.clone(), now);
                        let on_break = match self.people.get_mut(id) {
                            Some(p) => {
                                p.missed += 1;
                                p.missed >= self.config.max_missed
                            }
                            None => false,
                        };
                        if on_break {
                            self.set_state(id, State::Break);
                            out.push(Action::OnBreak { person: id.clone() });
                        } else {
                            self.release(id);
                        }
                    }
                }
            }
        }
        self.dispatch(now, &mut out);
        out
    }

    /// Withdraws the offer of the request at `i`, if any, freeing its people.
    fn end_offer(&mut self, i: usize, out: &mut Vec<Action>) {
        let Some(offer) = self.waiting[i].offer.take() else { return };
        for id in offer.people() {
            self.release(id);
            out.push(Action::Withdraw { request: self.waiting[i].request.id.clone(), person: id.clone() });
        }
    }

    /// A person whose offer ended without a match is available again, keeping
    /// their place in the idle order.
    fn release(&mut self, person: &str) {
        if let Some(p) = self.people.get(person)
            && let State::Ringing { since } = p.state
        {
            self.set_state(person, State::Available { since });
        }
    }

    /// A person leaves: every offer they are part of is withdrawn (from both
    /// people of a three-way); the other is freed.
    fn withdraw_offers_to(&mut self, person: &str, out: &mut Vec<Action>) {
        let ids: Vec<usize> = (0..self.waiting.len())
            .filter(|&i| self.waiting[i].offer.as_ref().is_some_and(|o| o.includes(person)))
            .collect();
        for i in ids {
            self.end_offer(i, out);
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

    /// How many rings the clock has opened for `w` beyond the first.
    fn timed_ring(&self, w: &Waiting, now: Instant) -> usize {
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

    /// Whether `p` may be offered `w` at all now (their cap, their recent answer).
    fn may_take(&self, w: &Waiting, p: &PersonEntry, now: Instant) -> bool {
        p.person.taken_today < p.person.daily_cap && !self.recently_declined(w, &p.person.id, now)
    }

    /// The longest-idle available person passing `eligible` who may take `w`.
    fn pick(&self, w: &Waiting, now: Instant, eligible: impl Fn(&Person) -> bool) -> Option<PersonId> {
        self.idle
            .iter()
            .filter_map(|(_, id)| self.people.get(id))
            .filter(|p| eligible(&p.person))
            .find(|p| self.may_take(w, p, now))
            .map(|p| p.person.id.clone())
    }

    /// Whether someone passing `eligible` who may take `w` is busy now (rung
    /// for another request, in a call or its wrap-up): worth waiting for.
    fn busy(&self, w: &Waiting, now: Instant, eligible: impl Fn(&Person) -> bool) -> bool {
        self.people.values().any(|p| {
            matches!(p.state, State::Ringing { .. } | State::Busy)
                && eligible(&p.person)
                && self.may_take(w, p, now)
        })
    }

    /// Who to ring for `w` now: its preferred lawyer when available (and
    /// under their cap, and not just declined), else the first ring with
    /// someone available, passing over rings with nobody in them, and waiting
    /// (`None`) for busy people of a ring the clock has not yet let the
    /// request pass.
    ///
    /// `memo` keeps, for one dispatch pass and between two offers, the choice
    /// for each kind of request (language, topic, region, rings open) that
    /// nobody declined: with a long queue and few free, each request does not
    /// walk everyone again.
    fn choose(
        &self,
        w: &Waiting,
        now: Instant,
        memo: &mut ChoiceMemo,
    ) -> Option<(PersonId, Option<PersonId>)> {
        if let Some(p) = &w.preferred
            && self.available(p).is_some()
            && self.people.get(p).is_some_and(|e| self.may_take(w, e, now))
        {
            return Some((p.clone(), None));
        }
        let timed = self.timed_ring(w, now);
        if !w.declined.is_empty() {
            return self.choose_in_rings(w, now, timed);
        }
        let key = (timed, w.request.language.clone(), w.request.topic, w.request.region.clone());
        if let Some(choice) = memo.get(&key) {
            return choice.clone();
        }
        let choice = self.choose_in_rings(w, now, timed);
        memo.insert(key, choice.clone());
        choice
    }

    fn choose_in_rings(
        &self,
        w: &Waiting,
        now: Instant,
        timed: usize,
    ) -> Option<(PersonId, Option<PersonId>)> {
        let (language, topic, region) = (&w.request.language, w.request.topic, &w.request.region);
        let speaks = |p: &Person| p.lawyer && p.languages.contains(language);
        let rings: [&dyn Fn(&Person) -> bool; 3] = [
            &|p| speaks(p) && p.topics.contains(&topic) && p.regions.contains(region),
            &|p| speaks(p) && p.topics.contains(&topic),
            &speaks,
        ];
        for (ring, eligible) in rings.iter().enumerate() {
            if let Some(lawyer) = self.pick(w, now, eligible) {
                return Some((lawyer, None));
            }
            if ring >= timed && self.busy(w, now, eligible) {
                return None;
            }
        }
        let lawyer = self.pick(w, now, |p| p.lawyer)?;
        let interpreter =
            self.pick(w, now, |p| p.interpreter && p.id != lawyer && p.languages.contains(language))?;
        Some((lawyer, Some(interpreter)))
    }

    /// Makes offers for waiting requests, in queue order, to available people.
    fn dispatch(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut order: Vec<usize> = (0..self.waiting.len()).collect();
        order.sort_by_key(|&i| (!self.waiting[i].front, self.waiting[i].arrived));
        let mut memo = ChoiceMemo::new();
        for i in order {
            if self.idle.is_empty() {
                return; // Nobody left to ring.
            }
            if self.waiting[i].offer.is_some() {
                continue;
            }
            let Some((lawyer, interpreter)) = self.choose(&self.waiting[i], now, &mut memo) else { continue };
            memo.clear(); // Who is free and who is busy just changed.
            let deadline = now + self.config.offer_timeout;
            for id in std::iter::once(&lawyer).chain(interpreter.as_ref()) {
                if let Some(since) = self.available(id) {
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
            self.waiting[i].offer = Some(Offer { lawyer, interpreter, deadline, accepted: BTreeSet::new() });
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
            regions: regions.iter().map(|r| RegionId::from(*r)).collect(),
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

    /// A new request, as the live path hands it over.
    fn asked(request: Request, at: Instant) -> Event {
        Event::Requested(Waiter::new(request, at))
    }

    fn offers(actions: &[Action]) -> Vec<(RequestId, PersonId)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Offer { request, person, .. } => Some((request.clone(), person.clone())),
                _ => None,
            })
            .collect()
    }

    fn o(r: &str, p: &str) -> (RequestId, PersonId) {
        (r.into(), p.into())
    }

    #[test]
    fn the_region_team_first_then_wider_rings() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        m.handle(Event::PersonAvailable(lawyer("city", &["bo"], &[])), t0);
        m.handle(Event::PersonAvailable(lawyer("team", &["bo"], &["garze"])), t0 + Duration::from_secs(1));
        let a = m.handle(
            asked(request("r1", "bo", Topic::Land), t0 + Duration::from_secs(2)),
            t0 + Duration::from_secs(2),
        );
        assert_eq!(offers(&a), vec![o("r1", "team")], "the region's team before the longer-idle city lawyer");
        // The team lawyer declines; ring 0 has nobody else: the city lawyer is rung at once.
        let a = m.handle(
            Event::Declined { request: "r1".into(), person: "team".into() },
            t0 + Duration::from_secs(3),
        );
        assert_eq!(offers(&a), vec![o("r1", "city")], "an empty ring is passed over at once");
    }

    #[test]
    fn a_request_waits_for_busy_people_of_a_nearer_ring_until_the_next_opens() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        m.handle(Event::PersonAvailable(lawyer("team", &["bo"], &["garze"])), t0);
        m.handle(asked(request("first", "bo", Topic::Land), t0), t0);
        m.handle(Event::Accepted { request: "first".into(), person: "team".into() }, t0);
        // The team's lawyer is in a call; a city lawyer comes on duty.
        m.handle(Event::PersonAvailable(lawyer("city", &["bo"], &[])), t0);
        let a = m.handle(asked(request("r1", "bo", Topic::Land), t0), t0);
        assert!(offers(&a).is_empty(), "waits for the region's own team while it is busy");
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(29));
        assert!(offers(&a).is_empty());
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(30));
        assert_eq!(offers(&a), vec![o("r1", "city")], "ring 1 opens after ring_after[0]");
        // With nobody at all in the nearer rings, a lawyer and interpreter are paired at once.
        let mut m = Matcher::new(MatcherConfig::default());
        m.handle(Event::PersonAvailable(lawyer("zh", &["zh"], &[])), t0);
        m.handle(Event::PersonAvailable(interpreter("i", &["bo", "zh"])), t0);
        let a = m.handle(asked(request("r2", "bo", Topic::Land), t0), t0);
        assert_eq!(offers(&a), vec![o("r2", "zh"), o("r2", "i")]);
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
        let a = m.handle(
            asked(request("r1", "zh", Topic::Family), t0 + Duration::from_secs(10)),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(
            offers(&a),
            vec![o("r1", "a")],
            "idle since 1 s beats idle since 5 s; the capped one is skipped"
        );
        let a = m.handle(
            asked(request("r2", "zh", Topic::Family), t0 + Duration::from_secs(11)),
            t0 + Duration::from_secs(11),
        );
        assert_eq!(offers(&a), vec![o("r2", "b")], "a is ringing: one request at a time");
    }

    #[test]
    fn timeouts_move_on_and_repeated_misses_mean_break() {
        let t0 = Instant::now();
        let config = MatcherConfig { max_missed: 2, ..MatcherConfig::default() };
        let mut m = Matcher::new(config);
        m.handle(Event::PersonAvailable(lawyer("sleepy", &["zh"], &["garze"])), t0);
        m.handle(Event::PersonAvailable(lawyer("awake", &["zh"], &["garze"])), t0 + Duration::from_secs(1));
        let a = m.handle(
            asked(request("r1", "zh", Topic::Land), t0 + Duration::from_secs(2)),
            t0 + Duration::from_secs(2),
        );
        assert_eq!(offers(&a), vec![o("r1", "sleepy")]);
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(22));
        assert!(a.contains(&Action::Withdraw { request: "r1".into(), person: "sleepy".into() }));
        assert_eq!(offers(&a), vec![o("r1", "awake")], "moves on at the timeout");
        m.handle(
            Event::Accepted { request: "r1".into(), person: "awake".into() },
            t0 + Duration::from_secs(23),
        );
        let a = m.handle(
            asked(request("r2", "zh", Topic::Land), t0 + Duration::from_secs(24)),
            t0 + Duration::from_secs(24),
        );
        assert_eq!(offers(&a), vec![o("r2", "sleepy")]);
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(44));
        assert!(a.contains(&Action::OnBreak { person: "sleepy".into() }), "{a:?}");
        // On break: not offered r3 until ready again.
        let a = m.handle(
            asked(request("r3", "zh", Topic::Land), t0 + Duration::from_secs(45)),
            t0 + Duration::from_secs(45),
        );
        assert!(offers(&a).is_empty());
        // Back after the cooldown on r2: the older request first.
        let a = m.handle(Event::PersonReady { person: "sleepy".into() }, t0 + Duration::from_secs(110));
        assert_eq!(offers(&a), vec![o("r2", "sleepy")], "the older request first");
    }

    #[test]
    fn a_three_way_starts_only_when_both_have_accepted_in_either_order() {
        let t0 = Instant::now();
        let start = || {
            let mut m = Matcher::new(MatcherConfig::default());
            m.handle(Event::PersonAvailable(lawyer("zh-lawyer", &["zh"], &["garze"])), t0);
            m.handle(Event::PersonAvailable(interpreter("tsering", &["bo", "zh"])), t0);
            let a = m.handle(asked(request("r1", "bo", Topic::Land), t0), t0);
            assert!(
                !a.contains(&Action::NobodyOnDuty { request: "r1".into() }),
                "an interpreter can make it work"
            );
            assert_eq!(
                offers(&a),
                vec![o("r1", "zh-lawyer"), o("r1", "tsering")],
                "at once: no lawyer speaks bo"
            );
            m
        };
        let matched = vec![Action::Matched {
            request: "r1".into(),
            lawyer: "zh-lawyer".into(),
            interpreter: Some("tsering".into()),
        }];
        for (first, second) in [("zh-lawyer", "tsering"), ("tsering", "zh-lawyer")] {
            let mut m = start();
            let a = m.handle(Event::Accepted { request: "r1".into(), person: first.into() }, t0);
            assert_eq!(
                a,
                vec![Action::Holding { request: "r1".into(), person: first.into() }],
                "{first} waits"
            );
            let again = m.handle(Event::Accepted { request: "r1".into(), person: first.into() }, t0);
            assert_eq!(again, vec![Action::Holding { request: "r1".into(), person: first.into() }]);
            let a = m.handle(Event::Accepted { request: "r1".into(), person: second.into() }, t0);
            assert_eq!(a, matched, "{first} then {second}");
        }
    }

    #[test]
    fn a_three_way_partner_who_declines_or_times_out_frees_the_other_unmarked() {
        let t0 = Instant::now();
        let config = MatcherConfig { max_missed: 1, ..MatcherConfig::default() };
        let mut m = Matcher::new(config);
        m.handle(Event::PersonAvailable(lawyer("zh-lawyer", &["zh"], &["garze"])), t0);
        m.handle(Event::PersonAvailable(interpreter("i1", &["bo", "zh"])), t0);
        m.handle(asked(request("r1", "bo", Topic::Land), t0), t0);
        m.handle(Event::Accepted { request: "r1".into(), person: "zh-lawyer".into() }, t0);
        // The interpreter lets it time out: only they are marked (max_missed 1: a break).
        let a = m.handle(Event::Tick, t0 + Duration::from_secs(20));
        assert!(a.contains(&Action::Withdraw { request: "r1".into(), person: "zh-lawyer".into() }));
        assert!(a.contains(&Action::OnBreak { person: "i1".into() }), "{a:?}");
        assert!(!a.contains(&Action::OnBreak { person: "zh-lawyer".into() }), "{a:?}");
        // A second interpreter comes: the lawyer, who accepted, is rung again with them at once.
        let a =
            m.handle(Event::PersonAvailable(interpreter("i2", &["bo", "zh"])), t0 + Duration::from_secs(21));
        assert_eq!(offers(&a), vec![o("r1", "zh-lawyer"), o("r1", "i2")]);
        m.handle(Event::Accepted { request: "r1".into(), person: "i2".into() }, t0 + Duration::from_secs(22));
        // The lawyer declines after the interpreter accepted: the interpreter is freed.
        let a = m.handle(
            Event::Declined { request: "r1".into(), person: "zh-lawyer".into() },
            t0 + Duration::from_secs(23),
        );
        assert_eq!(a, vec![Action::Withdraw { request: "r1".into(), person: "i2".into() }]);
        assert!(m.available("i2").is_some());
        assert_eq!(m.people["i2"].missed, 0);
    }

    #[test]
    fn nobody_on_duty_is_said_at_once_and_cancel_withdraws() {
        let t0 = Instant::now();
        let mut m = Matcher::new(MatcherConfig::default());
        let a = m.handle(asked(request("r1", "bo", Topic::Land), t0), t0);
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
        m.handle(asked(request("waiting", "zh", Topic::Land), t0), t0);
        m.handle(Event::PersonAvailable(lawyer("other", &["zh"], &["garze"])), t0);
        m.handle(Event::Accepted { request: "waiting".into(), person: "other".into() }, t0);
        m.handle(
            asked(request("later", "zh", Topic::Land), t0 + Duration::from_secs(1)),
            t0 + Duration::from_secs(1),
        );
        m.handle(Event::PersonAvailable(lawyer("theirs", &["zh"], &["garze"])), t0 + Duration::from_secs(1));
        // "theirs" is now ringing for "later"; a consultation of "theirs" dropped earlier is requeued.
        m.handle(
            Event::Declined { request: "later".into(), person: "theirs".into() },
            t0 + Duration::from_secs(2),
        );
        let dropped = Waiter {
            request: request("dropped", "zh", Topic::Land),
            since: t0 + Duration::from_secs(3),
            front: true,
            lawyer: Some("theirs".into()),
        };
        let a = m.handle(Event::Requested(dropped), t0 + Duration::from_secs(3));
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
            let mut requests: Vec<RequestId> = Vec::new();
            // Model: each request is waiting, matched or cancelled; each person is in at most one consultation.
            let mut open: BTreeSet<RequestId> = BTreeSet::new();
            let mut done: BTreeSet<RequestId> = BTreeSet::new();
            let mut in_call: BTreeMap<PersonId, RequestId> = BTreeMap::new();
            let mut ringing: BTreeMap<PersonId, RequestId> = BTreeMap::new(); // person -> request
            // Who has accepted the request they are rung for (a three-way waits for both).
            let mut accepted: BTreeSet<PersonId> = BTreeSet::new();
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
                        let id = RequestId::from(format!("r{}-{n}", requests.len()));
                        requests.push(id.clone());
                        open.insert(id.clone());
                        let topic = if n % 2 == 0 { Topic::Land } else { Topic::Family };
                        asked(request(&id, if bo { "bo" } else { "zh" }, topic), now)
                    }
                    Step::Cancel(k) => {
                        let Some(id) = requests.get(k).cloned() else { continue };
                        if open.remove(&id) { done.insert(id.clone()); }
                        Event::Cancelled { request: id }
                    }
                    Step::Accept(k) => {
                        let Some((person, request)) = ringing.iter().nth(k % ringing.len().max(1)).map(|(p, r)| (p.clone(), r.clone())) else { continue };
                        accepted.insert(person.clone());
                        Event::Accepted { request, person }
                    }
                    Step::Decline(k) => {
                        let Some((person, request)) = ringing.iter().nth(k % ringing.len().max(1)).map(|(p, r)| (p.clone(), r.clone())) else { continue };
                        // A lawyer's decline frees them without an action (an interpreter rung
                        // with them gets a Withdraw).
                        if m.waiting.iter().any(|w| w.request.id == request && w.offer.as_ref().is_some_and(|o| o.includes(&person))) {
                            ringing.remove(&person);
                            accepted.remove(&person);
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
                let queue_before: Vec<RequestId> = m.queue().into_iter().cloned().collect();
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
                            accepted.remove(&person);
                        }
                        Action::Holding { person, request } => {
                            prop_assert_eq!(ringing.get(&person), Some(&request));
                            prop_assert!(accepted.contains(&person));
                        }
                        Action::Matched { request, lawyer, interpreter } => {
                            prop_assert!(open.remove(&request), "matched twice or not waiting");
                            done.insert(request.clone());
                            // Oldest first: nothing that waited longer and that this lawyer could take stays unserved...
                            // checked in its simplest form: the matched request was waiting.
                            prop_assert!(queue_before.contains(&request));
                            for p in std::iter::once(lawyer).chain(interpreter) {
                                prop_assert!(accepted.remove(&p), "{p} matched without accepting");
                                prop_assert!(!in_call.contains_key(&p), "{p} in two consultations");
                                prop_assert_eq!(ringing.remove(&p), Some(request.clone()));
                                in_call.insert(p, request.clone());
                            }
                        }
                        Action::OnBreak { person } => { ringing.remove(&person); accepted.remove(&person); }
                        Action::NobodyOnDuty { .. } => {}
                    }
                }
                // Declines release the ringing person without an action.
                ringing.retain(|p, r| m.waiting.iter().any(|w| &w.request.id == r && w.offer.as_ref().is_some_and(|o| o.includes(p))));
                accepted.retain(|p| ringing.contains_key(p));
                // Nobody waits while someone of the first ring, or a lawyer and an
                // interpreter with nobody nearer even busy, is available for them.
                for w in m.waiting.iter().filter(|w| w.offer.is_none()) {
                    let free = |p: &PersonEntry| {
                        matches!(p.state, State::Available { .. })
                            && p.person.taken_today < p.person.daily_cap
                            && w.declined.get(&p.person.id).is_none_or(|at| now.saturating_duration_since(*at) >= m.config.decline_cooldown)
                    };
                    let speaks = |p: &PersonEntry| p.person.lawyer && p.person.languages.contains(&w.request.language);
                    let team = m.people.values().any(|p| free(p) && speaks(p) && p.person.topics.contains(&w.request.topic) && p.person.regions.contains(&w.request.region));
                    prop_assert!(!team, "{} waits while its region's team has someone free", w.request.id);
                    let nobody_speaks = !m.people.values().any(speaks);
                    let pair = m.people.values().any(|l| free(l) && l.person.lawyer && m.people.values().any(|i| free(i) && i.person.id != l.person.id && i.person.interpreter && i.person.languages.contains(&w.request.language)));
                    prop_assert!(!(nobody_speaks && pair), "{} waits while a lawyer and an interpreter are free", w.request.id);
                }
                // The idle order is exactly the available people.
                let derived: BTreeSet<(Instant, PersonId)> = m.people.values().filter_map(|p| match p.state {
                    State::Available { since } => Some((since, p.person.id.clone())),
                    _ => None,
                }).collect();
                prop_assert_eq!(&derived, &m.idle);
                // No request is lost: every request is waiting in the matcher, or matched, or cancelled.
                let queued: BTreeSet<RequestId> = m.queue().into_iter().cloned().collect();
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
                m.handle(asked(request(&format!("r{k}"), "zh", Topic::Land), at), at);
            }
            let a = m.handle(Event::PersonAvailable(lawyer("l", &["zh"], &["garze"])), at);
            prop_assert_eq!(offers(&a), vec![o("r0", "l")]);
        }
    }
}
