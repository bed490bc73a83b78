//! A real WebRTC participant for relay tests: a peer connection of the async
//! `webrtc` crate (its own sockets, its own ICE, DTLS and SRTP) that answers
//! the relay's offers, sends synthetic Opus and VP8 packets, answers keyframe
//! requests, and counts what it receives per publisher and kind.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media_relay::control::{ControlClient, TestSigner};
use media_relay::lab::rtp;
use media_relay::packet::{KeyframeTap, vp8_starts_keyframe};
use media_relay::{Calls, Grant, Kind, PeerEvent, Relay, SessionError};
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder, register_default_interceptors,
};

/// Logs to the test output when TEST_LOG is set (e.g. TEST_LOG=media_relay=debug).
pub fn init_log() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

pub fn loopback_relay_config() -> media_relay::RelayConfig {
    init_log();
    media_relay::RelayConfig { udp_listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() }
}

pub fn both() -> BTreeSet<Kind> {
    [Kind::Audio, Kind::Video].into()
}

/// What one participant received from one publisher.
#[derive(Debug, Default, Clone)]
pub struct Got {
    pub audio: u64,
    pub video: u64,
    /// Whether the first video packet was the start of a keyframe.
    pub first_video_was_keyframe: Option<bool>,
    pub first_video_after: Option<Duration>,
    pub ssrcs: BTreeSet<u32>,
    /// Video packets newer than any before (retransmitted duplicates not counted).
    pub video_new: u64,
    highest_video_seq: Option<u16>,
}

#[derive(Default)]
struct Shared {
    got: Mutex<HashMap<String, Got>>,
    events: Mutex<Vec<PeerEvent>>,
    offers: AtomicU64,
    keyframes_sent: AtomicU64,
    /// Packets this client's tracks took to send, by kind.
    audio_sent: AtomicU64,
    video_sent: AtomicU64,
    /// Set to stop sending (the end of a measured window).
    stop_sending: AtomicBool,
    plis_received: AtomicU64,
    sending_video: AtomicBool,
}

struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    shared: Arc<Shared>,
    started: Instant,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let shared = Arc::clone(&self.shared);
        let started = self.started;
        tokio::spawn(async move {
            let kind = track.kind().await;
            // The relay names each forwarded track's stream after its publisher.
            let publisher = track.stream_id().await.to_string();
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => {
                        let mut got = shared.got.lock().unwrap();
                        let got = got.entry(publisher.clone()).or_default();
                        got.ssrcs.insert(packet.header.ssrc);
                        if kind == RtpCodecKind::Audio {
                            got.audio += 1;
                        } else {
                            if got.first_video_was_keyframe.is_none() {
                                got.first_video_was_keyframe = Some(vp8_starts_keyframe(&packet.payload));
                                got.first_video_after = Some(started.elapsed());
                            }
                            got.video += 1;
                            let seq = packet.header.sequence_number;
                            if got.highest_video_seq.is_none_or(|h| seq != h && seq.wrapping_sub(h) < 0x8000)
                            {
                                got.highest_video_seq = Some(seq);
                                got.video_new += 1;
                            }
                        }
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// How a client reaches the relay: in process, or over a node's control
/// channel with room tokens.
#[derive(Clone)]
pub enum Via {
    Direct(Relay),
    Control(ControlClient, Arc<TestSigner>),
}

impl From<&Relay> for Via {
    fn from(relay: &Relay) -> Via {
        Via::Direct(relay.clone())
    }
}

impl From<&Via> for Via {
    fn from(via: &Via) -> Via {
        via.clone()
    }
}

impl Via {
    async fn join(
        &self,
        room: &str,
        name: &str,
        publish: &BTreeSet<Kind>,
        events: mpsc::Sender<PeerEvent>,
    ) -> Result<(), SessionError> {
        match self {
            Via::Direct(relay) => {
                relay
                    .join(
                        Grant { room: room.into(), participant: name.into(), publish: publish.clone() },
                        events,
                    )
                    .await
            }
            Via::Control(control, signer) => {
                let kinds: Vec<&str> = publish.iter().map(|k| k.as_str()).collect();
                control.join(&signer.token(room, name, &kinds, "room", 300), events).await.map(|_| ())
            }
        }
    }

    async fn answer(&self, room: &str, name: &str, sdp: String) -> Result<(), SessionError> {
        match self {
            Via::Direct(relay) => relay.answer(&room.into(), &name.into(), sdp).await,
            Via::Control(control, _) => control.answer(&room.into(), &name.into(), sdp).await,
        }
    }
}

/// One participant.
pub struct Client {
    pub name: String,
    pub room: String,
    pub pc: Arc<dyn PeerConnection>,
    state: watch::Receiver<RTCPeerConnectionState>,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// How a client sends.
#[derive(Debug, Clone)]
pub struct Sending {
    /// Send a keyframe every this many frames on its own (besides answering PLI).
    pub keyframe_every: u32,
    /// Rewrite the relay's address in offers (to send through a proxy).
    pub relay_addr_rewrite: Option<(String, String)>,
    /// What to send, when not what the grant allows (to test the grant).
    pub sends: Option<BTreeSet<Kind>>,
    /// How often the client's ICE agent checks consent (RFC 7675 suggests
    /// 4-6 s); the webrtc crate's own default (2 s) when absent.
    pub consent_every: Option<Duration>,
}

impl Default for Sending {
    fn default() -> Self {
        Sending { keyframe_every: 1_000, relay_addr_rewrite: None, sends: None, consent_every: None }
    }
}

impl Client {
    pub async fn join(relay: impl Into<Via>, room: &str, name: &str, publish: BTreeSet<Kind>) -> Client {
        Client::join_with(relay, room, name, publish, Sending::default()).await
    }

    pub async fn join_with(
        relay: impl Into<Via>,
        room: &str,
        name: &str,
        publish: BTreeSet<Kind>,
        sending: Sending,
    ) -> Client {
        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media)
            .unwrap()
            .with(Slot::from(KeyframeTap::SLOT), KeyframeTap::default());
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let shared = Arc::new(Shared::default());
        let handler = Handler { state: state_tx, shared: Arc::clone(&shared), started: Instant::now() };
        let mut settings = SettingEngineBuilder::new();
        if let Some(every) = sending.consent_every {
            // Its own side as RFC 7675 has it: consent lost only after 30 s.
            let lost = Some(Duration::from_secs(30));
            settings = settings.with_ice_timeouts(lost, lost, Some(every));
        }
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_setting_engine(settings.build())
                .with_media_engine(media)
                .with_interceptor_registry(registry)
                .with_handler(Arc::new(handler))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build()
                .await
                .unwrap(),
        );
        let (events_tx, mut events) = mpsc::channel(64);
        let relay: Via = relay.into();
        relay.join(room, name, &publish, events_tx).await.unwrap();

        let seed = name.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let audio = track(name, "mic", RtpCodecKind::Audio, "audio/opus", 48_000, 2, seed | 1);
        let video = track(name, "cam", RtpCodecKind::Video, "video/VP8", 90_000, 0, seed & !1);
        let mut tasks = Vec::new();

        // Answer every offer the relay makes; keep every other event.
        let (relay2, room2, name2, pc2, shared2) =
            (relay.clone(), room.to_owned(), name.to_owned(), Arc::clone(&pc), Arc::clone(&shared));
        let (a2, v2) = (Arc::clone(&audio), Arc::clone(&video));
        let sends = sending.sends.clone().unwrap_or_else(|| publish.clone());
        let publish2 = sends.clone();
        tasks.push(tokio::spawn(async move {
            let mut tracks_added = false;
            while let Some(event) = events.recv().await {
                let PeerEvent::Offer { sdp } = &event else {
                    shared2.events.lock().unwrap().push(event);
                    continue;
                };
                let sdp = match &sending.relay_addr_rewrite {
                    Some((from, to)) => sdp.replace(from.as_str(), to.as_str()),
                    None => sdp.clone(),
                };
                pc2.set_remote_description(RTCSessionDescription::offer(sdp).unwrap()).await.unwrap();
                if !tracks_added {
                    // The relay's first offer has one receive-only section per
                    // granted kind; these tracks take them.
                    if publish2.contains(&Kind::Audio) {
                        pc2.add_track(Arc::clone(&a2) as Arc<dyn TrackLocal>).await.unwrap();
                    }
                    if publish2.contains(&Kind::Video) {
                        pc2.add_track(Arc::clone(&v2) as Arc<dyn TrackLocal>).await.unwrap();
                    }
                    tracks_added = true;
                }
                let answer = pc2.create_answer(None).await.unwrap();
                pc2.set_local_description(answer.clone()).await.unwrap();
                shared2.offers.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = relay2.answer(&room2, &name2, answer.sdp).await {
                    shared2.events.lock().unwrap().push(PeerEvent::Closed { reason: error.to_string() });
                }
            }
        }));

        if !sends.is_empty() {
            tasks.push(tokio::spawn(send_media(
                Arc::clone(&audio),
                Arc::clone(&video),
                sends,
                sending.keyframe_every,
                Arc::clone(&shared),
            )));
        }
        Client { name: name.into(), room: room.into(), pc, state, shared, tasks }
    }

    pub async fn connected(&mut self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if *self.state.borrow() == RTCPeerConnectionState::Connected {
                return;
            }
            tokio::select! {
                _ = self.state.changed() => {}
                _ = tokio::time::sleep_until(deadline) => panic!("{} did not connect", self.name),
            }
        }
    }

    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    pub fn got(&self, from: &str) -> Got {
        self.shared.got.lock().unwrap().get(from).cloned().unwrap_or_default()
    }

    pub fn events(&self) -> Vec<PeerEvent> {
        self.shared.events.lock().unwrap().clone()
    }

    pub fn offers_answered(&self) -> u64 {
        self.shared.offers.load(Ordering::Relaxed)
    }

    /// Audio and video packets this client has sent so far.
    pub fn sent(&self) -> (u64, u64) {
        (self.shared.audio_sent.load(Ordering::Relaxed), self.shared.video_sent.load(Ordering::Relaxed))
    }

    /// Stops sending media (RTCP and ICE go on).
    pub fn stop_sending(&self) {
        self.shared.stop_sending.store(true, Ordering::Relaxed);
    }

    pub fn plis_received(&self) -> u64 {
        self.shared.plis_received.load(Ordering::Relaxed)
    }

    pub async fn close(self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.pc.close().await;
    }
}

fn track(
    stream: &str,
    id: &str,
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
    ssrc: u32,
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream.to_owned(),
        id.to_owned(),
        format!("{stream} {id}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            ..Default::default()
        }],
    )))
}

/// 50 Opus packets and 30 one-packet VP8 frames a second; a keyframe when
/// asked (PLI) or every `keyframe_every` frames.
async fn send_media(
    audio: Arc<TrackLocalStaticRTP>,
    video: Arc<TrackLocalStaticRTP>,
    publish: BTreeSet<Kind>,
    keyframe_every: u32,
    shared: Arc<Shared>,
) {
    let want_keyframe = Arc::new(AtomicBool::new(true));
    let (v, w, s) = (Arc::clone(&video), Arc::clone(&want_keyframe), Arc::clone(&shared));
    let pli_watch = tokio::spawn(async move {
        loop {
            match v.poll().await {
                Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                    if packets.iter().any(|p| p.as_any().is::<PictureLossIndication>()) {
                        s.plis_received.fetch_add(1, Ordering::Relaxed);
                        w.store(true, Ordering::Relaxed);
                    }
                }
                // Not bound to a sender yet (or unbound): look again shortly.
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    let audio_ssrc = audio.ssrcs().await.first().copied().unwrap_or(1);
    let video_ssrc = video.ssrcs().await.first().copied().unwrap_or(2);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let (mut n, mut frame, mut aseq, mut vseq) = (0u32, 0u32, 0u16, 0u16);
    loop {
        tick.tick().await;
        if shared.stop_sending.load(Ordering::Relaxed) {
            break;
        }
        n += 1;
        if n % 2 == 0 && publish.contains(&Kind::Audio) {
            aseq = aseq.wrapping_add(1);
            let packet = rtp(111, aseq, n.wrapping_mul(480), audio_ssrc, true, vec![0xfc; 60]);
            if audio.write_rtp(packet).await.is_ok() {
                shared.audio_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        if n % 3 == 0 && publish.contains(&Kind::Video) {
            frame += 1;
            let key = want_keyframe.swap(false, Ordering::Relaxed) || frame % keyframe_every == 0;
            if key {
                shared.keyframes_sent.fetch_add(1, Ordering::Relaxed);
            }
            // VP8 payload descriptor (S=1, partition 0), then a payload
            // header whose P bit says key (0) or inter (1) frame.
            let mut payload = vec![0x10, if key { 0x00 } else { 0x01 }];
            payload.resize(600, 0x5a);
            vseq = vseq.wrapping_add(1);
            let packet = rtp(96, vseq, frame.wrapping_mul(3000), video_ssrc, true, payload);
            if video.write_rtp(packet).await.is_ok() {
                shared.video_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        if n > 100 * 600 {
            break; // Ten minutes at most: a bounded loop.
        }
    }
    pli_watch.abort();
}

/// Waits until `check` holds, polling; panics with `what` after `within`.
pub async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A UDP hop between one client and the relay that can drop everything for a
/// while: a network that goes away and comes back.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    socket: Arc<tokio::net::UdpSocket>,
    relay: std::net::SocketAddr,
    blocked: Arc<AtomicBool>,
    /// Percent of the relay's datagrams to the client that are dropped.
    loss_to_client: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(relay: std::net::SocketAddr) -> Proxy {
        let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let blocked = Arc::new(AtomicBool::new(false));
        let loss_to_client = Arc::new(AtomicU64::new(0));
        let (s, b, l) = (Arc::clone(&socket), Arc::clone(&blocked), Arc::clone(&loss_to_client));
        let task = tokio::spawn(async move {
            let mut client = None;
            let mut buf = vec![0u8; 65_536];
            let mut count = 0u64;
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                if b.load(Ordering::Relaxed) {
                    continue;
                }
                if from == relay {
                    // Evenly spread loss: drop `loss` of every 100 datagrams.
                    count += 1;
                    let loss = l.load(Ordering::Relaxed);
                    if loss > 0 && (count * 37) % 100 < loss {
                        continue;
                    }
                    if let Some(client) = client {
                        let _ = s.send_to(&buf[..n], client).await;
                    }
                } else {
                    client = Some(from);
                    let _ = s.send_to(&buf[..n], relay).await;
                }
            }
        });
        Proxy { addr, socket, relay, blocked, loss_to_client, task }
    }

    /// Sending options that make a client reach the relay through this hop.
    pub fn sending(&self, relay: std::net::SocketAddr) -> Sending {
        Sending {
            relay_addr_rewrite: Some((
                format!("{} {}", relay.ip(), relay.port()),
                format!("{} {}", self.addr.ip(), self.addr.port()),
            )),
            ..Sending::default()
        }
    }

    /// Sends `datagram` to the relay from the hop's address, the client's
    /// address as the relay sees it: what anyone could forge.
    pub async fn send_to_relay(&self, datagram: &[u8]) {
        let _ = self.socket.send_to(datagram, self.relay).await;
    }

    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::Relaxed);
    }

    /// Drops `percent` of what the relay sends to the client (a poor downlink).
    pub fn set_loss_to_client(&self, percent: u64) {
        self.loss_to_client.store(percent, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
