//! The ids that cross modules, each its own type, and how one kind of id
//! becomes another.
//!
//! So far the relay's: a room ([`RoomId`]) and a participant in it
//! ([`ParticipantId`]), from the relay's engine through its control channel to
//! signaling's handle, the room tokens and the `rtc.*` messages. They are made
//! where a string comes in (serde reads them as plain strings, so the wires do
//! not change) or here, from the live path's consultation, account and
//! terminal ids, which are still strings.

pub use media_relay::{ParticipantId, RoomId};

/// A consultation's room on the relay: it has the consultation's id.
pub fn room_of(consultation: &str) -> RoomId {
    RoomId::from(consultation)
}

/// A person's or a terminal's place in a room: their account's or terminal's id.
pub fn participant_of(account_or_terminal: &str) -> ParticipantId {
    ParticipantId::from(account_or_terminal)
}
