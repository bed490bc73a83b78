//! The ids that cross modules, each its own type, and how one kind of id
//! becomes another.
//!
//! Each is a `String` underneath, and on every wire and in the database
//! (serde and sqlx read and write it as one), so nothing outside changes. They
//! are made where a string comes in (a message, a URL, a row) or where an id
//! is created ([`crate::store::new_id`]). The relay's room ([`RoomId`]) and
//! participant ([`ParticipantId`]) are `media_relay`'s; a consultation's room
//! and a person's place in it are made from their ids here.
//!
//! They run from the edge inward. The HTTP API reads the ids in its paths
//! and bodies as these types; the store's records (accounts, terminals,
//! regions, consultations, appointments, team links, the live path's rows)
//! hold them and its lookups take them; the schedule, the dispatcher, the
//! matcher, the WebSocket messages and the cluster's wire carry them. What
//! leaves as JSON for people (`http::views`) and audit subjects are plain text.
//! A token's subject is text too: it names an account or a terminal, and is
//! made one or the other where it is checked (`auth::authenticate`).

pub use media_relay::{ParticipantId, RoomId};

/// A consultation's room on the relay: it has the consultation's id.
pub fn room_of(consultation: &ConsultationId) -> RoomId {
    RoomId::from(consultation.as_str())
}

/// The consultation a room is for: it has the room's id.
pub fn consultation_of(room: &RoomId) -> ConsultationId {
    ConsultationId::from(room.as_str())
}

/// A person's place in a room (and in a consultation): their account's id.
pub fn person(account: &AccountId) -> ParticipantId {
    ParticipantId::from(account.as_str())
}

/// A kiosk's (or a phone line's) place in a room: the terminal's id.
pub fn kiosk(terminal: &TerminalId) -> ParticipantId {
    ParticipantId::from(terminal.as_str())
}

media_relay::string_id!(
    /// A person's account: a lawyer's, an interpreter's, a coordinator's, an
    /// admin's (residents have none).
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    AccountId
);
media_relay::string_id!(
    /// A kiosk terminal, or a phone line (the live path treats both alike).
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    TerminalId
);
media_relay::string_id!(
    /// A region (a township, a county) that terminals and aid teams belong to.
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    RegionId
);
media_relay::string_id!(
    /// A resident's request for a consultation, from asking until it is served or withdrawn.
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    RequestId
);
media_relay::string_id!(
    /// A consultation: one call, its record and its rating. Its room has the same id.
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    ConsultationId
);
media_relay::string_id!(
    /// A booked appointment.
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    AppointmentId
);
media_relay::string_id!(
    /// A region's receiving office for one service (a legal-aid centre, a mediation committee).
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    OfficeId
);
media_relay::string_id!(
    /// A referral: a consultation's matter handed to an office, with the resident's consent.
    #[derive(sqlx::Type)]
    #[sqlx(transparent)]
    ReferralId
);
