//! The WebSocket endpoint with a real client: welcome, ping, typed errors for
//! bad input with the connection still alive, the size cap and the rate limit.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::support::{TestApp, spawn_app};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects as the demo lawyer, with the token in the query as browsers do.
async fn connect(app: &TestApp) -> Socket {
    let token = app.token("demo-lawyer").await;
    let (socket, response) = tokio_tungstenite::connect_async(format!("{}?token={token}", app.ws_url("/ws")))
        .await
        .expect("connect");
    assert_eq!(response.status(), 101);
    socket
}

#[tokio::test]
async fn no_token_no_websocket() {
    let app = spawn_app().await;
    for url in [
        app.ws_url("/ws"),
        format!("{}?token=", app.ws_url("/ws")),
        format!("{}?token=garbage", app.ws_url("/ws")),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected 401, got {other:?}"),
        }
    }
    // The Authorization header works as well as the query.
    let token = app.token("demo-lawyer").await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(app.ws_url("/ws"))
            .unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(next_json(&mut socket).await.unwrap()["type"], "welcome");
}

/// The next JSON message, skipping control frames and the lawyer's `presence`
/// pushes (see tests/system/live.rs); `None` when the socket closed.
async fn next_json(socket: &mut Socket) -> Option<serde_json::Value> {
    loop {
        let frame =
            tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("no reply in 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: serde_json::Value = serde_json::from_str(&text).expect("server sends JSON");
                if value["type"] == "presence" {
                    continue;
                }
                return Some(value);
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn welcome_then_ping_pong() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    let welcome = next_json(&mut socket).await.unwrap();
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(welcome["principal"]["kind"], "account");
    assert_eq!(welcome["principal"]["username"], "demo-lawyer");
    socket.send(Message::text(r#"{"type":"ping","id":"p1"}"#)).await.unwrap();
    let pong = next_json(&mut socket).await.unwrap();
    assert_eq!(pong, serde_json::json!({"type": "pong", "id": "p1"}));
}

#[tokio::test]
async fn malformed_messages_get_typed_errors_and_the_connection_lives() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    next_json(&mut socket).await.unwrap();
    let bad =
        ["not json", "{}", r#"{"type":"launch_missiles","id":"m1"}"#, r#"{"type":"ping","id":5}"#, "[1,2]"];
    for text in bad {
        socket.send(Message::text(text)).await.unwrap();
        let reply = next_json(&mut socket).await.unwrap();
        assert_eq!(reply["type"], "error", "{text}");
        assert_eq!(reply["code"], "malformed", "{text}");
    }
    socket.send(Message::text(r#"{"type":"launch_missiles","id":"m1"}"#)).await.unwrap();
    assert_eq!(next_json(&mut socket).await.unwrap()["id"], "m1", "the id is echoed for correlation");
    socket.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next_json(&mut socket).await.unwrap()["code"], "binary_unsupported");
    socket.send(Message::text(r#"{"type":"ping","id":"still-here"}"#)).await.unwrap();
    assert_eq!(next_json(&mut socket).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn oversized_message_closes_with_a_reason() {
    let app = spawn_app().await;
    let config = WebSocketConfig::default().max_message_size(None).max_frame_size(None);
    let token = app.token("demo-lawyer").await;
    let url = format!("{}?token={token}", app.ws_url("/ws"));
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await.unwrap();
    next_json(&mut socket).await.unwrap();
    let huge = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(70 * 1024));
    let _ = socket.send(Message::text(huge)).await;
    let mut saw_too_large = false;
    while let Some(message) = next_json(&mut socket).await {
        saw_too_large |= message["code"] == "too_large";
    }
    assert!(saw_too_large, "the client is told why before the close");
    // The server itself is fine.
    let mut other = connect(&app).await;
    assert_eq!(next_json(&mut other).await.unwrap()["type"], "welcome");
}

#[tokio::test]
async fn flooding_is_rate_limited_then_closed() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    next_json(&mut socket).await.unwrap();
    // A burst that fits the server's read buffer (8 KiB): a server that closes
    // with unread data resets the connection, and the client would lose the
    // replies it had not read yet.
    for i in 0..100 {
        if socket.send(Message::text(format!(r#"{{"type":"ping","id":"{i}"}}"#))).await.is_err() {
            break;
        }
    }
    let (mut pongs, mut limited) = (0, 0);
    while let Some(message) = next_json(&mut socket).await {
        match message["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if message["code"] == "rate_limited" => limited += 1,
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    assert!(pongs >= 40, "the burst is served ({pongs})");
    assert!(pongs < 100, "not everything is served ({pongs})");
    assert_eq!(limited, 3, "three warnings, then the connection closes");
}

#[tokio::test]
async fn connections_are_counted_in_metrics() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    next_json(&mut socket).await.unwrap();
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("cloudlaw_ws_connections 1"), "{text}");
    socket.close(None).await.unwrap();
    drop(socket);
    let mut closed = false;
    for _ in 0..100 {
        let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if text.contains("cloudlaw_ws_connections 0") {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the gauge goes back to 0 after close");
}

async fn send(socket: &mut Socket, value: serde_json::Value) {
    socket.send(Message::Text(value.to_string().into())).await.unwrap();
}

/// The next message that is not `welcome` or `rtc.connection`.
async fn next_reply(socket: &mut Socket) -> serde_json::Value {
    loop {
        let message = next_json(socket).await.expect("socket open");
        if message["type"] != "welcome" && message["type"] != "rtc.connection" {
            return message;
        }
    }
}

#[tokio::test]
async fn joining_a_media_room_takes_a_valid_room_token_of_ones_own() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    let minute = Duration::from_secs(60);

    // Not a token, an access token, someone else's room token, an expired one,
    // one granting a kind that does not exist: refused, connection alive.
    let access = app.token("demo-lawyer").await;
    let others = app.room_token("demo-lawyer-2", "c1", &["audio", "video"], minute).await;
    let unknown_kind = app.room_token("demo-lawyer", "c1", &["smell"], minute).await;
    for token in ["garbage".to_owned(), access, others, unknown_kind] {
        send(&mut socket, serde_json::json!({"type": "rtc.join", "token": token})).await;
        let reply = next_reply(&mut socket).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], "unauthorized", "{reply}");
    }
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    assert_eq!(health["relay"]["rooms"], 0, "nothing was opened");

    // Messages about a room one has not joined.
    for message in [
        serde_json::json!({"type": "rtc.answer", "room": "c1", "sdp": "v=0"}),
        serde_json::json!({"type": "rtc.restart", "room": "c1"}),
        serde_json::json!({"type": "rtc.leave", "room": "c1"}),
    ] {
        send(&mut socket, message).await;
        let reply = next_reply(&mut socket).await;
        assert_eq!(reply["code"], "refused", "{reply}");
    }

    // A good token: the relay's offer arrives, with its one candidate.
    let token = app.room_token("demo-lawyer", "c1", &["audio", "video"], minute).await;
    send(&mut socket, serde_json::json!({"type": "rtc.join", "token": token})).await;
    let offer = next_reply(&mut socket).await;
    assert_eq!(offer["type"], "rtc.offer", "{offer}");
    assert_eq!(offer["room"], "c1");
    let sdp = offer["sdp"].as_str().unwrap();
    assert!(sdp.contains("a=recvonly") && sdp.contains("a=candidate"), "{sdp}");
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    assert_eq!(health["relay"]["participants"], 1);

    // Joining twice, a garbage answer, a malformed candidate: refused or
    // malformed, and the session is still there.
    send(&mut socket, serde_json::json!({"type": "rtc.join", "token": token})).await;
    assert_eq!(next_reply(&mut socket).await["code"], "refused");
    send(&mut socket, serde_json::json!({"type": "rtc.answer", "room": "c1", "sdp": "nonsense"})).await;
    let reply = next_reply(&mut socket).await;
    assert_eq!(reply["code"], "refused", "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("session description"), "{reply}");
    send(&mut socket, serde_json::json!({"type": "rtc.candidate", "room": "c1", "candidate": 5})).await;
    assert_eq!(next_reply(&mut socket).await["code"], "malformed");

    // Leaving closes the room (it was the only one in it).
    send(&mut socket, serde_json::json!({"type": "rtc.leave", "room": "c1"})).await;
    send(&mut socket, serde_json::json!({"type": "ping", "id": "after-leave"})).await;
    loop {
        let message = next_reply(&mut socket).await;
        if message["type"] == "pong" {
            break;
        }
    }
    let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
    assert_eq!(health["relay"]["rooms"], 0);
    assert_eq!(health["relay"]["participants"], 0);

    // Closing the connection leaves the rooms it was in.
    send(&mut socket, serde_json::json!({"type": "rtc.join", "token": token})).await;
    assert_eq!(next_reply(&mut socket).await["type"], "rtc.offer");
    socket.close(None).await.unwrap();
    for _ in 0..100 {
        let health: serde_json::Value = app.get("/healthz", "").await.json().await.unwrap();
        if health["relay"]["participants"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the closed connection's participant stayed in the relay");
}
