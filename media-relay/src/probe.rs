//! A health probe through the media path: one synthetic participant that
//! answers the relay's offer and connects to its UDP port (ICE, then DTLS),
//! as a browser would. A relay whose control channel answers but whose media
//! port is unreachable, blocked or wedged fails it.
//!
//! The caller joins the participant (so the relay's offer arrives on
//! `events`) and says how to send the answer; [`connect`] does the rest on a
//! socket of its own and returns how long the connection took.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::session::{PeerEvent, SessionError};

/// Sending the probe's answer to the relay (an owned future, so that the probe
/// can run on any task).
pub type Answer = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SessionError>> + Send>>;

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no connection through the media port within {0:?}")]
    Timeout(Duration),
    #[error("the relay closed the probe: {0}")]
    Closed(String),
    #[error("the connection failed")]
    Failed,
    #[error("sending the answer: {0}")]
    Answer(SessionError),
    #[error("probe: {0}")]
    Local(String),
}

/// Answers the relay's offer (from `events`), sending the answer with
/// `answer`, and connects to the relay's media port `media` from a new UDP
/// socket. Ok with the time it took once ICE and DTLS are done.
pub async fn connect(
    media: SocketAddr,
    events: &mut mpsc::Receiver<PeerEvent>,
    answer: impl Fn(String) -> Answer,
    within: Duration,
) -> Result<Duration, ProbeError> {
    let started = Instant::now();
    match tokio::time::timeout(within, run(media, events, answer)).await {
        Ok(result) => result.map(|()| started.elapsed()),
        Err(_) => Err(ProbeError::Timeout(within)),
    }
}

async fn run(
    media: SocketAddr,
    events: &mut mpsc::Receiver<PeerEvent>,
    answer: impl Fn(String) -> Answer,
) -> Result<(), ProbeError> {
    let local = |e: &dyn std::fmt::Display| ProbeError::Local(e.to_string());
    let unspecified: SocketAddr =
        if media.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(unspecified).await.map_err(|e| local(&e))?;
    // Connected: the kernel picks the source address that reaches the relay,
    // which is the one candidate this side offers.
    socket.connect(media).await.map_err(|e| local(&e))?;
    let local_addr = socket.local_addr().map_err(|e| local(&e))?;
    let mut engine = MediaEngine::default();
    engine.register_default_codecs().map_err(|e| local(&e))?;
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_media_engine(engine)
        .build(Instant::now())
        .map_err(|e| local(&e))?;
    let mut answered = false;
    let mut buf = vec![0u8; 2_048];
    loop {
        while let Some(out) = pc.poll_write() {
            let _ = socket.send(&out.message).await;
        }
        while let Some(event) = pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                match state {
                    RTCPeerConnectionState::Connected => {
                        let _ = pc.close();
                        while let Some(out) = pc.poll_write() {
                            let _ = socket.send(&out.message).await;
                        }
                        return Ok(());
                    }
                    RTCPeerConnectionState::Failed => return Err(ProbeError::Failed),
                    _ => {}
                }
            }
        }
        let wake = pc.poll_timeout().unwrap_or_else(|| Instant::now() + Duration::from_millis(100));
        tokio::select! {
            event = events.recv() => match event {
                Some(PeerEvent::Offer { sdp }) => {
                    let offer = RTCSessionDescription::offer(sdp).map_err(|e| local(&e))?;
                    pc.set_remote_description(Instant::now(), offer).map_err(|e| local(&e))?;
                    if !answered {
                        let candidate = host_candidate(local_addr).map_err(|e| local(&e))?;
                        pc.add_local_candidate(candidate).map_err(|e| local(&e))?;
                        answered = true;
                    }
                    let reply = pc.create_answer(None).map_err(|e| local(&e))?;
                    pc.set_local_description(Instant::now(), reply.clone()).map_err(|e| local(&e))?;
                    answer(reply.sdp).await.map_err(ProbeError::Answer)?;
                }
                Some(PeerEvent::Closed { reason }) => return Err(ProbeError::Closed(reason)),
                Some(_) => {}
                None => return Err(ProbeError::Closed("the relay's events ended".into())),
            },
            read = socket.recv(&mut buf) => {
                if let Ok(n) = read {
                    let _ = pc.handle_read(TaggedBytesMut {
                        now: Instant::now(),
                        transport: TransportContext {
                            local_addr,
                            peer_addr: media,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: BytesMut::from(&buf[..n]),
                    });
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let _ = pc.handle_timeout(Instant::now());
            }
        }
    }
}

/// The one local candidate of a synthetic participant on the `rtc` core,
/// which gathers nothing itself: the UDP socket it reads and writes, at `addr`.
pub fn host_candidate(addr: SocketAddr) -> Result<crate::RTCIceCandidateInit, String> {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(|e| e.to_string())?;
    RTCIceCandidate::from(&host).to_json().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Calls, Grant, Relay, RelayConfig};

    async fn relay() -> Relay {
        Relay::start(RelayConfig { udp_listen: "127.0.0.1:0".parse().unwrap(), ..RelayConfig::default() })
            .await
            .unwrap()
    }

    async fn probe(relay: &Relay, media: SocketAddr) -> Result<Duration, ProbeError> {
        let (room, me) = (crate::RoomId::from("probe"), crate::ParticipantId::from("prober"));
        relay.open_room(&room).await.unwrap();
        let (tx, mut events) = mpsc::channel(16);
        let grant = Grant { room: room.clone(), participant: me.clone(), publish: Default::default() };
        relay.join(grant, tx).await.unwrap();
        let result = connect(
            media,
            &mut events,
            |sdp| {
                let (relay, room, me) = (relay.clone(), room.clone(), me.clone());
                Box::pin(async move { relay.answer(&room, &me, sdp).await })
            },
            Duration::from_secs(3),
        )
        .await;
        let _ = relay.leave(&room, &me).await;
        let _ = relay.close_room(&room).await;
        result
    }

    #[tokio::test]
    async fn connects_through_a_working_media_port() {
        let relay = relay().await;
        let took = probe(&relay, relay.udp_addr()).await.expect("the probe connects");
        assert!(took < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn fails_when_the_media_port_does_not_answer() {
        let relay = relay().await;
        // A port where nothing listens: the control side works, the media path does not.
        let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let nowhere = dead.local_addr().unwrap();
        drop(dead);
        let error = probe(&relay, nowhere).await.unwrap_err();
        assert!(matches!(error, ProbeError::Timeout(_) | ProbeError::Failed), "{error}");
    }
}
