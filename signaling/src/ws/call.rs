//! A connection's media rooms: the `rtc.*` messages between a client and the
//! relay. Signaling checks the room token (signed by its keys, of kind `room`,
//! naming this connection's account or terminal), opens the room on the relay
//! if needed, and passes session descriptions both ways. The relay runs in
//! this process (`cloudlaw serve`) or on a relay node (which checks the token
//! again); the participant id there is the principal's id. Each room is on the
//! relay [`Relays`] placed it on; a join to a room that has moved since (its
//! relay died) leaves the old session and joins the new relay.

use std::collections::HashMap;

use axum::extract::ws::{Message, Utf8Bytes};
use media_relay::Calls as _;
use media_relay::{Grant, PeerEvent, RTCIceCandidateInit, SessionError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::protocol::{ErrorCode, IceCandidate, ServerMessage};
use crate::auth::tokens::TokenKind;
use crate::http::AppState;
use crate::ids::{ParticipantId, RoomId, consultation_of};
use crate::relay::{RelayHandle, Relays};

/// Rooms one connection may be in at once (a consultation, and a second one an
/// interpreter or supervising lawyer is asked into).
const MAX_ROOMS_PER_CONNECTION: usize = 2;
/// Relay events queued for one participant.
const EVENT_QUEUE: usize = 32;

/// The rooms a connection has joined, and the tasks that carry the relay's
/// events to it.
#[derive(Debug)]
pub struct Calls {
    participant: ParticipantId,
    relays: Relays,
    rooms: HashMap<RoomId, Joined>,
}

/// A room this connection is in: on which relay, and the task that carries
/// that relay's events to the client.
#[derive(Debug)]
struct Joined {
    index: usize,
    relay: RelayHandle,
    forward: JoinHandle<()>,
}

/// What to tell the client when a request fails.
pub use crate::domain::Failure;

impl Calls {
    pub fn new(participant: ParticipantId, relays: Relays) -> Calls {
        Calls { participant, relays, rooms: HashMap::new() }
    }

    /// `rtc.join`: checks the token and joins its room; the relay's offer
    /// follows through `outgoing`.
    pub async fn join(
        &mut self,
        state: &AppState,
        token: &str,
        outgoing: &mpsc::Sender<Message>,
    ) -> Result<(), Failure> {
        let claims = state
            .tokens
            .verify(token, TokenKind::Room)
            .await
            .map_err(|e| (ErrorCode::Unauthorized, format!("room token refused: {e}")))?;
        if self.participant != claims.sub {
            return Err((ErrorCode::Unauthorized, "this room token is someone else's".into()));
        }
        let grant = claims.room.ok_or((ErrorCode::Unauthorized, "the token names no room".into()))?;
        // A consultation's room lives as long as the consultation: its tokens
        // outlast it, and must not reopen it.
        if let Ok(Some(consultation)) = state.store.consultation(&consultation_of(&grant.room)).await
            && consultation.status != "active"
        {
            return Err((ErrorCode::Unauthorized, "this consultation has ended".into()));
        }
        let publish =
            media_relay::session::kinds(&grant.publish).map_err(|e| (ErrorCode::Unauthorized, e))?;
        let no_relay = |e: crate::relay::NoRelay| (ErrorCode::Refused, e.to_string());
        if let Some(name) = &grant.relay {
            self.relays.follow(&grant.room, name).map_err(|_| {
                (ErrorCode::Refused, format!("relay node {name:?} is not configured on this signaling node"))
            })?;
        }
        let (index, relay) = self.relays.relay_for(&grant.room).map_err(no_relay)?;
        // A room that moved to another relay (its relay was lost): the old
        // session is dead; forget it and join the room where it is now.
        if let Some(old) = self.rooms.get(&grant.room)
            && old.index != index
        {
            old.forward.abort();
            let _ = old.relay.leave(&grant.room, &self.participant).await;
            self.rooms.remove(&grant.room);
            self.relays.left(&grant.room);
        }
        // Rooms the relay already closed for us (their event task ended on `closed`).
        let relays = &self.relays;
        self.rooms.retain(|room, joined| {
            let gone = joined.forward.is_finished();
            if gone {
                relays.left(room);
            }
            !gone
        });
        if self.rooms.contains_key(&grant.room) {
            return Err((ErrorCode::Refused, "already in this room".into()));
        }
        if self.rooms.len() >= MAX_ROOMS_PER_CONNECTION {
            return Err((ErrorCode::Refused, "in too many rooms at once".into()));
        }
        relay.open_room(&grant.room).await.map_err(refused)?;
        if let Some(server) =
            crate::turn::ice_server(&state.config.turn, &self.participant, crate::unix_now())
        {
            let message =
                ServerMessage::RtcIceServers { room: grant.room.clone(), ice_servers: vec![server] };
            if let Ok(text) = serde_json::to_string(&message) {
                let _ = outgoing.try_send(Message::Text(Utf8Bytes::from(text)));
            }
        }
        let (events, mut received) = mpsc::channel(EVENT_QUEUE);
        let relay_grant = Grant { room: grant.room.clone(), participant: self.participant.clone(), publish };
        relay.join(token, relay_grant, events).await.map_err(refused)?;
        let room = grant.room.clone();
        let (outgoing, participant) = (outgoing.clone(), self.participant.clone());
        let events_relay = relay.clone();
        let forward = tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                let closed = matches!(event, PeerEvent::Closed { .. });
                let message = server_message(&room, event);
                let Ok(text) = serde_json::to_string(&message) else { continue };
                if closed {
                    let _ = outgoing.try_send(Message::Text(Utf8Bytes::from(text)));
                    break;
                }
                // A client that does not read cannot follow the negotiation:
                // its media session ends here (the connection itself ends when
                // the reader next finds the queue full).
                if outgoing.try_send(Message::Text(Utf8Bytes::from(text))).is_err() {
                    let _ = events_relay.leave(&room, &participant).await;
                    break;
                }
            }
        });
        self.relays.joined(&grant.room);
        self.rooms.insert(grant.room, Joined { index, relay, forward });
        Ok(())
    }

    pub async fn answer(&self, room: &RoomId, sdp: String) -> Result<(), Failure> {
        self.joined(room)?.answer(room, &self.participant, sdp).await.map_err(refused)
    }

    pub async fn candidate(&self, room: &RoomId, candidate: IceCandidate) -> Result<(), Failure> {
        let relay = self.joined(room)?;
        let candidate = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment,
            ..Default::default()
        };
        relay.candidate(room, &self.participant, candidate).await.map_err(refused)
    }

    pub async fn restart(&self, room: &RoomId) -> Result<(), Failure> {
        self.joined(room)?.restart_ice(room, &self.participant).await.map_err(refused)
    }

    pub async fn audio_only(&self, room: &RoomId, on: bool) -> Result<(), Failure> {
        self.joined(room)?.set_audio_only(room, &self.participant, on).await.map_err(refused)
    }

    pub async fn leave(&mut self, room: &RoomId) -> Result<(), Failure> {
        let result = self.joined(room)?.leave(room, &self.participant).await;
        if let Some(joined) = self.rooms.remove(room) {
            joined.forward.abort();
            self.relays.left(room);
        }
        // Left already (the relay closed it) is not an error for the client.
        match result {
            Ok(()) | Err(SessionError::NotJoined) | Err(SessionError::NoSuchRoom) => Ok(()),
            Err(e) => Err(refused(e)),
        }
    }

    /// The connection ended: leave every room it was in.
    pub async fn leave_all(&mut self) {
        let rooms: Vec<RoomId> = self.rooms.keys().cloned().collect();
        for room in rooms {
            let _ = self.leave(&room).await;
        }
    }

    /// The relay this connection joined `room` on.
    fn joined(&self, room: &RoomId) -> Result<&RelayHandle, Failure> {
        self.rooms.get(room).map(|j| &j.relay).ok_or((ErrorCode::Refused, "not in this room".into()))
    }
}

fn refused(error: SessionError) -> Failure {
    (ErrorCode::Refused, error.to_string())
}

fn server_message(room: &RoomId, event: PeerEvent) -> ServerMessage {
    let room = room.clone();
    match event {
        PeerEvent::Offer { sdp } => ServerMessage::RtcOffer { room, sdp },
        PeerEvent::AudioOnly { on } => ServerMessage::RtcAudioOnly { room, on },
        PeerEvent::Connection { state } => ServerMessage::RtcConnection { room, state },
        PeerEvent::Closed { reason } => ServerMessage::RtcClosed { room, reason },
    }
}
