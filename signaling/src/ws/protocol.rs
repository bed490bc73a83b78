//! The WebSocket messages: JSON objects tagged by `type`. PROTOCOL.md documents
//! each one; the tests there and here keep them in step.

use serde::{Deserialize, Serialize};

pub use crate::domain::ErrorCode;
use crate::ids::{AccountId, AppointmentId, ConsultationId, RequestId, RoomId};
pub use crate::live::WantedPresence;

/// The protocol version this server speaks. It is announced in `welcome`; a
/// breaking change to any message increments it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Application-level liveness check; answered with `pong` carrying the same `id`.
    Ping {
        #[serde(default)]
        id: Option<String>,
    },
    /// Join a media room with a room token naming the sender. The relay answers
    /// with `rtc.offer`.
    #[serde(rename = "rtc.join")]
    RtcJoin { token: String },
    /// The answer to the relay's latest `rtc.offer`.
    #[serde(rename = "rtc.answer")]
    RtcAnswer { room: RoomId, sdp: String },
    /// One of the sender's ICE candidates (the relay does not need them, but takes them).
    #[serde(rename = "rtc.candidate")]
    RtcCandidate { room: RoomId, candidate: IceCandidate },
    /// The sender's network changed: restart ICE (a new `rtc.offer` follows).
    #[serde(rename = "rtc.restart")]
    RtcRestart { room: RoomId },
    /// Receive audio only (`on: true`) or video again.
    #[serde(rename = "rtc.audio_only")]
    RtcAudioOnly { room: RoomId, on: bool },
    #[serde(rename = "rtc.leave")]
    RtcLeave { room: RoomId },
    /// A lawyer or interpreter goes on duty (`available`), takes a `break`, or
    /// goes `offline`. `available` also ends a wrap-up.
    #[serde(rename = "presence.set")]
    PresenceSet { state: WantedPresence },
    /// A terminal asks for a lawyer now.
    #[serde(rename = "consult.request")]
    ConsultRequest {
        language: crate::domain::Language,
        topic: crate::domain::Topic,
        /// A phone line's callback: the lawyer (account id) who asked for it is
        /// rung first. Ignored from kiosks.
        #[serde(default)]
        lawyer: Option<AccountId>,
        /// A phone line's call for an appointment by phone: the request keeps
        /// it (completed when the call begins). Ignored from kiosks.
        #[serde(default)]
        appointment: Option<AppointmentId>,
    },
    /// A terminal withdraws its waiting request.
    #[serde(rename = "consult.cancel")]
    ConsultCancel { request: RequestId },
    /// A lawyer or interpreter takes the offer. `id`, if given, comes back in
    /// `consult.accepted`, `consult.started` and any error.
    #[serde(rename = "consult.accept")]
    ConsultAccept {
        request: RequestId,
        #[serde(default)]
        id: Option<String>,
    },
    /// A lawyer or interpreter turns the offer down (or, in a three-way,
    /// withdraws an acceptance while waiting for the other). `id` as for accept.
    #[serde(rename = "consult.decline")]
    ConsultDecline {
        request: RequestId,
        #[serde(default)]
        id: Option<String>,
    },
    /// Either side ends the call.
    #[serde(rename = "consult.hangup")]
    ConsultHangup { consultation: ConsultationId },
    /// The resident's rating, 1 to 5, after the call.
    #[serde(rename = "consult.rate")]
    ConsultRate { consultation: ConsultationId, rating: u8 },
    /// A coordinator asks for the live view of their regions (`live.view`).
    #[serde(rename = "live.subscribe")]
    LiveSubscribe {},
    #[serde(rename = "live.unsubscribe")]
    LiveUnsubscribe {},
}

/// The longest `id` a client may put on a message.
pub const MAX_ID: usize = 64;

impl ClientMessage {
    /// The client's own id for the message, echoed in the answer and in errors.
    pub fn id(&self) -> Option<&str> {
        match self {
            ClientMessage::Ping { id }
            | ClientMessage::ConsultAccept { id, .. }
            | ClientMessage::ConsultDecline { id, .. } => id.as_deref(),
            _ => None,
        }
    }
}

/// An ICE candidate as a browser's `RTCIceCandidate.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every connection.
    Welcome { protocol: u32, server: String, connection: String, principal: PrincipalInfo },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// An appointment of the recipient's starts soon (`schedule.reminder_minutes`).
    AppointmentReminder { appointment: crate::http::views::AppointmentView },
    /// An appointment of the recipient's starts now.
    AppointmentStarted { appointment: crate::http::views::AppointmentView },
    /// TURN servers (with short-lived credentials) for the room's media: sent
    /// before the first `rtc.offer` when the deployment has TURN, so clients on
    /// networks that block UDP can still reach the relay.
    #[serde(rename = "rtc.ice_servers")]
    RtcIceServers { room: RoomId, ice_servers: Vec<crate::turn::IceServer> },
    /// The relay's session description for the recipient to answer with
    /// `rtc.answer`: after `rtc.join`, whenever the tracks it receives change,
    /// and after `rtc.restart`. Sections offered `recvonly` are the
    /// recipient's own audio and video to send.
    #[serde(rename = "rtc.offer")]
    RtcOffer { room: RoomId, sdp: String },
    /// The recipient now receives audio only (its downlink is too poor, or it
    /// asked), or video again.
    #[serde(rename = "rtc.audio_only")]
    RtcAudioOnly { room: RoomId, on: bool },
    /// The recipient's media connection: `connecting`, `connected`,
    /// `disconnected`, `failed`.
    #[serde(rename = "rtc.connection")]
    RtcConnection { room: RoomId, state: String },
    /// The recipient is out of the room (it left, the room closed, or its
    /// media stayed down too long).
    #[serde(rename = "rtc.closed")]
    RtcClosed { room: RoomId, reason: String },
    #[serde(rename = "consult.rated")]
    ConsultRated { consultation: ConsultationId, rating: u8 },
    /// To the consultation's terminal: the lawyer proposes a referral; the
    /// kiosk asks the resident (`POST /api/referrals/{id}/consent`) before
    /// `expires_at` (Unix seconds).
    #[serde(rename = "referral.proposed")]
    ReferralProposed {
        referral: crate::ids::ReferralId,
        consultation: ConsultationId,
        service: String,
        office: String,
        /// The office's name in the languages its residents read, by language code.
        office_names: crate::store::OfficeNames,
        expires_at: i64,
    },
    /// To the lawyer who proposed it: the resident's answer.
    #[serde(rename = "referral.answered")]
    ReferralAnswered { referral: crate::ids::ReferralId, consultation: ConsultationId, agreed: bool },
    /// A message could not be handled. The connection stays open unless the
    /// code says otherwise (`rate_limited` repeated, `idle_timeout`).
    Error {
        code: ErrorCode,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// What the live path tells people and terminals (`presence`,
    /// `consult.*`, `live.view`): each is its own message, as is.
    #[serde(untagged)]
    Live(crate::live::Notice),
}

/// Who the server believes is on the other end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrincipalInfo {
    Account { id: String, username: String, roles: Vec<crate::domain::Role> },
    Terminal { id: String, region_id: String },
}

impl PrincipalInfo {
    pub fn of(principal: &crate::auth::Principal) -> Self {
        match principal {
            crate::auth::Principal::Account { account, .. } => PrincipalInfo::Account {
                id: account.id.to_string(),
                username: account.username.clone(),
                roles: account.roles.clone(),
            },
            crate::auth::Principal::Terminal { terminal } => PrincipalInfo::Terminal {
                id: terminal.id.to_string(),
                region_id: terminal.region_id.to_string(),
            },
        }
    }
}

/// Parses one text frame. The error text says what was wrong, in terms a client
/// developer can act on, and never echoes the whole input.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|e| {
        let mut message = e.to_string();
        message.truncate(200);
        message
    })
}

/// Picks the `id` out of a message that failed to parse, so the error reply can
/// be correlated by the client.
pub fn salvage_id(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value.get("id")?.as_str()?;
    (id.len() <= MAX_ID).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_parses_and_pong_serializes() {
        assert_eq!(parse(r#"{"type":"ping","id":"7"}"#), Ok(ClientMessage::Ping { id: Some("7".into()) }));
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping { id: None }));
        let pong = serde_json::to_string(&ServerMessage::Pong { id: Some("7".into()) }).unwrap();
        assert_eq!(pong, r#"{"type":"pong","id":"7"}"#);
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        for bad in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"type":"nope"}"#,
            r#"{"type":"ping","extra":1}"#,
            "{\"type\":",
            "\u{0}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(salvage_id(r#"{"type":"nope","id":"x1"}"#), Some("x1".into()));
        assert_eq!(salvage_id("not json"), None);
    }

    #[test]
    fn error_shape() {
        let error = ServerMessage::Error { code: ErrorCode::Malformed, message: "m".into(), id: None };
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","code":"malformed","message":"m"}"#
        );
    }
}
