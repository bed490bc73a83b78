//! The relay this signaling server uses: the one it runs in process (the
//! default), or a standalone `media-relay` node it drives over the node's
//! control channel (`[relay_node]` in the configuration).
//!
//! With a node, signaling pushes the public halves of its token keys to it on
//! connect and every minute after, so the node checks room tokens itself;
//! the node's counters are fetched every second for `/metrics` and `/healthz`.
//! When the control connection drops, signaling reconnects (backing off up to
//! 10 s) and pushes the keys again; the node has let the old connection's
//! participants go, and they hear so (`rtc.closed`) and may join again.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use media_relay::control::{ControlClient, PublicKey};
use media_relay::{Grant, PeerEvent, RTCIceCandidateInit, Relay, RelayStatus, SessionError};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::tokens::Tokens;
use crate::config::Config;

/// How often a node gets the keys again (a rotation reaches it within this).
const KEY_PUSH: Duration = Duration::from_secs(60);
const STATUS_POLL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub enum RelayHandle {
    Local(Relay),
    Node(Arc<Node>),
}

#[derive(Debug)]
pub struct Node {
    url: String,
    secret: secrecy::SecretString,
    tokens: Tokens,
    client: RwLock<ControlClient>,
    status: Mutex<Option<RelayStatus>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    fn client(&self) -> ControlClient {
        self.client.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A fresh control connection with the keys pushed, replacing the old one.
    async fn reconnect(&self, tokens: &Tokens) -> Result<(), String> {
        let client = ControlClient::connect(&self.url, self.secret.expose_secret()).await?;
        push_keys(&client, tokens).await.map_err(|e| e.to_string())?;
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = client;
        tracing::info!(url = %self.url, "reconnected to the relay node");
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayStartError {
    #[error(transparent)]
    Local(#[from] media_relay::RelayError),
    #[error("cannot reach the relay node at {url}: {reason}")]
    Node { url: String, reason: String },
}

impl RelayHandle {
    /// Starts the in-process relay, or connects to the configured node.
    pub async fn start(config: &Config, tokens: &Tokens) -> Result<RelayHandle, RelayStartError> {
        let (Some(url), Some(secret)) = (&config.relay_node.control_url, &config.relay_node.control_token)
        else {
            return Ok(RelayHandle::Local(Relay::start(config.relay.clone()).await?));
        };
        let unreachable = |reason: String| RelayStartError::Node { url: url.clone(), reason };
        let client = ControlClient::connect(url, secret.expose_secret()).await.map_err(unreachable)?;
        push_keys(&client, tokens).await.map_err(|e| unreachable(e.to_string()))?;
        let status = client.status().await.map_err(|e| unreachable(e.to_string()))?;
        let node = Arc::new(Node {
            url: url.clone(),
            secret: secret.clone(),
            tokens: tokens.clone(),
            client: RwLock::new(client),
            status: Mutex::new(Some(status)),
            tasks: Mutex::default(),
        });
        let (weak, tokens) = (Arc::downgrade(&node), tokens.clone());
        let keeper = tokio::spawn(async move {
            let mut status = tokio::time::interval(STATUS_POLL);
            let mut keys = tokio::time::interval(KEY_PUSH);
            keys.tick().await;
            let mut backoff = STATUS_POLL;
            loop {
                tokio::select! {
                    _ = status.tick() => {}
                    _ = keys.tick() => {
                        let Some(node) = weak.upgrade() else { break };
                        if let Err(error) = push_keys(&node.client(), &tokens).await {
                            tracing::warn!(url = %node.url, %error, "cannot push keys to the relay node");
                        }
                        continue;
                    }
                }
                let Some(node) = weak.upgrade() else { break };
                let fresh = node.client().status().await.ok();
                let down = fresh.is_none();
                *node.status.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
                if down {
                    tokio::time::sleep(backoff).await;
                    match node.reconnect(&tokens).await {
                        Ok(()) => backoff = STATUS_POLL,
                        Err(error) => {
                            tracing::warn!(url = %node.url, %error, "the relay node does not answer");
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
            }
        });
        node.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(keeper);
        tracing::info!(%url, "using the relay node");
        Ok(RelayHandle::Node(node))
    }

    /// The counters, or `None` while a node does not answer.
    pub fn status(&self) -> Option<RelayStatus> {
        match self {
            RelayHandle::Local(relay) => Some(relay.status()),
            RelayHandle::Node(node) => node.status.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    pub fn is_running(&self) -> bool {
        match self {
            RelayHandle::Local(relay) => relay.is_running(),
            RelayHandle::Node(_) => self.status().is_some(),
        }
    }

    pub async fn open_room(&self, room: &str) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.open_room(room).await,
            RelayHandle::Node(node) => node.client().open_room(room).await,
        }
    }

    /// Closes a room: everyone in it gets `rtc.closed`.
    pub async fn close_room(&self, room: &str) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.close_room(room).await,
            RelayHandle::Node(node) => node.client().close_room(room).await,
        }
    }

    /// Joins with a room token that signaling has verified (`grant` is what it
    /// says); a node verifies the token again itself.
    pub async fn join(
        &self,
        token: &str,
        grant: Grant,
        events: mpsc::Sender<PeerEvent>,
    ) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.join(grant, events).await,
            RelayHandle::Node(node) => match node.client().join(token, events.clone()).await {
                // Signaling knows a key the node does not have yet (a rotation
                // within the last minute): push the keys and try once more.
                Err(SessionError::Unauthorized(_)) => {
                    push_keys(&node.client(), &node.tokens).await?;
                    node.client().join(token, events).await.map(|_| ())
                }
                result => result.map(|_| ()),
            },
        }
    }

    pub async fn answer(&self, room: &str, participant: &str, sdp: String) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.answer(room, participant, sdp).await,
            RelayHandle::Node(node) => node.client().answer(room, participant, sdp).await,
        }
    }

    pub async fn candidate(
        &self,
        room: &str,
        participant: &str,
        candidate: RTCIceCandidateInit,
    ) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.candidate(room, participant, candidate).await,
            RelayHandle::Node(node) => node.client().candidate(room, participant, candidate).await,
        }
    }

    pub async fn restart_ice(&self, room: &str, participant: &str) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.restart_ice(room, participant).await,
            RelayHandle::Node(node) => node.client().restart_ice(room, participant).await,
        }
    }

    pub async fn set_audio_only(&self, room: &str, participant: &str, on: bool) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.set_audio_only(room, participant, on).await,
            RelayHandle::Node(node) => node.client().set_audio_only(room, participant, on).await,
        }
    }

    pub async fn leave(&self, room: &str, participant: &str) -> Result<(), SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.leave(room, participant).await,
            RelayHandle::Node(node) => node.client().leave(room, participant).await,
        }
    }

    /// Stops the in-process relay; with a node, stops talking to it.
    pub async fn shutdown(&self) {
        match self {
            RelayHandle::Local(relay) => relay.shutdown().await,
            RelayHandle::Node(node) => {
                for task in node.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                    task.abort();
                }
            }
        }
    }
}

async fn push_keys(client: &ControlClient, tokens: &Tokens) -> Result<(), SessionError> {
    use base64::Engine as _;
    let keys = tokens
        .public_keys()
        .into_iter()
        .map(|(kid, raw)| PublicKey {
            kid,
            ed25519: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        })
        .collect();
    let config = tokens.config();
    client.set_keys(&config.issuer, &config.audience, keys).await
}
