//! The Cloud Law Office signaling server: everything but the media.
//!
//! A resident at a township kiosk asks for a lawyer; this crate authenticates
//! everyone, keeps who is where, pairs requests with volunteers, schedules duty
//! and appointments, serves the web apps, and tells the media relay which rooms
//! to open. It owns the database.
//!
//! # Layout
//! - [`cli`]: the `cloudlaw` command line (`serve`, `migrate`); `main.rs` only
//!   calls [`cli::run`].
//! - [`config`]: one typed [`config::Config`], read from defaults, a TOML file,
//!   `CLOUDLAW_*` environment variables and flags, validated at start-up.
//! - [`startup`]: [`startup::serve`] opens the store, migrates, seeds demo data,
//!   starts the in-process relay and serves HTTP on a listener it is given, until
//!   a shutdown future completes. Tests call it on port 0.
//! - [`store`]: all SQL. [`store::Store`] is the only way to the database; one
//!   file per area (accounts, auth, audit, places, teams, consultations).
//! - [`http`]: the router, the shared [`http::AppState`], the error type mapped
//!   once to HTTP, the OpenAPI document, one module per resource, and the
//!   accept loop with its connection limits ([`http::server`]).
//! - [`matcher`]: which waiting resident is offered to which lawyer, as
//!   synchronous code fed by events (rings, longest idle first, caps, timeouts).
//! - [`live`]: the live path: presence, requests, offers, consultations and
//!   the coordinators' live view. Its decisions are plain code
//!   ([`live::Dispatcher`]: inputs in, effects out), run by one task; it does
//!   not depend on [`ws`], which sends what it says.
//! - [`ws`]: the WebSocket endpoint and its typed messages (see PROTOCOL.md).
//! - [`web`]: the three browser apps, embedded in the binary from `web/`.
//! - [`demo`]: the demo accounts, region, terminal and duty hours of `--demo`.
//! - [`auth`]: tokens (EdDSA JWTs), the authenticated [`auth::Principal`] of a
//!   request, and the failed-attempt limiters.
//! - [`password`]: Argon2id for passwords (on two threads that reuse their
//!   memory), SHA-256 fingerprints for codes.
//! - [`checkpoints`]: the audit log anchored outside the database: signed
//!   checkpoints of its head, checked at start and by `cloudlaw audit verify`.
//! - [`schedule`]: availability, rosters, on-duty and coverage queries, the
//!   appointment rules and the iCalendar feed.
//! - [`phone`]: the hotline: SIP calls from a hotline switch or trunk, each
//!   a phone line that waits and talks through the kiosk's protocol.
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`retention`]: how long records, referrals and contacts are kept; the sweep.
//! - [`pdf`]: PDF documents (service certificates, monthly reports), text in
//!   Tibetan, Chinese and Latin script shaped with the font for each.
//! - [`telemetry`]: logging set-up (readable or JSON).
//! - [`domain`]: small validated types shared by the areas (languages, topics,
//!   roles) and the rules for an account's fields.
//! - [`relay`]: every relay this server uses (in process or standalone nodes)
//!   and which room is on which.
//! - [`cluster`]: several signaling nodes on one PostgreSQL database: the
//!   leader runs the live path, the others forward to it.
//! - [`turn`]: short-lived TURN credentials for networks that block UDP.
//! - [`outbox`]: what a part of this node hands to the other nodes, if any.
//! - [`ids`]: the ids that cross modules as types of their own (accounts,
//!   terminals, regions, requests, consultations, appointments, rooms, participants).

pub mod auth;
pub mod checkpoints;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ids;
pub mod live;
pub mod matcher;
pub mod metrics;
pub mod outbox;
pub mod password;
pub mod pdf;
pub mod phone;
pub mod relay;
pub mod retention;
pub mod schedule;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod turn;
pub mod web;
pub mod ws;

/// Seconds since the Unix epoch: the one clock every timestamp in the store uses.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
