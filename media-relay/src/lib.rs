//! The Cloud Law Office media relay: the part that carries audio and video.
//!
//! Every participant of a consultation (resident, lawyer, interpreter) sends its
//! media once to a relay, which forwards it to the other participants of the same
//! room. The relay never touches the database: signaling tells it which rooms
//! exist and who may join them.
//!
//! # Layout
//! - [`config`]: the relay's typed configuration ([`RelayConfig`]), shared by the
//!   in-process relay that `cloudlaw serve` starts and by the standalone
//!   `media-relay` node.
//! - [`room`]: one room's forwarding decisions (who receives which track,
//!   keyframes for new receivers, keyframe-request limiting, audio-only
//!   fallback) as synchronous code fed by events, tested without sockets.
//! - [`relay`]: the running relay ([`Relay`]): owns the one UDP socket that every
//!   participant's media arrives on, keeps the room table and the counters that
//!   `/healthz` and `/metrics` report, and shuts down cleanly.
//! - [`control`]: a node's control channel (signaling drives the relay over it)
//!   and its client; [`probe`]: signaling's media-path health check;
//!   [`register`]: a node telling signaling that it exists.
//!
//! NOTES-webrtc-0.21.md records what the webrtc crate offers for the WebRTC
//! I/O that feeds [`room::Room`].

pub mod config;
pub mod control;
mod engine;
pub mod packet;
pub mod probe;
pub mod register;
pub mod relay;
pub mod room;
pub mod session;

pub use config::RelayConfig;
pub use relay::{Relay, RelayError, RelayStatus};
pub use room::Kind;
pub use rtc::peer_connection::transport::RTCIceCandidateInit;
pub use session::{Grant, ParticipantStats, PeerEvent, RoomStats, SessionError};
