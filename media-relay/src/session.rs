//! What signaling exchanges with the relay about one participant: the grant it
//! joins with, the events the relay sends back, the errors it can meet and the
//! statistics it can ask for. The same types travel over the control channel
//! of a standalone relay node (see PROTOCOL.md), so they are serde types.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{ParticipantId, RoomId};
use crate::room::{Kind, Refusal, Withheld};

/// What one participant may do in one room, as its room token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub room: RoomId,
    pub participant: ParticipantId,
    /// Media kinds the participant may send.
    pub publish: BTreeSet<Kind>,
}

/// What a relay is asked to do with a room or a participant in it: the one
/// vocabulary of the in-process relay ([`crate::Relay::call`]), the control
/// channel (every `cmd` but `set_keys`, `status` and `join`, see
/// [`crate::control::Command`]), its client ([`crate::control::ControlClient::call`])
/// and signaling's handle on either. Adding one is a variant here and its
/// handling in the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    /// Opens a room (idempotent). Refused when the relay carries its most
    /// rooms, and (a room not open yet) while it drains.
    OpenRoom {
        room: RoomId,
    },
    /// Closes a room: every participant in it gets [`PeerEvent::Closed`].
    CloseRoom {
        room: RoomId,
    },
    /// The participant's answer to the relay's latest offer.
    Answer {
        room: RoomId,
        participant: ParticipantId,
        sdp: String,
    },
    /// One of the participant's ICE candidates (the relay runs ICE-lite and
    /// does not need them, but takes them as any peer does).
    Candidate {
        room: RoomId,
        participant: ParticipantId,
        candidate: rtc::peer_connection::transport::RTCIceCandidateInit,
    },
    /// Restarts ICE for a participant whose network changed: a new offer
    /// follows on its events.
    RestartIce {
        room: RoomId,
        participant: ParticipantId,
    },
    /// The participant's own choice of audio only (or video again).
    AudioOnly {
        room: RoomId,
        participant: ParticipantId,
        on: bool,
    },
    Leave {
        room: RoomId,
        participant: ParticipantId,
    },
    /// The room's statistics: answered with [`Answered::Stats`].
    RoomStats {
        room: RoomId,
    },
}

impl Call {
    /// The room it is about (each is about one).
    pub fn room(&self) -> &RoomId {
        match self {
            Call::OpenRoom { room }
            | Call::CloseRoom { room }
            | Call::Answer { room, .. }
            | Call::Candidate { room, .. }
            | Call::RestartIce { room, .. }
            | Call::AudioOnly { room, .. }
            | Call::Leave { room, .. }
            | Call::RoomStats { room } => room,
        }
    }
}

/// Something that takes [`Call`]s: the in-process [`crate::Relay`], a
/// [`crate::control::ControlClient`] to a node, signaling's handle on either.
/// Each implements [`Calls::call`]; the named methods are written once, here.
pub trait Calls: Sync {
    fn call(&self, call: Call) -> impl std::future::Future<Output = Result<Answered, SessionError>> + Send;

    fn open_room(&self, room: &RoomId) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        self.done(Call::OpenRoom { room: room.clone() })
    }

    fn close_room(
        &self,
        room: &RoomId,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        self.done(Call::CloseRoom { room: room.clone() })
    }

    fn answer(
        &self,
        room: &RoomId,
        participant: &ParticipantId,
        sdp: String,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        self.done(Call::Answer { room: room.clone(), participant: participant.clone(), sdp })
    }

    fn candidate(
        &self,
        room: &RoomId,
        participant: &ParticipantId,
        candidate: rtc::peer_connection::transport::RTCIceCandidateInit,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        self.done(Call::Candidate { room: room.clone(), participant: participant.clone(), candidate })
    }

    fn restart_ice(
        &self,
        room: &RoomId,
        participant: &ParticipantId,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        self.done(Call::RestartIce { room: room.clone(), participant: participant.clone() })
    }

    fn set_audio_only(
        &self,
        room: &RoomId,
        participant: &ParticipantId,
        on: bool,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        self.done(Call::AudioOnly { room: room.clone(), participant: participant.clone(), on })
    }

    fn leave(
        &self,
        room: &RoomId,
        participant: &ParticipantId,
    ) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        self.done(Call::Leave { room: room.clone(), participant: participant.clone() })
    }

    fn room_stats(
        &self,
        room: &RoomId,
    ) -> impl std::future::Future<Output = Result<RoomStats, SessionError>> + Send {
        let answered = self.call(Call::RoomStats { room: room.clone() });
        async move { answered.await?.into_stats() }
    }

    /// A call that answers nothing.
    fn done(&self, call: Call) -> impl std::future::Future<Output = Result<(), SessionError>> + Send {
        let answered = self.call(call);
        async move { answered.await.map(drop) }
    }
}

/// What a [`Call`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    Done,
    Stats(RoomStats),
}

impl Answered {
    /// As the control channel's `result`: `null`, or the statistics.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Answered::Done => serde_json::Value::Null,
            Answered::Stats(stats) => serde_json::to_value(stats).unwrap_or_default(),
        }
    }

    /// From the control channel's `result` for `call`.
    pub fn from_json(call: &Call, result: serde_json::Value) -> Result<Answered, SessionError> {
        match call {
            Call::RoomStats { .. } => serde_json::from_value(result)
                .map(Answered::Stats)
                .map_err(|e| SessionError::Malformed(e.to_string())),
            _ => Ok(Answered::Done),
        }
    }

    /// The statistics a [`Call::RoomStats`] answered.
    pub fn into_stats(self) -> Result<RoomStats, SessionError> {
        match self {
            Answered::Stats(stats) => Ok(stats),
            Answered::Done => Err(SessionError::Malformed("no statistics in the answer".into())),
        }
    }
}

/// What the relay tells one participant (through signaling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerEvent {
    /// A session description for the participant to answer with
    /// [`crate::Relay::answer`]: the first one after joining, then one each time
    /// the tracks it receives change or ICE restarts. The relay is always the
    /// offerer, so the two sides never offer at once.
    Offer { sdp: String },
    /// The participant now receives audio only (its downlink cannot carry
    /// video, or it asked), or video again.
    AudioOnly { on: bool },
    /// The media connection's state: `connecting`, `connected`,
    /// `disconnected`, `failed`.
    Connection { state: String },
    /// The participant is out of the room: it left, the room closed, or its
    /// media connection stayed down too long.
    Closed { reason: String },
}

/// Why a request about a room or participant was refused. Nothing changes
/// when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", content = "detail", rename_all = "snake_case")]
pub enum SessionError {
    #[error("no such room")]
    NoSuchRoom,
    #[error("this relay already carries its most rooms")]
    TooManyRooms,
    /// The relay is draining: it finishes its calls and opens no new room.
    #[error("this relay is draining: it opens no new rooms")]
    Draining,
    #[error("{0}")]
    Refused(String),
    #[error("not in the room")]
    NotJoined,
    #[error("invalid session description: {0}")]
    BadDescription(String),
    #[error("invalid ICE candidate: {0}")]
    BadCandidate(String),
    #[error("no offer is waiting for an answer")]
    NoOfferPending,
    #[error("the relay is stopping")]
    Stopped,
    /// A room token (or control request) that does not authorize this.
    #[error("{0}")]
    Unauthorized(String),
    /// A control message that could not be read.
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("media engine error: {0}")]
    Media(String),
}

impl From<Refusal> for SessionError {
    fn from(refusal: Refusal) -> Self {
        SessionError::Refused(refusal.to_string())
    }
}

/// One participant's media, as the relay sees it (rates over the last second).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParticipantStats {
    pub participant: ParticipantId,
    /// `connecting`, `connected`, `disconnected`, `failed`.
    pub state: String,
    pub audio_only: bool,
    /// What the relay receives from this participant.
    pub received_bps: u64,
    pub packets_received: u64,
    pub packets_lost: i64,
    /// Interarrival jitter of its streams, worst stream, in seconds.
    pub jitter_s: f64,
    /// What the relay sends to this participant.
    pub sent_bps: u64,
    pub packets_sent: u64,
    /// Loss the participant reports on what it receives (0..1).
    pub downlink_loss: f64,
    /// Round-trip time between relay and participant, in seconds.
    pub rtt_s: f64,
    /// Packets the relay did not send to this participant, by
    /// [`NotForwarded::as_str`], since it joined.
    #[serde(default)]
    pub not_forwarded: BTreeMap<String, u64>,
}

/// Why the relay did not forward a media packet to a receiver (or, for
/// `refused_track`, to anyone). Every such packet is counted by its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotForwarded {
    /// The receiver's media connection is not up yet, or its consent expired.
    NotConnected,
    /// The receiver waits for a keyframe of this video track.
    AwaitingKeyframe,
    /// The receiver gets audio only.
    AudioOnly,
    /// The receiver has not answered an offer with this track yet.
    NoTrackYet,
    /// The publisher's track was refused (not granted, too many tracks).
    RefusedTrack,
    /// The receiver's peer connection refused the packet.
    SendFailed,
    /// The UDP socket's send buffer was full (any datagram, not only media).
    SendBufferFull,
}

impl NotForwarded {
    pub const ALL: [NotForwarded; 7] = [
        NotForwarded::NotConnected,
        NotForwarded::AwaitingKeyframe,
        NotForwarded::AudioOnly,
        NotForwarded::NoTrackYet,
        NotForwarded::RefusedTrack,
        NotForwarded::SendFailed,
        NotForwarded::SendBufferFull,
    ];

    /// The reason's name in statistics and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            NotForwarded::NotConnected => "not_connected",
            NotForwarded::AwaitingKeyframe => "awaiting_keyframe",
            NotForwarded::AudioOnly => "audio_only",
            NotForwarded::NoTrackYet => "no_track_yet",
            NotForwarded::RefusedTrack => "refused_track",
            NotForwarded::SendFailed => "send_failed",
            NotForwarded::SendBufferFull => "send_buffer_full",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl From<Withheld> for NotForwarded {
    fn from(withheld: Withheld) -> Self {
        match withheld {
            Withheld::NotConnected => NotForwarded::NotConnected,
            Withheld::AwaitingKeyframe => NotForwarded::AwaitingKeyframe,
            Withheld::AudioOnly => NotForwarded::AudioOnly,
            Withheld::NoTrackYet => NotForwarded::NoTrackYet,
        }
    }
}

/// A room's participants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomStats {
    pub room: RoomId,
    pub participants: Vec<ParticipantStats>,
}

/// Which publish grants a token's list names; unknown names are an error.
pub fn kinds(names: &[String]) -> Result<BTreeSet<Kind>, String> {
    names.iter().map(|n| Kind::parse(n).ok_or_else(|| format!("unknown media kind {n:?}"))).collect()
}
