//! Whole-system tests: the real server on a free port with a fresh database,
//! driven over HTTP and WebSocket, and the real `cloudlaw` binary driven as an
//! operator would. One test binary, one module per area.

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod authorization;
mod cli;
mod cluster;
mod codemap;
mod hardening;
mod http_api;
mod layers;
mod live;
mod phone;
mod referrals;
mod relay_node;
mod schedule;
mod service;
mod websocket;
