//! Which engine, and which of its peer connections, a datagram is for.
//!
//! Every engine (one per core, see [`crate::RelayConfig::engines`]) owns its
//! rooms and their peer connections, and a socket of its own on the relay's
//! one UDP port (`SO_REUSEPORT`): the kernel spreads datagrams over them by
//! source address, not by engine. So each engine routes what it reads: a STUN
//! binding request by the ICE username fragment it names (each peer
//! connection has its own), anything else by its source address, which an
//! engine learns from the binding requests its peer connections answer. A
//! datagram for another engine is handed to it, in a batch per read burst.
//! Engines write the routes ([`Router`]) when a peer connection gets
//! credentials or an address, or goes; reading them is one lookup a datagram.

use std::net::SocketAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::BytesMut;
// Read for every datagram: a fast hasher, seeded per process.
use foldhash::HashMap;

use crate::packet::stun_local_ufrag;

/// A peer connection's number, unique within its engine.
pub(crate) type PeerId = u64;

/// Where a datagram goes: an engine and one of its peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) engine: usize,
    pub(crate) peer: PeerId,
}

/// One datagram, routed.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) peer: PeerId,
    pub(crate) from: SocketAddr,
    pub(crate) data: BytesMut,
    pub(crate) stun: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Routes {
    pub(crate) by_ufrag: HashMap<String, Route>,
    pub(crate) by_addr: HashMap<SocketAddr, Route>,
}

impl Routes {
    /// A binding request goes by the username fragment it names (its first
    /// contact, an ICE restart, a NAT rebinding), else by address, like the rest.
    pub(crate) fn route(&self, data: &[u8], from: SocketAddr, stun: bool) -> Option<Route> {
        let by_ufrag = if stun { stun_local_ufrag(data).and_then(|u| self.by_ufrag.get(u)) } else { None };
        by_ufrag.or_else(|| self.by_addr.get(&from)).copied()
    }
}

/// The routes, shared by the reader and every engine.
#[derive(Debug, Default)]
pub(crate) struct Router(RwLock<Routes>);

impl Router {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Routes> {
        // Nothing panics while holding the lock; if something did, the maps are still whole.
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Routes> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Batches one engine may have waiting from the others; more are dropped
/// (and counted) rather than letting one busy engine hold up the others.
pub(crate) const HANDOFF_QUEUE: usize = 256;

/// The engine a room lives on: the same for every call about it, spread
/// evenly over many rooms, with nothing to keep or clean up.
pub(crate) fn engine_of(room: &str, engines: usize) -> usize {
    // FNV-1a: stable, and fast on short ids.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in room.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % engines.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_spread_over_engines_and_stay_put() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let room = format!("{:08x}-room-{i}", i * 7919);
            let engine = engine_of(&room, 4);
            assert_eq!(engine, engine_of(&room, 4), "the same room, the same engine");
            counts[engine] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
        assert_eq!(engine_of("anything", 1), 0);
        // tests/media.rs counts on these two being apart.
        assert_ne!(engine_of("call-a", 2), engine_of("call-b", 2));
    }

    #[test]
    fn binding_requests_go_by_ufrag_and_the_rest_by_address() {
        let mut routes = Routes::default();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        routes.by_ufrag.insert("abcd".into(), Route { engine: 1, peer: 7 });
        routes.by_addr.insert(a, Route { engine: 0, peer: 3 });
        let request = crate::packet::tests::binding_request("abcd:remote");
        assert_eq!(routes.route(&request, b, true), Some(Route { engine: 1, peer: 7 }));
        assert_eq!(routes.route(&[0x80, 0x60, 0, 1], a, false), Some(Route { engine: 0, peer: 3 }));
        assert_eq!(routes.route(&[0x80, 0x60, 0, 1], b, false), None);
        let unknown = crate::packet::tests::binding_request("zzzz:remote");
        assert_eq!(routes.route(&unknown, a, true), Some(Route { engine: 0, peer: 3 }));
    }
}
