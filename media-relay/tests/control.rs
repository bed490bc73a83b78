//! The control channel of a standalone relay node: the real `media-relay`
//! binary, driven by a `ControlClient` with room tokens the relay checks
//! itself, and real WebRTC peers whose media flows through it.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use media_relay::control::{ControlClient, PublicKey, TestSigner};
use media_relay::{Calls, SessionError};
use support::{Client, Via, both, eventually};

const SECRET: &str = "a-control-token-for-tests";

/// The node, killed when dropped.
struct Node {
    child: Child,
    http: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node() -> Node {
    start_node_with(&[])
}

fn start_node_with(extra: &[&str]) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_media-relay"))
        .args(["--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--control-token", SECRET])
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let http = loop {
        let line = lines.next().expect("the node printed its address").unwrap();
        if let Some(rest) = line.split("http=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Node { child, http }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_is_driven_over_its_control_channel_with_room_tokens_it_checks() {
    let node = start_node();
    let url = format!("ws://{}/control", node.http);
    assert!(
        ControlClient::connect(&url, "wrong-token-wrong-token").await.is_err(),
        "a wrong token is refused"
    );

    let control = ControlClient::connect(&url, SECRET).await.unwrap();
    let signer = Arc::new(TestSigner::new());
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let token = signer.token("c1", "resident", &["audio", "video"], "room", 60);
    assert!(
        matches!(control.join(&token, tx.clone()).await, Err(SessionError::Unauthorized(_))),
        "no keys yet"
    );

    let bad_key = PublicKey { kid: "k".into(), ed25519: "not base64!".into() };
    assert!(matches!(control.set_keys("i", "a", vec![bad_key]).await, Err(SessionError::Unauthorized(_))));
    control.set_keys(TestSigner::ISSUER, TestSigner::ISSUER, vec![signer.public()]).await.unwrap();

    // Tokens the relay refuses: another key's, expired, not a room token, an unknown kind.
    let stranger = TestSigner::new();
    for token in [
        stranger.token("c1", "resident", &["audio"], "room", 60),
        signer.token("c1", "resident", &["audio"], "room", -120),
        signer.token("c1", "resident", &["audio"], "access", 60),
        signer.token("c1", "resident", &["smell"], "room", 60),
        "garbage".to_owned(),
    ] {
        let refused = control.join(&token, tx.clone()).await;
        assert!(matches!(refused, Err(SessionError::Unauthorized(_))), "{refused:?}");
    }
    assert_eq!(control.status().await.unwrap().participants, 0);

    // Two real peers through the node.
    let via = Via::Control(control.clone(), Arc::clone(&signer));
    let mut resident = Client::join(&via, "c1", "resident", both()).await;
    let mut lawyer = Client::join(&via, "c1", "lawyer", both()).await;
    resident.connected(Duration::from_secs(10)).await;
    lawyer.connected(Duration::from_secs(10)).await;
    eventually(Duration::from_secs(10), "media through the node", || {
        resident.got("lawyer").video > 10 && lawyer.got("resident").audio > 20
    })
    .await;
    let status = control.status().await.unwrap();
    assert_eq!((status.rooms, status.participants), (1, 2));
    assert!(status.packets_forwarded > 30);
    let stats = control.room_stats(&"c1".into()).await.unwrap();
    assert_eq!(stats.participants.len(), 2);

    // A control connection that goes away takes its participants with it.
    drop(via);
    resident.close().await;
    lawyer.close().await;
    let observer = ControlClient::connect(&url, SECRET).await.unwrap();
    drop(control);
    for _ in 0..200 {
        if observer.status().await.unwrap().participants == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the participants of a closed control channel stayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_node_it_finishes_its_rooms_opens_no_new_ones_then_stops() {
    let mut node = start_node();
    let client = ControlClient::connect(&format!("ws://{}/control", node.http), SECRET).await.unwrap();
    client.open_room(&"in-progress".into()).await.unwrap();
    let pid = node.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut draining = false;
    for _ in 0..100 {
        draining = client.status().await.unwrap().draining;
        if draining {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(draining, "the node reports that it drains");
    assert!(matches!(client.open_room(&"new".into()).await, Err(SessionError::Draining)), "no new room");
    client
        .open_room(&"in-progress".into())
        .await
        .expect("a room it has still opens (a participant rejoining)");
    assert!(node.child.try_wait().unwrap().is_none(), "still running while a room is open");
    client.close_room(&"in-progress".into()).await.unwrap();
    let mut exited = None;
    for _ in 0..100 {
        exited = node.child.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exited.expect("stopped once its last room closed").success());
}

/// A node with `--register-at` tells signaling (here a stand-in that records
/// what it is sent) its name, region and control URL, with its control token,
/// trying the signaling servers in turn until one answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_registers_with_the_first_signaling_server_that_answers() {
    use axum::http::HeaderMap;
    let (heard_tx, mut heard) = tokio::sync::mpsc::channel::<(Option<String>, serde_json::Value)>(4);
    let app = axum::Router::new().route(
        "/api/relays/register",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<serde_json::Value>| {
            let heard_tx = heard_tx.clone();
            async move {
                let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
                let _ = heard_tx.send((bearer, body.0)).await;
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let signaling = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // A signaling server that is down comes first: the node goes on to the next.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let servers = format!("http://{down},{signaling}");
    let node = start_node_with(&["--register-at", &servers, "--name", "garze-1", "--region", "demo-garze"]);
    let (bearer, body) = tokio::time::timeout(Duration::from_secs(10), heard.recv()).await.unwrap().unwrap();
    assert_eq!(bearer.as_deref(), Some(format!("Bearer {SECRET}").as_str()));
    let control_url = format!("ws://{}/control", node.http);
    assert_eq!(
        body,
        serde_json::json!({"name": "garze-1", "region_id": "demo-garze", "control_url": control_url})
    );
}

#[test]
fn registering_needs_a_name_and_a_control_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_media-relay"))
        .args(["--udp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--register-at", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--register-at needs --name and --control-token"), "{stderr}");
}
