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

/// The next JSON message, skipping control frames; `None` when the socket closed.
async fn next_json(socket: &mut Socket) -> Option<serde_json::Value> {
    loop {
        let frame =
            tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("no reply in 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("server sends JSON"));
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
    for i in 0..200 {
        if socket.send(Message::text(format!(r#"{{"type":"ping","id":"{i}"}}"#))).await.is_err() {
            break;
        }
    }
    let (mut pongs, mut limited) = (0, 0);
    while let Some(message) = next_json(&mut socket).await {
        match message["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if message["code"] == "rate_limited" => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pongs >= 40, "the burst is served ({pongs})");
    assert!(pongs < 200, "not everything is served ({pongs})");
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
