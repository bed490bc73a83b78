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
//! - [`relay`]: the running relay ([`Relay`]): binds the one UDP port every
//!   participant's media arrives on and starts its engines (one per core, each
//!   with its rooms and its socket on that port; an engine hands another the
//!   datagrams that are its, by the routes in `routes`), keeps the counters
//!   that `/healthz` and `/metrics` report, and shuts down cleanly.
//! - [`control`]: a node's control channel (signaling drives the relay over it)
//!   and its client; [`probe`]: signaling's media-path health check;
//!   [`register`]: a node telling signaling that it exists; [`node`]: a
//!   standalone node (relay, `/healthz`, `/control`, registration, drain),
//!   which the `media-relay` binary only configures and runs.
//! - [`lab`]: an engine and its participants in memory, no sockets: the
//!   forwarding path alone, for `benches/forward.rs` and tests.
//!
//! NOTES-webrtc-0.21.md records what the webrtc crate offers for the WebRTC
//! I/O that feeds [`room::Room`].

pub mod config;
pub mod control;
mod engine;
pub mod ids;
mod keys;
pub mod lab;
pub mod node;
pub mod packet;
pub mod probe;
mod reception;
pub mod register;
pub mod relay;
pub mod room;
mod routes;
pub mod session;
mod udp;

pub use config::RelayConfig;
pub use ids::{ParticipantId, RoomId};

/// The log filter a relay (in `cloudlaw serve` or a node) starts with: `info`,
/// but the WebRTC crates only from `warn`, as they log every offer, answer and
/// state change at `info`, and their DTLS server a warning for every TLS 1.3
/// extension a browser's hello carries (supported_versions, key_share,
/// psk_key_exchange_modes), which it ignores as it should. A warning then
/// means something; `RUST_LOG=rtc=info` brings theirs back. The SIP stack
/// (the hotline) logs whole messages, callers' numbers in them, at `info`:
/// it is held to `warn`.
pub const DEFAULT_LOG_FILTER: &str = "info,rsipstack=warn,webrtc=warn,rtc=warn,rtc_ice=warn,rtc_dtls=warn,rtc_srtp=warn,rtc_interceptor=warn,\
     rtc_dtls::handshake::handshake_message_client_hello=error";
pub use relay::{Relay, RelayError, RelayStatus};
pub use room::Kind;
pub use rtc::peer_connection::transport::RTCIceCandidateInit;
pub use session::{Answered, Call, Calls, Grant, ParticipantStats, PeerEvent, RoomStats, SessionError};
