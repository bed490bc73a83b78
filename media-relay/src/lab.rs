//! A relay engine in memory, with participants in the same process: the
//! forwarding path without sockets, for the forwarding benchmark
//! (`benches/forward.rs`) and the tests that check it.
//!
//! Every participant is a real WebRTC peer (the `rtc` core, with ICE,
//! DTLS-SRTP, NACK and reports, as in `relay-load`), and the engine is the one
//! a relay runs; only the sockets are missing. Datagrams go between them
//! through [`Lab`], which gives each participant an address of its own. Once
//! [`Lab::new`] has every participant connected and hearing every other,
//! [`Lab::media`] makes encrypted media, [`Lab::forward`] hands it to the
//! engine and takes what the engine sends (the part to time), and
//! [`Lab::deliver`] gives that to the participants and lets them answer
//! (receiver reports, transport-wide feedback), as a network would.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use rtc::interceptor::{Registry, Slot, TwccSenderBuilder};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Command, Engine, Limits, Transmit};
use crate::relay::Counters;
use crate::room::{Kind, Policy};
use crate::routes::Router;
use crate::session::{Answered, Call, Grant, PeerEvent, SessionError};
use crate::{ParticipantId, RoomId};

/// The address the engine is given as its own (nothing is bound to it).
const RELAY: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3478);
/// Payload bytes of an audio packet (Opus at about 32 kbit/s) and of a video packet.
const AUDIO_BYTES: usize = 80;
const VIDEO_BYTES: usize = 1_100;
/// Datagrams the engine reads before it drains its peer connections, as the
/// relay does per read burst.
const BURST: usize = 32;
/// How long [`Lab::new`] waits for every participant to hear every other.
const SETTLE_LIMIT: Duration = Duration::from_secs(20);

/// Encrypted datagrams from the participants, for [`Lab::forward`].
#[derive(Debug, Default)]
pub struct Input {
    datagrams: Vec<(SocketAddr, BytesMut)>,
}

impl Input {
    /// Datagrams in it.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }
}

/// What the engine sent, for [`Lab::deliver`].
#[derive(Debug, Default)]
pub struct Output {
    transmits: Vec<Transmit>,
    /// Of them, media packets forwarded.
    pub forwarded: u64,
}

impl Output {
    /// Datagrams in it (forwarded media, and whatever else the engine sent).
    pub fn len(&self) -> usize {
        self.transmits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty()
    }
}

/// One participant: a WebRTC peer of its own, at an address of its own.
struct Participant {
    room: RoomId,
    name: ParticipantId,
    addr: SocketAddr,
    pc: RTCPeerConnection,
    events: mpsc::Receiver<PeerEvent>,
    /// Its audio and video senders, once it has answered.
    senders: Option<(RTCRtpSenderId, RTCRtpSenderId)>,
    ssrcs: (u32, u32),
    sequence: (u16, u16),
    frame: u32,
    keyframe_wanted: bool,
    connected: bool,
    /// Media packets it has received, and the tracks they came on.
    received: u64,
    tracks: HashSet<String>,
    /// Sender reports it was sent, by the SSRC they report on.
    sender_reports: HashMap<u32, u64>,
    /// RTCP it was sent, by the packet type and count (format) field of the
    /// first packet of each compound packet: 201 and 0 a receiver report,
    /// 205 and 1 a NACK, 205 and 15 transport-wide feedback.
    rtcp: HashMap<(u8, u8), u64>,
}

/// An engine and its participants, in memory.
pub struct Lab {
    transport_cc: bool,
    engine: Engine,
    counters: Arc<Counters>,
    participants: Vec<Participant>,
    by_addr: HashMap<SocketAddr, usize>,
    /// When the engine last gathered statistics (and sent sender reports).
    gathered: Instant,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("participants", &self.participants.len()).finish_non_exhaustive()
    }
}

impl Lab {
    /// An engine with `rooms` rooms of `per_room` participants each, every
    /// one publishing audio and video: returns once each participant
    /// receives every other's audio and video.
    pub fn new(rooms: usize, per_room: usize) -> anyhow::Result<Lab> {
        Lab::build(rooms, per_room, false)
    }

    /// As [`Lab::new`]; with `transport_cc`, the participants number their
    /// packets for transport-wide feedback, as browsers do.
    fn build(rooms: usize, per_room: usize, transport_cc: bool) -> anyhow::Result<Lab> {
        let counters = Arc::new(Counters::default());
        let (handoff, _) = mpsc::channel(1);
        let policy = Policy { max_participants: per_room.max(2), ..Policy::default() };
        let limits =
            Limits { max_rooms: rooms, open_rooms: Arc::default(), consent_timeout: Duration::from_secs(30) };
        let engine = Engine::new(
            0,
            RELAY,
            Arc::new(Router::default()),
            vec![handoff],
            RELAY,
            limits,
            policy,
            Arc::clone(&counters),
        );
        let mut lab = Lab {
            transport_cc,
            engine,
            counters,
            participants: Vec::new(),
            by_addr: HashMap::new(),
            gathered: Instant::now(),
        };
        for r in 0..rooms {
            let room = RoomId::from(format!("lab-{r}"));
            lab.call(Call::OpenRoom { room: room.clone() })?;
            for p in 0..per_room {
                lab.join(&room, ParticipantId::from(format!("p{r}-{p}")))?;
            }
        }
        let started = Instant::now();
        let tracks = 2 * per_room.saturating_sub(1);
        let mut last_media = started;
        loop {
            lab.step()?;
            if lab.participants.iter().all(|p| p.connected && p.tracks.len() >= tracks) {
                break;
            }
            if started.elapsed() > SETTLE_LIMIT {
                let waiting =
                    lab.participants.iter().filter(|p| !p.connected || p.tracks.len() < tracks).count();
                bail!(
                    "{waiting} participants still not connected or not hearing everyone after {SETTLE_LIMIT:?}"
                );
            }
            // Keyframes, so that video starts, every 20 ms until everyone hears everyone.
            if last_media.elapsed() >= Duration::from_millis(20) {
                last_media = Instant::now();
                for p in &mut lab.participants {
                    p.keyframe_wanted = true;
                }
                let input = lab.media(1);
                let output = lab.forward(input);
                lab.deliver(output);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(lab)
    }

    /// Media packets the participants have received since they joined.
    pub fn received(&self) -> u64 {
        self.participants.iter().map(|p| p.received).sum()
    }

    /// `rounds` of media from every connected participant: each round one
    /// audio packet and two video packets (a keyframe when one was asked
    /// for), encrypted, as they would leave for the relay.
    pub fn media(&mut self, rounds: usize) -> Input {
        let now = Instant::now();
        let mut input = Input::default();
        for p in &mut self.participants {
            let Some((audio, video)) = p.senders.filter(|_| p.connected) else { continue };
            for _ in 0..rounds {
                p.sequence.0 = p.sequence.0.wrapping_add(1);
                p.frame = p.frame.wrapping_add(1);
                let packet = rtp(
                    111,
                    p.sequence.0,
                    p.frame.wrapping_mul(960),
                    p.ssrcs.0,
                    true,
                    vec![0xfc; AUDIO_BYTES],
                );
                if let Some(mut sender) = p.pc.rtp_sender(audio) {
                    let _ = sender.write_rtp(now, packet);
                }
                let key = std::mem::take(&mut p.keyframe_wanted);
                for part in 0..2u8 {
                    // VP8: the start of a partition on the first packet; a
                    // keyframe when its payload header's P bit is clear.
                    let mut payload =
                        vec![if part == 0 { 0x10 } else { 0x00 }, if key { 0x00 } else { 0x01 }];
                    payload.resize(VIDEO_BYTES, 0x5a);
                    p.sequence.1 = p.sequence.1.wrapping_add(1);
                    let packet =
                        rtp(96, p.sequence.1, p.frame.wrapping_mul(3_000), p.ssrcs.1, part == 1, payload);
                    if let Some(mut sender) = p.pc.rtp_sender(video) {
                        let _ = sender.write_rtp(now, packet);
                    }
                }
            }
            while let Some(out) = p.pc.poll_write() {
                input.datagrams.push((p.addr, out.message));
            }
        }
        input
    }

    /// The engine takes `input`, a burst at a time as the relay reads it,
    /// and drains its peer connections after each: what it sent.
    pub fn forward(&mut self, input: Input) -> Output {
        let before = self.counters.packets_forwarded.load(Ordering::Relaxed);
        let mut transmits = Vec::new();
        for burst in input.datagrams.chunks(BURST) {
            for (from, data) in burst {
                self.engine.received(data, *from);
            }
            self.engine.flush();
            transmits.append(&mut self.engine.transmits);
        }
        let forwarded = self.counters.packets_forwarded.load(Ordering::Relaxed) - before;
        Output { transmits, forwarded }
    }

    /// The participants take `output` and answer (reports, feedback, ICE
    /// checks), and the engine takes their answers; the timers that are due
    /// run on both sides.
    pub fn deliver(&mut self, output: Output) {
        self.hand_to_participants(output.transmits);
        self.engine.timeouts();
        // Once a second, as a relay's engine does.
        if self.gathered.elapsed() >= Duration::from_secs(1) {
            self.gathered = Instant::now();
            self.engine.gather_stats();
        }
        let now = Instant::now();
        for index in 0..self.participants.len() {
            let p = &mut self.participants[index];
            if p.pc.poll_timeout().is_some_and(|at| at <= now) {
                let _ = p.pc.handle_timeout(now);
            }
            let addr = p.addr;
            let mut answers = Vec::new();
            while let Some(out) = p.pc.poll_write() {
                answers.push(out.message);
            }
            for data in answers {
                self.engine.received(&data, addr);
            }
        }
        self.engine.flush();
        let transmits = std::mem::take(&mut self.engine.transmits);
        self.hand_to_participants(transmits);
    }

    // ---- setting up ----------------------------------------------------------

    fn call(&mut self, call: Call) -> anyhow::Result<Answered> {
        let (reply, answered) = oneshot::channel();
        self.engine.command(Command::Call { call, new_rooms: true, reply });
        reply_of(answered)
    }

    fn join(&mut self, room: &RoomId, name: ParticipantId) -> anyhow::Result<()> {
        let index = self.participants.len();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 10_000 + index as u16);
        let (events_tx, events) = mpsc::channel(64);
        let (reply, joined) = oneshot::channel();
        let grant = Grant {
            room: room.clone(),
            participant: name.clone(),
            publish: [Kind::Audio, Kind::Video].into(),
        };
        self.engine.command(Command::Join { grant, events: events_tx, reply });
        reply_of(joined).with_context(|| format!("{name} joins {room}"))?;
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        let mut registry = register_default_interceptors(Registry::new(), &mut media)?;
        if self.transport_cc {
            registry = registry.with(Slot::TwccSender, TwccSenderBuilder::new().build());
        }
        let pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(Instant::now())?;
        let ssrc = 0x1000_0000 + 2 * index as u32;
        self.by_addr.insert(addr, index);
        self.participants.push(Participant {
            room: room.clone(),
            name,
            addr,
            pc,
            events,
            senders: None,
            ssrcs: (ssrc, ssrc + 1),
            sequence: (0, 0),
            frame: 0,
            keyframe_wanted: true,
            connected: false,
            received: 0,
            tracks: HashSet::new(),
            sender_reports: HashMap::new(),
            rtcp: HashMap::new(),
        });
        Ok(())
    }

    /// One turn of signaling and of the media connections' setup.
    fn step(&mut self) -> anyhow::Result<()> {
        self.engine.flush();
        let transmits = std::mem::take(&mut self.engine.transmits);
        self.hand_to_participants(transmits);
        let mut answers = Vec::new();
        for p in &mut self.participants {
            while let Ok(event) = p.events.try_recv() {
                match event {
                    PeerEvent::Offer { sdp } => {
                        let now = Instant::now();
                        p.pc.set_remote_description(now, RTCSessionDescription::offer(sdp)?)?;
                        if p.senders.is_none() {
                            let candidate =
                                crate::probe::host_candidate(p.addr).map_err(anyhow::Error::msg)?;
                            p.pc.add_local_candidate(candidate)?;
                            let audio =
                                p.pc.add_track(track(&p.name, "mic", RtpCodecKind::Audio, p.ssrcs.0))?;
                            let video =
                                p.pc.add_track(track(&p.name, "cam", RtpCodecKind::Video, p.ssrcs.1))?;
                            p.senders = Some((audio, video));
                        }
                        let answer = p.pc.create_answer(None)?;
                        p.pc.set_local_description(now, answer.clone())?;
                        answers.push(Call::Answer {
                            room: p.room.clone(),
                            participant: p.name.clone(),
                            sdp: answer.sdp,
                        });
                    }
                    PeerEvent::Closed { reason } => bail!("{} closed by the engine: {reason}", p.name),
                    _ => {}
                }
            }
        }
        for answer in answers {
            self.call(answer)?;
        }
        self.deliver(Output::default());
        Ok(())
    }

    fn hand_to_participants(&mut self, transmits: Vec<Transmit>) {
        let now = Instant::now();
        for Transmit { to, data, .. } in transmits {
            let Some(&index) = self.by_addr.get(&to) else { continue };
            let p = &mut self.participants[index];
            // An RTCP packet's header (and its sender's SSRC) is not encrypted.
            if crate::packet::is_rtcp(&data) {
                *p.rtcp.entry((data[1], data[0] & 0x1f)).or_default() += 1;
                if data[1] == 200 {
                    let ssrc = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                    *p.sender_reports.entry(ssrc).or_default() += 1;
                }
            }
            let _ = p.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: p.addr,
                    peer_addr: RELAY,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(&data[..]),
            });
        }
        for p in &mut self.participants {
            while let Some(event) = p.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                    p.connected = state == RTCPeerConnectionState::Connected;
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = p.pc.poll_read() {
                match message {
                    RTCMessage::RtpPacket(track, _) => {
                        p.received += 1;
                        p.tracks.insert(track);
                    }
                    RTCMessage::RtcpPacket(_, packets)
                        if packets.iter().any(|packet| packet.as_any().is::<PictureLossIndication>()) =>
                    {
                        p.keyframe_wanted = true;
                    }
                    _ => {}
                }
            }
        }
    }
}

fn reply_of<T>(mut reply: oneshot::Receiver<Result<T, SessionError>>) -> anyhow::Result<T> {
    match reply.try_recv() {
        Ok(result) => Ok(result?),
        Err(_) => bail!("the engine did not answer"),
    }
}

/// A synthetic participant's track: Opus or VP8, with the given SSRC (also `relay-load`'s).
pub fn track(stream: &str, id: &str, kind: RtpCodecKind, ssrc: u32) -> MediaStreamTrack {
    let (mime_type, clock_rate, channels) = match kind {
        RtpCodecKind::Audio => ("audio/opus", 48_000, 2),
        _ => ("video/VP8", 90_000, 0),
    };
    let codec = RTCRtpCodec {
        mime_type: mime_type.into(),
        clock_rate,
        channels,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    };
    MediaStreamTrack::new(
        stream.into(),
        id.into(),
        format!("{stream} {id}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec,
            ..Default::default()
        }],
    )
}

/// An RTP packet as a synthetic participant sends it (also `relay-load`'s).
pub fn rtp(
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
) -> rtc::rtp::Packet {
    rtc::rtp::Packet {
        header: rtc::rtp::Header {
            version: 2,
            payload_type,
            sequence_number: seq,
            timestamp,
            ssrc,
            marker,
            ..Default::default()
        },
        payload: Bytes::from(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rooms of three: every packet a participant sends reaches the two
    /// others, and nothing reaches another room.
    #[test]
    fn every_packet_reaches_the_others_in_its_room_and_no_other() {
        let mut lab = Lab::new(2, 3).unwrap();
        let before = lab.received();
        let input = lab.media(10);
        assert!(input.len() >= 6 * 10 * 3, "{} datagrams", input.len());
        let output = lab.forward(input);
        // 6 participants x 10 rounds x 3 packets, each to 2 others.
        assert_eq!(output.forwarded, 6 * 10 * 3 * 2);
        lab.deliver(output);
        assert_eq!(lab.received() - before, 6 * 10 * 3 * 2);
    }

    /// Media, forwarded and delivered, for `time`: how many packets were forwarded.
    fn run_for(lab: &mut Lab, time: Duration) -> u64 {
        let until = Instant::now() + time;
        let mut forwarded = 0;
        while Instant::now() < until {
            let input = lab.media(1);
            let output = lab.forward(input);
            forwarded += output.forwarded;
            lab.deliver(output);
            std::thread::sleep(Duration::from_millis(10));
        }
        forwarded
    }

    #[test]
    fn the_engine_sends_what_it_forwards_itself_with_keys_that_check_out_and_reports_it() {
        let mut lab = Lab::new(1, 2).unwrap();
        run_for(&mut lab, Duration::from_millis(2_500));
        assert_eq!(lab.engine.fast_paths(), (2, 2, 2), "both on the fast path, the keys checked");
        // Each participant had sender reports for the two tracks the relay
        // sends it (the peer connection has seen none of their packets, so
        // they are the engine's), and none on its own.
        for p in &lab.participants {
            let mut reported: Vec<u32> = p.sender_reports.keys().copied().collect();
            reported.sort();
            assert_eq!(reported.len(), 2, "{}: {:?}", p.name, p.sender_reports);
            assert!(!reported.contains(&p.ssrcs.0) && !reported.contains(&p.ssrcs.1), "{}", p.name);
            assert!(p.sender_reports.values().all(|&n| n >= 2), "{}: {:?}", p.name, p.sender_reports);
        }
    }

    /// The relay decrypts what the participants send itself, and still
    /// reports on it as a receiver: receiver reports (RFC 3550), and
    /// transport-wide feedback for their congestion control.
    #[test]
    fn the_engine_receives_media_itself_and_reports_on_it() {
        let mut lab = Lab::build(1, 2, true).unwrap();
        let before = lab.received();
        let forwarded = run_for(&mut lab, Duration::from_millis(2_500));
        assert_eq!(lab.received() - before, forwarded);
        let (received, total) = lab.engine.received_itself();
        assert!(received * 10 >= total * 9, "the engine decrypted {received} of {total} packets itself");
        for p in &lab.participants {
            let count = |pt: u8, fmt: u8| p.rtcp.get(&(pt, fmt)).copied().unwrap_or(0);
            assert!(count(201, 1) + count(201, 2) >= 2, "{}: receiver reports {:?}", p.name, p.rtcp);
            assert!(count(205, 15) >= 10, "{}: transport-wide feedback {:?}", p.name, p.rtcp);
        }
        // Signaling's statistics count what the engine received itself.
        lab.engine.gather_stats();
        let (_, total) = lab.engine.received_itself();
        let stats = lab.engine.participant_stats();
        assert_eq!(stats.iter().map(|(_, received, _)| received).sum::<u64>(), total, "{stats:?}");
        assert!(stats.iter().all(|(_, _, jitter_s)| (0.0..0.1).contains(jitter_s)), "{stats:?}");
    }

    /// What the relay decrypts itself is refused as the peer connection would
    /// refuse it: a packet sent again by someone replaying it is dropped, and
    /// a damaged one is forwarded to nobody, without the relay giving up its
    /// own keys.
    #[test]
    fn a_replayed_or_damaged_packet_goes_nowhere() {
        let mut lab = Lab::new(1, 2).unwrap();
        run_for(&mut lab, Duration::from_millis(300));
        let (before, _) = lab.engine.received_itself();
        let publisher = lab.participants[0].addr;
        let mut input = lab.media(1);
        let is_rtp = |d: &BytesMut| (128..=191).contains(&d[0]) && !crate::packet::is_rtcp(d);
        let sent = input.datagrams.iter().filter(|(_, d)| is_rtp(d)).count();
        assert_eq!(sent, 6, "an audio and two video packets each");
        // Every packet of the first participant twice: the copies are replays.
        let copies: Vec<(SocketAddr, BytesMut)> =
            input.datagrams.iter().filter(|(from, d)| *from == publisher && is_rtp(d)).cloned().collect();
        input.datagrams.extend(copies);
        // The second participant's video packet damaged on the way (its authentication tag fails).
        let damaged =
            input.datagrams.iter().position(|(from, d)| *from != publisher && d.len() > 500).unwrap();
        let data = &mut input.datagrams[damaged].1;
        let middle = data.len() / 2;
        data[middle] ^= 0xff;
        let output = lab.forward(input);
        assert_eq!(output.forwarded, sent as u64 - 1, "each packet once; the damaged one to nobody");
        let (after, _) = lab.engine.received_itself();
        assert_eq!(after - before, sent as u64 - 1, "all but the damaged one decrypted by the engine");
        assert_eq!(lab.counters.forwarding_fallbacks.load(Ordering::Relaxed), 0);
        let (sending, _, receiving) = lab.engine.fast_paths();
        assert_eq!((sending, receiving), (2, 2), "the keys are still the engine's");
        lab.deliver(output);
    }

    /// A video packet lost on its way to the relay: the relay asks its
    /// publisher for it (NACK), and forwards it when it comes again.
    #[test]
    fn a_video_packet_lost_on_the_way_in_is_asked_for_and_forwarded() {
        let mut lab = Lab::new(1, 2).unwrap();
        let before = lab.received();
        let publisher = lab.participants[0].addr;
        let mut input = lab.media(1);
        let lost = input.datagrams.iter().position(|(from, d)| *from == publisher && d.len() > 500).unwrap();
        input.datagrams.remove(lost);
        let output = lab.forward(input);
        lab.deliver(output);
        let mut rounds = 1;
        let until = Instant::now() + Duration::from_millis(600);
        while Instant::now() < until {
            let input = lab.media(1);
            let output = lab.forward(input);
            lab.deliver(output);
            rounds += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        let publisher = &lab.participants[0];
        assert!(publisher.rtcp.get(&(205, 1)).is_some_and(|&n| n >= 1), "NACKs: {:?}", publisher.rtcp);
        // Two participants, three packets a round each, each to the other.
        assert_eq!(lab.received() - before, 6 * rounds, "the lost one came again");
    }

    #[test]
    fn a_video_packet_lost_on_the_way_out_is_sent_again_when_its_receiver_asks() {
        let mut lab = Lab::new(1, 2).unwrap();
        let before = lab.received();
        let input = lab.media(1);
        let mut output = lab.forward(input);
        let mut forwarded = output.forwarded;
        // The first video packet (the long ones) is lost on the way.
        let lost = output.transmits.iter().position(|t| t.data.len() > 500).unwrap();
        output.transmits.remove(lost);
        lab.deliver(output);
        forwarded += run_for(&mut lab, Duration::from_millis(600));
        assert_eq!(lab.received() - before, forwarded, "the lost one came again");
    }
}
