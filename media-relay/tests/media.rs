//! The relay with real peer connections on loopback: join, leave,
//! renegotiation, keyframes for late joiners, audio-only, limits and refusals.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use media_relay::{Calls, Kind, PeerEvent, Relay, RelayConfig, SessionError};
use support::{Client, Sending, both, eventually, loopback_relay_config};

const CONNECT: Duration = Duration::from_secs(10);
const MEDIA: Duration = Duration::from_secs(10);

async fn relay() -> Relay {
    Relay::start(loopback_relay_config()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_receive_each_others_audio_and_video() {
    let relay = relay().await;
    relay.open_room(&"r1".into()).await.unwrap();
    let mut resident = Client::join(&relay, "r1", "resident", both()).await;
    let mut lawyer = Client::join(&relay, "r1", "lawyer", both()).await;
    resident.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "both receive audio and video", || {
        let (a, b) = (resident.got("lawyer"), lawyer.got("resident"));
        a.audio > 20 && a.video > 10 && b.audio > 20 && b.video > 10
    })
    .await;
    // Nobody receives their own media.
    assert_eq!(resident.got("resident").audio + resident.got("resident").video, 0);
    // Each forwarded track has the relay's SSRC for that receiver, one per kind.
    assert_eq!(lawyer.got("resident").ssrcs.len(), 2);

    let status = relay.status();
    assert!(status.packets_forwarded > 60, "{status:?}");
    assert_eq!(status.rooms, 1);
    assert_eq!(status.participants, 2);

    // Statistics per participant, as signaling asks for them.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let stats = relay.room_stats(&"r1".into()).await.unwrap();
    assert_eq!(stats.participants.len(), 2);
    for p in &stats.participants {
        assert_eq!(p.state, "connected", "{p:?}");
        assert!(p.packets_received > 50, "{p:?}");
        assert!(p.received_bps > 50_000, "{p:?}");
        assert!(p.sent_bps > 50_000, "{p:?}");
        assert!(!p.audio_only);
    }
    resident.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_on_two_engines_each_carry_their_media_under_one_room_limit() {
    let config = RelayConfig { engines: 2, max_rooms: 2, ..loopback_relay_config() };
    let relay = Relay::start(config).await.unwrap();
    // "call-a" and "call-b" live on different engines (pinned in routes.rs).
    relay.open_room(&"call-a".into()).await.unwrap();
    relay.open_room(&"call-b".into()).await.unwrap();
    // The limit is the relay's: a third room is refused, whichever engine it would be on.
    for room in ["call-c", "call-d", "call-e", "call-f"] {
        assert_eq!(relay.open_room(&room.into()).await, Err(SessionError::TooManyRooms), "{room}");
    }
    let status = relay.status();
    assert_eq!((status.engines, status.rooms), (2, 2));

    let mut calls = Vec::new();
    for room in ["call-a", "call-b"] {
        let resident = Client::join(&relay, room, "resident", both()).await;
        let lawyer = Client::join(&relay, room, "lawyer", both()).await;
        calls.push((resident, lawyer));
    }
    for (resident, lawyer) in &mut calls {
        resident.connected(CONNECT).await;
        lawyer.connected(CONNECT).await;
    }
    eventually(MEDIA, "both calls carry audio and video both ways", || {
        calls.iter().all(|(resident, lawyer)| {
            let (a, b) = (resident.got("lawyer"), lawyer.got("resident"));
            a.audio > 20 && a.video > 10 && b.audio > 20 && b.video > 10
        })
    })
    .await;
    let status = relay.status();
    assert_eq!((status.participants, status.datagrams_unrouted, status.input_drops), (4, 0, 0), "{status:?}");
    // The relay encrypted what it forwarded itself, for every participant.
    assert_eq!(status.forwarding_fallbacks, 0, "{status:?}");
    // And decrypted what it received itself.
    assert!(status.packets_received_directly > 100, "{status:?}");

    // A room that closes frees its place for a room on either engine.
    relay.close_room(&"call-a".into()).await.unwrap();
    assert_eq!(relay.status().rooms, 1);
    relay.open_room(&"call-c".into()).await.unwrap();
    assert_eq!(relay.open_room(&"call-d".into()).await, Err(SessionError::TooManyRooms));
    for (resident, lawyer) in calls {
        resident.close().await;
        lawyer.close().await;
    }
    relay.shutdown().await;
    assert!(!relay.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_gets_a_keyframe_at_once_and_a_leaver_is_renegotiated_away() {
    let relay = relay().await;
    relay.open_room(&"r2".into()).await.unwrap();
    // Keyframes only when asked: a new receiver sees video only through the
    // relay's keyframe request.
    let slow_keyframes = Sending { keyframe_every: 100_000, ..Sending::default() };
    let mut resident = Client::join_with(&relay, "r2", "resident", both(), slow_keyframes.clone()).await;
    let mut lawyer = Client::join_with(&relay, "r2", "lawyer", both(), slow_keyframes.clone()).await;
    resident.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "first pair has video", || lawyer.got("resident").video > 10).await;

    let plis_before = resident.plis_received();
    let mut interpreter = Client::join_with(&relay, "r2", "interpreter", both(), slow_keyframes).await;
    interpreter.connected(CONNECT).await;
    let deadline = std::time::Instant::now() + MEDIA;
    while !(interpreter.got("resident").video > 5 && interpreter.got("lawyer").video > 5) {
        if std::time::Instant::now() > deadline {
            panic!(
                "the interpreter does not see both others: resident {:?} lawyer {:?}; plis at resident {} lawyer {}; \
                 status {:?}; stats {:?}; offers answered {}; events {:?}",
                interpreter.got("resident"),
                interpreter.got("lawyer"),
                resident.plis_received(),
                lawyer.plis_received(),
                relay.status(),
                relay.room_stats(&"r2".into()).await,
                interpreter.offers_answered(),
                interpreter.events()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for publisher in ["resident", "lawyer"] {
        let got = interpreter.got(publisher);
        assert_eq!(got.first_video_was_keyframe, Some(true), "{publisher}: {got:?}");
    }
    assert!(resident.plis_received() > plis_before, "the relay asked the publisher for a keyframe");
    // The others were offered the interpreter's tracks and receive them.
    eventually(MEDIA, "the others receive the interpreter", || {
        resident.got("interpreter").audio > 10 && lawyer.got("interpreter").video > 5
    })
    .await;

    // The interpreter leaves: the others get a new offer without its tracks
    // and keep receiving each other.
    let offers_before = resident.offers_answered();
    relay.leave(&"r2".into(), &"interpreter".into()).await.unwrap();
    eventually(MEDIA, "renegotiated after the leave", || resident.offers_answered() > offers_before).await;
    let audio_before = resident.got("lawyer").audio;
    eventually(MEDIA, "media goes on", || resident.got("lawyer").audio > audio_before + 20).await;
    assert_eq!(relay.room_stats(&"r2".into()).await.unwrap().participants.len(), 2);
    assert!(interpreter.events().iter().any(|e| matches!(e, PeerEvent::Closed { .. })));
    interpreter.close().await;
    resident.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_who_chooses_audio_only_gets_no_video_until_it_asks_again() {
    let relay = relay().await;
    relay.open_room(&"r3".into()).await.unwrap();
    let mut resident = Client::join(&relay, "r3", "resident", both()).await;
    let mut lawyer = Client::join(&relay, "r3", "lawyer", both()).await;
    resident.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "video flows", || resident.got("lawyer").video > 10).await;

    relay.set_audio_only(&"r3".into(), &"resident".into(), true).await.unwrap();
    eventually(MEDIA, "told", || resident.events().contains(&PeerEvent::AudioOnly { on: true })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (video, audio) = (resident.got("lawyer").video, resident.got("lawyer").audio);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(resident.got("lawyer").video, video, "no video while audio only");
    assert!(resident.got("lawyer").audio > audio + 20, "audio goes on");
    // The lawyer, who did not ask, still gets video.
    let lawyer_video = lawyer.got("resident").video;
    eventually(MEDIA, "lawyer still has video", || lawyer.got("resident").video > lawyer_video + 10).await;
    assert!(relay.room_stats(&"r3".into()).await.unwrap().participants.iter().any(|p| p.audio_only));

    relay.set_audio_only(&"r3".into(), &"resident".into(), false).await.unwrap();
    eventually(MEDIA, "video back", || resident.got("lawyer").video > video + 10).await;
    resident.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_and_limits_are_enforced_and_refusals_change_nothing() {
    let config = RelayConfig { max_rooms: 1, max_participants_per_room: 2, ..loopback_relay_config() };
    let relay = Relay::start(config).await.unwrap();
    relay.open_room(&"only".into()).await.unwrap();
    assert_eq!(relay.open_room(&"second".into()).await, Err(SessionError::TooManyRooms));
    relay.open_room(&"only".into()).await.unwrap(); // Idempotent.

    // An observer may publish nothing: its offer has nothing to send on.
    let mut observer = Client::join(&relay, "only", "observer", BTreeSet::new()).await;
    // The lawyer's token grants audio only; it sends video anyway.
    let sends_both = Sending { sends: Some(both()), ..Sending::default() };
    let mut lawyer = Client::join_with(&relay, "only", "lawyer", [Kind::Audio].into(), sends_both).await;
    observer.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "the observer hears the lawyer", || observer.got("lawyer").audio > 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(observer.got("lawyer").video, 0, "audio-only grant: its video reaches nobody");
    assert_eq!(lawyer.got("observer").audio, 0);

    // The room is full.
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let third = media_relay::Grant { room: "only".into(), participant: "third".into(), publish: both() };
    assert!(matches!(relay.join(third.clone(), tx.clone()).await, Err(SessionError::Refused(_))));
    // The same name twice, an unknown room.
    let again = media_relay::Grant { participant: "lawyer".into(), ..third.clone() };
    assert!(matches!(relay.join(again, tx.clone()).await, Err(SessionError::Refused(_))));
    let elsewhere = media_relay::Grant { room: "nowhere".into(), ..third };
    assert_eq!(relay.join(elsewhere, tx).await, Err(SessionError::NoSuchRoom));
    // An answer nobody asked for, garbage SDP, a stranger.
    assert_eq!(
        relay.answer(&"only".into(), &"lawyer".into(), "v=0".into()).await,
        Err(SessionError::NoOfferPending)
    );
    assert_eq!(
        relay.answer(&"only".into(), &"stranger".into(), "v=0".into()).await,
        Err(SessionError::NotJoined)
    );
    assert_eq!(relay.leave(&"nowhere".into(), &"lawyer".into()).await, Err(SessionError::NoSuchRoom));

    // None of it disturbed the call.
    let heard = observer.got("lawyer").audio;
    eventually(MEDIA, "still flowing", || observer.got("lawyer").audio > heard + 20).await;
    assert_eq!(relay.room_stats(&"only".into()).await.unwrap().participants.len(), 2);

    // Closing the room tells everyone in it.
    relay.close_room(&"only".into()).await.unwrap();
    eventually(MEDIA, "closed", || lawyer.events().iter().any(|e| matches!(e, PeerEvent::Closed { .. })))
        .await;
    assert_eq!(relay.status().rooms, 0);
    assert_eq!(relay.status().participants, 0);
    observer.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_answer_is_refused_and_the_offer_can_still_be_answered() {
    let relay = relay().await;
    relay.open_room(&"r5".into()).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let grant = media_relay::Grant { room: "r5".into(), participant: "kiosk".into(), publish: both() };
    relay.join(grant, tx).await.unwrap();
    let Some(PeerEvent::Offer { sdp }) = rx.recv().await else { panic!("no offer") };
    assert!(sdp.contains("a=ice-lite"));
    assert!(sdp.contains(&relay.udp_addr().port().to_string()), "the relay's one candidate is in the offer");
    for bad in ["", "not sdp", "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"] {
        assert!(matches!(
            relay.answer(&"r5".into(), &"kiosk".into(), bad.into()).await,
            Err(SessionError::BadDescription(_))
        ));
    }
    // Still the same offer pending: a stranger's candidate is refused, the
    // participant's own are buffered.
    let candidate = media_relay::RTCIceCandidateInit {
        candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        ..Default::default()
    };
    relay.candidate(&"r5".into(), &"kiosk".into(), candidate.clone()).await.unwrap();
    assert_eq!(
        relay.candidate(&"r5".into(), &"nobody".into(), candidate).await,
        Err(SessionError::NotJoined)
    );
    relay.leave(&"r5".into(), &"kiosk".into()).await.unwrap();
    assert!(matches!(rx.recv().await, Some(PeerEvent::Closed { .. })));
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_whose_network_blinks_comes_back_in_the_same_room() {
    let relay = relay().await;
    relay.open_room(&"r6".into()).await.unwrap();
    let proxy = support::Proxy::start(relay.udp_addr()).await;
    let mut resident =
        Client::join_with(&relay, "r6", "resident", both(), proxy.sending(relay.udp_addr())).await;
    let mut lawyer = Client::join(&relay, "r6", "lawyer", both()).await;
    resident.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "media through the hop", || {
        resident.got("lawyer").video > 10 && lawyer.got("resident").audio > 20
    })
    .await;

    // The network goes away for a few seconds.
    proxy.set_blocked(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (heard, seen) = (lawyer.got("resident").audio, resident.got("lawyer").video);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(lawyer.got("resident").audio <= heard + 5, "nothing passes while the network is down");
    proxy.set_blocked(false);

    // The client asks for an ICE restart (web/shared/call.js does it after 2 s
    // disconnected); it answers the new offer and media resumes in the same room.
    let offers = resident.offers_answered();
    relay.restart_ice(&"r6".into(), &"resident".into()).await.unwrap();
    eventually(MEDIA, "the restart offer was answered", || resident.offers_answered() > offers).await;
    eventually(MEDIA, "media resumes both ways", || {
        lawyer.got("resident").audio > heard + 50 && resident.got("lawyer").video > seen + 20
    })
    .await;
    assert!(!resident.events().iter().any(|e| matches!(e, PeerEvent::Closed { .. })), "never left the room");
    assert_eq!(relay.room_stats(&"r6".into()).await.unwrap().participants.len(), 2);
    resident.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_on_a_lossy_downlink_drops_to_audio_only_and_gets_video_back_when_it_clears() {
    let relay = relay().await;
    relay.open_room(&"r7".into()).await.unwrap();
    let proxy = support::Proxy::start(relay.udp_addr()).await;
    let mut resident =
        Client::join_with(&relay, "r7", "resident", both(), proxy.sending(relay.udp_addr())).await;
    let mut lawyer = Client::join(&relay, "r7", "lawyer", both()).await;
    resident.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "video flows", || resident.got("lawyer").video > 10).await;

    // Half of what the relay sends the resident is lost: its receiver reports say so.
    proxy.set_loss_to_client(50);
    eventually(Duration::from_secs(15), "told it gets audio only", || {
        resident.events().contains(&PeerEvent::AudioOnly { on: true })
    })
    .await;
    assert!(
        relay
            .room_stats(&"r7".into())
            .await
            .unwrap()
            .participants
            .iter()
            .any(|p| p.participant == "resident" && p.audio_only && p.downlink_loss > 0.1)
    );
    // Only retransmissions of video sent before the switch may still arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (video, audio) = (resident.got("lawyer").video_new, resident.got("lawyer").audio);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(resident.got("lawyer").video_new <= video + 2, "no new video while the downlink is poor");
    assert!(resident.got("lawyer").audio > audio + 10, "audio goes on");
    // The lawyer's good downlink keeps its video.
    assert!(!lawyer.events().contains(&PeerEvent::AudioOnly { on: true }));

    // The downlink clears: after the recovery time, video comes back.
    proxy.set_loss_to_client(0);
    eventually(Duration::from_secs(20), "video back", || {
        resident.events().contains(&PeerEvent::AudioOnly { on: false })
    })
    .await;
    let video = resident.got("lawyer").video_new;
    eventually(MEDIA, "video flows again", || resident.got("lawyer").video_new > video + 10).await;
    resident.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}

fn last_state_of(client: &Client) -> Option<String> {
    client.events().into_iter().rev().find_map(|e| match e {
        PeerEvent::Connection { state } => Some(state),
        _ => None,
    })
}

/// Packets `receiver` got from `publisher` against what `publisher` sent, over a window.
struct Window {
    sent: (u64, u64),
    got: (u64, u64),
}

fn window(publisher: &Client, receiver: &Client) -> Window {
    let got = receiver.got(&publisher.name);
    Window { sent: publisher.sent(), got: (got.audio, got.video_new) }
}

/// RFC 7675 lets a client check consent every 4-6 s (randomised) and lets
/// consent lapse only after 30 s: media and checks both keep a participant
/// alive. A client checking every 6 s and one checking every 2 s lose nothing
/// over a minute's call, and the relay withholds nothing once video has begun.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_checking_consent_every_6_s_or_every_2_s_lose_nothing_in_a_minute() {
    let relay = relay().await;
    relay.open_room(&"r8".into()).await.unwrap();
    let every = |secs| Sending { consent_every: Some(Duration::from_secs(secs)), ..Sending::default() };
    let mut resident = Client::join_with(&relay, "r8", "resident", both(), every(6)).await;
    let mut lawyer = Client::join_with(&relay, "r8", "lawyer", both(), every(2)).await;
    resident.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "video both ways", || {
        resident.got("lawyer").video > 10 && lawyer.got("resident").video > 10
    })
    .await;
    let not_forwarded = relay.status().not_forwarded;
    let before = [window(&resident, &lawyer), window(&lawyer, &resident)];
    tokio::time::sleep(Duration::from_secs(60)).await;
    resident.stop_sending();
    lawyer.stop_sending();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = [window(&resident, &lawyer), window(&lawyer, &resident)];
    for (who, (b, a)) in ["resident to lawyer", "lawyer to resident"].iter().zip(before.iter().zip(&after)) {
        let sent = (a.sent.0 - b.sent.0, a.sent.1 - b.sent.1);
        let got = (a.got.0 - b.got.0, a.got.1 - b.got.1);
        assert!(sent.0 > 2_500 && sent.1 > 1_500, "{who}: sent {sent:?}");
        // What was in flight when the window opened may arrive inside it.
        assert!(got.0 >= sent.0, "{who}: audio sent {} got {}", sent.0, got.0);
        assert!(got.1 >= sent.1, "{who}: video sent {} got {}", sent.1, got.1);
    }
    assert_eq!(relay.status().not_forwarded, not_forwarded, "nothing withheld after the first keyframe");
    for client in [&resident, &lawyer] {
        let downs: Vec<_> = client
            .events()
            .into_iter()
            .filter(|e| matches!(e, PeerEvent::Connection { state } if state == "disconnected" || state == "failed"))
            .collect();
        assert!(downs.is_empty(), "{}: {downs:?}", client.name);
    }
    resident.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}

/// Consent lapses only after the consent timeout without anything from the
/// participant; then nothing is sent to it (each packet counted as
/// `not_connected`), and the next packet it sends renews consent, with video
/// starting again from a keyframe, without an ICE restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_lapses_after_its_timeout_only_and_the_next_packet_renews_it() {
    let relay =
        Relay::start(RelayConfig { consent_timeout_secs: 5, ..loopback_relay_config() }).await.unwrap();
    relay.open_room(&"r9".into()).await.unwrap();
    let proxy = support::Proxy::start(relay.udp_addr()).await;
    let mut resident =
        Client::join_with(&relay, "r9", "resident", both(), proxy.sending(relay.udp_addr())).await;
    let mut lawyer = Client::join(&relay, "r9", "lawyer", both()).await;
    resident.connected(CONNECT).await;
    lawyer.connected(CONNECT).await;
    eventually(MEDIA, "media both ways", || {
        resident.got("lawyer").video > 10 && lawyer.got("resident").audio > 20
    })
    .await;
    let withheld = |relay: &Relay| relay.status().not_forwarded.get("not_connected").copied().unwrap_or(0);
    let lapsed = |client: &Client| {
        client
            .events()
            .iter()
            .any(|e| matches!(e, PeerEvent::Connection { state } if state == "disconnected"))
    };
    let before = withheld(&relay);

    proxy.set_blocked(true);
    // Datagrams from its address that prove nothing (they do not decrypt, or
    // are no check) do not keep consent alive.
    let forged = async {
        let mut indication = vec![0x00, 0x11, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        indication.extend_from_slice(&[9; 12]);
        for _ in 0..40 {
            proxy.send_to_relay(&[0x80, 0x6f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef]).await;
            proxy.send_to_relay(&indication).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let checks = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!lapsed(&resident), "3 s of silence is within consent");
        assert_eq!(withheld(&relay), before, "still sent to while consent holds");
        eventually(Duration::from_secs(5), "consent lapses after 5 s", || lapsed(&resident)).await;
    };
    tokio::join!(forged, checks);
    let stats = relay.room_stats(&"r9".into()).await.unwrap();
    let p = stats.participants.iter().find(|p| p.participant == "resident").unwrap();
    assert_eq!(p.state, "disconnected");
    assert_eq!(last_state_of(&lawyer), Some("connected".to_owned()), "the other side is untouched");
    eventually(Duration::from_secs(2), "withheld and counted", || withheld(&relay) > before + 20).await;
    let stats = relay.room_stats(&"r9".into()).await.unwrap();
    let p = stats.participants.iter().find(|p| p.participant == "resident").unwrap();
    assert!(
        p.not_forwarded.get("not_connected").is_some_and(|n| *n > 20),
        "{p:?} {stats:?} {:?}",
        relay.status()
    );

    let (seen, offers) = (resident.got("lawyer").video_new, resident.offers_answered());
    proxy.set_blocked(false);
    eventually(MEDIA, "consent renewed by the next packet", || {
        last_state_of(&resident).as_deref() == Some("connected")
    })
    .await;
    eventually(MEDIA, "video again", || resident.got("lawyer").video_new > seen + 20).await;
    assert_eq!(resident.offers_answered(), offers, "no ICE restart was needed");
    resident.close().await;
    lawyer.close().await;
    relay.shutdown().await;
}
