//! The phone side's media: plain RTP over UDP with the codec agreed in SDP,
//! RFC 4733 telephone-events for the keypad, and the numbers the phone leg
//! reports (packets, loss, interarrival jitter as RFC 3550 computes it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rtc::shared::marshal::{Marshal, Unmarshal};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::audio::{self, FRAME, JitterBuffer};
use super::sdp::{Agreed, Codec};

/// The largest RTP datagram read from a phone.
const MAX_DATAGRAM: usize = 1_500;
/// Packets the jitter buffer holds back (3 × 20 ms).
const JITTER_DEPTH: usize = 3;

/// What the phone leg counted, for `/metrics` and the call's log line.
#[derive(Debug, Default)]
pub struct LegStats {
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub lost: AtomicU64,
    pub late: AtomicU64,
    /// RFC 3550 interarrival jitter, in microseconds.
    pub jitter_us: AtomicU64,
    /// Datagrams from anywhere but the peer, or not RTP: dropped.
    pub stray: AtomicU64,
}

/// A key pressed on the caller's phone.
pub fn dtmf_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Decodes what the phone sends into 8 kHz samples.
pub enum Decoder {
    G711(Codec),
    Opus(Box<ropus::Decoder>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decoder::G711(codec) => codec.name(),
            Decoder::Opus(_) => "opus",
        })
    }
}

impl Decoder {
    pub fn new(codec: Codec) -> Result<Decoder, String> {
        match codec {
            Codec::Pcmu | Codec::Pcma => Ok(Decoder::G711(codec)),
            Codec::Opus => ropus::Decoder::new(audio::RATE, ropus::Channels::Mono)
                .map(|d| Decoder::Opus(Box::new(d)))
                .map_err(|e| format!("opus decoder: {e:?}")),
        }
    }

    /// Appends the samples of one payload to `out`.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Decoder::G711(Codec::Pcma) => out.extend(payload.iter().map(|&b| audio::alaw_decode(b))),
            Decoder::G711(_) => out.extend(payload.iter().map(|&b| audio::ulaw_decode(b))),
            Decoder::Opus(decoder) => {
                // 120 ms at 8 kHz: the longest an Opus packet holds.
                let mut pcm = [0i16; 960];
                if let Ok(n) = decoder.decode(payload, &mut pcm, ropus::DecodeMode::Normal) {
                    out.extend_from_slice(&pcm[..n.min(pcm.len())]);
                }
            }
        }
    }
}

/// Encodes 20 ms frames of 8 kHz samples for the phone.
pub enum Encoder {
    G711(Codec),
    Opus(Box<ropus::Encoder>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoder::G711(codec) => codec.name(),
            Encoder::Opus(_) => "opus",
        })
    }
}

impl Encoder {
    pub fn new(codec: Codec) -> Result<Encoder, String> {
        match codec {
            Codec::Pcmu | Codec::Pcma => Ok(Encoder::G711(codec)),
            Codec::Opus => opus_encoder().map(|e| Encoder::Opus(Box::new(e))),
        }
    }

    pub fn encode(&mut self, frame: &[i16; FRAME]) -> Bytes {
        match self {
            Encoder::G711(Codec::Pcma) => frame.iter().map(|&s| audio::alaw_encode(s)).collect(),
            Encoder::G711(_) => frame.iter().map(|&s| audio::ulaw_encode(s)).collect(),
            Encoder::Opus(encoder) => {
                let mut packet = [0u8; 400];
                match encoder.encode(frame, &mut packet) {
                    Ok(n) => Bytes::copy_from_slice(&packet[..n]),
                    Err(_) => Bytes::new(),
                }
            }
        }
    }
}

/// An Opus encoder for 20 ms frames of 8 kHz speech (the phone leg's voice
/// into the room, and Opus towards a phone that offered it).
pub fn opus_encoder() -> Result<ropus::Encoder, String> {
    ropus::Encoder::builder(audio::RATE, ropus::Channels::Mono, ropus::Application::Voip)
        .build()
        .map_err(|e| format!("opus encoder: {e:?}"))
}

/// What comes in from the phone, in order.
#[derive(Debug)]
pub enum Incoming {
    /// 20 ms (or whatever the peer's packet held) of the caller's voice, 8 kHz.
    Voice(Vec<i16>),
    /// A key, once per press.
    Digit(char),
}

/// One call's RTP: a socket, the agreed codec, the sender's state.
#[derive(Debug)]
pub struct Leg {
    socket: Arc<UdpSocket>,
    agreed: Agreed,
    /// What the reader takes packets by (a re-INVITE changes it).
    agreed_now: tokio::sync::watch::Sender<Agreed>,
    encoder: Encoder,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    pub stats: Arc<LegStats>,
}

impl Leg {
    /// Binds the call's RTP socket on `ip`, on a free port of `[first,
    /// last]` (tried from a random one on), or any port when both are 0.
    pub async fn bind(ip: std::net::IpAddr, [first, last]: [u16; 2]) -> std::io::Result<Arc<UdpSocket>> {
        if first == 0 {
            return Ok(Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?));
        }
        let count = u32::from(last - first) + 1;
        let start = rand::random::<u32>() % count;
        for i in 0..count {
            let port = first + ((start + i) % count) as u16;
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(ip, port)).await {
                return Ok(Arc::new(socket));
            }
        }
        Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, "every port of phone.rtp_ports is taken"))
    }

    pub fn new(socket: Arc<UdpSocket>, agreed: Agreed) -> Result<Leg, String> {
        let encoder = Encoder::new(agreed.codec)?;
        let (agreed_now, _) = tokio::sync::watch::channel(agreed.clone());
        Ok(Leg {
            socket,
            agreed_now,
            agreed,
            encoder,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            stats: Arc::default(),
        })
    }

    /// The peer moved (a re-INVITE): send there, in the codec agreed now.
    pub fn update(&mut self, agreed: Agreed) -> Result<(), String> {
        if agreed.codec != self.agreed.codec {
            self.encoder = Encoder::new(agreed.codec)?;
        }
        self.agreed_now.send_replace(agreed.clone());
        self.agreed = agreed;
        Ok(())
    }

    pub fn agreed(&self) -> &Agreed {
        &self.agreed
    }

    /// Sends one 20 ms frame (nothing while the peer holds the call).
    pub async fn send(&mut self, frame: &[i16; FRAME]) {
        let payload = self.encoder.encode(frame);
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(self.agreed.codec.ticks_per_frame());
        if self.agreed.on_hold || payload.is_empty() {
            return;
        }
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: self.agreed.payload_type,
                sequence_number: self.seq,
                timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload,
        };
        self.seq = self.seq.wrapping_add(1);
        let Ok(bytes) = packet.marshal() else { return };
        if self.socket.send_to(&bytes, self.agreed.remote).await.is_ok() {
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reads the phone's RTP until the socket fails or `incoming` closes:
    /// voice through the jitter buffer (one payload handed on per packet
    /// received, in order), keys as they are pressed. Only datagrams from
    /// the peer's address are taken; a re-INVITE's new address and codec
    /// are followed, and a new stream (another SSRC) starts the buffer afresh.
    pub fn receive(&self, incoming: mpsc::Sender<Incoming>) -> tokio::task::JoinHandle<()> {
        let (socket, stats) = (Arc::clone(&self.socket), Arc::clone(&self.stats));
        let mut agreed_now = self.agreed_now.subscribe();
        tokio::spawn(async move {
            let mut agreed = agreed_now.borrow_and_update().clone();
            let Ok(mut decoder) = Decoder::new(agreed.codec) else { return };
            let mut jitter: JitterBuffer<Bytes> = JitterBuffer::new(JITTER_DEPTH);
            let mut buffer = vec![0u8; MAX_DATAGRAM];
            let mut last_event: Option<u32> = None;
            let mut transit: Option<i64> = None;
            let mut ssrc: Option<u32> = None;
            let started = std::time::Instant::now();
            let mut jitter_value = 0f64;
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buffer).await else { break };
                if agreed_now.has_changed().unwrap_or(false) {
                    let now = agreed_now.borrow_and_update().clone();
                    if now.codec != agreed.codec {
                        let Ok(new) = Decoder::new(now.codec) else { break };
                        decoder = new;
                    }
                    agreed = now;
                }
                if from.ip() != agreed.remote.ip() {
                    stats.stray.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let mut raw = &buffer[..n];
                let Ok(packet) = rtc::rtp::Packet::unmarshal(&mut raw) else {
                    stats.stray.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let header = &packet.header;
                if Some(header.payload_type) == agreed.dtmf_payload_type {
                    // One digit per event: all its packets share a timestamp.
                    if packet.payload.len() >= 4 && last_event != Some(header.timestamp) {
                        last_event = Some(header.timestamp);
                        if let Some(digit) = dtmf_digit(packet.payload[0])
                            && incoming.send(Incoming::Digit(digit)).await.is_err()
                        {
                            break;
                        }
                    }
                    continue;
                }
                if header.payload_type != agreed.payload_type {
                    stats.stray.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                stats.received.fetch_add(1, Ordering::Relaxed);
                if ssrc.replace(header.ssrc).is_some_and(|before| before != header.ssrc) {
                    // Another stream (the peer switched media): its numbers start anew.
                    jitter = JitterBuffer::new(JITTER_DEPTH);
                    transit = None;
                }
                // RFC 3550 A.8: jitter from the difference in transit times.
                let clock = i64::from(agreed.codec.ticks_per_frame()) * 50;
                let arrival = (started.elapsed().as_secs_f64() * clock as f64) as i64;
                let this_transit = arrival - i64::from(header.timestamp);
                if let Some(previous) = transit {
                    let d = (this_transit - previous).abs() as f64;
                    jitter_value += (d - jitter_value) / 16.0;
                    let micros = jitter_value * 1_000_000.0 / clock as f64;
                    stats.jitter_us.store(micros as u64, Ordering::Relaxed);
                }
                transit = Some(this_transit);
                jitter.push(header.sequence_number, packet.payload);
                while let Some(payload) = jitter.pop() {
                    let mut samples = Vec::with_capacity(FRAME);
                    decoder.decode(&payload, &mut samples);
                    if incoming.send(Incoming::Voice(samples)).await.is_err() {
                        return;
                    }
                }
                stats.lost.store(jitter.lost, Ordering::Relaxed);
                stats.late.store(jitter.late, Ordering::Relaxed);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rtp_ports_come_from_the_configured_range() {
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port().saturating_sub(1).max(1024);
        drop(probe);
        let mut held = Vec::new();
        for _ in 0..2 {
            if let Ok(socket) = Leg::bind(ip, [base, base + 2]).await {
                let port = socket.local_addr().unwrap().port();
                assert!((base..=base + 2).contains(&port));
                held.push(socket);
            }
        }
        assert!(!held.is_empty());
    }

    #[test]
    fn keys_are_named_as_rfc_4733_numbers_them() {
        assert_eq!(dtmf_digit(0), Some('0'));
        assert_eq!(dtmf_digit(9), Some('9'));
        assert_eq!(dtmf_digit(10), Some('*'));
        assert_eq!(dtmf_digit(11), Some('#'));
        assert_eq!(dtmf_digit(16), None);
    }

    #[test]
    fn opus_on_the_phone_side_round_trips_speech_level() {
        let mut encoder = Encoder::new(Codec::Opus).unwrap();
        let mut decoder = Decoder::new(Codec::Opus).unwrap();
        let mut out = Vec::new();
        for n in 0..50 {
            let mut frame = [0i16; FRAME];
            for (i, s) in frame.iter_mut().enumerate() {
                let t = (n * FRAME + i) as f32 / 8_000.0;
                *s = ((2.0 * std::f32::consts::PI * 440.0 * t).sin() * 8_000.0) as i16;
            }
            let packet = encoder.encode(&frame);
            decoder.decode(&packet, &mut out);
        }
        assert_eq!(out.len(), 50 * FRAME);
        let level = audio::rms(&out[FRAME * 10..]);
        assert!(level > 3_000.0, "a 440 Hz tone comes through Opus at 8 kHz (rms {level})");
    }

    #[tokio::test]
    async fn sends_and_receives_rtp_with_its_digits() {
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let (a, b) = (Leg::bind(ip, [0, 0]).await.unwrap(), Leg::bind(ip, [0, 0]).await.unwrap());
        let agreed = |to: SocketAddr| Agreed {
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            remote: to,
            on_hold: false,
            direction: "sendrecv",
        };
        let mut sender = Leg::new(Arc::clone(&a), agreed(b.local_addr().unwrap())).unwrap();
        let receiver = Leg::new(Arc::clone(&b), agreed(a.local_addr().unwrap())).unwrap();
        let (tx, mut rx) = mpsc::channel(64);
        let task = receiver.receive(tx);
        for _ in 0..10 {
            sender.send(&[1_000; FRAME]).await;
        }
        // A key: three packets of one event (the last ones marked "end").
        for end in [0u8, 0x80, 0x80] {
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    payload_type: 101,
                    sequence_number: 500,
                    timestamp: 4_242,
                    ..Default::default()
                },
                payload: Bytes::from(vec![5, end | 10, 0, 160]),
            };
            a.send_to(&packet.marshal().unwrap(), b.local_addr().unwrap()).await.unwrap();
        }
        let mut voice = 0;
        let mut digits = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while digits.is_empty() || voice < 10 - JITTER_DEPTH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Incoming::Voice(samples))) => {
                    assert_eq!(samples.len(), FRAME);
                    assert!(samples.iter().all(|&s| (s - 1_000).abs() < 64));
                    voice += 1;
                }
                Ok(Some(Incoming::Digit(d))) => digits.push(d),
                other => panic!("{other:?}, {voice} frames, digits {digits:?}"),
            }
        }
        assert_eq!(digits, "5");
        assert_eq!(sender.stats.sent.load(Ordering::Relaxed), 10);
        task.abort();
    }
}
