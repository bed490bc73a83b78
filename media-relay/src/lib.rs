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
//! - [`relay`]: the running relay ([`Relay`]): owns the one UDP socket that every
//!   participant's media arrives on, keeps the room table and the counters that
//!   `/healthz` and `/metrics` report, and shuts down cleanly.
//!
//! The WebRTC forwarding plane (rooms, tracks, keyframes, audio-only fallback) is
//! built on this lifecycle; see ARCHITECTURE.md for what is in place today.

pub mod config;
pub mod relay;

pub use config::RelayConfig;
pub use relay::{Relay, RelayError, RelayStatus};
