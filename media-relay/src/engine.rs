//! The relay's WebRTC I/O. An engine is one task, alone on a thread of its
//! own ([`crate::relay`] starts it there): it owns a socket on the
//! relay's UDP port (in [`Engine::run`], which reads and writes it a batch of
//! datagrams per system call; the rest of the engine never sees it, so
//! [`crate::lab`] can drive one in memory), the sans-I/O peer connection core
//! (`rtc`) of each of its rooms' participants, and each of its rooms'
//! [`Room`]. A relay runs one or more engines; a room lives on one.
//!
//! Datagrams are routed to a peer connection by the ICE username fragment of
//! their STUN binding request (each peer connection has its own), and after
//! that by source address ([`crate::routes`]); one for another engine is handed
//! to it. A participant's media, once its keys are known, is decrypted here
//! ([`Reception`]) and never reaches its peer connection; everything else
//! goes to the peer connection, whose output is drained after every input.
//! Media goes through its room's [`Room`], whose actions this module carries
//! out: add or remove a sending track and renegotiate, forward a packet (with
//! the receiver's SSRC and a gap-free sequence, encrypted by the engine itself:
//! [`Fast`]), ask a publisher for a keyframe. The relay always makes the offers, one at a time per peer,
//! so there is no glare; its one host candidate (the advertised address) is in
//! every offer, and it runs ICE-lite, so it never needs the browser's.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
// Looked up for every packet: a fast hasher, seeded per process.
use foldhash::{HashMap, HashMapExt, HashSet};
use rtc::interceptor::{NackResponderBuilder, Registry, SenderReportBuilder, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers;
use rtc::peer_connection::configuration::media_engine::{
    MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_NACK, TYPE_RTCP_FB_TRANSPORT_CC,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::statistics::StatsSelector;
use rtc::statistics::report::RTCStatsReportEntry;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::ids::{ParticipantId, RoomId};
use crate::keys::{Contexts, KeyTap};
use crate::packet::{KeyframeTap, RemoteStreams, is_binding_success, is_rtcp, is_stun, vp8_starts_keyframe};
use crate::reception::{Opened, Reception};
use crate::relay::Counters;
use crate::room::{Action, Event, Kind, Policy, Room, TrackKey, TrackNo, Withheld};
use crate::routes::{Datagram, PeerId, Route, Router};
use crate::session::{
    Answered, Call, Grant, NotForwarded, ParticipantStats, PeerEvent, RoomStats, SessionError,
};
use crate::udp::{Inbox, Outbox};

/// Payload types the relay offers. Every peer connection uses the same ones,
/// because the relay makes every offer, so a packet keeps its payload type
/// from publisher to receiver.
const PT_OPUS: u8 = 111;
const PT_VP8: u8 = 96;
const PT_VP8_RTX: u8 = 97;

/// How long a participant may stay without a working media connection (never
/// connected, or disconnected/failed, or its consent expired) before the relay
/// closes it.
const UNHEALTHY_LIMIT: Duration = Duration::from_secs(30);
/// How often statistics are gathered and downlinks judged.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Datagrams read per wake before the loop turns to other work.
const RECV_BURST: usize = 64;
/// ICE checks kept from before the first answer arrives.
const MAX_EARLY_DATAGRAMS: usize = 8;
/// Remote candidates buffered before the answer arrives.
const MAX_PENDING_CANDIDATES: usize = 32;
/// Remote candidates taken per participant in all (the relay is ICE-lite and
/// needs none; a browser gathers a handful per network change).
const MAX_CANDIDATES: usize = 256;
/// Packets kept per forwarded track for retransmission on NACK (a power of two).
const NACK_HISTORY: u16 = 256;
/// Packets sent again for one RTCP packet's NACKs, at most: a receiver
/// asking for the whole history again and again gets a bounded share.
const MAX_RESENT_PER_RTCP: usize = 64;
/// Source addresses remembered per peer connection.
const MAX_ADDRESSES: usize = 8;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, SessionError>>;

/// Requests from [`crate::Relay`] handles to an engine.
pub(crate) enum Command {
    /// `new_rooms: false` (draining): an `open_room` opens no room that is
    /// not open already.
    Call {
        call: Call,
        new_rooms: bool,
        reply: Reply<Answered>,
    },
    Join {
        grant: Grant,
        events: mpsc::Sender<PeerEvent>,
        reply: Reply<()>,
    },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

struct Inbound {
    /// Shared, so that each packet takes it without a copy.
    key: Arc<TrackKey>,
    kind: Kind,
    receiver: RTCRtpReceiverId,
    /// Its number in the room; `None` when the room refused the track (not
    /// granted, too many): its packets go nowhere.
    number: Option<TrackNo>,
}

struct Outbound {
    sender: RTCRtpSenderId,
    ssrc: u32,
    kind: Kind,
    /// Subtracted from the publisher's sequence numbers, so that packets this
    /// receiver skipped (waiting for a keyframe, audio only) leave no gap it
    /// would ask to be retransmitted.
    seq_offset: u16,
    last_seq: Option<u16>,
    skipped: bool,
    /// Added, in an offer out, or in an answered offer (then the receiver can take it).
    stage: Stage,
    /// What the relay sent itself ([`Fast`]), for sender reports and statistics.
    sent: Sent,
}

/// Packets of one forwarded track that the relay encrypted and sent itself.
#[derive(Default)]
struct Sent {
    packets: u64,
    /// Of them, sent again on a NACK.
    resent: u64,
    /// Payload bytes.
    octets: u64,
    /// The RTP timestamp of the last one, and when it went.
    last: Option<(u32, Instant)>,
    /// Video: the latest packets as sent (encrypted), by sequence number modulo
    /// its length, for the receiver's NACKs.
    history: Vec<Option<(u16, Bytes)>>,
}

impl Sent {
    fn keep(&mut self, seq: u16, packet: Bytes) {
        if self.history.is_empty() {
            self.history = vec![None; usize::from(NACK_HISTORY)];
        }
        self.history[usize::from(seq % NACK_HISTORY)] = Some((seq, packet));
    }

    fn kept(&self, seq: u16) -> Option<&Bytes> {
        match self.history.get(usize::from(seq % NACK_HISTORY))? {
            Some((kept, packet)) if *kept == seq => Some(packet),
            _ => None,
        }
    }
}

/// The relay's own way out to a participant: forwarded media is encrypted
/// with a copy of the peer connection's SRTP context (the keys from
/// [`KeyTap`]) and sent to where its ICE sends, so that the `rtc` pipeline
/// (its interceptors, and a copy of the packet at each of their stages) is
/// not on the way. RTCP, ICE and DTLS stay with the peer connection; NACKs
/// are answered from [`Sent::history`], and sender reports made in
/// `gather_stats`.
struct Fast {
    srtp: rtc::srtp::context::Context,
    /// The same keys, to check them against the first SRTCP packet the peer
    /// connection sends; `None` once checked.
    check: Option<rtc::srtp::context::Context>,
    to: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Added,
    Offered,
    Answered,
}

#[derive(Default)]
struct Totals {
    bytes_in: u64,
    bytes_out: u64,
    /// Per forwarded stream: packets sent, and of those sent again on NACK.
    sent_by_ssrc: HashMap<u32, (u64, u64)>,
    at: Option<Instant>,
}

struct Peer {
    room: RoomId,
    participant: ParticipantId,
    pc: RTCPeerConnection,
    /// Its crypto provider, which notes its SRTP keys.
    keys: Arc<KeyTap>,
    /// Set once it is connected and its keys are known.
    fast: Option<Fast>,
    /// A new source address was seen: where ICE sends may have changed.
    route_changed: bool,
    /// Its media, received: decrypted (once its keys are known) and reported on.
    reception: Reception,
    events: mpsc::Sender<PeerEvent>,
    ufrags: Vec<String>,
    addrs: Vec<SocketAddr>,
    /// Tracks this participant publishes, by the remote track id.
    inbound: HashMap<String, Inbound>,
    /// Tracks this participant receives.
    outbound: HashMap<TrackKey, Outbound>,
    /// Local track id of each outbound track, for the RTCP that comes back.
    outbound_ids: HashMap<String, TrackKey>,
    offer_pending: bool,
    renegotiate: bool,
    pending_candidates: Vec<RTCIceCandidateInit>,
    /// ICE checks that came before the first answer, replayed when it comes.
    early: Vec<(BytesMut, SocketAddr)>,
    candidates_taken: usize,
    deadline: Option<Instant>,
    state: RTCPeerConnectionState,
    /// When anything last came from this participant that its peer connection
    /// took (media, RTCP, an ICE check): RFC 7675 consent freshness.
    last_heard: Instant,
    /// Nothing came for the consent timeout while connected: the relay sends
    /// it nothing until something does.
    consent_expired: bool,
    unhealthy_since: Option<Instant>,
    stats: ParticipantStats,
    totals: Totals,
    /// Packets not sent to this participant, by [`NotForwarded::index`].
    not_forwarded: [u64; NotForwarded::ALL.len()],
}

impl Peer {
    fn not_forwarded(&mut self, counters: &Counters, why: NotForwarded) {
        self.not_forwarded[why.index()] += 1;
        counters.not_forwarded(why, 1);
    }

    /// Once connected: the relay's own way out to it ([`Fast`]), when its
    /// keys could be read; else its peer connection sends what is forwarded.
    fn take_fast_path(&mut self, counters: &Counters) {
        if self.fast.is_some() {
            self.follow_route();
            return;
        }
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None);
        let cipher = report.iter().find_map(|entry| match entry {
            RTCStatsReportEntry::Transport(transport) => Some(transport.srtp_cipher.clone()),
            _ => None,
        });
        let contexts = cipher.as_deref().and_then(|cipher| self.keys.contexts(cipher));
        match (contexts, selected_remote(&mut self.pc)) {
            (Some(Contexts { send, check, receive }), Some(to)) => {
                self.fast = Some(Fast { srtp: send, check: Some(check), to });
                self.reception.srtp = Some(receive);
            }
            // Another SRTP profile (AES-256), or no selected pair yet.
            _ => {
                counters.forwarding_fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    room = %self.room,
                    participant = %self.participant,
                    ?cipher,
                    "forwarding to this participant through its peer connection"
                );
            }
        }
    }

    /// Where its ICE now sends (after an ICE restart, a NAT rebinding).
    fn follow_route(&mut self) {
        self.route_changed = false;
        if let Some(fast) = &mut self.fast
            && let Some(to) = selected_remote(&mut self.pc)
        {
            fast.to = to;
        }
    }

    /// The keys of its [`Fast`] path, checked once against the first SRTCP
    /// packet its peer connection sends it (a sender report, a receiver
    /// report): they must open it. If not, they were read wrong (and what was
    /// sent with them was lost): the peer connection sends from then on.
    fn check_keys(&mut self, datagram: &[u8], counters: &Counters) {
        let Some(fast) = &mut self.fast else { return };
        let Some(check) = &mut fast.check else { return };
        if !is_rtcp(datagram) {
            return;
        }
        if check.decrypt_rtcp(datagram).is_ok() {
            fast.check = None;
        } else {
            tracing::warn!(
                room = %self.room,
                participant = %self.participant,
                "the SRTP keys read for forwarding do not open the peer connection's packets; \
                 forwarding through the peer connection"
            );
            self.fast = None;
            counters.forwarding_fallbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A sender report (RFC 3550 6.4.1) for each track the relay sent it
    /// itself: the timing that lets it play a publisher's audio and video in
    /// step. They go through its peer connection (its SRTCP context).
    fn send_reports(&mut self, now: Instant) -> bool {
        let wall = ntp_time(std::time::SystemTime::now());
        let mut sent = false;
        for out in self.outbound.values() {
            let Some((timestamp, at)) = out.sent.last else { continue };
            let clock = match out.kind {
                Kind::Audio => 48_000.0,
                Kind::Video => 90_000.0,
            };
            let report = SenderReport {
                ssrc: out.ssrc,
                ntp_time: wall,
                rtp_time: timestamp
                    .wrapping_add((now.saturating_duration_since(at).as_secs_f64() * clock) as u32),
                // Wrapping, as RFC 3550 has them.
                packet_count: out.sent.packets as u32,
                octet_count: out.sent.octets as u32,
                ..Default::default()
            };
            if let Some(mut sender) = self.pc.rtp_sender(out.sender) {
                sent |= sender.write_rtcp(now, vec![Box::new(report)]).is_ok();
            }
        }
        sent
    }

    /// Its statistics as signaling reads them.
    fn stats(&self, audio_only: bool) -> ParticipantStats {
        let mut stats = self.stats.clone();
        stats.audio_only = audio_only;
        stats.not_forwarded = NotForwarded::ALL
            .iter()
            .filter(|why| self.not_forwarded[why.index()] > 0)
            .map(|why| (why.as_str().to_owned(), self.not_forwarded[why.index()]))
            .collect();
        stats
    }
}

struct RoomEntry {
    room: Room,
    peers: HashMap<ParticipantId, PeerId>,
}

/// What the engine holds to, from the relay's configuration.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_rooms: usize,
    /// Rooms open on all the relay's engines together.
    pub(crate) open_rooms: Arc<std::sync::atomic::AtomicU64>,
    /// RFC 7675: consent expires after this long without anything from a participant.
    pub(crate) consent_timeout: Duration,
}

/// The peer connections that had input since they were last drained, each
/// once: a burst of datagrams from one participant, or many packets forwarded
/// to one, is drained in one pass (each drain sweeps the peer connection's
/// whole pipeline several times, even when it has nothing more to give).
#[derive(Default)]
struct Dirty {
    order: Vec<PeerId>,
    queued: HashSet<PeerId>,
}

impl Dirty {
    fn push(&mut self, id: PeerId) {
        if self.queued.insert(id) {
            self.order.push(id);
        }
    }

    fn pop(&mut self) -> Option<PeerId> {
        let id = self.order.pop()?;
        self.queued.remove(&id);
        Some(id)
    }
}

/// A datagram for the socket: what a peer connection wrote, to its participant.
#[derive(Debug)]
pub(crate) struct Transmit {
    /// Whose it is (counted against it when the socket cannot take it).
    pub(crate) peer: PeerId,
    pub(crate) to: SocketAddr,
    pub(crate) data: Bytes,
}

/// An engine's state and logic, without its socket: input goes in through
/// [`Engine::received`] (and commands, timeouts, hand-overs), and what it has
/// to send waits in [`Engine::transmits`] until [`Engine::run`] (or the
/// in-memory [`crate::lab`]) takes it, after each [`Engine::flush`].
pub(crate) struct Engine {
    /// Its place among the relay's engines (in its peer connections' routes).
    index: usize,
    router: Arc<Router>,
    /// Every engine's queue of datagrams handed over by the others (its own too, unused).
    handoffs: Vec<mpsc::Sender<Vec<Datagram>>>,
    /// What this burst read for each other engine.
    handing: Vec<Vec<Datagram>>,
    local_addr: SocketAddr,
    advertised: SocketAddr,
    limits: Limits,
    policy: Policy,
    counters: Arc<Counters>,
    next_peer: PeerId,
    peers: HashMap<PeerId, Peer>,
    rooms: HashMap<RoomId, RoomEntry>,
    timers: BTreeSet<(Instant, PeerId)>,
    dirty: Dirty,
    /// Peers whose tracks changed: offered once the input is handled.
    to_offer: Vec<PeerId>,
    ssrc_hasher: RandomState,
    ssrc_counter: u64,
    /// Datagrams to send, in the order they were written.
    pub(crate) transmits: Vec<Transmit>,
    /// Kept between packets: who gets the packet at hand (`None`) and who
    /// does not (why), and the plain packet before it is encrypted.
    forwards: Vec<(PeerId, Option<Withheld>)>,
    scratch: Vec<u8>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        local_addr: SocketAddr,
        router: Arc<Router>,
        handoffs: Vec<mpsc::Sender<Vec<Datagram>>>,
        advertised: SocketAddr,
        limits: Limits,
        policy: Policy,
        counters: Arc<Counters>,
    ) -> Engine {
        Engine {
            index,
            router,
            handing: handoffs.iter().map(|_| Vec::new()).collect(),
            handoffs,
            local_addr,
            advertised,
            limits,
            policy,
            counters,
            next_peer: 1,
            peers: HashMap::new(),
            rooms: HashMap::new(),
            timers: BTreeSet::new(),
            dirty: Dirty::default(),
            to_offer: Vec::new(),
            ssrc_hasher: RandomState::new(),
            ssrc_counter: 0,
            transmits: Vec::new(),
            forwards: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Runs on `socket` until `stopped` turns true or every handle is gone;
    /// then closes every peer connection.
    pub(crate) async fn run(
        mut self,
        socket: UdpSocket,
        mut commands: mpsc::Receiver<Command>,
        mut handed: mpsc::Receiver<Vec<Datagram>>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut inbox = Inbox::new();
        let mut outbox = Outbox::new();
        let mut stats = tokio::time::interval(STATS_INTERVAL);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            self.flush();
            self.send(&socket, &mut outbox);
            let next = self.timers.first().map(|(at, _)| *at);
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stopped.changed() => break,
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                readable = socket.readable() => {
                    if readable.is_ok() {
                        // Read what has arrived, up to a burst, before doing anything else.
                        let mut read = 0;
                        while read < RECV_BURST && let Ok(count) = inbox.read(&socket) {
                            for (data, from) in inbox.datagrams() {
                                self.received(data, from);
                            }
                            read += count;
                        }
                        self.hand_over();
                    }
                }
                Some(batch) = handed.recv() => {
                    for Datagram { peer, from, data, stun } in batch {
                        self.datagram(peer, from, &data, stun);
                    }
                }
                _ = sleep => self.timeouts(),
                _ = stats.tick() => self.gather_stats(),
            }
        }
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.remove_peer(id, "the relay is stopping");
        }
        self.flush();
        self.send(&socket, &mut outbox);
    }

    /// Sends what the peer connections wrote.
    fn send(&mut self, socket: &UdpSocket, outbox: &mut Outbox) {
        let (peers, counters) = (&mut self.peers, &self.counters);
        outbox.send_all(socket, &mut self.transmits, |refused| {
            counters.send_drops.fetch_add(1, Ordering::Relaxed);
            if let Some(peer) = peers.get_mut(&refused.peer) {
                peer.not_forwarded(counters, NotForwarded::SendBufferFull);
            }
        });
    }

    // ---- input -------------------------------------------------------------

    /// A datagram off this engine's socket: handled here, or kept for the
    /// engine whose peer connection it is for.
    pub(crate) fn received(&mut self, data: &[u8], from: SocketAddr) {
        self.counters.datagrams_received.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes_received.fetch_add(data.len() as u64, Ordering::Relaxed);
        let stun = is_stun(data);
        let route = self.router.read().route(data, from, stun);
        let Some(Route { engine, peer }) = route else {
            self.counters.datagrams_unrouted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if engine == self.index {
            self.datagram(peer, from, data, stun);
        } else if let Some(batch) = self.handing.get_mut(engine) {
            batch.push(Datagram { peer, from, data: BytesMut::from(data), stun });
        }
    }

    /// Hands the other engines what this burst read for them.
    fn hand_over(&mut self) {
        for (engine, batch) in self.handing.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            if let Err(error) = self.handoffs[engine].try_send(std::mem::take(batch)) {
                let lost = match error {
                    mpsc::error::TrySendError::Full(lost) | mpsc::error::TrySendError::Closed(lost) => lost,
                };
                self.counters.input_drops.fetch_add(lost.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// A datagram for one of this engine's peer connections. Media the
    /// engine decrypts itself is read where it lies; anything else is copied
    /// once, for the peer connection to own.
    fn datagram(&mut self, id: PeerId, from: SocketAddr, data: &[u8], stun: bool) {
        // A binding request named this peer connection: its address (first
        // contact, an ICE restart, a NAT rebinding) is learnt here.
        if stun && self.router.read().by_addr.get(&from) != Some(&Route { engine: self.index, peer: id }) {
            self.learn_address(id, from);
        }
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if peer.pc.remote_description().is_none() {
            // A browser starts its checks once it has the offer, often before
            // its answer reaches the relay; the agent cannot check them without
            // the answer's credentials. Kept for the answer rather than refused.
            if peer.early.len() < MAX_EARLY_DATAGRAMS {
                peer.early.push((BytesMut::from(data), from));
            }
            return;
        }
        if !stun && self.receive(id, data) {
            return;
        }
        self.feed(id, BytesMut::from(data), from);
    }

    /// Media the relay decrypts itself ([`Reception`]), around the peer
    /// connection: false when it is for the peer connection.
    fn receive(&mut self, id: PeerId, data: &[u8]) -> bool {
        let Some(peer) = self.peers.get_mut(&id) else { return false };
        let (track, packet) = match peer.reception.open(data) {
            Opened::Media(track, packet) => (track, packet),
            Opened::Dropped => return true,
            Opened::NotOurs | Opened::Unopened => return false,
        };
        self.counters.packets_received_directly.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        peer.last_heard = now;
        let renewed = peer.consent_expired;
        if peer.deadline.is_none() {
            // Its receiving interceptors may have a timer now.
            self.dirty.push(id);
        }
        let Some(packet) = peer.reception.received(now, packet) else { return true };
        if renewed {
            self.set_consent(id, true);
        }
        self.rtp(id, &track, packet, now);
        true
    }

    /// Hands one datagram to a peer connection (its output is drained in `drain`).
    fn feed(&mut self, id: PeerId, data: BytesMut, from: SocketAddr) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let result = peer.pc.handle_read(TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: self.local_addr,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: data,
        });
        if let Err(error) = result {
            tracing::trace!(%error, %from, "datagram refused by peer connection");
        }
        self.dirty.push(id);
    }

    fn learn_address(&mut self, id: PeerId, from: SocketAddr) {
        let route = Route { engine: self.index, peer: id };
        let mut routes = self.router.write();
        if let Some(old) = routes.by_addr.insert(from, route)
            && old.engine == self.index
            && let Some(old_peer) = self.peers.get_mut(&old.peer)
        {
            old_peer.addrs.retain(|a| *a != from);
        }
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.addrs.push(from);
        peer.route_changed = true;
        // Only the latest few addresses stay routable (the ICE agent checks
        // message integrity; this only bounds what a stray sender can add).
        if peer.addrs.len() > MAX_ADDRESSES {
            let gone = peer.addrs.remove(0);
            if routes.by_addr.get(&gone) == Some(&route) {
                routes.by_addr.remove(&gone);
            }
        }
    }

    pub(crate) fn timeouts(&mut self) {
        let now = Instant::now();
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.deadline = None;
                let _ = peer.pc.handle_timeout(now);
                peer.reception.handle_timeout(now);
                self.dirty.push(id);
            }
        }
    }

    pub(crate) fn command(&mut self, command: Command) {
        match command {
            Command::Call { call, new_rooms, reply } => {
                let _ = reply.send(self.call(call, new_rooms));
            }
            Command::Join { grant, events, reply } => {
                let room = grant.room.clone();
                let result = self.join(grant, events);
                if result.is_err() && self.rooms.get(&room).is_some_and(|entry| entry.peers.is_empty()) {
                    // Opened for this join only: an empty room must not hold a place.
                    self.forget_room(&room);
                }
                let _ = reply.send(result);
            }
        }
    }

    fn call(&mut self, call: Call, new_rooms: bool) -> Result<Answered, SessionError> {
        match call {
            Call::OpenRoom { room } => {
                if self.rooms.contains_key(&room) {
                    return Ok(Answered::Done);
                }
                if !new_rooms {
                    return Err(SessionError::Draining);
                }
                // The limit is the relay's, over all its engines.
                let max = self.limits.max_rooms as u64;
                let counted =
                    self.limits.open_rooms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                        (open < max).then_some(open + 1)
                    });
                if counted.is_err() {
                    return Err(SessionError::TooManyRooms);
                }
                self.rooms
                    .insert(room, RoomEntry { room: Room::new(self.policy.clone()), peers: HashMap::new() });
            }
            Call::CloseRoom { room } => {
                let entry = self.rooms.get(&room).ok_or(SessionError::NoSuchRoom)?;
                let ids: Vec<PeerId> = entry.peers.values().copied().collect();
                for id in ids {
                    self.remove_peer(id, "the consultation ended");
                }
                self.forget_room(&room);
            }
            Call::Answer { room, participant, sdp } => {
                let id = self.peer_id(&room, &participant)?;
                self.answer(id, sdp)?;
            }
            Call::Candidate { room, participant, candidate } => {
                let id = self.peer_id(&room, &participant)?;
                self.candidate(id, candidate)?;
            }
            Call::RestartIce { room, participant } => {
                let id = self.peer_id(&room, &participant)?;
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.pc.restart_ice();
                    peer.renegotiate = true;
                }
                self.offer_if_due(id);
            }
            Call::AudioOnly { room, participant, on } => {
                self.peer_id(&room, &participant)?;
                self.room_event(&room, Event::AudioOnlyChosen { participant, on })?;
            }
            Call::Leave { room, participant } => {
                let id = self.peer_id(&room, &participant)?;
                self.remove_peer(id, "left");
            }
            Call::RoomStats { room } => {
                let entry = self.rooms.get(&room).ok_or(SessionError::NoSuchRoom)?;
                let mut participants: Vec<ParticipantStats> = entry
                    .peers
                    .values()
                    .filter_map(|id| self.peers.get(id))
                    .map(|peer| peer.stats(entry.room.is_audio_only(&peer.participant).unwrap_or(false)))
                    .collect();
                participants.sort_by(|a, b| a.participant.cmp(&b.participant));
                return Ok(Answered::Stats(RoomStats { room, participants }));
            }
        }
        Ok(Answered::Done)
    }

    /// Closes a room's entry (its peer connections are gone) and frees its place.
    fn forget_room(&mut self, room: &RoomId) {
        if self.rooms.remove(room).is_some() {
            self.limits.open_rooms.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn peer_id(&self, room: &RoomId, participant: &ParticipantId) -> Result<PeerId, SessionError> {
        let entry = self.rooms.get(room).ok_or(SessionError::NoSuchRoom)?;
        entry.peers.get(participant).copied().ok_or(SessionError::NotJoined)
    }

    fn join(&mut self, grant: Grant, events: mpsc::Sender<PeerEvent>) -> Result<(), SessionError> {
        let entry = self.rooms.get_mut(&grant.room).ok_or(SessionError::NoSuchRoom)?;
        let now = Instant::now();
        let keys = KeyTap::new().map_err(|e| SessionError::Media(e.to_string()))?;
        let streams = Arc::new(RemoteStreams::default());
        let pc = new_peer_connection(now, Arc::clone(&keys), Arc::clone(&streams))
            .map_err(|e| SessionError::Media(e.to_string()))?;
        let actions = entry.room.handle(
            Event::Joined { participant: grant.participant.clone(), may_publish: grant.publish.clone() },
            now,
        )?;
        let id = self.next_peer;
        self.next_peer += 1;
        entry.peers.insert(grant.participant.clone(), id);
        // Counted here, so that a failed setup's leave below is matched.
        self.counters.participants_joined.fetch_add(1, Ordering::Relaxed);
        let mut peer = Peer {
            room: grant.room.clone(),
            participant: grant.participant.clone(),
            pc,
            keys,
            fast: None,
            route_changed: false,
            reception: Reception::new(streams),
            events,
            ufrags: Vec::new(),
            addrs: Vec::new(),
            inbound: HashMap::new(),
            outbound: HashMap::new(),
            outbound_ids: HashMap::new(),
            offer_pending: false,
            renegotiate: true,
            pending_candidates: Vec::new(),
            early: Vec::new(),
            candidates_taken: 0,
            deadline: None,
            state: RTCPeerConnectionState::New,
            last_heard: now,
            consent_expired: false,
            unhealthy_since: Some(now),
            stats: ParticipantStats {
                participant: grant.participant.clone(),
                state: "connecting".into(),
                ..ParticipantStats::default()
            },
            totals: Totals::default(),
            not_forwarded: [0; NotForwarded::ALL.len()],
        };
        let setup = (|| -> Result<(), rtc::shared::error::Error> {
            // The first two sections are always the participant's own audio and
            // video, so every offer has a transport, even for a participant who
            // may send nothing and has nobody to hear yet. What its token does
            // not grant, the room refuses when it arrives: it reaches nobody.
            for kind in [Kind::Audio, Kind::Video] {
                peer.pc.add_transceiver_from_kind(
                    codec_kind(kind),
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )?;
            }
            let host = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: self.advertised.ip().to_string(),
                    port: self.advertised.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()?;
            peer.pc.add_local_candidate(RTCIceCandidate::from(&host).to_json()?)?;
            Ok(())
        })();
        self.peers.insert(id, peer);
        if let Err(error) = setup {
            self.remove_peer(id, "media setup failed");
            return Err(SessionError::Media(error.to_string()));
        }
        self.apply(&grant.room, actions);
        self.offer_if_due(id);
        tracing::info!(room = %grant.room, participant = %grant.participant, "participant joined");
        Ok(())
    }

    fn answer(&mut self, id: PeerId, sdp: String) -> Result<(), SessionError> {
        let peer = self.peers.get_mut(&id).ok_or(SessionError::NotJoined)?;
        if !peer.offer_pending {
            return Err(SessionError::NoOfferPending);
        }
        // Its mDNS candidates are of no use to an ICE-lite relay (see `candidate`).
        let sdp = if sdp.contains(".local ") { without_mdns_candidates(&sdp) } else { sdp };
        let description =
            RTCSessionDescription::answer(sdp).map_err(|e| SessionError::BadDescription(e.to_string()))?;
        peer.pc
            .set_remote_description(Instant::now(), description)
            .map_err(|e| SessionError::BadDescription(e.to_string()))?;
        peer.offer_pending = false;
        for candidate in std::mem::take(&mut peer.pending_candidates) {
            let _ = peer.pc.add_remote_candidate(candidate);
        }
        let answered: Vec<TrackKey> = peer
            .outbound
            .iter_mut()
            .filter(|(_, o)| o.stage == Stage::Offered)
            .map(|(key, o)| {
                o.stage = Stage::Answered;
                key.clone()
            })
            .collect();
        let (room, participant) = (peer.room.clone(), peer.participant.clone());
        for (data, from) in std::mem::take(&mut peer.early) {
            self.feed(id, data, from);
        }
        for key in answered {
            let _ = self.room_event(&room, Event::TrackReady { receiver: participant.clone(), key });
        }
        // What it will send is known from its answer: the others are offered
        // its tracks now, while its media connection is still being set up,
        // rather than when its first packets arrive.
        self.announce_tracks(id);
        self.dirty.push(id);
        self.offer_if_due(id);
        Ok(())
    }

    fn candidate(&mut self, id: PeerId, candidate: RTCIceCandidateInit) -> Result<(), SessionError> {
        let peer = self.peers.get_mut(&id).ok_or(SessionError::NotJoined)?;
        if candidate.candidate.len() > 1024 {
            return Err(SessionError::BadCandidate("too long".into()));
        }
        if is_mdns_candidate(&candidate.candidate) {
            // A browser hiding its address behind an mDNS name (RFC 8828):
            // the relay is ICE-lite and needs no candidate, and cannot resolve
            // the name anyway; the browser's checks bring its address.
            return Ok(());
        }
        if peer.pc.remote_description().is_none() {
            if peer.pending_candidates.len() >= MAX_PENDING_CANDIDATES {
                return Err(SessionError::BadCandidate("too many candidates before the answer".into()));
            }
            peer.pending_candidates.push(candidate);
            return Ok(());
        }
        if peer.candidates_taken >= MAX_CANDIDATES {
            return Err(SessionError::BadCandidate("too many candidates".into()));
        }
        peer.candidates_taken += 1;
        peer.pc.add_remote_candidate(candidate).map_err(|e| SessionError::BadCandidate(e.to_string()))?;
        self.dirty.push(id);
        Ok(())
    }

    // ---- room actions ------------------------------------------------------

    fn room_event(&mut self, room: &RoomId, event: Event) -> Result<(), SessionError> {
        let entry = self.rooms.get_mut(room).ok_or(SessionError::NoSuchRoom)?;
        let actions = entry.room.handle(event, Instant::now())?;
        self.apply(room, actions);
        Ok(())
    }

    fn apply(&mut self, room: &RoomId, actions: Vec<Action>) {
        let mut renegotiate = Vec::new();
        for action in actions {
            match action {
                Action::Subscribe { receiver, key } => self.subscribe(room, &receiver, key),
                Action::Unsubscribe { receiver, key } => {
                    if let Some(peer) = self.peer_mut(room, &receiver)
                        && let Some(out) = peer.outbound.remove(&key)
                    {
                        peer.outbound_ids.retain(|_, k| *k != key);
                        let _ = peer.pc.remove_track(out.sender);
                    }
                }
                Action::Renegotiate { receiver } => {
                    if let Ok(id) = self.peer_id(room, &receiver) {
                        if let Some(peer) = self.peers.get_mut(&id) {
                            peer.renegotiate = true;
                        }
                        renegotiate.push(id);
                    }
                }
                Action::Forward { .. } => {} // Only from packets, handled in `rtp`.
                Action::RequestKeyframe { key } => self.request_keyframe(room, &key),
                Action::AudioOnly { receiver, on } => {
                    if let Some(peer) = self.peer_mut(room, &receiver) {
                        let _ = peer.events.try_send(PeerEvent::AudioOnly { on });
                    }
                }
            }
        }
        // Offered in `flush`, once this input's other changes (another track
        // of the same publisher, say) are in too.
        self.to_offer.extend(renegotiate);
    }

    fn peer_mut(&mut self, room: &RoomId, participant: &ParticipantId) -> Option<&mut Peer> {
        let id = self.peer_id(room, participant).ok()?;
        self.peers.get_mut(&id)
    }

    fn subscribe(&mut self, room: &RoomId, receiver: &ParticipantId, key: TrackKey) {
        let Some(kind) = self
            .peer_id(room, &key.publisher)
            .ok()
            .and_then(|id| self.peers.get(&id))
            .and_then(|p| p.inbound.values().find(|i| *i.key == key).map(|i| i.kind))
        else {
            return;
        };
        self.ssrc_counter += 1;
        let ssrc = (self.ssrc_hasher.hash_one(self.ssrc_counter) as u32).max(1);
        let Some(peer) = self.peer_mut(room, receiver) else { return };
        if peer.outbound.contains_key(&key) {
            return;
        }
        let local_id = format!("{}-{}", key.publisher, key.track);
        let track = MediaStreamTrack::new(
            key.publisher.to_string(),
            local_id.clone(),
            format!("{} {}", key.publisher, kind.as_str()),
            codec_kind(kind),
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec: codec(kind).rtp_codec,
                ..Default::default()
            }],
        );
        // A transceiver of its own, never the participant's publishing one.
        let added = peer.pc.add_transceiver_from_track(
            track,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                ..Default::default()
            }),
        );
        let sender = added.map(|t| peer.pc.rtp_transceiver(t).and_then(|t| t.sender()));
        match sender {
            Ok(Some(sender)) => {
                peer.outbound_ids.insert(local_id, key.clone());
                peer.outbound.insert(
                    key,
                    Outbound {
                        sender,
                        ssrc,
                        kind,
                        seq_offset: 0,
                        last_seq: None,
                        skipped: false,
                        stage: Stage::Added,
                        sent: Sent::default(),
                    },
                );
            }
            Ok(None) => tracing::warn!("a forwarded track has no sender"),
            Err(error) => tracing::warn!(%error, "cannot add a forwarded track"),
        }
    }

    fn request_keyframe(&mut self, room: &RoomId, key: &TrackKey) {
        tracing::debug!(%room, publisher = %key.publisher, track = %key.track, "keyframe request");
        let Ok(id) = self.peer_id(room, &key.publisher) else { return };
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if peer.state != RTCPeerConnectionState::Connected {
            // Its tracks are known from its answer, before its DTLS is done:
            // no SRTCP to send a PLI with yet, and its first frame will be a
            // keyframe anyway.
            return;
        }
        let Some(inbound) = peer.inbound.values().find(|i| *i.key == *key) else { return };
        let receiver_id = inbound.receiver;
        if let Some(mut receiver) = peer.pc.rtp_receiver(receiver_id) {
            let ssrcs: Vec<u32> = receiver.track().ssrcs().collect();
            for media_ssrc in ssrcs {
                let _ = receiver.write_rtcp(
                    Instant::now(),
                    vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })],
                );
            }
            self.counters.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.dirty.push(id);
    }

    /// Sends a new offer when the peer's tracks changed and no offer is out.
    fn offer_if_due(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if peer.offer_pending || !peer.renegotiate {
            return;
        }
        let offer = peer.pc.create_offer(None).and_then(|offer| {
            peer.pc.set_local_description(Instant::now(), offer.clone())?;
            Ok(offer)
        });
        match offer {
            Ok(offer) => {
                peer.renegotiate = false;
                peer.offer_pending = true;
                for out in peer.outbound.values_mut().filter(|o| o.stage == Stage::Added) {
                    out.stage = Stage::Offered;
                }
                if let Some(ufrag) = sdp_ice_ufrag(&offer.sdp)
                    && !peer.ufrags.iter().any(|u| u == ufrag)
                {
                    peer.ufrags.push(ufrag.to_owned());
                    let mut routes = self.router.write();
                    routes.by_ufrag.insert(ufrag.to_owned(), Route { engine: self.index, peer: id });
                    // The current credentials and the ones before them (still in use
                    // until the restart's answer arrives); older ones route nothing.
                    if peer.ufrags.len() > 2 {
                        let old = peer.ufrags.remove(0);
                        routes.by_ufrag.remove(&old);
                    }
                }
                if peer.events.try_send(PeerEvent::Offer { sdp: offer.sdp }).is_err() {
                    self.remove_peer(id, "its signaling connection is gone");
                    return;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot create an offer"),
        }
        self.dirty.push(id);
    }

    // ---- output ------------------------------------------------------------

    /// Makes the offers that are due and drains every peer connection that
    /// had input, until none has more.
    pub(crate) fn flush(&mut self) {
        loop {
            for id in std::mem::take(&mut self.to_offer) {
                self.offer_if_due(id);
            }
            match self.dirty.pop() {
                Some(id) => self.drain(id),
                None if self.to_offer.is_empty() => break,
                None => {}
            }
        }
    }

    fn drain(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if peer.route_changed {
            peer.follow_route();
        }
        // What its receiving interceptors wrote goes out through the peer
        // connection (SRTCP is its own), by any receiver.
        let feedback = peer.reception.rtcp();
        if !feedback.is_empty() {
            let now = Instant::now();
            if let Some(mut receiver) =
                peer.inbound.values().next().and_then(|inbound| peer.pc.rtp_receiver(inbound.receiver))
            {
                for packets in feedback {
                    if let Err(error) = receiver.write_rtcp(now, packets) {
                        tracing::debug!(%error, "feedback to a publisher not sent");
                    }
                }
            }
        }
        // Consent is renewed only by what proves the participant sent it: a
        // check the ICE agent answered (it verified its integrity), or media
        // or RTCP the peer connection decrypted. `handle_read` itself says
        // nothing: the rtc pipeline logs and swallows its handlers' errors.
        let mut heard = false;
        while let Some(out) = peer.pc.poll_write() {
            heard |= is_binding_success(&out.message);
            peer.check_keys(&out.message, &self.counters);
            self.transmits.push(Transmit {
                peer: id,
                to: out.transport.peer_addr,
                data: out.message.freeze(),
            });
        }
        let mut events = Vec::new();
        while let Some(event) = peer.pc.poll_event() {
            events.push(event);
        }
        let mut reads = Vec::new();
        while let Some(TaggedRTCMessage { message, .. }) = peer.pc.poll_read() {
            reads.push(message);
        }
        heard |= !reads.is_empty();
        if heard {
            peer.last_heard = Instant::now();
        }
        let renewed = heard && peer.consent_expired;
        let deadline = match (peer.pc.poll_timeout(), peer.reception.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if deadline != peer.deadline {
            if let Some(old) = peer.deadline {
                self.timers.remove(&(old, id));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, id));
            }
            peer.deadline = deadline;
        }
        if renewed {
            self.set_consent(id, true);
        }
        for event in events {
            self.peer_event(id, event);
        }
        // Streams the peer connection bound with this input: its receiving
        // interceptors see them from their first packet on; the engine
        // decrypts them itself once these reads are handled.
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.reception.bind_streams();
        }
        for message in reads {
            match message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    let Some(peer) = self.peers.get_mut(&id) else { return };
                    let doubted = peer.reception.doubt.as_deref() == Some(track_id.as_str());
                    if doubted && peer.reception.is_ours(packet.header.ssrc) {
                        peer.reception.srtp = None;
                        self.counters.forwarding_fallbacks.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            room = %peer.room,
                            participant = %peer.participant,
                            "the SRTP keys read for receiving do not open this participant's media; \
                             receiving through the peer connection"
                        );
                    }
                    let now = Instant::now();
                    if let Some(packet) = peer.reception.received(now, packet) {
                        self.rtp(id, &track_id, packet, now);
                    }
                }
                RTCMessage::RtcpPacket(track_id, packets) => {
                    if let Some(peer) = self.peers.get_mut(&id) {
                        peer.reception.sender_reports(Instant::now(), &packets);
                    }
                    self.rtcp(id, &track_id, &packets);
                }
                _ => {}
            }
        }
        self.match_streams(id);
    }

    /// The streams its peer connection bound, matched to the tracks it
    /// publishes ([`Reception::match_streams`]).
    fn match_streams(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.reception.doubt = None;
        let Peer { pc, inbound, reception, .. } = peer;
        reception.match_streams(|ssrc| {
            inbound.iter().find_map(|(track_id, inbound)| {
                let receiver = pc.rtp_receiver(inbound.receiver)?;
                receiver.track().ssrcs().any(|s| s == ssrc).then(|| Arc::from(track_id.as_str()))
            })
        });
    }

    fn peer_event(&mut self, id: PeerId, event: RTCPeerConnectionEvent) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let room = peer.room.clone();
        match event {
            RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                peer.state = state;
                if state == RTCPeerConnectionState::Connected {
                    // Connected again (after an ICE restart, say): heard just now.
                    peer.last_heard = Instant::now();
                    peer.consent_expired = false;
                    peer.take_fast_path(&self.counters);
                }
                let participant = peer.participant.clone();
                let name = state_name(state);
                tracing::debug!(%room, %participant, state = name, "media connection");
                if matches!(
                    state,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Disconnected
                        | RTCPeerConnectionState::Failed
                ) {
                    self.connection_changed(id, state == RTCPeerConnectionState::Connected);
                } else {
                    peer.stats.state = name.into();
                    peer.unhealthy_since = Some(peer.unhealthy_since.unwrap_or_else(Instant::now));
                    let _ = peer.events.try_send(PeerEvent::Connection { state: name.into() });
                }
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                // Usually known from the answer already (`announce_tracks`).
                self.publish(id, init.receiver_id);
            }
            RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track_id)) => {
                if let Some(inbound) = peer.inbound.remove(&track_id)
                    && inbound.number.is_some()
                {
                    let _ =
                        self.room_event(&room, Event::Unpublished { key: Arc::unwrap_or_clone(inbound.key) });
                }
            }
            _ => {}
        }
    }

    /// Every track the participant's answer says it sends, published to its room.
    fn announce_tracks(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let sending: Vec<RTCRtpReceiverId> = peer
            .pc
            .get_transceivers()
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|t| {
                let transceiver = peer.pc.rtp_transceiver(t)?;
                // Ours to receive on, and the participant's answer sends on it.
                let receiving = transceiver.direction() == RTCRtpTransceiverDirection::Recvonly
                    && transceiver.current_direction().has_recv();
                receiving.then_some(RTCRtpReceiverId::from(t))
            })
            .collect();
        for receiver in sending {
            self.publish(id, receiver);
        }
    }

    /// The track of the participant's `receiver`, published to its room
    /// (once; a track the room refuses goes nowhere).
    fn publish(&mut self, id: PeerId, receiver_id: RTCRtpReceiverId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let Some(receiver) = peer.pc.rtp_receiver(receiver_id) else { return };
        let track = receiver.track();
        let track_id = track.track_id().to_string();
        if track_id.is_empty() || track.ssrcs().next().is_none() || peer.inbound.contains_key(&track_id) {
            return; // Nothing declared yet, or published already.
        }
        let kind = match track.kind() {
            RtpCodecKind::Audio => Kind::Audio,
            _ => Kind::Video,
        };
        let key = TrackKey { publisher: peer.participant.clone(), track: track_id.clone() };
        peer.inbound.insert(
            track_id,
            Inbound { key: Arc::new(key.clone()), kind, receiver: receiver_id, number: None },
        );
        let (room, participant) = (peer.room.clone(), peer.participant.clone());
        match self.room_event(&room, Event::Published { key: key.clone(), kind }) {
            Ok(()) => {
                let number = self.rooms.get(&room).and_then(|entry| entry.room.track_no(&key));
                if let Some(peer) = self.peers.get_mut(&id)
                    && let Some(inbound) = peer.inbound.values_mut().find(|i| *i.key == key)
                {
                    inbound.number = number;
                }
            }
            Err(error) => {
                tracing::info!(%room, %participant, %error, "track refused; its media goes nowhere")
            }
        }
    }

    /// The participant's media connection is up (connected, with consent) or
    /// down: tell signaling, and the room, which sends nothing to it while down.
    fn connection_changed(&mut self, id: PeerId, up: bool) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let name = if up {
            "connected"
        } else if peer.state == RTCPeerConnectionState::Failed {
            "failed"
        } else {
            "disconnected"
        };
        peer.stats.state = name.into();
        peer.unhealthy_since =
            if up { None } else { Some(peer.unhealthy_since.unwrap_or_else(Instant::now)) };
        let _ = peer.events.try_send(PeerEvent::Connection { state: name.into() });
        let (room, participant) = (peer.room.clone(), peer.participant.clone());
        let result = self.room_event(&room, Event::Connection { participant, up });
        tracing::debug!(%room, up, ?result, "connection event to the room");
    }

    /// RFC 7675: consent lapses when nothing has come from a connected
    /// participant for the consent timeout, and returns with the next packet
    /// its peer connection takes.
    fn set_consent(&mut self, id: PeerId, fresh: bool) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if peer.consent_expired != fresh {
            return;
        }
        peer.consent_expired = !fresh;
        tracing::info!(
            room = %peer.room,
            participant = %peer.participant,
            "consent {}",
            if fresh { "renewed" } else { "expired: nothing heard" }
        );
        if peer.state == RTCPeerConnectionState::Connected {
            self.connection_changed(id, fresh);
        }
    }

    /// A media packet of a participant's track, forwarded as its room decides.
    fn rtp(&mut self, id: PeerId, track_id: &str, mut packet: rtc::rtp::Packet, now: Instant) {
        let Engine { peers, rooms, counters, forwards, .. } = self;
        let Some(peer) = peers.get(&id) else { return };
        let Some(inbound) = peer.inbound.get(track_id) else { return };
        let Some(number) = inbound.number else {
            counters.not_forwarded(NotForwarded::RefusedTrack, 1);
            return;
        };
        let (key, kind) = (Arc::clone(&inbound.key), inbound.kind);
        if packet.header.payload_type == PT_VP8_RTX {
            // RFC 4588: the original sequence number, then the original payload.
            if packet.payload.len() < 2 {
                return; // Padding used for bandwidth probing; nothing to forward.
            }
            let original = u16::from_be_bytes([packet.payload[0], packet.payload[1]]);
            packet.header.sequence_number = original;
            packet.header.payload_type = PT_VP8;
            packet.payload = packet.payload.slice(2..);
        }
        let keyframe = kind == Kind::Video && vp8_starts_keyframe(&packet.payload);
        let Some(RoomEntry { room, peers: ids }) = rooms.get_mut(&peer.room) else { return };
        forwards.clear();
        let decided = room.forward(number, keyframe, now, |participant, verdict| {
            if let Some(&rid) = ids.get(participant) {
                forwards.push((rid, verdict));
            }
        });
        let Ok(keyframe_request) = decided else { return };
        // Headers extensions were negotiated per leg: none is carried over.
        packet.header.extension = false;
        packet.header.extensions.clear();
        packet.header.extensions_padding = 0;
        let forwards = std::mem::take(&mut self.forwards);
        for &(rid, verdict) in &forwards {
            let Some(receiver) = self.peers.get_mut(&rid) else { continue };
            if let Some(why) = verdict {
                receiver.not_forwarded(&self.counters, why.into());
                // What it skipped leaves no gap it would ask to be sent again.
                if let Some(out) = receiver.outbound.get_mut(&*key) {
                    out.skipped = true;
                }
                continue;
            }
            let Some(out) = receiver.outbound.get_mut(&*key) else {
                receiver.not_forwarded(&self.counters, NotForwarded::NoTrackYet);
                continue;
            };
            let incoming = packet.header.sequence_number;
            if out.skipped || out.last_seq.is_none() {
                let next = out.last_seq.map_or(incoming, |last| last.wrapping_add(1));
                out.seq_offset = incoming.wrapping_sub(next);
                out.skipped = false;
            }
            let mut header = packet.header.clone();
            header.ssrc = out.ssrc;
            header.sequence_number = incoming.wrapping_sub(out.seq_offset);
            if out.last_seq.is_none_or(|last| seq_newer(header.sequence_number, last)) {
                out.last_seq = Some(header.sequence_number);
            }
            let octets = packet.payload.len() as u64;
            let sent = match &mut receiver.fast {
                Some(fast) => {
                    let (seq, timestamp) = (header.sequence_number, header.timestamp);
                    match encrypt(&mut fast.srtp, &mut self.scratch, &header, &packet.payload) {
                        Some(encrypted) => {
                            let sent = &mut out.sent;
                            sent.packets += 1;
                            sent.octets += octets;
                            sent.last = Some((timestamp, now));
                            if out.kind == Kind::Video {
                                sent.keep(seq, encrypted.clone());
                            }
                            self.transmits.push(Transmit { peer: rid, to: fast.to, data: encrypted });
                            true
                        }
                        None => false,
                    }
                }
                None => {
                    self.dirty.push(rid);
                    let copy = rtc::rtp::Packet { header, payload: packet.payload.clone() };
                    receiver
                        .pc
                        .rtp_sender(out.sender)
                        .is_some_and(|mut sender| sender.write_rtp(now, copy).is_ok())
                }
            };
            if sent {
                self.counters.packets_forwarded.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes_forwarded.fetch_add(octets + 12, Ordering::Relaxed);
            } else {
                receiver.not_forwarded(&self.counters, NotForwarded::SendFailed);
            }
        }
        self.forwards = forwards;
        if let Some(request) = keyframe_request
            && let Some(room) = self.peers.get(&id).map(|p| p.room.clone())
        {
            self.apply(&room, vec![request]);
        }
    }

    fn rtcp(&mut self, id: PeerId, track_id: &str, packets: &[Box<dyn rtc::rtcp::Packet>]) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let Some(key) = peer.outbound_ids.get(track_id).cloned() else { return };
        // What the relay sent itself, it sends again (the peer connection has
        // no copy); the rest the peer connection's NACK responder answers.
        if let Some(fast) = &peer.fast
            && let Some(out) = peer.outbound.get_mut(&key)
        {
            let lost = packets
                .iter()
                .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                .flat_map(|nack| nack.nacks.iter().flat_map(|pair| pair.packet_list()))
                .take(MAX_RESENT_PER_RTCP);
            for seq in lost {
                if let Some(packet) = out.sent.kept(seq) {
                    self.transmits.push(Transmit { peer: id, to: fast.to, data: packet.clone() });
                    out.sent.packets += 1;
                    out.sent.resent += 1;
                }
            }
        }
        let wants_keyframe = packets
            .iter()
            .any(|p| p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>());
        if wants_keyframe {
            let (room, receiver) = (peer.room.clone(), peer.participant.clone());
            let _ = self.room_event(&room, Event::KeyframeWanted { receiver, key });
        }
    }

    /// Peers on the [`Fast`] path, of them those whose keys were checked,
    /// and peers whose media the engine decrypts itself ([`Reception`]).
    #[cfg(test)]
    pub(crate) fn fast_paths(&self) -> (usize, usize, usize) {
        let fast: Vec<&Fast> = self.peers.values().filter_map(|p| p.fast.as_ref()).collect();
        let receiving = self.peers.values().filter(|p| p.reception.srtp.is_some()).count();
        (fast.len(), fast.iter().filter(|f| f.check.is_none()).count(), receiving)
    }

    /// Media packets the engine decrypted itself, and all it received.
    #[cfg(test)]
    pub(crate) fn received_itself(&mut self) -> (u64, u64) {
        let (mut itself, mut all) = (0, 0);
        for peer in self.peers.values_mut() {
            itself += peer.reception.packets;
            all += peer.reception.packets;
            for entry in peer.pc.get_stats(Instant::now(), StatsSelector::None).iter() {
                if let RTCStatsReportEntry::InboundRtp(inbound) = entry {
                    all += inbound.received_rtp_stream_stats.packets_received;
                }
            }
        }
        (itself, all)
    }

    /// Each participant's packets received and jitter, as last gathered.
    #[cfg(test)]
    pub(crate) fn participant_stats(&self) -> Vec<(String, u64, f64)> {
        let stats = self.peers.values().map(|p| &p.stats);
        stats.map(|s| (s.participant.to_string(), s.packets_received, s.jitter_s)).collect()
    }

    // ---- housekeeping ------------------------------------------------------

    pub(crate) fn gather_stats(&mut self) {
        let now = Instant::now();
        let mut downlinks = Vec::new();
        let mut expired = Vec::new();
        let mut lapsed = Vec::new();
        let consent_timeout = self.limits.consent_timeout;
        for (&id, peer) in self.peers.iter_mut() {
            if peer.unhealthy_since.is_some_and(|since| now.duration_since(since) >= UNHEALTHY_LIMIT) {
                expired.push(id);
                continue;
            }
            if peer.state == RTCPeerConnectionState::Connected
                && !peer.consent_expired
                && now.saturating_duration_since(peer.last_heard) >= consent_timeout
            {
                lapsed.push(id);
            }
            let report = peer.pc.get_stats(now, StatsSelector::None);
            let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
            let mut sent_by_ssrc = HashMap::new();
            let mut reported_loss = Vec::new();
            let s = &mut peer.stats;
            s.packets_received = 0;
            s.packets_lost = 0;
            s.jitter_s = 0.0;
            s.packets_sent = 0;
            s.downlink_loss = 0.0;
            let mut rtt: Option<f64> = None;
            for entry in report.iter() {
                match entry {
                    RTCStatsReportEntry::InboundRtp(inbound) => {
                        let r = &inbound.received_rtp_stream_stats;
                        s.packets_received += r.packets_received;
                        s.packets_lost += r.packets_lost;
                        // The core reports jitter in RTP timestamp units.
                        let clock = match r.rtp_stream_stats.kind {
                            RtpCodecKind::Audio => 48_000.0,
                            _ => 90_000.0,
                        };
                        s.jitter_s = s.jitter_s.max(r.jitter / clock);
                        bytes_in += inbound.bytes_received;
                    }
                    RTCStatsReportEntry::OutboundRtp(outbound) => {
                        let stream = &outbound.sent_rtp_stream_stats;
                        sent_by_ssrc.insert(
                            stream.rtp_stream_stats.ssrc,
                            (stream.packets_sent, outbound.retransmitted_packets_sent),
                        );
                        s.packets_sent += outbound.sent_rtp_stream_stats.packets_sent;
                        bytes_out += outbound.sent_rtp_stream_stats.bytes_sent;
                    }
                    RTCStatsReportEntry::RemoteInboundRtp(remote) => {
                        reported_loss.push((
                            remote.received_rtp_stream_stats.rtp_stream_stats.ssrc,
                            remote.fraction_lost,
                        ));
                        if remote.round_trip_time > 0.0 {
                            rtt = Some(
                                rtt.map_or(remote.round_trip_time, |r: f64| r.max(remote.round_trip_time)),
                            );
                        }
                    }
                    RTCStatsReportEntry::IceCandidatePair(pair)
                        if pair.nominated && rtt.is_none() && pair.current_round_trip_time > 0.0 =>
                    {
                        rtt = Some(pair.current_round_trip_time);
                    }
                    _ => {}
                }
            }
            // What the relay received itself ([`Reception`]), and sent itself
            // ([`Fast`]), the peer connection did not count.
            s.packets_received += peer.reception.packets;
            bytes_in += peer.reception.bytes;
            for out in peer.outbound.values().filter(|out| out.sent.packets > 0) {
                let counted = sent_by_ssrc.entry(out.ssrc).or_insert((0, 0));
                counted.0 += out.sent.packets;
                counted.1 += out.sent.resent;
                s.packets_sent += out.sent.packets;
                bytes_out += out.sent.octets;
            }
            s.rtt_s = rtt.unwrap_or(0.0);
            if let Some(at) = peer.totals.at {
                let secs = now.duration_since(at).as_secs_f64().max(0.001);
                s.received_bps = ((bytes_in.saturating_sub(peer.totals.bytes_in)) as f64 * 8.0 / secs) as u64;
                s.sent_bps = ((bytes_out.saturating_sub(peer.totals.bytes_out)) as f64 * 8.0 / secs) as u64;
            }
            // Only streams that carried packets since the last look: a track the
            // receiver no longer gets (audio only) keeps its last, stale report.
            for (ssrc, loss) in reported_loss {
                let before = peer.totals.sent_by_ssrc.get(&ssrc).map_or(0, |(sent, _)| *sent);
                if sent_by_ssrc.get(&ssrc).is_some_and(|(now, _)| *now > before) {
                    s.downlink_loss = s.downlink_loss.max(loss);
                }
            }
            // Receiver reports count a packet that a retransmission repaired as
            // received, so a lossy downlink with NACK can report no loss at all;
            // what the relay had to send again (per stream that carried new
            // packets) says how lossy it really is.
            for (ssrc, (sent_now, resent_now)) in &sent_by_ssrc {
                let (sent_before, resent_before) =
                    peer.totals.sent_by_ssrc.get(ssrc).copied().unwrap_or((0, 0));
                let sent = sent_now.saturating_sub(sent_before);
                if sent >= 20 {
                    let resent = resent_now.saturating_sub(resent_before);
                    s.downlink_loss = s.downlink_loss.max((resent as f64 / sent as f64).min(1.0));
                }
            }
            peer.totals = Totals { bytes_in, bytes_out, sent_by_ssrc, at: Some(now) };
            if peer.state == RTCPeerConnectionState::Connected
                && !peer.consent_expired
                && !peer.outbound.is_empty()
            {
                downlinks.push((peer.room.clone(), peer.participant.clone(), s.downlink_loss as f32));
            }
            if peer.fast.is_some() {
                peer.follow_route();
                if peer.send_reports(now) {
                    self.dirty.push(id);
                }
            }
        }
        for id in expired {
            self.remove_peer(id, "its media connection stayed down");
        }
        for id in lapsed {
            self.set_consent(id, false);
        }
        for (room, receiver, loss) in downlinks {
            // No send-side bandwidth estimate is kept yet: the downlink is judged
            // by the loss the receiver reports.
            let _ = self.room_event(&room, Event::Downlink { receiver, estimate_bps: u64::MAX, loss });
        }
    }

    fn remove_peer(&mut self, id: PeerId, reason: &str) {
        let Some(mut peer) = self.peers.remove(&id) else { return };
        if let Some(old) = peer.deadline {
            self.timers.remove(&(old, id));
        }
        {
            let route = Route { engine: self.index, peer: id };
            let mut routes = self.router.write();
            for ufrag in &peer.ufrags {
                if routes.by_ufrag.get(ufrag) == Some(&route) {
                    routes.by_ufrag.remove(ufrag);
                }
            }
            for addr in &peer.addrs {
                if routes.by_addr.get(addr) == Some(&route) {
                    routes.by_addr.remove(addr);
                }
            }
        }
        let _ = peer.pc.close();
        while let Some(out) = peer.pc.poll_write() {
            self.transmits.push(Transmit {
                peer: id,
                to: out.transport.peer_addr,
                data: out.message.freeze(),
            });
        }
        let _ = peer.events.try_send(PeerEvent::Closed { reason: reason.into() });
        self.counters.participants_left.fetch_add(1, Ordering::Relaxed);
        tracing::info!(room = %peer.room, participant = %peer.participant, reason, "participant left");
        if let Some(entry) = self.rooms.get_mut(&peer.room) {
            entry.peers.remove(&peer.participant);
            if entry.peers.is_empty() {
                // The last one out closes the room.
                self.forget_room(&peer.room);
            } else if let Ok(actions) =
                entry.room.handle(Event::Left { participant: peer.participant.clone() }, Instant::now())
            {
                self.apply(&peer.room, actions);
            }
        }
    }
}

/// The participant's address in the candidate pair ICE chose: where the peer
/// connection sends.
fn selected_remote(pc: &mut RTCPeerConnection) -> Option<SocketAddr> {
    let first = pc.get_transceivers().next()?;
    let receiver = pc.rtp_receiver(RTCRtpReceiverId::from(first))?;
    let pair = receiver.transport()?.ice_transport().get_selected_candidate_pair()?;
    let remote = pair.remote();
    Some(SocketAddr::new(remote.address.parse().ok()?, remote.port))
}

/// `now` in the NTP format of sender reports (RFC 3550 4): seconds since
/// 1900 in the high 32 bits, the fraction in the low.
/// A forwarded packet, encrypted with `srtp`: marshalled into `scratch` (kept
/// between packets), then sealed into a buffer of its own.
fn encrypt(
    srtp: &mut rtc::srtp::context::Context,
    scratch: &mut Vec<u8>,
    header: &rtc::rtp::Header,
    payload: &Bytes,
) -> Option<Bytes> {
    let header_len = header.marshal_size();
    scratch.resize(header_len + payload.len(), 0);
    header.marshal_to(&mut scratch[..header_len]).ok()?;
    scratch[header_len..].copy_from_slice(payload);
    Some(srtp.encrypt_rtp_with_header(scratch, header).ok()?.freeze())
}

fn ntp_time(now: std::time::SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let since = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    ((since.as_secs() + UNIX_TO_NTP) << 32) | fraction
}

/// `candidate:F 1 udp P NAME.local PORT typ host`: the address is an mDNS name.
fn is_mdns_candidate(candidate: &str) -> bool {
    candidate.split_ascii_whitespace().nth(4).is_some_and(|address| address.ends_with(".local"))
}

/// The session description without its `a=candidate` lines for mDNS names.
fn without_mdns_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let candidate = line.trim_end().strip_prefix("a=");
        if !candidate.is_some_and(is_mdns_candidate) {
            out.push_str(line);
        }
    }
    out
}

fn state_name(state: RTCPeerConnectionState) -> &'static str {
    match state {
        RTCPeerConnectionState::Connected => "connected",
        RTCPeerConnectionState::Disconnected => "disconnected",
        RTCPeerConnectionState::Failed => "failed",
        RTCPeerConnectionState::Closed => "closed",
        _ => "connecting",
    }
}

/// `a` is after `b` in RTP sequence-number order (with wrap-around).
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

fn sdp_ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines().find_map(|line| line.trim_end().strip_prefix("a=ice-ufrag:"))
}

fn codec_kind(kind: Kind) -> RtpCodecKind {
    match kind {
        Kind::Audio => RtpCodecKind::Audio,
        Kind::Video => RtpCodecKind::Video,
    }
}

/// The one codec per kind the relay offers: Opus with in-band FEC, and VP8
/// (with RTX), which every browser decodes. One codec per kind means a packet
/// is forwarded without transcoding or payload-type mapping.
fn codec(kind: Kind) -> RTCRtpCodecParameters {
    match kind {
        Kind::Audio => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: PT_OPUS,
        },
        Kind::Video => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            payload_type: PT_VP8,
        },
    }
}

fn new_peer_connection(
    now: Instant,
    keys: Arc<KeyTap>,
    streams: Arc<RemoteStreams>,
) -> Result<RTCPeerConnection, rtc::shared::error::Error> {
    let mut media = MediaEngine::default();
    media.register_codec(codec(Kind::Audio), RtpCodecKind::Audio)?;
    media.register_codec(codec(Kind::Video), RtpCodecKind::Video)?;
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: format!("apt={PT_VP8}"),
                rtcp_feedback: vec![],
            },
            payload_type: PT_VP8_RTX,
        },
        RtpCodecKind::Video,
    )?;
    // What `register_default_interceptors` negotiates: NACK both ways, and
    // transport-wide congestion-control feedback to every browser so it can
    // estimate its uplink. The receiving interceptors (NACK generator,
    // receiver reports, that feedback) are the engine's own (`Reception`),
    // not the peer connection's. Its NACK responder keeps 256 packets per
    // forwarded track (about 3 s of video, 5 s of audio) rather than the
    // default 1,024, which held most of a participant's memory; it answers
    // only for what the peer connection sent itself (see `Fast`).
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback { typ: TYPE_RTCP_FB_NACK.to_owned(), parameter: parameter.to_owned() },
            RtpCodecKind::Video,
        );
    }
    configure_simulcast_extension_headers(&mut media)?;
    // As `configure_twcc_receiver_only` registers it (so transport-cc is
    // extension 4), without its interceptor.
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        media.register_feedback(
            RTCPFeedback { typ: TYPE_RTCP_FB_TRANSPORT_CC.to_owned(), parameter: String::new() },
            kind,
        );
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability { uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned() },
            kind,
            None,
        )?;
    }
    let registry = Registry::new()
        .with(Slot::NackResponder, NackResponderBuilder::new().with_size(NACK_HISTORY).build())
        .with(Slot::SenderReport, SenderReportBuilder::new().build())
        .with(Slot::from(KeyframeTap::SLOT), KeyframeTap::relaying(streams));
    // The agent's own timers count only ICE checks, not media, as proof of
    // life, and would call a participant disconnected after 5 s without one,
    // although RFC 7675 lets a client check every 4-6 s and keeps consent for
    // 30 s. So they are off (zero); the engine keeps consent itself from
    // everything the participant sends (`Peer::last_heard`).
    let settings = SettingEngineBuilder::new()
        .with_lite(true)
        .with_ice_timeouts(Some(Duration::ZERO), Some(Duration::ZERO), None)
        .with_crypto_provider(keys)
        .build();
    RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .build(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_order_wraps() {
        assert!(seq_newer(1, 0));
        assert!(seq_newer(0, 65_535));
        assert!(!seq_newer(65_535, 0));
        assert!(!seq_newer(5, 5));
    }

    #[test]
    fn ntp_time_counts_from_1900_with_a_binary_fraction() {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(ntp_time(at), ((2_208_988_800 + 1) << 32) | 0x8000_0000);
    }

    #[test]
    fn recognises_mdns_candidates() {
        assert!(is_mdns_candidate("candidate:1 1 udp 2122260223 0d51a633-2b82.local 54321 typ host"));
        assert!(!is_mdns_candidate("candidate:1 1 udp 2122260223 10.0.0.2 54321 typ host"));
        assert!(!is_mdns_candidate(""));
        let sdp = "v=0\r\na=candidate:1 1 udp 1 x.local 5 typ host\r\na=candidate:2 1 udp 1 10.0.0.2 5 typ host\r\n";
        assert_eq!(without_mdns_candidates(sdp), "v=0\r\na=candidate:2 1 udp 1 10.0.0.2 5 typ host\r\n");
    }

    #[test]
    fn finds_the_ufrag_of_an_offer() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\na=ice-ufrag:AbCd\r\na=ice-pwd:x\r\n";
        assert_eq!(sdp_ice_ufrag(sdp), Some("AbCd"));
        assert_eq!(sdp_ice_ufrag("v=0\r\n"), None);
    }

    #[test]
    fn a_relay_peer_connection_offers_one_codec_per_kind() {
        let mut pc = new_peer_connection(Instant::now(), KeyTap::new().unwrap(), Arc::default()).unwrap();
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .unwrap();
        }
        let offer = pc.create_offer(None).unwrap();
        assert!(offer.sdp.contains("a=rtpmap:111 opus/48000/2"), "{}", offer.sdp);
        assert!(offer.sdp.contains("a=rtpmap:96 VP8/90000"), "{}", offer.sdp);
        assert!(offer.sdp.contains("a=fmtp:97 apt=96"), "{}", offer.sdp);
        assert!(offer.sdp.contains("useinbandfec=1"), "{}", offer.sdp);
        assert!(offer.sdp.contains("transport-cc"), "{}", offer.sdp);
        // In both sections, with the number PROTOCOL.md gives.
        let extmap = "a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
        assert_eq!(offer.sdp.matches(extmap).count(), 2, "{}", offer.sdp);
        assert!(offer.sdp.contains("a=ice-lite"), "{}", offer.sdp);
        assert!(!offer.sdp.contains("H264"), "{}", offer.sdp);
    }
}
