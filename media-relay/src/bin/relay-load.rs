//! `relay-load`: synthetic participants against a standalone relay node.
//!
//! Opens `--rooms` 1:1 rooms on a relay node (through its control channel, with
//! room tokens this tool signs after pushing its own public key), and runs two
//! participants per room. Each is a real WebRTC peer (the `rtc` core: ICE,
//! DTLS-SRTP, NACK, reports) on its own UDP socket, sending Opus-sized audio
//! every 20 ms and VP8-shaped video at `--video-kbps`, with a keyframe when the
//! relay asks. Every payload carries its send time, so the receiving peer
//! measures the time through the relay. After a warm-up it measures for
//! `--measure-secs` and prints forwarded packets per second, loss, latency
//! percentiles, and the relay's CPU and memory (from /proc, with `--relay-pid`).
//! With `--join-leave-cycles N` it instead runs N short calls, ten at a time,
//! and prints the relay's memory every 100 calls.
//!
//! Only loopback targets make sense: the loop is bounded by its durations.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::BytesMut;
use clap::Parser;
use media_relay::control::{ControlClient, TestSigner};
use media_relay::lab::{rtp, track};
use media_relay::packet::KeyframeTap;
use media_relay::{Calls, PeerEvent};
use rtc::interceptor::{Registry, Slot};
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[derive(Debug, Parser)]
#[command(name = "relay-load", about = "Synthetic participants against a media-relay node")]
struct Args {
    /// The relay node's HTTP address (its /control and /healthz).
    #[arg(long, default_value = "127.0.0.1:7901")]
    relay_http: SocketAddr,
    /// The node's control token.
    #[arg(long, env = "MEDIA_RELAY_CONTROL_TOKEN", hide_env_values = true)]
    control_token: String,
    /// The node's process id, to read its CPU time and memory.
    #[arg(long)]
    relay_pid: Option<u32>,
    /// Concurrent 1:1 rooms (two participants each).
    #[arg(long, default_value_t = 200)]
    rooms: usize,
    #[arg(long, default_value_t = 600)]
    video_kbps: u32,
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    #[arg(long, default_value_t = 20)]
    measure_secs: u64,
    /// Instead of the steady load: this many short calls, for memory over time.
    #[arg(long, default_value_t = 0)]
    join_leave_cycles: usize,
    /// Local addresses 127.0.0.2 .. 127.0.0.(1+N) for the participants' sockets.
    #[arg(long, default_value_t = 8)]
    source_addrs: u8,
}

const PT_OPUS: u8 = 111;
const PT_VP8: u8 = 96;
const AUDIO_BYTES: usize = 80;
const MAX_VIDEO_PACKET: usize = 1_100;

/// Counters shared by every synthetic participant.
#[derive(Default)]
struct Totals {
    measuring: AtomicBool,
    /// The window, as offsets from the epoch in microseconds.
    window_start_us: AtomicU64,
    window_end_us: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u32>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.relay_http.ip().is_loopback(), "relay-load only targets a relay on loopback");
    let url = format!("ws://{}/control", args.relay_http);
    let control = ControlClient::connect(&url, &args.control_token)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the control channel at {url}: {e}"))?;
    let signer = TestSigner::new();
    control
        .set_keys(TestSigner::ISSUER, TestSigner::ISSUER, vec![signer.public()])
        .await
        .context("the relay refused our key")?;
    let epoch = Instant::now();
    if args.join_leave_cycles > 0 {
        return join_leave(&args, &control, &signer, epoch).await;
    }

    let totals = Arc::new(Totals::default());
    let run_for = Duration::from_secs(args.warmup_secs + args.measure_secs + 3);
    let mut tasks = Vec::new();
    for room in 0..args.rooms {
        let room_name = format!("load-{room}");
        for side in 0..2 {
            let name = format!("p{room}-{side}");
            let ip = source_ip(room * 2 + side, args.source_addrs);
            let peer = Synthetic {
                control: control.clone(),
                token: signer.token(&room_name, &name, &["audio", "video"], "room", 3_600),
                room: room_name.as_str().into(),
                name: name.into(),
                ip,
                video_kbps: args.video_kbps,
                epoch,
                until: Instant::now() + run_for,
                totals: Arc::clone(&totals),
            };
            tasks.push(tokio::spawn(peer.run()));
        }
        // Spread the handshakes a little.
        if room % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(args.warmup_secs)).await;
    let connected = totals.connected.load(Ordering::Relaxed);

    let before = control.status().await?;
    let relay_cpu_before = args.relay_pid.map(cpu_seconds);
    let own_cpu_before = cpu_seconds(std::process::id());
    let started = Instant::now();
    totals.window_start_us.store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    totals.window_end_us.store(u64::MAX, Ordering::Relaxed);
    totals.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.measure_secs)).await;
    totals.window_end_us.store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let after = control.status().await?;
    let relay_cpu = args.relay_pid.map(cpu_seconds).zip(relay_cpu_before).map(|(a, b)| (a - b) / elapsed);
    let own_cpu = (cpu_seconds(std::process::id()) - own_cpu_before) / elapsed;
    // Packets sent at the end of the window are still on their way; each
    // participant adds its counts when its session ends.
    for task in tasks {
        let _ = task.await;
    }
    totals.measuring.store(false, Ordering::Relaxed);

    let sent = totals.sent.load(Ordering::Relaxed);
    let received = totals.received.load(Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *totals.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
    latencies.sort_unstable();
    let forwarded_pps = (after.packets_forwarded - before.packets_forwarded) as f64 / elapsed;
    let forwarded_mbps = (after.bytes_forwarded - before.bytes_forwarded) as f64 * 8.0 / elapsed / 1e6;
    let loss = if sent == 0 { 1.0 } else { 1.0 - (received as f64 / sent as f64).min(1.0) };
    let rss = args.relay_pid.and_then(rss_kib);

    println!("relay-load: {} rooms x 2 participants, video {} kbit/s + audio", args.rooms, args.video_kbps);
    println!("  connected participants     {connected} of {}", args.rooms * 2);
    println!("  measured for               {elapsed:.1} s after {} s warm-up", args.warmup_secs);
    println!("  forwarded                  {forwarded_pps:.0} packets/s, {forwarded_mbps:.1} Mbit/s");
    println!("  sent / received (window)   {sent} / {received}  loss {:.3} %", loss * 100.0);
    println!(
        "  time through relay (us)    p50 {}  p90 {}  p99 {}  max {}",
        pct(&latencies, 0.50),
        pct(&latencies, 0.90),
        pct(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0)
    );
    if let Some(cpu) = relay_cpu {
        println!(
            "  relay CPU                  {:.0} % of one core ({:.1} us per forwarded packet)",
            cpu * 100.0,
            cpu * 1e6 / forwarded_pps.max(1.0)
        );
    }
    if let Some(rss) = rss {
        println!("  relay memory (RSS)         {:.1} MiB", rss as f64 / 1024.0);
    }
    println!("  load tool CPU              {:.0} % of one core", own_cpu * 100.0);
    println!(
        "{}",
        serde_json::json!({
            "rooms": args.rooms, "video_kbps": args.video_kbps, "connected": connected,
            "forwarded_pps": forwarded_pps.round(), "loss": loss, "sent": sent, "received": received,
            "latency_us": {"p50": pct(&latencies, 0.5), "p90": pct(&latencies, 0.9), "p99": pct(&latencies, 0.99)},
            "relay_cpu": relay_cpu, "relay_rss_kib": rss, "tool_cpu": own_cpu,
        })
    );
    Ok(())
}

/// Short calls, ten at a time, with the relay's memory every 100 calls.
async fn join_leave(
    args: &Args,
    control: &ControlClient,
    signer: &TestSigner,
    epoch: Instant,
) -> anyhow::Result<()> {
    let totals = Arc::new(Totals::default());
    println!(
        "relay-load: {} join/leave calls (2 participants, ~1.5 s each, 10 at a time)",
        args.join_leave_cycles
    );
    println!("  calls  relay RSS (MiB)  participants now  connected so far");
    let report = |done: usize, totals: &Totals| {
        let rss = args
            .relay_pid
            .and_then(rss_kib)
            .map(|k| format!("{:.1}", k as f64 / 1024.0))
            .unwrap_or("-".into());
        let connected = totals.connected.load(Ordering::Relaxed);
        async move {
            let participants = control.status().await.map(|s| s.participants).unwrap_or(0);
            println!("  {done:>5}  {rss:>15}  {participants:>16}  {connected:>16}");
        }
    };
    report(0, &totals).await;
    let mut done = 0;
    while done < args.join_leave_cycles {
        let batch = (args.join_leave_cycles - done).min(10);
        let mut tasks = Vec::new();
        for i in 0..batch {
            let room = format!("cycle-{}", done + i);
            for side in 0..2 {
                let name = format!("c{}-{side}", done + i);
                let peer = Synthetic {
                    control: control.clone(),
                    token: signer.token(&room, &name, &["audio", "video"], "room", 3_600),
                    room: room.as_str().into(),
                    name: name.into(),
                    ip: source_ip((done + i) * 2 + side, args.source_addrs),
                    video_kbps: args.video_kbps,
                    epoch,
                    until: Instant::now() + Duration::from_millis(1_500),
                    totals: Arc::clone(&totals),
                };
                tasks.push(tokio::spawn(peer.run()));
            }
        }
        for task in tasks {
            let _ = task.await;
        }
        let before = done;
        done += batch;
        if done / 100 != before / 100 || done == args.join_leave_cycles {
            // Let the relay finish closing before reading its memory.
            tokio::time::sleep(Duration::from_millis(300)).await;
            report(done, &totals).await;
        }
    }
    let failed = totals.failed.load(Ordering::Relaxed);
    println!("  participants that never connected: {failed}");
    Ok(())
}

fn source_ip(i: usize, count: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(count.max(1))) as u8))
}

fn pct(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// User plus system CPU seconds of a process, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which may contain spaces) start at ") ".
    let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One synthetic participant.
struct Synthetic {
    control: ControlClient,
    token: String,
    room: media_relay::RoomId,
    name: media_relay::ParticipantId,
    ip: IpAddr,
    video_kbps: u32,
    epoch: Instant,
    until: Instant,
    totals: Arc<Totals>,
}

impl Synthetic {
    async fn run(self) {
        let connected = Arc::new(AtomicBool::new(false));
        if let Err(error) = self.session(&connected).await {
            eprintln!("{}: {error:#}", self.name);
        }
        if !connected.load(Ordering::Relaxed) {
            self.totals.failed.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.control.leave(&self.room, &self.name).await;
    }

    async fn session(&self, connected: &AtomicBool) -> anyhow::Result<()> {
        let socket = UdpSocket::bind((self.ip, 0)).await.context("bind")?;
        let local_addr = socket.local_addr()?;
        let (events_tx, mut events) = mpsc::channel(64);
        self.control.join(&self.token, events_tx).await.map_err(|e| anyhow::anyhow!("join: {e}"))?;
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        let registry = register_default_interceptors(Registry::new(), &mut media)?
            .with(Slot::from(KeyframeTap::SLOT), KeyframeTap::default());
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(Instant::now())?;
        let seed = RandomState::new().hash_one(&self.name) as u32;
        let (audio_ssrc, video_ssrc) = (seed | 1, seed & !1);
        let mut senders = None;
        let mut buf = vec![0u8; 2_048];
        let mut next_tick = Instant::now();
        let (mut tick, mut aseq, mut vseq, mut frame) = (0u64, 0u16, 0u16, 0u32);
        let mut want_keyframe = true;
        let frame_bytes = (self.video_kbps as usize * 1_000 / 8 / 30).max(100);
        let mut latencies = Vec::new();
        let (mut sent, mut received) = (0u64, 0u64);
        while Instant::now() < self.until {
            while let Some(out) = pc.poll_write() {
                let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
            }
            while let Some(event) = pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event
                    && state == RTCPeerConnectionState::Connected
                    && !connected.swap(true, Ordering::Relaxed)
                {
                    self.totals.connected.fetch_add(1, Ordering::Relaxed);
                }
            }
            let measuring = self.totals.measuring.load(Ordering::Relaxed);
            let (start, end) = (
                self.totals.window_start_us.load(Ordering::Relaxed),
                self.totals.window_end_us.load(Ordering::Relaxed),
            );
            while let Some(TaggedRTCMessage { message, .. }) = pc.poll_read() {
                match message {
                    RTCMessage::RtpPacket(_, packet) => {
                        let at = if packet.header.payload_type == PT_VP8 { 2 } else { 0 };
                        let Some(stamp) = packet.payload.get(at..at + 8) else { continue };
                        let sent_us = u64::from_le_bytes(stamp.try_into().unwrap_or_default());
                        if measuring && sent_us >= start && sent_us < end && sent_us > 0 {
                            received += 1;
                            let now_us = self.epoch.elapsed().as_micros() as u64;
                            latencies.push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
                        }
                    }
                    RTCMessage::RtcpPacket(_, packets)
                        if packets.iter().any(|p| p.as_any().is::<PictureLossIndication>()) =>
                    {
                        want_keyframe = true;
                    }
                    _ => {}
                }
            }
            let deadline = pc.poll_timeout().unwrap_or(next_tick).min(next_tick).min(self.until);
            tokio::select! {
                event = events.recv() => match event {
                    Some(PeerEvent::Offer { sdp }) => {
                        pc.set_remote_description(Instant::now(), RTCSessionDescription::offer(sdp)?)?;
                        if senders.is_none() {
                            let candidate = media_relay::probe::host_candidate(local_addr).map_err(anyhow::Error::msg)?;
                            pc.add_local_candidate(candidate)?;
                            let audio = pc.add_track(track(&self.name, "mic", RtpCodecKind::Audio, audio_ssrc))?;
                            let video = pc.add_track(track(&self.name, "cam", RtpCodecKind::Video, video_ssrc))?;
                            senders = Some((audio, video));
                        }
                        let answer = pc.create_answer(None)?;
                        pc.set_local_description(Instant::now(), answer.clone())?;
                        self.control.answer(&self.room, &self.name, answer.sdp).await.map_err(|e| anyhow::anyhow!("answer: {e}"))?;
                    }
                    Some(PeerEvent::Closed { reason }) => anyhow::bail!("closed by the relay: {reason}"),
                    Some(_) => {}
                    None => anyhow::bail!("the control channel closed"),
                },
                read = socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = read {
                        let _ = pc.handle_read(TaggedBytesMut {
                            now: Instant::now(),
                            transport: TransportContext { local_addr, peer_addr: from, ecn: None, transport_protocol: TransportProtocol::UDP },
                            message: BytesMut::from(&buf[..n]),
                        });
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    let _ = pc.handle_timeout(now);
                    if now >= next_tick {
                        next_tick += Duration::from_millis(10);
                        if next_tick < now {
                            next_tick = now + Duration::from_millis(10);
                        }
                        tick += 1;
                        let Some((audio, video)) = senders else { continue };
                        if !connected.load(Ordering::Relaxed) {
                            continue;
                        }
                        let stamp = self.epoch.elapsed().as_micros() as u64;
                        let counts = measuring && stamp >= start && stamp < end;
                        if tick % 2 == 0 {
                            aseq = aseq.wrapping_add(1);
                            let mut payload = stamp.to_le_bytes().to_vec();
                            payload.resize(AUDIO_BYTES, 0xfc);
                            if let Some(mut sender) = pc.rtp_sender(audio)
                                && sender.write_rtp(now, rtp(PT_OPUS, aseq, (tick * 480) as u32, audio_ssrc, true, payload)).is_ok()
                                && counts
                            {
                                sent += 1;
                            }
                        }
                        if tick % 3 == 0 {
                            frame += 1;
                            let key = std::mem::take(&mut want_keyframe) || frame % 300 == 0;
                            let mut left = frame_bytes;
                            let mut first = true;
                            while left > 0 {
                                let size = left.min(MAX_VIDEO_PACKET);
                                left -= size;
                                let mut payload = vec![if first { 0x10 } else { 0x00 }, if key { 0x00 } else { 0x01 }];
                                payload.extend_from_slice(&stamp.to_le_bytes());
                                payload.resize(size.max(10), 0x5a);
                                vseq = vseq.wrapping_add(1);
                                let packet = rtp(PT_VP8, vseq, frame.wrapping_mul(3_000), video_ssrc, left == 0, payload);
                                if let Some(mut sender) = pc.rtp_sender(video)
                                    && sender.write_rtp(now, packet).is_ok()
                                    && counts
                                {
                                    sent += 1;
                                }
                                first = false;
                            }
                        }
                    }
                }
            }
        }
        self.totals.sent.fetch_add(sent, Ordering::Relaxed);
        self.totals.received.fetch_add(received, Ordering::Relaxed);
        self.totals.latencies_us.lock().unwrap_or_else(|e| e.into_inner()).extend(latencies);
        let _ = pc.close();
        while let Some(out) = pc.poll_write() {
            let _ = socket.send_to(&out.message, out.transport.peer_addr).await;
        }
        Ok(())
    }
}
