//! Signaling driving standalone relay nodes over their control channels: the
//! node checks room tokens with the keys signaling pushed, a participant's
//! offer comes from the node, a consultation goes to the relay of its region,
//! and moves to another when that relay dies or drains.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use media_relay::control::ControlClient;
use media_relay::{Relay, RelayConfig};
use secrecy::SecretString;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{spawn_with, test_config};

pub(crate) const SECRET: &str = "node-control-token-for-tests";

/// A relay node in this process: the same control endpoint the binary serves.
pub(crate) async fn start_node() -> (Relay, String) {
    start_node_advertising(None).await
}

/// A relay node that tells browsers to send media to `public_ip` (where,
/// unless it is 127.0.0.1, nothing listens: a broken media path).
async fn start_node_advertising(public_ip: Option<&str>) -> (Relay, String) {
    start_node_on(public_ip, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
}

/// A relay node with its control endpoint on `listener`, started as the
/// `media-relay` binary starts one (it stops with the test's runtime).
async fn start_node_on(public_ip: Option<&str>, listener: tokio::net::TcpListener) -> (Relay, String) {
    let config = media_relay::node::NodeConfig {
        relay: RelayConfig {
            udp_listen: "127.0.0.1:0".parse().unwrap(),
            public_ip: public_ip.map(|ip| ip.parse().unwrap()),
            ..RelayConfig::default()
        },
        control_token: Some(SECRET.into()),
        ..Default::default()
    };
    let node = media_relay::node::start(config, listener).await.unwrap();
    let (relay, url) = (node.relay.clone(), format!("ws://{}/control", node.http));
    tokio::spawn(node.serve(std::future::pending));
    (relay, url)
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects as the demo lawyer, joins with `room_token`, and returns the socket
/// and the relay's first offer.
async fn join_as_demo_lawyer(app: &crate::support::TestApp, room_token: &str) -> (Socket, serde_json::Value) {
    let access = app.token("demo-lawyer").await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{}?token={access}", app.ws_url("/ws"))).await.unwrap();
    let join = serde_json::json!({"type": "rtc.join", "token": room_token});
    socket.send(Message::Text(join.to_string().into())).await.unwrap();
    loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else { panic!("socket closed") };
        let message: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_ne!(message["type"], "error", "{message}");
        if message["type"] == "rtc.offer" {
            return (socket, message);
        }
    }
}

#[tokio::test]
async fn a_participant_joins_through_a_relay_node_that_checks_the_token_itself() {
    let (node, url) = start_node().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    config.relay_node.control_url = Some(url.clone());
    config.relay_node.control_token = Some(SecretString::from(SECRET.to_owned()));
    let app = spawn_with(config, data_dir).await;

    // The node got signaling's keys: a room token signaling issued joins there.
    let room_token =
        app.room_token("demo-lawyer", "n1", &["audio"], std::time::Duration::from_secs(60)).await;
    let (mut socket, offer) = join_as_demo_lawyer(&app, &room_token).await;
    let port = node.udp_addr().port().to_string();
    assert!(offer["sdp"].as_str().unwrap().contains(&port), "the offer names the node's media port");
    assert_eq!(node.status().participants, 1);

    // The node's counters reach signaling's health report.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    assert_eq!(health["relay"]["participants"], 1, "{health}");
    assert_eq!(health["relay"]["udp_addr"], node.udp_addr().to_string());

    // Leaving there leaves the node.
    let leave = serde_json::json!({"type": "rtc.leave", "room": "n1"});
    socket.send(Message::Text(leave.to_string().into())).await.unwrap();
    let observer = ControlClient::connect(&url, SECRET).await.unwrap();
    for _ in 0..100 {
        if observer.status().await.unwrap().participants == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the participant stayed on the node");
}

#[tokio::test]
async fn a_wrong_control_token_stops_the_start_with_a_clear_error() {
    let (_node, url) = start_node().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), false);
    config.relay_node.control_url = Some(url.clone());
    config.relay_node.control_token = Some(SecretString::from("not-the-token".to_owned()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = signaling::startup::serve(config, listener, async {}).await.unwrap_err();
    assert!(error.to_string().contains("cannot reach the relay node"), "{error}");
    assert!(!error.to_string().contains("not-the-token"), "the secret is never printed");
}

/// A TCP hop whose open connections can be cut, as a network or a node restart would.
struct Hop {
    addr: std::net::SocketAddr,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    listener: tokio::task::JoinHandle<()>,
}

impl Hop {
    async fn start(to: std::net::SocketAddr) -> Hop {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let open = Arc::clone(&connections);
        let listener = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap().push(task);
            }
        });
        Hop { addr, connections, listener }
    }

    /// The node behind it is gone for good, as after `kill -9`: connections
    /// cut, and nothing accepts any more.
    fn kill(&self) {
        self.listener.abort();
        self.cut();
    }

    fn cut(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn relay_running(app: &crate::support::TestApp) -> bool {
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    health["relay"]["running"] == true
}

#[tokio::test]
async fn signaling_reconnects_to_a_relay_node_whose_control_connection_dropped() {
    let (node, url) = start_node().await;
    let node_addr: std::net::SocketAddr =
        url.trim_start_matches("ws://").trim_end_matches("/control").parse().unwrap();
    let hop = Hop::start(node_addr).await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    config.relay_node.control_url = Some(format!("ws://{}/control", hop.addr));
    config.relay_node.control_token = Some(SecretString::from(SECRET.to_owned()));
    let app = spawn_with(config, data_dir).await;
    assert!(relay_running(&app).await);

    hop.cut();
    // Noticed within a status poll, then back after a reconnect with the keys pushed again.
    let mut saw_down = false;
    for _ in 0..100 {
        let running = relay_running(&app).await;
        saw_down |= !running;
        if saw_down && running {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(saw_down, "the dropped control connection was noticed");
    assert!(relay_running(&app).await, "signaling reconnected to the node");

    // Joining works through the new connection (the node has the keys again).
    let room_token =
        app.room_token("demo-lawyer", "n2", &["audio"], std::time::Duration::from_secs(60)).await;
    let _joined = join_as_demo_lawyer(&app, &room_token).await;
    assert_eq!(node.status().participants, 1);
}

fn node_config(name: &str, region: Option<&str>, url: String) -> signaling::config::RelayNodeConfig {
    signaling::config::RelayNodeConfig {
        name: Some(name.into()),
        region: region.map(str::to_owned),
        // Probe rooms would show in the counters these tests check; the probe's own test sets 1.
        probe_secs: Some(3600),
        control_url: Some(url),
        control_token: Some(SecretString::from(SECRET.to_owned())),
    }
}

fn node_addr(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("ws://").trim_end_matches("/control").parse().unwrap()
}

/// The demo lawyer goes on duty, the demo kiosk asks, she accepts: the kiosk,
/// the lawyer, and the `consult.started` each received.
async fn consultation_at_the_demo_kiosk(
    app: &crate::support::TestApp,
) -> (crate::live::Client, crate::live::Client, serde_json::Value, serde_json::Value) {
    use crate::live::{Client, kiosk_token, lawyer, request};
    let mut drolma = lawyer(app, "demo-lawyer").await;
    drolma.available().await;
    let mut kiosk = Client::connect(app, &kiosk_token(app).await).await;
    kiosk.send(request("bo", "land")).await;
    let offer = drolma.expect("consult.offer").await;
    drolma.send(serde_json::json!({"type": "consult.accept", "request": offer["request"]})).await;
    let kiosk_started = kiosk.expect("consult.started").await;
    let lawyer_started = drolma.expect("consult.started").await;
    (kiosk, drolma, kiosk_started, lawyer_started)
}

/// Polls until `check` holds (a relay's counters follow signaling's commands).
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not within 5 s: {what}");
}

#[tokio::test]
async fn a_consultation_goes_to_its_regions_relay_and_moves_when_that_relay_dies() {
    let (near, near_url) = start_node().await;
    let (anywhere, anywhere_url) = start_node().await;
    let near_hop = Hop::start(node_addr(&near_url)).await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    config.relay_nodes = vec![
        node_config("anywhere", None, anywhere_url),
        node_config("garze", Some("demo-garze"), format!("ws://{}/control", near_hop.addr)),
    ];
    let app = spawn_with(config, data_dir).await;
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    assert_eq!(health["relays"].as_array().unwrap().len(), 2, "{health}");
    assert_eq!(health["relays"][1]["region"], "demo-garze", "{health}");

    let (mut kiosk, mut drolma, started, _) = consultation_at_the_demo_kiosk(&app).await;
    let consultation = started["consultation"].as_str().unwrap().to_owned();
    // The demo kiosk is in demo-garze: its region's relay, though the other is as empty.
    eventually("the room is open on the region's relay", || near.status().rooms == 1).await;
    assert_eq!(anywhere.status().rooms, 0);
    kiosk.send(serde_json::json!({"type": "rtc.join", "token": started["token"]})).await;
    let offer = kiosk.expect("rtc.offer").await;
    assert!(offer["sdp"].as_str().unwrap().contains(&near.udp_addr().port().to_string()));

    // The region's relay dies: both are sent to the other relay, with no action of theirs.
    near_hop.kill();
    let is_moved = |m: &serde_json::Value| m["consultation"] == consultation.as_str() && m["resumed"] == true;
    let moved = kiosk.expect_where("consult.started", is_moved).await;
    drolma.expect_where("consult.started", is_moved).await;
    eventually("the room is open on the other relay", || anywhere.status().rooms == 1).await;
    kiosk.send(serde_json::json!({"type": "rtc.join", "token": moved["token"]})).await;
    let offer = kiosk.expect_where("rtc.offer", |m| m["room"] == consultation.as_str()).await;
    assert!(
        offer["sdp"].as_str().unwrap().contains(&anywhere.udp_addr().port().to_string()),
        "the new offer comes from the other relay"
    );
    assert_eq!(anywhere.status().participants, 1);
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    assert_eq!(health["relays"][1]["up"], false, "{health}");
    assert_eq!(health["status"], "ok", "one relay is enough: {health}");
}

#[tokio::test]
async fn calls_left_on_a_dead_relay_move_once_another_can_take_them() {
    let (_near, near_url) = start_node().await;
    let near_hop = Hop::start(node_addr(&near_url)).await;
    // The other listed node is not up yet: its address is free until it starts.
    let later_addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    config.relay_nodes = vec![
        node_config("garze", Some("demo-garze"), format!("ws://{}/control", near_hop.addr)),
        node_config("later", None, format!("ws://{later_addr}/control")),
    ];
    let app = spawn_with(config, data_dir).await;
    let (mut kiosk, mut drolma, started, _) = consultation_at_the_demo_kiosk(&app).await;
    let consultation = started["consultation"].as_str().unwrap().to_owned();

    // The call's relay dies while no other can take the call: it waits for one.
    near_hop.kill();
    relays_in_health(&app, "the call's relay is down", 10, |h| h["relays"][0]["up"] == false).await;
    let listener = tokio::net::TcpListener::bind(later_addr).await.unwrap();
    let (later, _) = start_node_on(None, listener).await;
    relays_in_health(&app, "the other relay answers", 30, |h| h["relays"][1]["up"] == true).await;
    let is_moved = |m: &serde_json::Value| m["consultation"] == consultation.as_str() && m["resumed"] == true;
    let moved = kiosk.expect_where("consult.started", is_moved).await;
    drolma.expect_where("consult.started", is_moved).await;
    kiosk.send(serde_json::json!({"type": "rtc.join", "token": moved["token"]})).await;
    let offer = kiosk.expect_where("rtc.offer", |m| m["room"] == consultation.as_str()).await;
    assert!(offer["sdp"].as_str().unwrap().contains(&later.udp_addr().port().to_string()));
}

#[tokio::test]
async fn a_draining_relay_finishes_its_rooms_and_gets_no_new_ones() {
    let (first, first_url) = start_node().await;
    let (second, second_url) = start_node().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    config.relay_nodes = vec![node_config("first", None, first_url), node_config("second", None, second_url)];
    let app = spawn_with(config, data_dir).await;

    // An operator's rooms with no region go to the emptier relay: first, then second.
    let token = app.room_token("demo-lawyer", "kept", &["audio"], std::time::Duration::from_secs(60)).await;
    let (_kept, _) = join_as_demo_lawyer(&app, &token).await;
    assert_eq!((first.status().rooms, second.status().rooms), (1, 0));
    second.drain();
    relays_in_health(&app, "signaling sees the drain", 5, |h| h["relays"][1]["draining"] == true).await;
    let mut sockets = Vec::new();
    for (room, open) in [("n1", 2), ("n2", 3)] {
        let token =
            app.room_token("demo-lawyer-2", room, &["audio"], std::time::Duration::from_secs(60)).await;
        let access = app.token("demo-lawyer-2").await;
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("{}?token={access}", app.ws_url("/ws"))).await.unwrap();
        let join = serde_json::json!({"type": "rtc.join", "token": token});
        socket.send(Message::Text(join.to_string().into())).await.unwrap();
        eventually(&format!("room {room} opens on the relay that is not draining"), || {
            first.status().rooms == open
        })
        .await;
        // Kept open: a room closes when its last participant leaves.
        sockets.push(socket);
    }
    assert_eq!(second.status().rooms, 0, "the draining relay opened nothing");
    // Until everything is draining: then nothing can take a room, and healthz says so.
    first.drain();
    let health =
        relays_in_health(&app, "no relay accepts rooms", 5, |h| h["relay"]["accepting_rooms"] == false).await;
    assert_eq!(health["status"], "ok", "draining relays still carry their calls: {health}");
}

/// Polls `/healthz` until `check` holds, for at most `secs`; returns that answer.
async fn relays_in_health(
    app: &crate::support::TestApp,
    what: &str,
    secs: u64,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..secs * 20 {
        let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
        if check(&health) {
            return health;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("not within {secs} s: {what}");
}

#[tokio::test]
async fn a_node_whose_media_port_does_not_answer_is_taken_out_though_its_control_channel_works() {
    // The region's own node answers on its control channel, but sends browsers
    // to an address where nothing listens.
    let (broken, broken_url) = start_node_advertising(Some("127.0.0.2")).await;
    let (good, good_url) = start_node().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    let probed = |mut node: signaling::config::RelayNodeConfig| {
        node.probe_secs = Some(1);
        node
    };
    config.relay_nodes = vec![
        probed(node_config("garze", Some("demo-garze"), broken_url)),
        probed(node_config("anywhere", None, good_url)),
    ];
    let app = spawn_with(config, data_dir).await;
    // Two failed probes (a second apart, at most two seconds to connect each).
    let health =
        relays_in_health(&app, "the broken node is out", 15, |h| h["relays"][0]["up"] == false).await;
    assert_eq!(health["relays"][1]["up"], true, "{health}");

    let (mut kiosk, mut drolma, started, lawyer_started) = consultation_at_the_demo_kiosk(&app).await;
    // (The probes' own rooms come and go on both nodes meanwhile.)
    let consultation = |relay: &Relay| relay.status().participants >= 2;
    kiosk.send(serde_json::json!({"type": "rtc.join", "token": started["token"]})).await;
    drolma.send(serde_json::json!({"type": "rtc.join", "token": lawyer_started["token"]})).await;
    eventually("both are on the node that works", || consultation(&good)).await;
    assert!(!consultation(&broken), "not on the region's node: its media path is broken");
}

#[tokio::test]
async fn a_relay_node_that_registers_itself_gets_the_calls_of_its_region() {
    let (anywhere, anywhere_url) = start_node().await;
    let (garze, garze_url) = start_node().await;
    let app = app_registering_beside(node_config("anywhere", None, anywhere_url)).await;
    let register = |token: &str, body: serde_json::Value| {
        app.http.post(app.url("/api/relays/register")).bearer_auth(token).json(&body).send()
    };
    let node = |name: &str, region: &str, url: &str| serde_json::json!({"name": name, "region_id": region, "control_url": url});

    // Refused, and nothing registered: another token, a name, URL or region it cannot use, a listed name.
    let refused = [
        ("not-the-registration-token", node("garze-1", "demo-garze", &garze_url), 401),
        (SECRET, node("garze 1", "demo-garze", &garze_url), 400),
        (SECRET, node("garze-1", "demo-garze", "http://10.0.0.5/control"), 400),
        (SECRET, node("garze-1", "nowhere", &garze_url), 400),
        (SECRET, node("anywhere", "demo-garze", &garze_url), 409),
    ];
    for (token, body, status) in refused {
        let response = register(token, body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
    }
    assert!(app.store().await.relay_registrations(0).await.unwrap().is_empty());

    // It registers (as `media-relay --register-at` does every 10 s): in use within seconds.
    let response = register(SECRET, node("garze-1", "demo-garze", &garze_url)).await.unwrap();
    assert_eq!(response.status(), 204);
    let health = relays_in_health(&app, "the registered node is in use", 10, |h| {
        h["relays"].as_array().is_some_and(|r| r.len() == 2 && r[1]["up"] == true)
    })
    .await;
    assert_eq!(health["relays"][1]["name"], "garze-1", "{health}");
    assert_eq!(health["relays"][1]["region"], "demo-garze", "{health}");
    assert_eq!(health["relays"][1]["max_rooms"], garze.status().max_rooms, "its capacity, from the node");

    // The demo kiosk is in demo-garze: its call goes to the node that registered for it.
    let (_kiosk, _drolma, started, _) = consultation_at_the_demo_kiosk(&app).await;
    eventually("the call is on the registered node", || garze.status().rooms == 1).await;
    assert_eq!(anywhere.status().rooms, 0);
    let claims = started["token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["room"]["relay"], "garze-1", "the room token names its relay: {claims}");
}

/// Signaling with relay registration on (probes rare: an hour apart) and
/// `listed` in its configuration.
async fn app_registering_beside(listed: signaling::config::RelayNodeConfig) -> crate::support::TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), true);
    config.relay_nodes = vec![listed];
    config.relay_registration.token = Some(SecretString::from(SECRET.to_owned()));
    config.relay_registration.probe_secs = Some(3600);
    spawn_with(config, data_dir).await
}

/// Signaling with registration on, and one listed node ("spare", first in
/// `/healthz`) that drains at once: up, so signaling starts, but it takes no call.
async fn registering_app() -> (crate::support::TestApp, Relay) {
    let (spare, spare_url) = start_node().await;
    let app = app_registering_beside(node_config("spare", None, spare_url)).await;
    spare.drain();
    relays_in_health(&app, "the spare drains", 5, |h| h["relays"][0]["draining"] == true).await;
    (app, spare)
}

/// Registers relay node "garze-1" at `url`, as `media-relay --register-at` does.
async fn register_garze(app: &crate::support::TestApp, url: &str) {
    let body = serde_json::json!({"name": "garze-1", "region_id": "demo-garze", "control_url": url});
    let request = app.http.post(app.url("/api/relays/register")).bearer_auth(SECRET).json(&body);
    assert_eq!(request.send().await.unwrap().status(), 204);
}

#[tokio::test]
async fn a_registered_node_that_went_quiet_leaves_the_list_and_is_taken_up_again_when_it_registers() {
    let (_garze, garze_url) = start_node().await;
    let hop = Hop::start(node_addr(&garze_url)).await;
    let (app, _spare) = registering_app().await;
    let listed = |h: &serde_json::Value| h["relays"].as_array().map_or(0, Vec::len);
    register_garze(&app, &format!("ws://{}/control", hop.addr)).await;
    relays_in_health(&app, "in use", 10, |h| listed(h) == 2 && h["relays"][1]["up"] == true).await;

    // Taken out of service: it stops answering, and a minute later has not renewed.
    hop.kill();
    relays_in_health(&app, "down", 10, |h| h["relays"][1]["up"] == false).await;
    let minute_ago = signaling::unix_now() - 61;
    let store = app.store().await;
    store
        .register_relay(
            "garze-1",
            Some("demo-garze"),
            &format!("ws://{}/control", hop.addr),
            minute_ago,
            &signaling::store::AuditEntry::system("relay.registered"),
        )
        .await
        .unwrap();
    relays_in_health(&app, "no longer listed", 10, |h| listed(h) == 1).await;

    // Back in service (here at its own address, without the hop): listed and used again.
    register_garze(&app, &garze_url).await;
    let health =
        relays_in_health(&app, "taken up again", 10, |h| listed(h) == 2 && h["relays"][1]["up"] == true)
            .await;
    assert_eq!(health["relays"][1]["name"], "garze-1", "{health}");

    // Moved to serve another region (same address): listed once, for it.
    store
        .ensure_region(&signaling::store::RegionRecord {
            id: "demo-kham".into(),
            name: "Kham (test)".into(),
            parent_id: None,
            time_zone: "Asia/Shanghai".into(),
        })
        .await
        .unwrap();
    let body = serde_json::json!({"name": "garze-1", "region_id": "demo-kham", "control_url": garze_url});
    let request = app.http.post(app.url("/api/relays/register")).bearer_auth(SECRET).json(&body);
    assert_eq!(request.send().await.unwrap().status(), 204);
    let health =
        relays_in_health(&app, "serving its new region", 10, |h| h["relays"][1]["region"] == "demo-kham")
            .await;
    assert_eq!(listed(&health), 2, "{health}");
    assert_eq!(health["relays"][1]["up"], true, "{health}");
}

#[tokio::test]
async fn a_listed_node_is_not_let_go_for_an_old_registration_of_its_name() {
    let (_spare, spare_url) = start_node().await;
    let hop = Hop::start(node_addr(&spare_url)).await;
    let app = app_registering_beside(node_config("spare", None, format!("ws://{}/control", hop.addr))).await;
    // Registered under that name before it was listed in the configuration; long quiet since.
    let hour_ago = signaling::unix_now() - 3600;
    app.store()
        .await
        .register_relay(
            "spare",
            None,
            "ws://127.0.0.1:9/control",
            hour_ago,
            &signaling::store::AuditEntry::system("relay.registered"),
        )
        .await
        .unwrap();

    hop.kill();
    relays_in_health(&app, "down", 10, |h| h["relays"][0]["up"] == false).await;
    // Two looks at the registrations later, it is still listed (and reconnects when it can).
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    assert_eq!(health["relays"][0]["name"], "spare", "{health}");
}

#[tokio::test]
async fn a_registered_node_that_comes_back_at_another_address_gets_its_calls_there() {
    let (_first, first_url) = start_node().await;
    let first_hop = Hop::start(node_addr(&first_url)).await;
    let (app, spare) = registering_app().await;
    let register = |url: String| {
        let app = &app;
        async move { register_garze(app, &url).await }
    };
    let garze_up =
        |h: &serde_json::Value| h["relays"].as_array().is_some_and(|r| r.len() == 2 && r[1]["up"] == true);
    register(format!("ws://{}/control", first_hop.addr)).await;
    relays_in_health(&app, "the registered node is in use", 10, garze_up).await;
    let (mut kiosk, mut drolma, started, _) = consultation_at_the_demo_kiosk(&app).await;
    let consultation = started["consultation"].as_str().unwrap().to_owned();

    // Its machine goes away mid-call, and no other relay can take the call.
    first_hop.kill();
    relays_in_health(&app, "the node is down", 10, |h| h["relays"][1]["up"] == false).await;
    // It comes back elsewhere (a new address, a fresh process) and registers again.
    let (second, second_url) = start_node().await;
    register(second_url.clone()).await;
    let is_moved = |m: &serde_json::Value| m["consultation"] == consultation.as_str() && m["resumed"] == true;
    let moved = kiosk.expect_where("consult.started", is_moved).await;
    drolma.expect_where("consult.started", is_moved).await;
    kiosk.send(serde_json::json!({"type": "rtc.join", "token": moved["token"]})).await;
    let offer = kiosk.expect_where("rtc.offer", |m| m["room"] == consultation.as_str()).await;
    assert!(offer["sdp"].as_str().unwrap().contains(&second.udp_addr().port().to_string()));
    let health = relays_in_health(&app, "listed once, at its new address", 5, garze_up).await;
    assert_eq!(health["relays"][1]["name"], "garze-1", "{health}");
    assert_eq!(spare.status().rooms, 0, "the draining spare took nothing");

    // Both the first registration and the move are in the audit log; renewals are not.
    register(second_url).await;
    let audit = app.store().await.recent_audit(None, 50).await.unwrap();
    let relay_rows: Vec<_> =
        audit.iter().filter(|r| r.action.starts_with("relay.")).map(|r| r.action.as_str()).rev().collect();
    assert_eq!(relay_rows, ["relay.registered", "relay.moved"], "{audit:?}");
}

#[tokio::test]
async fn without_a_registration_token_registering_is_not_there() {
    let app = crate::support::spawn_app().await;
    let body = serde_json::json!({"name": "n", "control_url": "ws://127.0.0.1:7901/control"});
    let response =
        app.http.post(app.url("/api/relays/register")).bearer_auth("x").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
