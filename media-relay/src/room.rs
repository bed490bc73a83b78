//! One room's forwarding decisions, as plain synchronous code.
//!
//! [`Room`] is fed events (a participant joins, publishes a track, a packet
//! arrives, a receiver asks for a keyframe, a receiver's downlink estimate
//! changes) with the current time, and answers with [`Action`]s for the I/O
//! layer to carry out (subscribe a receiver to a track, renegotiate, forward
//! a packet, ask a sender for a keyframe, tell signaling that a receiver went
//! audio-only). It does no I/O and starts no tasks, so every rule here is
//! tested without a network (see STYLE.md on str0m).
//!
//! The rules:
//! - Every participant receives every other participant's tracks, never its own;
//!   a participant publishes only the kinds its room token grants.
//! - A receiver that starts receiving a video track waits for a keyframe and
//!   gets none of that track's delta frames until then; the sender is asked for
//!   one at once, and again while anyone still waits (a request or the
//!   keyframe may be lost). Keyframe requests to one track are sent at most
//!   once per [`Policy::keyframe_interval`], however many receivers ask.
//! - Audio first: a receiver whose downlink cannot carry video (estimate below
//!   [`Policy::video_floor_bps`], or loss above [`Policy::video_max_loss`], for
//!   [`Policy::degrade_after`]) stops receiving video and keeps audio; when the
//!   estimate stays above [`Policy::video_resume_bps`] with low loss for
//!   [`Policy::recover_after`], video comes back, starting from a keyframe. A
//!   participant may also choose audio only, which no estimate overrides.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A participant, as signaling names it in the room token.
pub use crate::ids::ParticipantId;

/// A published track: `(publisher, track id)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackKey {
    pub publisher: ParticipantId,
    pub track: String,
}

/// A published track's number in its room ([`Room::track_no`]): what the
/// per-packet path ([`Room::forward`]) goes by, rather than comparing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackNo(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Audio,
    Video,
}

/// The names of media kinds in grants and on the wire (as serde spells them).
impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "audio" => Some(Kind::Audio),
            "video" => Some(Kind::Video),
            _ => None,
        }
    }
}

/// The thresholds of the audio-first policy and the keyframe limiter.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Below this downlink estimate a receiver gets audio only.
    pub video_floor_bps: u64,
    /// Above this, sustained, video returns (higher than the floor: hysteresis).
    pub video_resume_bps: u64,
    /// Loss fraction above which video is dropped.
    pub video_max_loss: f32,
    /// Loss fraction below which video may return.
    pub video_resume_loss: f32,
    /// How long a bad downlink lasts before video is dropped.
    pub degrade_after: Duration,
    /// How long a good downlink lasts before video returns.
    pub recover_after: Duration,
    /// Least time between two keyframe requests to one track.
    pub keyframe_interval: Duration,
    pub max_participants: usize,
    pub max_tracks_per_participant: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            video_floor_bps: 150_000,
            video_resume_bps: 300_000,
            video_max_loss: 0.10,
            video_resume_loss: 0.02,
            degrade_after: Duration::from_secs(2),
            recover_after: Duration::from_secs(5),
            keyframe_interval: Duration::from_millis(500),
            max_participants: 6,
            max_tracks_per_participant: 4,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Joined {
        participant: ParticipantId,
        may_publish: BTreeSet<Kind>,
    },
    Left {
        participant: ParticipantId,
    },
    Published {
        key: TrackKey,
        kind: Kind,
    },
    Unpublished {
        key: TrackKey,
    },
    /// A media packet from a published track; `keyframe` for the first packet
    /// of a video keyframe.
    Packet {
        key: TrackKey,
        keyframe: bool,
    },
    /// A receiver lost video sync (its PLI/FIR) or needs a fresh start.
    KeyframeWanted {
        receiver: ParticipantId,
        key: TrackKey,
    },
    /// A receiver's downlink: bandwidth estimate and loss fraction.
    Downlink {
        receiver: ParticipantId,
        estimate_bps: u64,
        loss: f32,
    },
    /// The participant's media connection came up (DTLS done) or went down.
    /// Nothing is sent to a participant whose connection is down, and when it
    /// comes (back) up every video track starts again from a keyframe.
    Connection {
        participant: ParticipantId,
        up: bool,
    },
    /// The participant asks for audio only (or video again).
    AudioOnlyChosen {
        participant: ParticipantId,
        on: bool,
    },
    /// The receiver answered an offer that has this track in it: from now on
    /// it can take its packets (before, a keyframe sent to it would be lost).
    TrackReady {
        receiver: ParticipantId,
        key: TrackKey,
    },
}

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Start sending this track to this receiver.
    Subscribe { receiver: ParticipantId, key: TrackKey },
    /// Stop sending this track to this receiver.
    Unsubscribe { receiver: ParticipantId, key: TrackKey },
    /// The receiver's tracks changed: send it a new offer.
    Renegotiate { receiver: ParticipantId },
    /// Send this packet to these receivers (`to`); the other receivers do not
    /// get it, for the reason given (`withheld`), so that it is counted.
    Forward { key: TrackKey, to: Vec<ParticipantId>, withheld: Vec<(ParticipantId, Withheld)> },
    /// Ask the publisher of this track for a keyframe (PLI).
    RequestKeyframe { key: TrackKey },
    /// The receiver now gets audio only (or video again); tell signaling.
    AudioOnly { receiver: ParticipantId, on: bool },
}

/// Why the room kept a packet from a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Withheld {
    /// The receiver's media connection is not up yet, or its consent expired.
    NotConnected,
    /// A video receiver waits for the next keyframe.
    AwaitingKeyframe,
    /// The receiver gets audio only (chosen, or its downlink is poor).
    AudioOnly,
    /// The receiver has not yet answered an offer with this track in it.
    NoTrackYet,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the room is full")]
    RoomFull,
    #[error("{0} is not in the room")]
    NotInRoom(ParticipantId),
    #[error("{0} is already in the room")]
    AlreadyInRoom(ParticipantId),
    #[error("the room token does not allow publishing {0:?}")]
    NotGranted(Kind),
    #[error("too many tracks")]
    TooManyTracks,
    #[error("no such track")]
    NoSuchTrack,
}

#[derive(Debug, Default)]
struct Receiver {
    /// Tracks in an offer this receiver has answered.
    ready: BTreeSet<TrackNo>,
    /// Video tracks this receiver waits for a keyframe on.
    awaiting_keyframe: BTreeSet<TrackNo>,
    chosen_audio_only: bool,
    degraded: bool,
    /// Since when the downlink has been bad (for degrading) or good (for recovering).
    bad_since: Option<Instant>,
    good_since: Option<Instant>,
}

#[derive(Debug)]
struct Participant {
    may_publish: BTreeSet<Kind>,
    receiver: Receiver,
    connected: bool,
}

impl Participant {
    fn audio_only(&self) -> bool {
        self.receiver.chosen_audio_only || self.receiver.degraded
    }
}

/// One room's state.
#[derive(Debug)]
pub struct Room {
    policy: Policy,
    participants: BTreeMap<ParticipantId, Participant>,
    tracks: BTreeMap<TrackKey, Track>,
    /// The same tracks by number, for the per-packet path.
    numbered: Vec<(TrackNo, TrackKey, Kind)>,
    next_no: u32,
    last_keyframe_request: BTreeMap<TrackKey, Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Track {
    no: TrackNo,
    kind: Kind,
}

impl Room {
    pub fn new(policy: Policy) -> Room {
        Room {
            policy,
            participants: BTreeMap::new(),
            tracks: BTreeMap::new(),
            numbered: Vec::new(),
            next_no: 0,
            last_keyframe_request: BTreeMap::new(),
        }
    }

    pub fn participants(&self) -> impl Iterator<Item = &ParticipantId> {
        self.participants.keys()
    }

    pub fn is_audio_only(&self, participant: &ParticipantId) -> Option<bool> {
        self.participants.get(participant).map(Participant::audio_only)
    }

    /// The number of a published track, for [`Room::forward`].
    pub fn track_no(&self, key: &TrackKey) -> Option<TrackNo> {
        self.tracks.get(key).map(|track| track.no)
    }

    /// Handles one event at `now`.
    pub fn handle(&mut self, event: Event, now: Instant) -> Result<Vec<Action>, Refusal> {
        let mut out = Vec::new();
        match event {
            Event::Joined { participant, may_publish } => {
                if self.participants.contains_key(&participant) {
                    return Err(Refusal::AlreadyInRoom(participant));
                }
                if self.participants.len() >= self.policy.max_participants {
                    return Err(Refusal::RoomFull);
                }
                self.participants.insert(
                    participant.clone(),
                    Participant { may_publish, receiver: Receiver::default(), connected: false },
                );
                let existing: Vec<TrackKey> = self.tracks.keys().cloned().collect();
                for key in existing {
                    self.subscribe(&participant, key, &mut out);
                }
                if !out.is_empty() {
                    out.push(Action::Renegotiate { receiver: participant });
                }
            }
            Event::Left { participant } => {
                if self.participants.remove(&participant).is_none() {
                    return Err(Refusal::NotInRoom(participant));
                }
                let gone: Vec<TrackKey> =
                    self.tracks.keys().filter(|k| k.publisher == participant).cloned().collect();
                for key in gone {
                    self.unpublish(&key, &mut out);
                }
            }
            Event::Published { key, kind } => {
                let publisher = self
                    .participants
                    .get(&key.publisher)
                    .ok_or_else(|| Refusal::NotInRoom(key.publisher.clone()))?;
                if !publisher.may_publish.contains(&kind) {
                    return Err(Refusal::NotGranted(kind));
                }
                if self.tracks.contains_key(&key) {
                    return Ok(out); // Already published: nothing changes.
                }
                let count = self.tracks.keys().filter(|k| k.publisher == key.publisher).count();
                if count >= self.policy.max_tracks_per_participant {
                    return Err(Refusal::TooManyTracks);
                }
                let no = TrackNo(self.next_no);
                self.next_no = self.next_no.wrapping_add(1);
                self.tracks.insert(key.clone(), Track { no, kind });
                self.numbered.push((no, key.clone(), kind));
                let receivers: Vec<ParticipantId> =
                    self.participants.keys().filter(|p| **p != key.publisher).cloned().collect();
                for receiver in receivers {
                    self.subscribe(&receiver, key.clone(), &mut out);
                    out.push(Action::Renegotiate { receiver });
                }
            }
            Event::Unpublished { key } => {
                if !self.tracks.contains_key(&key) {
                    return Err(Refusal::NoSuchTrack);
                }
                self.unpublish(&key, &mut out);
            }
            Event::Packet { key, keyframe } => {
                let no = self.track_no(&key).ok_or(Refusal::NoSuchTrack)?;
                let mut to = Vec::new();
                let mut withheld = Vec::new();
                let request = self.forward(no, keyframe, now, |id, verdict| match verdict {
                    None => to.push(id.clone()),
                    Some(why) => withheld.push((id.clone(), why)),
                })?;
                out.extend(request);
                if !to.is_empty() || !withheld.is_empty() {
                    out.push(Action::Forward { key, to, withheld });
                }
            }
            Event::KeyframeWanted { receiver, key } => {
                let participant = self.participants.get_mut(&receiver).ok_or(Refusal::NotInRoom(receiver))?;
                let Some(Track { no, kind: Kind::Video }) = self.tracks.get(&key).copied() else {
                    return Err(Refusal::NoSuchTrack);
                };
                participant.receiver.awaiting_keyframe.insert(no);
                self.request_keyframe(key, now, &mut out);
            }
            Event::Downlink { receiver, estimate_bps, loss } => {
                self.downlink(&receiver, estimate_bps, loss, now, &mut out)?;
            }
            Event::Connection { participant, up } => {
                let p = self
                    .participants
                    .get_mut(&participant)
                    .ok_or_else(|| Refusal::NotInRoom(participant.clone()))?;
                let was = p.connected;
                p.connected = up;
                if up && !was && !p.audio_only() {
                    self.restart_video(&participant, now, &mut out);
                }
            }
            Event::TrackReady { receiver, key } => {
                let Some(Track { no, kind }) = self.tracks.get(&key).copied() else {
                    return Err(Refusal::NoSuchTrack);
                };
                let p = self.participants.get_mut(&receiver).ok_or(Refusal::NotInRoom(receiver))?;
                if !p.receiver.ready.insert(no) || kind != Kind::Video {
                    return Ok(out);
                }
                // Its video starts at a keyframe, asked for now that it can be used.
                p.receiver.awaiting_keyframe.insert(no);
                if p.connected && !p.audio_only() {
                    self.request_keyframe(key, now, &mut out);
                }
            }
            Event::AudioOnlyChosen { participant, on } => {
                let p = self
                    .participants
                    .get_mut(&participant)
                    .ok_or_else(|| Refusal::NotInRoom(participant.clone()))?;
                let before = p.audio_only();
                p.receiver.chosen_audio_only = on;
                self.audio_only_changed(&participant, before, now, &mut out);
            }
        }
        Ok(out)
    }

    /// The receiver gets the track once it has answered an offer with it
    /// ([`Event::TrackReady`]); video then starts from a keyframe.
    fn subscribe(&mut self, receiver: &ParticipantId, key: TrackKey, out: &mut Vec<Action>) {
        out.push(Action::Subscribe { receiver: receiver.clone(), key });
    }

    fn unpublish(&mut self, key: &TrackKey, out: &mut Vec<Action>) {
        let Some(Track { no, .. }) = self.tracks.remove(key) else { return };
        self.numbered.retain(|(n, ..)| *n != no);
        self.last_keyframe_request.remove(key);
        for (id, participant) in self.participants.iter_mut() {
            if *id == key.publisher {
                continue;
            }
            participant.receiver.awaiting_keyframe.remove(&no);
            participant.receiver.ready.remove(&no);
            out.push(Action::Unsubscribe { receiver: id.clone(), key: key.clone() });
            out.push(Action::Renegotiate { receiver: id.clone() });
        }
    }

    /// At most one request per track per interval, however many ask; none to
    /// a publisher whose connection is not up (it could not be sent, and its
    /// first frame once connected is a keyframe).
    /// A media packet of track `no` (`keyframe`: the first packet of a video
    /// keyframe), without allocating: `each` is told, for every other
    /// participant, whether it gets the packet (`None`) or why not. Returns
    /// the keyframe request to make, if a receiver still waits for one.
    /// [`Event::Packet`] is the same as an event.
    pub fn forward(
        &mut self,
        no: TrackNo,
        keyframe: bool,
        now: Instant,
        mut each: impl FnMut(&ParticipantId, Option<Withheld>),
    ) -> Result<Option<Action>, Refusal> {
        let Room { participants, numbered, .. } = self;
        let Some((_, key, kind)) = numbered.iter().find(|(n, ..)| *n == no) else {
            return Err(Refusal::NoSuchTrack);
        };
        let kind = *kind;
        let mut waiting = false;
        for (id, participant) in participants.iter_mut() {
            if *id == key.publisher {
                continue;
            }
            if !participant.connected {
                each(id, Some(Withheld::NotConnected));
                continue;
            }
            if !participant.receiver.ready.contains(&no) {
                each(id, Some(Withheld::NoTrackYet));
                continue;
            }
            if kind == Kind::Video {
                if participant.audio_only() {
                    each(id, Some(Withheld::AudioOnly));
                    continue;
                }
                let receiver = &mut participant.receiver;
                if receiver.awaiting_keyframe.contains(&no) {
                    if !keyframe {
                        waiting = true;
                        each(id, Some(Withheld::AwaitingKeyframe));
                        continue;
                    }
                    receiver.awaiting_keyframe.remove(&no);
                }
            }
            each(id, None);
        }
        let mut request = Vec::new();
        if waiting {
            // The first request (or the keyframe) may have been lost: ask
            // again, within the same limit.
            let key = key.clone();
            self.request_keyframe(key, now, &mut request);
        }
        Ok(request.pop())
    }

    fn request_keyframe(&mut self, key: TrackKey, now: Instant, out: &mut Vec<Action>) {
        if !self.participants.get(&key.publisher).is_some_and(|p| p.connected) {
            return;
        }
        let recent = self
            .last_keyframe_request
            .get(&key)
            .is_some_and(|last| now.saturating_duration_since(*last) < self.policy.keyframe_interval);
        if !recent {
            self.last_keyframe_request.insert(key.clone(), now);
            out.push(Action::RequestKeyframe { key });
        }
    }

    fn downlink(
        &mut self,
        receiver: &ParticipantId,
        estimate: u64,
        loss: f32,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Result<(), Refusal> {
        let policy = self.policy.clone();
        let p = self.participants.get_mut(receiver).ok_or_else(|| Refusal::NotInRoom(receiver.clone()))?;
        let before = p.audio_only();
        let r = &mut p.receiver;
        let bad = estimate < policy.video_floor_bps || loss > policy.video_max_loss;
        let good = estimate >= policy.video_resume_bps && loss <= policy.video_resume_loss;
        if bad {
            r.good_since = None;
            let since = *r.bad_since.get_or_insert(now);
            if !r.degraded && now.saturating_duration_since(since) >= policy.degrade_after {
                r.degraded = true;
            }
        } else if good {
            r.bad_since = None;
            let since = *r.good_since.get_or_insert(now);
            if r.degraded && now.saturating_duration_since(since) >= policy.recover_after {
                r.degraded = false;
            }
        } else {
            // In between: neither clock runs, nothing changes.
            r.bad_since = None;
            r.good_since = None;
        }
        self.audio_only_changed(receiver, before, now, out);
        Ok(())
    }

    /// When a receiver's audio-only state flips: say so, and when video
    /// returns, start every video track from a keyframe.
    fn audio_only_changed(
        &mut self,
        receiver: &ParticipantId,
        before: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(p) = self.participants.get_mut(receiver) else { return };
        let after = p.audio_only();
        if before == after {
            return;
        }
        out.push(Action::AudioOnly { receiver: receiver.clone(), on: after });
        if !after {
            self.restart_video(receiver, now, out);
        }
    }

    /// Every video track the receiver gets starts again from a keyframe.
    fn restart_video(&mut self, receiver: &ParticipantId, now: Instant, out: &mut Vec<Action>) {
        let Some(ready) = self.participants.get(receiver).map(|p| &p.receiver.ready) else { return };
        let videos: Vec<(TrackNo, TrackKey)> = self
            .numbered
            .iter()
            .filter(|(no, _, kind)| *kind == Kind::Video && ready.contains(no))
            .map(|(no, key, _)| (*no, key.clone()))
            .collect();
        for (no, key) in videos {
            if let Some(p) = self.participants.get_mut(receiver) {
                p.receiver.awaiting_keyframe.insert(no);
            }
            self.request_keyframe(key, now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> BTreeSet<Kind> {
        [Kind::Audio, Kind::Video].into()
    }

    fn key(p: &str, t: &str) -> TrackKey {
        TrackKey { publisher: p.into(), track: t.into() }
    }

    /// Joins and connects at once (a connection coming up later is tested on its own).
    fn joined(room: &mut Room, who: &str, now: Instant) -> Vec<Action> {
        let mut actions =
            room.handle(Event::Joined { participant: who.into(), may_publish: both() }, now).unwrap();
        actions.extend(room.handle(Event::Connection { participant: who.into(), up: true }, now).unwrap());
        actions
    }

    fn forwarded(actions: &[Action]) -> Vec<ParticipantId> {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Forward { to, .. } => Some(to.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The receiver answers an offer with every track it is subscribed to.
    fn answered(room: &mut Room, who: &str, now: Instant) -> Vec<Action> {
        let keys: Vec<TrackKey> = room.tracks.keys().filter(|k| k.publisher != who).cloned().collect();
        keys.into_iter()
            .flat_map(|key| room.handle(Event::TrackReady { receiver: who.into(), key }, now).unwrap())
            .collect()
    }

    fn withheld(actions: &[Action]) -> Vec<(String, Withheld)> {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Forward { withheld, .. } => {
                    Some(withheld.iter().map(|(p, why)| (p.to_string(), *why)).collect())
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    /// A resident and a lawyer, each publishing audio and video.
    fn call(now: Instant) -> Room {
        let mut room = Room::new(Policy::default());
        joined(&mut room, "resident", now);
        joined(&mut room, "lawyer", now);
        for who in ["resident", "lawyer"] {
            room.handle(Event::Published { key: key(who, "a"), kind: Kind::Audio }, now).unwrap();
            room.handle(Event::Published { key: key(who, "v"), kind: Kind::Video }, now).unwrap();
        }
        for who in ["resident", "lawyer"] {
            answered(&mut room, who, now);
        }
        for who in ["resident", "lawyer"] {
            room.handle(Event::Packet { key: key(who, "v"), keyframe: true }, now).unwrap();
        }
        room
    }

    #[test]
    fn everyone_gets_everyone_else_never_themselves() {
        let now = Instant::now();
        let mut room = call(now);
        let actions = joined(&mut room, "interpreter", now);
        let subscribed: Vec<&TrackKey> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Subscribe { receiver, key } if receiver == "interpreter" => Some(key),
                _ => None,
            })
            .collect();
        assert_eq!(subscribed.len(), 4, "{actions:?}");
        assert!(actions.contains(&Action::Renegotiate { receiver: "interpreter".into() }));
        let audio = room.handle(Event::Packet { key: key("lawyer", "a"), keyframe: false }, now).unwrap();
        assert_eq!(forwarded(&audio), vec!["resident".to_owned()], "not before its offer is answered");
        assert_eq!(withheld(&audio), vec![("interpreter".to_owned(), Withheld::NoTrackYet)]);
        answered(&mut room, "interpreter", now);
        let audio = room.handle(Event::Packet { key: key("lawyer", "a"), keyframe: false }, now).unwrap();
        assert_eq!(forwarded(&audio), vec!["interpreter".to_owned(), "resident".to_owned()]);
        assert!(withheld(&audio).is_empty(), "nothing withheld from connected receivers");
        room.handle(Event::Published { key: key("interpreter", "a"), kind: Kind::Audio }, now).unwrap();
        for who in ["lawyer", "resident"] {
            answered(&mut room, who, now);
        }
        let theirs =
            room.handle(Event::Packet { key: key("interpreter", "a"), keyframe: false }, now).unwrap();
        assert_eq!(forwarded(&theirs), vec!["lawyer".to_owned(), "resident".to_owned()]);
    }

    #[test]
    fn a_new_receiver_starts_at_a_keyframe_asked_for_once_its_offer_is_answered() {
        let now = Instant::now();
        let mut room = call(now);
        let t1 = now + Duration::from_secs(1);
        let actions = joined(&mut room, "interpreter", t1);
        assert!(
            !actions.iter().any(|a| matches!(a, Action::RequestKeyframe { .. })),
            "it could not use one yet"
        );
        // A keyframe before its answer would be lost on it: withheld, and still awaited.
        let early = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: true }, t1).unwrap();
        assert_eq!(forwarded(&early), vec!["resident".to_owned()]);
        assert_eq!(withheld(&early), vec![("interpreter".to_owned(), Withheld::NoTrackYet)]);
        let actions = answered(&mut room, "interpreter", t1);
        assert!(actions.contains(&Action::RequestKeyframe { key: key("lawyer", "v") }));
        let delta = room
            .handle(Event::Packet { key: key("lawyer", "v"), keyframe: false }, now + Duration::from_secs(1))
            .unwrap();
        assert_eq!(forwarded(&delta), vec!["resident".to_owned()], "no delta frames before the keyframe");
        let key_frame = room
            .handle(Event::Packet { key: key("lawyer", "v"), keyframe: true }, now + Duration::from_secs(1))
            .unwrap();
        assert_eq!(forwarded(&key_frame), vec!["interpreter".to_owned(), "resident".to_owned()]);
        let after = room
            .handle(Event::Packet { key: key("lawyer", "v"), keyframe: false }, now + Duration::from_secs(1))
            .unwrap();
        assert_eq!(forwarded(&after).len(), 2);
    }

    #[test]
    fn no_keyframe_is_asked_of_a_publisher_whose_connection_is_not_up() {
        let now = Instant::now();
        let mut room = Room::new(Policy::default());
        joined(&mut room, "lawyer", now);
        // The resident's tracks are known from its answer, before its connection is up.
        room.handle(Event::Joined { participant: "resident".into(), may_publish: both() }, now).unwrap();
        room.handle(Event::Published { key: key("resident", "v"), kind: Kind::Video }, now).unwrap();
        let ready = answered(&mut room, "lawyer", now);
        assert!(!ready.iter().any(|a| matches!(a, Action::RequestKeyframe { .. })), "{ready:?}");
        // Once it is up, a request goes out at once: none was counted against the limit.
        room.handle(Event::Connection { participant: "resident".into(), up: true }, now).unwrap();
        let asked = room
            .handle(Event::KeyframeWanted { receiver: "lawyer".into(), key: key("resident", "v") }, now)
            .unwrap();
        assert_eq!(asked, vec![Action::RequestKeyframe { key: key("resident", "v") }]);
    }

    #[test]
    fn keyframe_requests_are_rate_limited_per_track() {
        let now = Instant::now();
        let mut room = call(now + Duration::from_secs(10));
        joined(&mut room, "a", now + Duration::from_secs(10));
        joined(&mut room, "b", now + Duration::from_secs(10));
        let mut requests = 0;
        for ms in (0..2000).step_by(50) {
            let t = now + Duration::from_secs(20) + Duration::from_millis(ms);
            for who in ["a", "b", "resident"] {
                let actions = room
                    .handle(Event::KeyframeWanted { receiver: who.into(), key: key("lawyer", "v") }, t)
                    .unwrap();
                requests += actions.iter().filter(|a| matches!(a, Action::RequestKeyframe { .. })).count();
            }
        }
        assert_eq!(requests, 4, "one per 500 ms over 2 s, from 120 asks");
    }

    #[test]
    fn a_bad_downlink_goes_audio_only_and_recovers_with_hysteresis() {
        let t0 = Instant::now();
        let mut room = call(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let down = |room: &mut Room, s: u64, bps: u64, loss: f32| {
            room.handle(Event::Downlink { receiver: "resident".into(), estimate_bps: bps, loss }, at(s))
                .unwrap()
        };
        // A dip shorter than degrade_after changes nothing.
        assert!(down(&mut room, 1, 80_000, 0.0).is_empty());
        assert!(down(&mut room, 2, 400_000, 0.0).is_empty());
        // Sustained: audio only.
        down(&mut room, 3, 80_000, 0.0);
        assert_eq!(
            down(&mut room, 5, 90_000, 0.0),
            vec![Action::AudioOnly { receiver: "resident".into(), on: true }]
        );
        let video = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: true }, at(5)).unwrap();
        assert!(forwarded(&video).is_empty(), "no video to an audio-only receiver");
        assert_eq!(withheld(&video), vec![("resident".to_owned(), Withheld::AudioOnly)], "counted");
        let audio = room.handle(Event::Packet { key: key("lawyer", "a"), keyframe: false }, at(5)).unwrap();
        assert_eq!(forwarded(&audio), vec!["resident".to_owned()], "audio keeps flowing");
        // Between floor and resume threshold: stays audio only.
        assert!(down(&mut room, 10, 200_000, 0.0).is_empty());
        assert!(down(&mut room, 20, 200_000, 0.0).is_empty());
        // Heavy loss counts as bad even with bandwidth.
        // Good for less than recover_after: not yet.
        assert!(down(&mut room, 21, 500_000, 0.01).is_empty());
        assert!(down(&mut room, 24, 500_000, 0.01).is_empty());
        let back = down(&mut room, 26, 500_000, 0.01);
        assert_eq!(back[0], Action::AudioOnly { receiver: "resident".into(), on: false });
        assert!(back.contains(&Action::RequestKeyframe { key: key("lawyer", "v") }));
        let delta = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: false }, at(26)).unwrap();
        assert!(forwarded(&delta).is_empty(), "video resumes at a keyframe");
        assert_eq!(withheld(&delta), vec![("resident".to_owned(), Withheld::AwaitingKeyframe)]);
        let kf = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: true }, at(26)).unwrap();
        assert_eq!(forwarded(&kf), vec!["resident".to_owned()]);
    }

    #[test]
    fn loss_alone_degrades_and_a_chosen_audio_only_sticks() {
        let t0 = Instant::now();
        let mut room = call(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        room.handle(Event::Downlink { receiver: "lawyer".into(), estimate_bps: 2_000_000, loss: 0.3 }, at(1))
            .unwrap();
        let actions = room
            .handle(Event::Downlink { receiver: "lawyer".into(), estimate_bps: 2_000_000, loss: 0.3 }, at(4))
            .unwrap();
        assert_eq!(actions, vec![Action::AudioOnly { receiver: "lawyer".into(), on: true }]);

        let chose =
            room.handle(Event::AudioOnlyChosen { participant: "resident".into(), on: true }, at(5)).unwrap();
        assert_eq!(chose, vec![Action::AudioOnly { receiver: "resident".into(), on: true }]);
        for s in 6..30 {
            let actions = room
                .handle(
                    Event::Downlink { receiver: "resident".into(), estimate_bps: 5_000_000, loss: 0.0 },
                    at(s),
                )
                .unwrap();
            assert!(actions.is_empty(), "a good network does not override the choice");
        }
        assert_eq!(room.is_audio_only(&"resident".into()), Some(true));
        let back = room
            .handle(Event::AudioOnlyChosen { participant: "resident".into(), on: false }, at(30))
            .unwrap();
        assert!(back.contains(&Action::AudioOnly { receiver: "resident".into(), on: false }));
    }

    #[test]
    fn nothing_reaches_a_receiver_before_its_connection_is_up_and_video_restarts_from_a_keyframe() {
        let now = Instant::now();
        let mut room = Room::new(Policy::default());
        joined(&mut room, "lawyer", now);
        room.handle(Event::Published { key: key("lawyer", "a"), kind: Kind::Audio }, now).unwrap();
        room.handle(Event::Published { key: key("lawyer", "v"), kind: Kind::Video }, now).unwrap();
        let mut actions =
            room.handle(Event::Joined { participant: "resident".into(), may_publish: both() }, now).unwrap();
        actions.extend(answered(&mut room, "resident", now));
        assert!(
            !actions.iter().any(|a| matches!(a, Action::RequestKeyframe { .. })),
            "no keyframe for a receiver that cannot take it yet"
        );
        for kf in [true, false] {
            let out = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: kf }, now).unwrap();
            assert!(forwarded(&out).is_empty());
            assert_eq!(withheld(&out), vec![("resident".to_owned(), Withheld::NotConnected)]);
        }
        assert!(
            forwarded(&room.handle(Event::Packet { key: key("lawyer", "a"), keyframe: false }, now).unwrap())
                .is_empty()
        );

        let up = room.handle(Event::Connection { participant: "resident".into(), up: true }, now).unwrap();
        assert_eq!(up, vec![Action::RequestKeyframe { key: key("lawyer", "v") }]);
        let delta = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: false }, now).unwrap();
        assert!(forwarded(&delta).is_empty(), "waits for the keyframe");
        let key_frame = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: true }, now).unwrap();
        assert_eq!(forwarded(&key_frame), vec!["resident".to_string()]);

        // Down (a network blink) and up again: from a keyframe once more.
        room.handle(Event::Connection { participant: "resident".into(), up: false }, now).unwrap();
        let later = now + Duration::from_secs(3);
        let out = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: false }, later).unwrap();
        assert!(forwarded(&out).is_empty());
        let up = room.handle(Event::Connection { participant: "resident".into(), up: true }, later).unwrap();
        assert_eq!(up, vec![Action::RequestKeyframe { key: key("lawyer", "v") }]);
        let out = room.handle(Event::Packet { key: key("lawyer", "v"), keyframe: false }, later).unwrap();
        assert!(forwarded(&out).is_empty());
    }

    #[test]
    fn leaving_unsubscribes_everyone_and_limits_hold() {
        let now = Instant::now();
        let mut room = call(now);
        let actions = room.handle(Event::Left { participant: "lawyer".into() }, now).unwrap();
        assert!(
            actions.contains(&Action::Unsubscribe { receiver: "resident".into(), key: key("lawyer", "v") })
        );
        assert!(actions.contains(&Action::Renegotiate { receiver: "resident".into() }));
        assert_eq!(
            room.handle(Event::Packet { key: key("lawyer", "a"), keyframe: false }, now),
            Err(Refusal::NoSuchTrack)
        );
        assert_eq!(
            room.handle(Event::Left { participant: "lawyer".into() }, now),
            Err(Refusal::NotInRoom("lawyer".into()))
        );

        let mut room =
            Room::new(Policy { max_participants: 2, max_tracks_per_participant: 2, ..Policy::default() });
        joined(&mut room, "a", now);
        room.handle(Event::Joined { participant: "b".into(), may_publish: [Kind::Audio].into() }, now)
            .unwrap();
        assert_eq!(
            room.handle(Event::Joined { participant: "c".into(), may_publish: both() }, now),
            Err(Refusal::RoomFull)
        );
        assert_eq!(
            room.handle(Event::Joined { participant: "a".into(), may_publish: both() }, now),
            Err(Refusal::AlreadyInRoom("a".into()))
        );
        assert_eq!(
            room.handle(Event::Published { key: key("b", "v"), kind: Kind::Video }, now),
            Err(Refusal::NotGranted(Kind::Video)),
            "the token granted audio only"
        );
        room.handle(Event::Published { key: key("a", "1"), kind: Kind::Audio }, now).unwrap();
        room.handle(Event::Published { key: key("a", "2"), kind: Kind::Video }, now).unwrap();
        assert_eq!(
            room.handle(Event::Published { key: key("a", "3"), kind: Kind::Video }, now),
            Err(Refusal::TooManyTracks)
        );
        assert_eq!(
            room.handle(Event::Published { key: key("x", "1"), kind: Kind::Audio }, now),
            Err(Refusal::NotInRoom("x".into()))
        );
    }
}
