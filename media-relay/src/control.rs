//! The control channel of a standalone relay node: signaling (or the load
//! tool) drives the relay over one authenticated WebSocket, `GET /control` on
//! the node's HTTP port, with `Authorization: Bearer <control token>`.
//!
//! Every request carries an `id` and gets one `reply` with the same `id`; the
//! relay's events for participants joined through a connection arrive on it as
//! `event` messages. The control token says who may drive the node; each
//! participant still needs a room token, which the node checks itself against
//! the public keys that control connection pushed with `set_keys` (each
//! connection has its own, so a load tool cannot disturb signaling's).
//! PROTOCOL.md lists every message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::State;
use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::ids::{ParticipantId, RoomId};
use crate::session::{Answered, Call, Calls, Grant, PeerEvent, SessionError, kinds};
use crate::{Relay, RelayStatus};

/// The largest control message accepted (an SDP is a few kilobytes).
pub const MAX_CONTROL_MESSAGE: usize = 256 * 1024;
/// Events queued per participant before its session is dropped.
const EVENT_QUEUE: usize = 64;
/// Messages queued to one control connection.
const OUTGOING_QUEUE: usize = 4096;

/// A public key that verifies room tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKey {
    pub kid: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub ed25519: String,
}

/// What a control client asks: what only a node does (`set_keys`, `status`,
/// `join` with a room token), or a [`Call`], the relay's own vocabulary. On
/// the wire each is one object tagged by `cmd`.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Node(NodeCommand),
    Call(Call),
}

/// The node's own commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeCommand {
    /// Replaces the keys (and the issuer and audience) room tokens are checked against.
    SetKeys { issuer: String, audience: String, keys: Vec<PublicKey> },
    /// `{}`: a unit variant would let unknown fields through.
    Status {},
    /// Joins the participant a room token names; the relay's events for it
    /// come back on this connection.
    Join { token: String },
}

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Command::Node(command) => command.serialize(serializer),
            Command::Call(call) => call.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let node = matches!(value.get("cmd").and_then(|c| c.as_str()), Some("set_keys" | "status" | "join"));
        if node {
            serde_json::from_value(value).map(Command::Node).map_err(D::Error::custom)
        } else {
            serde_json::from_value(value).map(Command::Call).map_err(D::Error::custom)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

/// What the relay sends on a control connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// The answer to request `id`: `result` on success (`null`, a [`Grant`]
    /// for `join`, [`RelayStatus`], [`RoomStats`]), else `error`.
    Reply {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<SessionError>,
    },
    /// Something the relay tells a participant joined through this connection.
    Event { room: RoomId, participant: ParticipantId, event: PeerEvent },
}

/// Checks room tokens against the keys signaling pushed.
#[derive(Default)]
pub struct RoomTokens {
    keys: RwLock<Option<TokenKeys>>,
}

struct TokenKeys {
    issuer: String,
    audience: String,
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for RoomTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomTokens")
    }
}

#[derive(Deserialize)]
struct RoomClaims {
    sub: ParticipantId,
    typ: String,
    room: Option<RoomClaim>,
}

#[derive(Deserialize)]
struct RoomClaim {
    room: RoomId,
    publish: Vec<String>,
}

impl RoomTokens {
    pub fn set(&self, issuer: String, audience: String, keys: &[PublicKey]) -> Result<(), SessionError> {
        use base64::Engine as _;
        let mut decoded = HashMap::new();
        for key in keys {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&key.ed25519)
                .map_err(|_| SessionError::Unauthorized(format!("key {} is not base64url", key.kid)))?;
            if raw.len() != 32 {
                return Err(SessionError::Unauthorized(format!("key {} is not an Ed25519 key", key.kid)));
            }
            decoded.insert(key.kid.clone(), DecodingKey::from_ed_der(&raw));
        }
        let mut slot = self.keys.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(TokenKeys { issuer, audience, keys: decoded });
        Ok(())
    }

    /// The grant a valid room token carries.
    pub fn verify(&self, token: &str) -> Result<Grant, SessionError> {
        let bad = |why: &str| SessionError::Unauthorized(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("not a token"))?;
        let kid = header.kid.ok_or_else(|| bad("the token names no key"))?;
        let slot = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let keys = slot.as_ref().ok_or_else(|| bad("this relay has no keys yet"))?;
        let key = keys.keys.get(&kid).ok_or_else(|| bad("signed by an unknown key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[&keys.issuer]);
        validation.set_audience(&[&keys.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<RoomClaims>(token, key, &validation)
            .map_err(|e| SessionError::Unauthorized(format!("room token refused: {e}")))?;
        let claims = data.claims;
        if claims.typ != "room" {
            return Err(bad("not a room token"));
        }
        let room = claims.room.ok_or_else(|| bad("the token names no room"))?;
        let publish = kinds(&room.publish).map_err(SessionError::Unauthorized)?;
        Ok(Grant { room: room.room, participant: claims.sub, publish })
    }
}

/// What the control endpoint needs.
#[derive(Debug, Clone)]
pub struct ControlState {
    pub relay: Relay,
    /// The bearer token a control client must present; `None` turns the
    /// endpoint off.
    pub secret: Option<Arc<str>>,
}

/// `GET /control`: upgrades an authenticated control client.
pub async fn upgrade(
    State(state): State<ControlState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(secret) = state.secret.clone() else {
        return (StatusCode::NOT_FOUND, "the control channel is off").into_response();
    };
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), secret.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "a valid control token is required").into_response();
    }
    ws.max_message_size(MAX_CONTROL_MESSAGE).on_upgrade(move |socket| connection(state, socket))
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn connection(state: ControlState, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<ControlMessage>(OUTGOING_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let Ok(text) = serde_json::to_string(&message) else { continue };
            if sink.send(WsMessage::Text(Utf8Bytes::from(text))).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    // Participants joined through this connection, until they leave or the
    // relay closes them: they leave with it.
    let joined: Joined = Arc::default();
    let tokens = RoomTokens::default();
    tracing::info!("control client connected");
    while let Some(Ok(frame)) = stream.next().await {
        let WsMessage::Text(text) = frame else { continue };
        let request: Request = match serde_json::from_str(text.as_str()) {
            Ok(request) => request,
            Err(e) => {
                let id = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| v.get("id").and_then(|id| id.as_u64()))
                    .unwrap_or(0);
                let error = SessionError::Malformed(e.to_string().chars().take(200).collect());
                let _ = tx.send(ControlMessage::Reply { id, result: None, error: Some(error) }).await;
                continue;
            }
        };
        let id = request.id;
        let result = handle(&state, request.command, &tx, &joined, &tokens).await;
        let reply = match result {
            Ok(result) => ControlMessage::Reply { id, result: Some(result), error: None },
            Err(error) => ControlMessage::Reply { id, result: None, error: Some(error) },
        };
        if tx.send(reply).await.is_err() {
            break;
        }
    }
    let remaining: Vec<(RoomId, ParticipantId)> =
        joined.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
    for (room, participant) in remaining {
        let _ = state.relay.leave(&room, &participant).await;
    }
    drop(tx);
    let _ = writer.await;
    tracing::info!("control client disconnected");
}

type Joined = Arc<Mutex<std::collections::HashSet<(RoomId, ParticipantId)>>>;

async fn handle(
    state: &ControlState,
    command: Command,
    tx: &mpsc::Sender<ControlMessage>,
    joined: &Joined,
    tokens: &RoomTokens,
) -> Result<serde_json::Value, SessionError> {
    let relay = &state.relay;
    match command {
        Command::Node(NodeCommand::SetKeys { issuer, audience, keys }) => {
            tokens.set(issuer, audience, &keys).map(|()| serde_json::Value::Null)
        }
        Command::Node(NodeCommand::Status {}) => Ok(serde_json::to_value(relay.status()).unwrap_or_default()),
        Command::Node(NodeCommand::Join { token }) => {
            let grant = tokens.verify(&token)?;
            let (events, mut received) = mpsc::channel(EVENT_QUEUE);
            relay.open_room(&grant.room).await?;
            relay.join(grant.clone(), events).await?;
            let key = (grant.room.clone(), grant.participant.clone());
            joined.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone());
            let (tx, joined) = (tx.clone(), Arc::clone(joined));
            tokio::spawn(async move {
                while let Some(event) = received.recv().await {
                    let closed = matches!(event, PeerEvent::Closed { .. });
                    let message =
                        ControlMessage::Event { room: key.0.clone(), participant: key.1.clone(), event };
                    if tx.send(message).await.is_err() || closed {
                        break;
                    }
                }
                joined.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            });
            Ok(serde_json::to_value(grant).unwrap_or_default())
        }
        Command::Call(call) => {
            if let Call::Leave { room, participant } = &call {
                joined.lock().unwrap_or_else(|e| e.into_inner()).remove(&(room.clone(), participant.clone()));
            }
            relay.call(call).await.map(|answered| answered.to_json())
        }
    }
}

// ---- the client side -------------------------------------------------------

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<serde_json::Value, SessionError>>>>>;
type Subscribers = Arc<Mutex<HashMap<(RoomId, ParticipantId), mpsc::Sender<PeerEvent>>>>;

/// A control client: the same requests as [`Relay`], to a relay node elsewhere.
#[derive(Debug, Clone)]
pub struct ControlClient {
    requests: mpsc::Sender<String>,
    next_id: Arc<AtomicU64>,
    pending: Pending,
    subscribers: Subscribers,
    /// Set when the connection to the node ended: every call fails at once.
    closed: Arc<std::sync::atomic::AtomicBool>,
}

/// The longest a request waits for the node's reply.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl ControlClient {
    /// Connects to `ws://host:port/control` with the control token.
    pub async fn connect(url: &str, secret: &str) -> Result<ControlClient, String> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        let bearer = format!("Bearer {secret}")
            .parse()
            .map_err(|_| "the control token is not a valid header".to_owned())?;
        request.headers_mut().insert("authorization", bearer);
        let (socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| e.to_string())?;
        let (mut sink, mut stream) = socket.split();
        let (requests, mut outgoing) = mpsc::channel::<String>(OUTGOING_QUEUE);
        let pending: Pending = Arc::default();
        let subscribers: Subscribers = Arc::default();
        tokio::spawn(async move {
            while let Some(text) = outgoing.recv().await {
                if sink.send(tokio_tungstenite::tungstenite::Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            // Every handle is gone: say goodbye, so the node lets our participants go.
            let _ = sink.close().await;
        });
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s, gone) = (Arc::clone(&pending), Arc::clone(&subscribers), Arc::clone(&closed));
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let tokio_tungstenite::tungstenite::Message::Text(text) = frame else { continue };
                match serde_json::from_str::<ControlMessage>(text.as_str()) {
                    Ok(ControlMessage::Reply { id, result, error }) => {
                        let waiter = p.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(match error {
                                Some(error) => Err(error),
                                None => Ok(result.unwrap_or_default()),
                            });
                        }
                    }
                    Ok(ControlMessage::Event { room, participant, event }) => {
                        let closed = matches!(event, PeerEvent::Closed { .. });
                        let key = (room, participant);
                        let subscriber = s.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
                        if let Some(subscriber) = subscriber {
                            let _ = subscriber.try_send(event);
                        }
                        if closed {
                            s.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "unreadable control message"),
                }
            }
            // The node is gone: every waiting request fails, every session closes.
            gone.store(true, Ordering::SeqCst);
            p.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let subscribers: Vec<_> = s.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
            for (_, subscriber) in subscribers {
                let _ = subscriber.try_send(PeerEvent::Closed { reason: "the relay node is gone".into() });
            }
        });
        Ok(ControlClient { requests, next_id: Arc::new(AtomicU64::new(1)), pending, subscribers, closed })
    }

    async fn request(&self, command: Command) -> Result<serde_json::Value, SessionError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, reply);
        // Checked after registering: the reader sets `closed` before it clears
        // the waiting requests, so a request is never left waiting on nobody.
        if self.closed.load(Ordering::SeqCst) {
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Err(SessionError::Stopped);
        }
        let text = serde_json::to_string(&Request { id, command })
            .map_err(|e| SessionError::Malformed(e.to_string()))?;
        self.requests.send(text).await.map_err(|_| SessionError::Stopped)?;
        match tokio::time::timeout(CALL_TIMEOUT, answer).await {
            Ok(reply) => reply.map_err(|_| SessionError::Stopped)?,
            Err(_) => {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                Err(SessionError::Stopped)
            }
        }
    }

    pub async fn set_keys(
        &self,
        issuer: &str,
        audience: &str,
        keys: Vec<PublicKey>,
    ) -> Result<(), SessionError> {
        let command = NodeCommand::SetKeys { issuer: issuer.into(), audience: audience.into(), keys };
        self.request(Command::Node(command)).await.map(drop)
    }

    pub async fn status(&self) -> Result<RelayStatus, SessionError> {
        let value = self.request(Command::Node(NodeCommand::Status {})).await?;
        serde_json::from_value(value).map_err(|e| SessionError::Malformed(e.to_string()))
    }

    /// Joins with a room token; `events` gets the relay's events for this participant.
    pub async fn join(&self, token: &str, events: mpsc::Sender<PeerEvent>) -> Result<Grant, SessionError> {
        // Subscribe first: the first offer may arrive before the reply.
        let value = {
            let grant = RoomTokens::peek(token)?;
            let key = (grant.0.clone(), grant.1.clone());
            {
                let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
                if subscribers.contains_key(&key) {
                    // The live session keeps its events; the node would refuse anyway.
                    return Err(SessionError::Refused(format!("{} is already in the room", key.1)));
                }
                subscribers.insert(key.clone(), events);
            }
            let result = self.request(Command::Node(NodeCommand::Join { token: token.into() })).await;
            if result.is_err() {
                self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            }
            result?
        };
        serde_json::from_value(value).map_err(|e| SessionError::Malformed(e.to_string()))
    }
}

impl Calls for ControlClient {
    async fn call(&self, call: Call) -> Result<Answered, SessionError> {
        if let Call::Leave { room, participant } = &call {
            // Its events stop here, whatever the node answers.
            self.subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(room.clone(), participant.clone()));
        }
        let result = self.request(Command::Call(call.clone())).await?;
        Answered::from_json(&call, result)
    }
}

impl RoomTokens {
    /// The (room, participant) a token claims, unverified: only for routing
    /// the events of a join the relay is about to verify.
    fn peek(token: &str) -> Result<(RoomId, ParticipantId), SessionError> {
        use base64::Engine as _;
        let bad = || SessionError::Unauthorized("not a token".into());
        let payload = token.split('.').nth(1).ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
        let claims: RoomClaims = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let room = claims.room.ok_or_else(bad)?;
        Ok((room.room, claims.sub))
    }
}

/// A throwaway signing key and the room tokens it signs, for the load tool and
/// tests that drive a relay node without signaling. Push [`TestSigner::public`]
/// with `set_keys` (issuer and audience [`TestSigner::ISSUER`]) first.
pub struct TestSigner {
    key: ed25519_dalek::SigningKey,
    encoding: jsonwebtoken::EncodingKey,
    kid: String,
}

impl std::fmt::Debug for TestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestSigner")
    }
}

impl Default for TestSigner {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSigner {
    pub const ISSUER: &str = "relay-test";

    pub fn new() -> TestSigner {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        let mut seed = [0u8; 32];
        for (i, chunk) in seed.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&state.hash_one((i, std::time::Instant::now())).to_le_bytes());
        }
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let der = key.to_pkcs8_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default();
        let kid = format!("test-{:x}", state.hash_one("kid") & 0xffff_ffff);
        TestSigner { encoding: jsonwebtoken::EncodingKey::from_ed_der(&der), key, kid }
    }

    pub fn public(&self) -> PublicKey {
        use base64::Engine as _;
        PublicKey {
            kid: self.kid.clone(),
            ed25519: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(self.key.verifying_key().as_bytes()),
        }
    }

    /// A room token for `participant` in `room`, publishing `publish`, of kind
    /// `typ` (normally "room"), expiring `ttl_secs` from now (negative: expired).
    pub fn token(&self, room: &str, participant: &str, publish: &[&str], typ: &str, ttl_secs: i64) -> String {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
                as i64;
        let claims = serde_json::json!({
            "iss": Self::ISSUER, "aud": Self::ISSUER, "sub": participant, "iat": now, "exp": now + ttl_secs,
            "typ": typ, "jti": format!("{room}/{participant}/{now}"), "sid": room,
            "room": {"room": room, "publish": publish},
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Request, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn requests_are_read_and_unknown_fields_refused() {
        let ok = parse(r#"{"id":1,"cmd":"status"}"#).map(|r| r.command);
        assert_eq!(ok.ok(), Some(Command::Node(NodeCommand::Status {})));
        let ok = parse(r#"{"id":2,"cmd":"open_room","room":"r"}"#).map(|r| r.command);
        assert_eq!(ok.ok(), Some(Command::Call(Call::OpenRoom { room: "r".into() })));
        // What the client writes is what the node reads.
        for command in [
            Command::Node(NodeCommand::Join { token: "t".into() }),
            Command::Call(Call::AudioOnly { room: "r".into(), participant: "p".into(), on: true }),
        ] {
            let text = serde_json::to_string(&Request { id: 7, command: command.clone() }).unwrap();
            assert_eq!(parse(&text).unwrap(), Request { id: 7, command }, "{text}");
        }
        let text = serde_json::to_string(&Request {
            id: 8,
            command: Command::Call(Call::Leave { room: "r".into(), participant: "p".into() }),
        })
        .unwrap();
        assert_eq!(text, r#"{"id":8,"cmd":"leave","room":"r","participant":"p"}"#);
        for text in [
            r#"{"id":1,"cmd":"status","verbose":true}"#,
            r#"{"id":2,"cmd":"open_room","room":"r","extra":1}"#,
            r#"{"id":3,"cmd":"set_keys","issuer":"i","audience":"a","keys":[{"kid":"k","ed25519":"x","alg":"?"}]}"#,
            r#"{"id":4,"cmd":"no_such_command"}"#,
            r#"{"cmd":"status"}"#,
        ] {
            assert!(parse(text).is_err(), "{text} must be refused");
        }
    }
}
