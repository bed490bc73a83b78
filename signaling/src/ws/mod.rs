//! The WebSocket endpoint, `GET /ws`.
//!
//! The caller authenticates before the upgrade, with the same bearer token as
//! the API (in the `Authorization` header, or as `?token=` since browsers
//! cannot set headers on a WebSocket). The connection is registered under its
//! owner and closed when the owner's session, account or terminal is revoked.
//!
//! Each connection is two tasks: a reader that parses and answers, and a writer
//! that drains a bounded queue into the socket. A client that stops reading
//! fills its queue and is disconnected, so memory per connection stays bounded.
//! Frames above [`MAX_MESSAGE_BYTES`] are refused by the WebSocket layer; a
//! malformed message gets a typed `error` reply and the connection lives on; a
//! connection that exceeds its message rate is told so, then closed if it keeps
//! on; one that is silent for [`IDLE_TIMEOUT`] is closed. The server pings every
//! [`PING_INTERVAL`], and browsers answer pings by themselves.

pub mod call;
pub mod consult;
pub mod protocol;
pub mod registry;
pub mod reminders;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::auth::{self, Principal};
use crate::http::{ApiError, AppState};
use protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, PrincipalInfo, ServerMessage};
use registry::Owner;

/// The largest message a client may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The socket's read and write buffers (they grow for a larger message).
const SOCKET_BUFFER_BYTES: usize = 8 * 1024;
/// Outgoing messages queued for one connection before it counts as stalled.
pub const SEND_QUEUE: usize = 64;
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest one write to the socket may take before the client counts as gone.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Sustained messages per second a client may send, and the burst above it.
pub const RATE_PER_SECOND: f64 = 20.0;
pub const RATE_BURST: f64 = 40.0;
/// Rate-limit warnings before the connection is closed.
const RATE_STRIKES: u32 = 3;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsParams {
    /// The bearer token, for clients that cannot set an `Authorization` header.
    token: Option<String>,
}

/// Opens a WebSocket for an authenticated account or terminal. The server speaks
/// first, with `welcome`.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "system",
    params(WsParams),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol described in PROTOCOL.md"),
        (status = 400, description = "`not_websocket`: not a WebSocket upgrade request (after the token is checked)", body = crate::http::ErrorBody),
        (status = 401, description = "No valid token", body = crate::http::ErrorBody),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    params: crate::http::ApiQuery<WsParams>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let query_token = params.parse().ok().and_then(|p| p.token);
    let token = auth::bearer(&headers).map(str::to_owned).or(query_token).ok_or(ApiError::Unauthorized)?;
    let principal = auth::authenticate(&state.tokens, &state.store, &token).await?;
    let ws = ws.map_err(|rejection| ApiError::bad_request("not_websocket", rejection.body_text()))?;
    let connection_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("ws", connection = %connection_id, actor = %principal.actor());
    Ok(ws
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        // Small buffers that grow for the rare large message: an idle
        // connection should cost kilobytes, not the 256 KiB of the defaults.
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            connection(state, socket, connection_id, principal, token).instrument(span)
        }))
}

async fn connection(
    state: AppState,
    socket: WebSocket,
    connection_id: String,
    principal: Principal,
    token: String,
) {
    let owner = match &principal {
        Principal::Account { account, session_id } => {
            Owner::Account { account_id: account.id.clone(), session_id: session_id.clone() }
        }
        Principal::Terminal { terminal } => Owner::Terminal { terminal_id: terminal.id.clone() },
    };
    state.metrics.ws_connections.inc();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(SEND_QUEUE);
    let (registration, mut kicked) = state.connections.register(owner, &connection_id, Some(tx.clone()));
    // Revoked between the upgrade and the registration? Then nothing would close it later.
    let still_valid = auth::authenticate(&state.tokens, &state.store, &token).await.is_ok();

    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        loop {
            tokio::select! {
                message = rx.recv() => match message {
                    Some(message) => {
                        let closing = matches!(message, Message::Close(_));
                        // A client that stops reading cannot hold the writer forever.
                        let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await;
                        if !matches!(sent, Ok(Ok(()))) || closing {
                            break;
                        }
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::Ping(Default::default()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(SEND_TIMEOUT, sink.close()).await;
    });

    let outbox = Outbox { tx: tx.clone(), state: &state, stalled: AtomicBool::new(false) };
    outbox.send(&ServerMessage::Welcome {
        protocol: PROTOCOL_VERSION,
        server: format!("cloudlaw/{}", env!("CARGO_PKG_VERSION")),
        connection: connection_id.clone(),
        principal: PrincipalInfo::of(&principal),
    });
    if still_valid {
        // A person's or a kiosk's place in a room is their account's or terminal's id.
        let participant = crate::ids::ParticipantId::from(match &principal {
            Principal::Account { account, .. } => account.id.as_str(),
            Principal::Terminal { terminal } => terminal.id.as_str(),
        });
        let mut calls = call::Calls::new(participant, state.relays.clone());
        let member = consult::join(&state, &principal, &connection_id).await;
        let mut connection = Connection { id: &connection_id, member: &member, calls: &mut calls };
        read(&state, &mut stream, &outbox, &mut kicked, &mut connection).await;
        calls.leave_all().await;
        consult::leave(&state, &member, &connection_id).await;
    } else {
        outbox.error(ErrorCode::Revoked, "credentials revoked", None);
        outbox.close(4001, "credentials revoked");
    }
    drop(outbox);
    drop(tx);
    drop(registration);
    // The writer ends once its queue is drained or a send times out.
    let mut writer = writer;
    if tokio::time::timeout(SEND_TIMEOUT + Duration::from_secs(1), &mut writer).await.is_err() {
        writer.abort();
    }
    state.metrics.ws_connections.dec();
    tracing::debug!("websocket closed");
}

/// Reads and answers messages until the client leaves, misbehaves, goes idle
/// or is revoked.
async fn read(
    state: &AppState,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    outbox: &Outbox<'_>,
    kicked: &mut tokio::sync::oneshot::Receiver<String>,
    connection: &mut Connection<'_>,
) {
    let mut bucket = TokenBucket::new(RATE_PER_SECOND, RATE_BURST);
    let mut strikes = 0;
    loop {
        let next = tokio::select! {
            reason = &mut *kicked => {
                let reason = reason.unwrap_or_else(|_| "closed".into());
                if reason == registry::RECONNECT {
                    // Not revoked: the client reconnects, and announces itself again.
                    outbox.close(1012, "the live path moved: reconnect");
                } else {
                    outbox.error(ErrorCode::Revoked, &reason, None);
                    outbox.close(4001, "credentials revoked");
                }
                break;
            }
            next = tokio::time::timeout(IDLE_TIMEOUT, stream.next()) => next,
        };
        let frame = match next {
            Err(_) => {
                outbox.error(ErrorCode::IdleTimeout, "nothing received for too long", None);
                outbox.close(1000, "idle");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                // Oversized frames and protocol violations end here.
                tracing::debug!(%error, "websocket read error");
                // tungstenite reports "Space limit exceeded: Message too long: N > MAX".
                if error.to_string().contains("too long") {
                    outbox.error(ErrorCode::TooLarge, "message larger than 65536 bytes", None);
                    outbox.close(1009, "message too big");
                }
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        state.metrics.ws_messages_received.inc();
        if !bucket.take(Instant::now()) {
            strikes += 1;
            outbox.error(ErrorCode::RateLimited, "too many messages; slow down", None);
            if strikes >= RATE_STRIKES {
                outbox.close(1008, "rate limit");
                break;
            }
            continue;
        }
        match frame {
            Message::Text(text) => handle_text(state, outbox, connection, text.as_str()).await,
            Message::Binary(_) => outbox.error(ErrorCode::BinaryUnsupported, "send JSON text frames", None),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
        if outbox.stalled.load(Ordering::Relaxed) || outbox.tx.is_closed() {
            break;
        }
    }
}

/// What the reader knows of its connection.
struct Connection<'a> {
    id: &'a str,
    member: &'a consult::Member,
    calls: &'a mut call::Calls,
}

/// Handles one text message.
async fn handle_text(state: &AppState, outbox: &Outbox<'_>, connection: &mut Connection<'_>, text: &str) {
    let calls = &mut *connection.calls;
    let message = match protocol::parse(text) {
        Ok(message) => message,
        Err(reason) => return outbox.error(ErrorCode::Malformed, &reason, protocol::salvage_id(text)),
    };
    let id = message.id().map(str::to_owned);
    if id.as_ref().is_some_and(|id| id.len() > protocol::MAX_ID) {
        let reason = format!("id: at most {} bytes", protocol::MAX_ID);
        return outbox.error(ErrorCode::Invalid, &reason, None);
    }
    let result = match message {
        ClientMessage::Ping { id } => {
            outbox.send(&ServerMessage::Pong { id });
            Ok(())
        }
        ClientMessage::RtcJoin { token } => calls.join(state, &token, &outbox.tx).await,
        ClientMessage::RtcAnswer { room, sdp } => calls.answer(&room, sdp).await,
        ClientMessage::RtcCandidate { room, candidate } => calls.candidate(&room, candidate).await,
        ClientMessage::RtcRestart { room } => calls.restart(&room).await,
        ClientMessage::RtcAudioOnly { room, on } => calls.audio_only(&room, on).await,
        ClientMessage::RtcLeave { room } => calls.leave(&room).await,
        message => consult::handle(state, connection.member, connection.id, &outbox.tx, message)
            .await
            .map(|reply| reply.iter().for_each(|r| outbox.send(r))),
    };
    if let Err((code, message)) = result {
        outbox.error(code, &message, id);
    }
}

/// The sending half of a connection, as the reader sees it.
struct Outbox<'a> {
    tx: mpsc::Sender<Message>,
    state: &'a AppState,
    /// Set when the queue was full: the client is not reading and is dropped.
    stalled: AtomicBool,
}

impl Outbox<'_> {
    /// Queues a message without waiting. A full queue marks the connection
    /// stalled, which ends it.
    fn send(&self, message: &ServerMessage) {
        let Ok(text) = serde_json::to_string(message) else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.tx.try_send(Message::Text(Utf8Bytes::from(text)))
        {
            tracing::info!("websocket client not reading; disconnecting");
            self.stalled.store(true, Ordering::Relaxed);
        }
    }

    fn error(&self, code: ErrorCode, message: &str, id: Option<String>) {
        self.state.metrics.ws_errors_sent.inc();
        self.send(&ServerMessage::Error { code, message: message.into(), id });
    }

    fn close(&self, code: u16, reason: &'static str) {
        let _ = self
            .tx
            .try_send(Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) })));
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst, tokens: burst, last: Instant::now() }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket { rate: 10.0, burst: 5.0, tokens: 5.0, last: start };
        assert!((0..5).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        assert!(bucket.take(start + Duration::from_millis(100)));
        assert!(!bucket.take(start + Duration::from_millis(100)));
        // A long pause refills only up to the burst.
        let later = start + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.take(later)).count(), 5);
    }
}
