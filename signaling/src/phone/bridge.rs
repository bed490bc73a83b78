//! The caller's seat in the consultation's room: a WebRTC peer connection
//! (the `webrtc` crate, its own ICE, DTLS and SRTP) that answers the relay's
//! offers like a kiosk does, sends the caller's voice as Opus, and decodes
//! every other participant's Opus (lawyer, interpreter) into a queue of its
//! own, so that the phone hears them mixed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::watch;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCPeerConnectionState,
    RTCSessionDescription, register_default_interceptors,
};

use super::audio::{self, FRAME, JitterBuffer, Samples};

/// Opus RTP ticks (48 kHz) per 20 ms frame.
const OPUS_TICKS: u32 = 960;
/// A voice is mixed once 60 ms of it are queued, and never more than 400 ms are kept.
const VOICE_PRIME: usize = 3 * FRAME;
const VOICE_LIMIT: usize = 20 * FRAME;

/// The room's other voices, by publisher.
type Voices = Arc<Mutex<HashMap<String, Samples>>>;

struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    voices: Voices,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if track.kind().await != RtpCodecKind::Audio {
            return;
        }
        let voices = Arc::clone(&self.voices);
        tokio::spawn(async move {
            // The relay names each forwarded track's stream after its publisher.
            let publisher = track.stream_id().await.to_string();
            let Ok(mut decoder) = ropus::Decoder::new(audio::RATE, ropus::Channels::Mono) else { return };
            let mut jitter: JitterBuffer<Bytes> = JitterBuffer::new(2);
            let mut pcm = [0i16; 960];
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => {
                        jitter.push(packet.header.sequence_number, packet.payload);
                        while let Some(payload) = jitter.pop() {
                            let Ok(n) = decoder.decode(&payload, &mut pcm, ropus::DecodeMode::Normal) else {
                                continue;
                            };
                            let mut voices = voices.lock().unwrap_or_else(|p| p.into_inner());
                            voices
                                .entry(publisher.clone())
                                .or_insert_with(|| Samples::new(VOICE_PRIME, VOICE_LIMIT))
                                .extend(&pcm[..n.min(pcm.len())]);
                        }
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
            voices.lock().unwrap_or_else(|p| p.into_inner()).remove(&publisher);
        });
    }
}

/// One caller's peer connection to the room.
pub struct Bridge {
    pc: Arc<dyn PeerConnection>,
    track: Arc<TrackLocalStaticRTP>,
    track_added: bool,
    voices: Voices,
    encoder: ropus::Encoder,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    pub state: watch::Receiver<RTCPeerConnectionState>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").field("state", &*self.state.borrow()).finish_non_exhaustive()
    }
}

impl Bridge {
    /// A peer connection whose UDP sockets are on `ip`.
    pub async fn new(participant: &str, ip: std::net::IpAddr) -> Result<Bridge, String> {
        let mut media = MediaEngine::default();
        media.register_default_codecs().map_err(|e| e.to_string())?;
        let registry = register_default_interceptors(rtc::interceptor::Registry::new(), &mut media)
            .map_err(|e| e.to_string())?;
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let voices: Voices = Arc::default();
        let handler = Handler { state: state_tx, voices: Arc::clone(&voices) };
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_media_engine(media)
                .with_interceptor_registry(registry)
                .with_handler(Arc::new(handler))
                .with_udp_addrs(vec![format!("{}", std::net::SocketAddr::new(ip, 0))])
                .build()
                .await
                .map_err(|e| e.to_string())?,
        );
        let ssrc: u32 = rand::random();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            participant.to_owned(),
            "phone".to_owned(),
            format!("{participant} phone"),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                codec: RTCRtpCodec {
                    mime_type: "audio/opus".to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
                ..Default::default()
            }],
        )));
        let encoder = super::rtp::opus_encoder()?;
        Ok(Bridge {
            pc,
            track,
            track_added: false,
            voices,
            encoder,
            ssrc,
            seq: rand::random(),
            timestamp: rand::random(),
            state,
        })
    }

    /// Answers one of the relay's offers (the first takes our audio track).
    pub async fn answer(&mut self, sdp: String) -> Result<String, String> {
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| e.to_string())?;
        self.pc.set_remote_description(offer).await.map_err(|e| e.to_string())?;
        if !self.track_added {
            self.pc
                .add_track(Arc::clone(&self.track) as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| e.to_string())?;
            self.track_added = true;
        }
        let answer = self.pc.create_answer(None).await.map_err(|e| e.to_string())?;
        self.pc.set_local_description(answer.clone()).await.map_err(|e| e.to_string())?;
        Ok(answer.sdp)
    }

    /// Sends 20 ms of the caller's voice into the room (once the media
    /// connection is up: before that there are no keys to encrypt with).
    pub async fn send(&mut self, frame: &[i16; FRAME]) {
        if *self.state.borrow() != RTCPeerConnectionState::Connected {
            return;
        }
        let mut packet = [0u8; 400];
        let Ok(n) = self.encoder.encode(frame, &mut packet) else { return };
        let rtp = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 111,
                sequence_number: self.seq,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(&packet[..n]),
        };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(OPUS_TICKS);
        if self.track_added {
            let _ = self.track.write_rtp(rtp).await;
        }
    }

    /// The next 20 ms of everyone else in the room, mixed; `false` when
    /// nobody is speaking or sending.
    pub fn mix(&self, frame: &mut [i16; FRAME]) -> bool {
        let mut voices = self.voices.lock().unwrap_or_else(|p| p.into_inner());
        let mut any = false;
        for voice in voices.values_mut() {
            any |= voice.mix_into(frame);
        }
        any
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}
