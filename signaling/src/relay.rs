//! The relays this signaling server uses: the one it runs in process (the
//! default), or standalone `media-relay` nodes it drives over each node's
//! control channel (`[relay_node]` and `[[relay_nodes]]` in the configuration).
//!
//! [`Relays`] places every room on one relay and remembers where: a
//! consultation's room goes to a relay that answers, is not draining and has
//! room to spare, in the terminal's region or the nearest region above it,
//! then the least loaded. When a node stops answering, [`Relays::lost`] tells
//! the dispatcher, which moves that node's consultations to another relay and
//! sends their participants a fresh `consult.started` (they rejoin on their own).
//!
//! With a node, signaling pushes the public halves of its token keys to it on
//! connect and every minute after, so the node checks room tokens itself;
//! the node's counters are fetched every second, for placement, `/metrics` and
//! `/healthz`. When the control connection drops, signaling reconnects (backing
//! off up to 10 s) and pushes the keys again; the node has let the old
//! connection's participants go, and they hear so (`rtc.closed`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use media_relay::control::{ControlClient, PublicKey};
use media_relay::{Answered, Call, Calls, Grant, PeerEvent, Relay, RelayStatus, SessionError};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::auth::tokens::Tokens;
use crate::ids::{ParticipantId, RoomId};
use crate::store::Store;

/// How often a node gets the keys again (a rotation reaches it within this).
/// A standalone relay node to use instead of the in-process relay.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayNodeConfig {
    /// A name for logs, `/healthz` and `/metrics` (default: the URL's host and port).
    pub name: Option<String>,
    /// The region (id) the node serves: rooms of terminals in it, or under
    /// it, go here first. None: anywhere.
    pub region: Option<String>,
    /// Seconds between media-path probes (a synthetic participant connecting
    /// to the node's UDP port). Two failures in a row take the node out.
    /// None: 10.
    pub probe_secs: Option<u64>,
    /// The node's control channel, e.g. `ws://10.0.0.5:7901/control`.
    pub control_url: Option<String>,
    /// The node's control token (its `--control-token`).
    #[serde(serialize_with = "crate::password::serialize_secret_opt")]
    pub control_token: Option<SecretString>,
}

/// Relay nodes that tell signaling they exist, rather than being listed here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayRegistrationConfig {
    /// The token a registering node presents, which is also its control token
    /// (`media-relay --control-token`): signaling uses it on the node's control
    /// channel. None: registration is off (`POST /api/relays/register` is 404).
    #[serde(serialize_with = "crate::password::serialize_secret_opt")]
    pub token: Option<SecretString>,
    /// Seconds between media-path probes of registered nodes. None: 10.
    pub probe_secs: Option<u64>,
}

impl RelayNodeConfig {
    /// Why this node's entry cannot be used (`key` names it), if it cannot.
    pub fn validate(&self, key: &str) -> Result<(), String> {
        let (Some(url), Some(_)) = (&self.control_url, &self.control_token) else {
            return Err(format!("{key} needs both control_url and control_token"));
        };
        if !url.starts_with("ws://") {
            return Err(format!(
                "{key}.control_url {url:?} must be a ws:// URL (keep it on a private network; \
                 TLS to the node is not built in)"
            ));
        }
        Ok(())
    }

    /// `name`, or the control URL's host and port.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let url = self.control_url.as_deref().unwrap_or_default();
        let rest = url.split("://").nth(1).unwrap_or(url);
        rest.split('/').next().unwrap_or(rest).to_owned()
    }
}

/// What [`Relays::start`] needs of the configuration: the in-process relay's
/// settings, the standalone nodes listed, and self-registration.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    pub relay: &'a media_relay::RelayConfig,
    /// `relay_node` (when set) and `relay_nodes`: none, and no registration,
    /// means the relay runs in this process.
    pub nodes: Vec<RelayNodeConfig>,
    pub registration: &'a RelayRegistrationConfig,
}

const KEY_PUSH: Duration = Duration::from_secs(60);
const STATUS_POLL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often signaling looks for relay nodes that registered.
const REGISTRATION_CHECK: Duration = Duration::from_secs(5);
/// A registration not renewed for this long is not taken up (nodes renew every 10 s).
const REGISTRATION_FRESH: Duration = Duration::from_secs(60);
/// How often the region tree (for "near the terminal's region") is read again.
const REGION_REFRESH: Duration = Duration::from_secs(10);
/// How often a node's media path is probed, unless configured.
const PROBE_EVERY: Duration = Duration::from_secs(10);
/// Failed probes in a row that take a node out.
const PROBE_FAILURES: u32 = 2;
/// The probe's participant id (no person or terminal has it: ids are UUIDs).
const PROBE_PARTICIPANT: &str = "relay-probe";

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
    client: RwLock<Option<ControlClient>>,
    status: Mutex<Option<RelayStatus>>,
    /// The last media-path probes did not all fail ([`PROBE_FAILURES`]).
    media_ok: std::sync::atomic::AtomicBool,
    /// The node registered again at another address: this one is not used.
    retired: std::sync::atomic::AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    fn client(&self) -> Result<ControlClient, SessionError> {
        self.client.read().unwrap_or_else(|e| e.into_inner()).clone().ok_or(SessionError::Stopped)
    }

    /// Stops its status, key and probe tasks.
    fn stop(&self) {
        for task in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
    }

    /// Stops using this address for good (the node registered at another).
    fn retire(&self) {
        self.retired.store(true, std::sync::atomic::Ordering::Relaxed);
        self.stop();
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A fresh control connection with the keys pushed, replacing the old one.
    async fn reconnect(&self, tokens: &Tokens) -> Result<(), String> {
        let client = ControlClient::connect(&self.url, self.secret.expose_secret()).await?;
        push_keys(&client, tokens).await.map_err(|e| e.to_string())?;
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
        tracing::info!(url = %self.url, "reconnected to the relay node");
        Ok(())
    }

    /// One synthetic participant joins a room of its own and connects to the
    /// node's media port (ICE and DTLS), as a browser would.
    async fn probe(&self, within: Duration) -> Result<Duration, String> {
        let client = self.client().map_err(|e| e.to_string())?;
        let status = client.status().await.map_err(|e| e.to_string())?;
        let media = std::net::SocketAddr::new(status.advertised_ip, status.udp_addr.port());
        let room = RoomId::from(format!("probe-{}", uuid::Uuid::new_v4()));
        let me = ParticipantId::from(PROBE_PARTICIPANT);
        let grant = crate::auth::tokens::RoomGrant { room: room.clone(), publish: Vec::new(), relay: None };
        let ttl = Duration::from_secs(60);
        let (token, _) = self.tokens.issue(
            crate::auth::tokens::TokenKind::Room,
            PROBE_PARTICIPANT,
            &room,
            ttl,
            Some(grant),
        );
        client.open_room(&room).await.map_err(|e| e.to_string())?;
        let (events, mut received) = mpsc::channel(16);
        let result = match client.join(&token, events).await {
            Ok(_) => media_relay::probe::connect(
                media,
                &mut received,
                |sdp| {
                    let (client, room, me) = (client.clone(), room.clone(), me.clone());
                    Box::pin(async move { client.answer(&room, &me, sdp).await })
                },
                within,
            )
            .await
            .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let _ = client.leave(&room, &me).await;
        let _ = client.close_room(&room).await;
        result
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
    /// Connects to a relay node and keeps the connection: its counters every
    /// second, its keys every minute, reconnecting when it drops. `on_down`
    /// runs each time the node stops answering. With `must_answer`, a node
    /// that does not answer now is an error; otherwise it is kept, down, and
    /// tried again.
    async fn connect_node(
        node_config: &RelayNodeConfig,
        tokens: &Tokens,
        must_answer: bool,
        on_down: impl Fn() + Send + Sync + 'static,
    ) -> Result<RelayHandle, RelayStartError> {
        let on_down: Arc<dyn Fn() + Send + Sync> = Arc::new(on_down);
        let (Some(url), Some(secret)) = (&node_config.control_url, &node_config.control_token) else {
            unreachable!("validated: a relay node has a control_url and a control_token")
        };
        let unreachable = |reason: String| RelayStartError::Node { url: url.clone(), reason };
        let first = async {
            let client = ControlClient::connect(url, secret.expose_secret()).await?;
            push_keys(&client, tokens).await.map_err(|e| e.to_string())?;
            let status = client.status().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((client, status))
        }
        .await;
        let (client, status) = match first {
            Ok((client, status)) => (Some(client), Some(status)),
            Err(reason) if must_answer => return Err(unreachable(reason)),
            Err(reason) => {
                tracing::warn!(%url, %reason, "the relay node does not answer; it gets no rooms until it does");
                (None, None)
            }
        };
        let node = Arc::new(Node {
            url: url.clone(),
            secret: secret.clone(),
            tokens: tokens.clone(),
            client: RwLock::new(client),
            status: Mutex::new(status),
            media_ok: std::sync::atomic::AtomicBool::new(true),
            retired: std::sync::atomic::AtomicBool::new(false),
            tasks: Mutex::default(),
        });
        let every =
            node_config.probe_secs.map_or(PROBE_EVERY, Duration::from_secs).max(Duration::from_secs(1));
        let prober = tokio::spawn(probe_loop(Arc::downgrade(&node), every, Arc::clone(&on_down)));
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
                        let pushed = match node.client() {
                            Ok(client) => push_keys(&client, &tokens).await,
                            Err(error) => Err(error),
                        };
                        if let Err(error) = pushed {
                            tracing::warn!(url = %node.url, %error, "cannot push keys to the relay node");
                        }
                        continue;
                    }
                }
                let Some(node) = weak.upgrade() else { break };
                let fresh = match node.client() {
                    Ok(client) => client.status().await.ok(),
                    Err(_) => None,
                };
                let down = fresh.is_none();
                let was_up =
                    std::mem::replace(&mut *node.status.lock().unwrap_or_else(|e| e.into_inner()), fresh)
                        .is_some();
                if down {
                    if was_up {
                        tracing::warn!(url = %node.url, "the relay node stopped answering");
                        on_down();
                    }
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
        node.tasks.lock().unwrap_or_else(|e| e.into_inner()).extend([keeper, prober]);
        tracing::info!(%url, "using the relay node");
        Ok(RelayHandle::Node(node))
    }

    /// The counters, or `None` while a node does not answer or its media
    /// path fails the probe.
    pub fn status(&self) -> Option<RelayStatus> {
        use std::sync::atomic::Ordering::Relaxed;
        match self {
            RelayHandle::Local(relay) => Some(relay.status()),
            RelayHandle::Node(node) if !node.media_ok.load(Relaxed) || node.retired.load(Relaxed) => None,
            RelayHandle::Node(node) => node.status.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    pub fn is_running(&self) -> bool {
        match self {
            RelayHandle::Local(relay) => relay.is_running(),
            RelayHandle::Node(_) => self.status().is_some(),
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
            RelayHandle::Node(node) => match node.client()?.join(token, events.clone()).await {
                // Signaling knows a key the node does not have yet (a rotation
                // within the last minute): push the keys and try once more.
                Err(SessionError::Unauthorized(_)) => {
                    push_keys(&node.client()?, &node.tokens).await?;
                    node.client()?.join(token, events).await.map(|_| ())
                }
                result => result.map(|_| ()),
            },
        }
    }

    /// Stops the in-process relay; with a node, stops talking to it.
    pub async fn shutdown(&self) {
        match self {
            RelayHandle::Local(relay) => relay.shutdown().await,
            RelayHandle::Node(node) => node.stop(),
        }
    }

    /// A node that moved: no longer used, and never again.
    pub fn is_retired(&self) -> bool {
        matches!(self, RelayHandle::Node(node) if node.retired.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Probes a node's media path every `every`; [`PROBE_FAILURES`] failures in a
/// row take it out (`on_down`), one success brings it back.
async fn probe_loop(node: std::sync::Weak<Node>, every: Duration, on_down: Arc<dyn Fn() + Send + Sync>) {
    use std::sync::atomic::Ordering;
    let within = every.clamp(Duration::from_secs(2), Duration::from_secs(5));
    let mut failures = 0;
    // The first after one period: a node starts out trusted.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { break };
        // A node whose control channel is down is handled by the keeper.
        if node.status.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            continue;
        }
        match node.probe(within).await {
            Ok(took) => {
                failures = 0;
                if !node.media_ok.swap(true, Ordering::Relaxed) {
                    tracing::info!(url = %node.url, ?took, "the relay node's media path works again");
                }
            }
            Err(reason) => {
                failures += 1;
                tracing::warn!(url = %node.url, %reason, failures, "media-path probe of the relay node failed");
                if failures >= PROBE_FAILURES && node.media_ok.swap(false, Ordering::Relaxed) {
                    tracing::error!(url = %node.url, "the relay node's media path is broken: it gets no rooms");
                    on_down();
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

/// Why placing a room failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no relay can take a room now (every relay is down, draining or full)")]
pub struct NoRelay;

/// One relay and what the configuration says of it.
#[derive(Debug)]
pub struct RelayEntry {
    pub name: String,
    /// The region it serves; None: any.
    pub region: Option<String>,
    pub handle: RelayHandle,
    /// It registered itself (`POST /api/relays/register`), rather than being
    /// configured: only such an entry moves, changes region or is let go.
    pub registered: bool,
}

/// Where a room is, and whether signaling keeps it there.
#[derive(Debug, Clone, Copy)]
struct Placement {
    relay: usize,
    /// A consultation's room, kept until the consultation ends
    /// ([`Relays::close_room`]). Other rooms (an operator's) are forgotten
    /// when their last participant here leaves, as the relay closes them.
    pinned: bool,
    /// Participants of this server in it.
    joined: u32,
}

/// Every relay this server uses, and which relay each open room is on.
#[derive(Debug, Clone)]
pub struct Relays {
    inner: Arc<RelaysInner>,
}

#[derive(Debug)]
struct RelaysInner {
    /// Append-only (indexes stay valid): nodes that register join at the end.
    relays: RwLock<Vec<Arc<RelayEntry>>>,
    /// Room → where it is.
    rooms: Mutex<HashMap<RoomId, Placement>>,
    /// Region id → its parent, for "near".
    regions: RwLock<HashMap<String, Option<String>>>,
    lost: broadcast::Sender<usize>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The relay's own vocabulary ([`media_relay::Call`]), to whichever relay
/// this is.
impl Calls for RelayHandle {
    async fn call(&self, call: Call) -> Result<Answered, SessionError> {
        match self {
            RelayHandle::Local(relay) => relay.call(call).await,
            RelayHandle::Node(node) => node.client()?.call(call).await,
        }
    }
}

impl Relays {
    /// Starts the in-process relay, or connects to the configured nodes. With
    /// one node it must answer now (a wrong token or address is found at
    /// once); with several, at least one must, and the others are tried again.
    pub async fn start(setup: Setup<'_>, tokens: &Tokens, store: &Store) -> Result<Relays, RelayStartError> {
        let Setup { relay, nodes, registration } = setup;
        let (lost, _) = broadcast::channel(64);
        let mut relays = Vec::new();
        if nodes.is_empty() && registration.token.is_none() {
            let handle = RelayHandle::Local(Relay::start(relay.clone()).await?);
            relays.push(Arc::new(RelayEntry {
                name: "local".into(),
                region: None,
                handle,
                registered: false,
            }));
        }
        for (index, node) in nodes.iter().enumerate() {
            let lost = lost.clone();
            let on_down = move || {
                let _ = lost.send(index);
            };
            let handle = RelayHandle::connect_node(node, tokens, nodes.len() == 1, on_down).await?;
            relays.push(Arc::new(RelayEntry {
                name: node.display_name(),
                region: node.region.clone(),
                handle,
                registered: false,
            }));
        }
        // With registration, nodes may come later; a listed one must answer now.
        let registering = registration.token.is_some() && nodes.is_empty();
        if !registering && relays.iter().all(|r| r.handle.status().is_none()) {
            let urls: Vec<_> = nodes.iter().filter_map(|n| n.control_url.clone()).collect();
            return Err(RelayStartError::Node {
                url: urls.join(", "),
                reason: "no relay node answers".into(),
            });
        }
        let inner = Arc::new(RelaysInner {
            relays: RwLock::new(relays),
            rooms: Mutex::default(),
            regions: RwLock::default(),
            lost,
            tasks: Mutex::default(),
        });
        let relays = Relays { inner };
        relays.refresh_regions(store).await;
        let (weak, regions_store) = (Arc::downgrade(&relays.inner), store.clone());
        let refresher = tokio::spawn(async move {
            let mut every = tokio::time::interval(REGION_REFRESH);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                Relays { inner }.refresh_regions(&regions_store).await;
            }
        });
        relays.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(refresher);
        if let Some(token) = &registration.token {
            let (weak, store, tokens) = (Arc::downgrade(&relays.inner), store.clone(), tokens.clone());
            let (token, probe_secs) = (token.clone(), registration.probe_secs);
            let watcher = tokio::spawn(async move {
                let mut every = tokio::time::interval(REGISTRATION_CHECK);
                loop {
                    every.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    Relays { inner }.add_registered(&store, &tokens, &token, probe_secs).await;
                }
            });
            relays.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(watcher);
        }
        Ok(relays)
    }

    /// Starts using the nodes that registered lately and are not in use yet.
    /// A node that registers at another address is used there once its old
    /// address stops answering (two live nodes under one name keep the
    /// first): the old entry is retired and its calls move, as when a relay
    /// is lost.
    async fn add_registered(
        &self,
        store: &Store,
        tokens: &Tokens,
        token: &secrecy::SecretString,
        probe_secs: Option<u64>,
    ) {
        let since = crate::unix_now() - REGISTRATION_FRESH.as_secs() as i64;
        let (registered, quiet): (Vec<_>, Vec<_>) = match store.relay_registrations(0).await {
            Ok(all) => all.into_iter().partition(|node| node.last_seen_at >= since),
            Err(error) => return tracing::warn!(%error, "cannot read the relay registrations"),
        };
        self.let_go_quiet(quiet.iter().map(|node| node.name.as_str()));
        for node in registered {
            let known = self.index_of(&node.name).and_then(|i| Some((i, self.entry(i)?)));
            let moved_from = match known.as_ref().map(|(index, entry)| (index, entry, &entry.handle)) {
                None => None,
                // A configured node of that name (which registered before it was configured) wins.
                Some((_, entry, _)) if !entry.registered => continue,
                // Let go of earlier: taken up again as new.
                Some((_, _, handle)) if handle.is_retired() => None,
                Some((index, entry, RelayHandle::Node(n))) if n.url == node.control_url => {
                    if entry.region != node.region_id {
                        self.change_region(*index, entry, node.region_id.clone());
                    }
                    continue;
                }
                Some((index, _, handle @ RelayHandle::Node(n))) => {
                    if handle.status().is_some() {
                        tracing::warn!(name = %node.name, url = %node.control_url, was = %n.url,
                            "a relay node registered at another address while the first still answers; \
                             keeping the first (are two nodes using one name?)");
                        continue;
                    }
                    Some((*index, Arc::clone(n)))
                }
                Some((_, _, RelayHandle::Local(_))) => continue,
            };
            let config = RelayNodeConfig {
                name: Some(node.name.clone()),
                region: node.region_id.clone(),
                probe_secs,
                control_url: Some(node.control_url.clone()),
                control_token: Some(token.clone()),
            };
            // Its index is known once it is in the list.
            let index = Arc::new(std::sync::OnceLock::new());
            let on_down = {
                let (lost, index) = (self.inner.lost.clone(), Arc::clone(&index));
                move || {
                    if let Some(index) = index.get() {
                        let _ = lost.send(*index);
                    }
                }
            };
            // A node that moves must answer at its new address before the old is dropped.
            let connected = RelayHandle::connect_node(&config, tokens, moved_from.is_some(), on_down).await;
            let handle = match connected {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::warn!(name = %node.name, %error, "the relay node's new address does not answer");
                    continue;
                }
            };
            let entry = Arc::new(RelayEntry {
                name: node.name.clone(),
                region: node.region_id,
                handle,
                registered: true,
            });
            {
                let mut relays = self.inner.relays.write().unwrap_or_else(|e| e.into_inner());
                let _ = index.set(relays.len());
                relays.push(entry);
            }
            match moved_from {
                None => {
                    tracing::info!(name = %node.name, url = %node.control_url, "a relay node registered: using it")
                }
                Some((old, node_was)) => {
                    node_was.retire();
                    tracing::info!(name = %node.name, url = %node.control_url, was = %node_was.url,
                        "a relay node moved: using its new address");
                    // Calls still on the old address (none could move when it
                    // went down) move now, likely to the new one.
                    let _ = self.inner.lost.send(old);
                }
            }
        }
    }

    /// A registered node now serves `region`: new rooms are placed by it; its
    /// calls stay where they are.
    fn change_region(&self, index: usize, entry: &RelayEntry, region: Option<String>) {
        tracing::info!(name = %entry.name, was = ?entry.region, now = ?region, "a relay node changed its region");
        let changed = Arc::new(RelayEntry {
            name: entry.name.clone(),
            region,
            handle: entry.handle.clone(),
            registered: true,
        });
        if let Some(slot) = self.inner.relays.write().unwrap_or_else(|e| e.into_inner()).get_mut(index) {
            *slot = changed;
        }
    }

    /// Stops listing registered nodes that went quiet (not renewed for
    /// [`REGISTRATION_FRESH`]) and do not answer, once no call is left on
    /// them: a node taken out of service leaves `/healthz` by itself, and
    /// is taken up again if it registers again.
    fn let_go_quiet<'a>(&self, quiet: impl Iterator<Item = &'a str>) {
        for name in quiet {
            let Some(index) = self.index_of(name) else { continue };
            let Some(entry) = self.entry(index).filter(|e| e.registered) else { continue };
            let handle = &entry.handle;
            let RelayHandle::Node(node) = handle else { continue };
            let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let holds_calls = rooms.values().any(|p| p.relay == index);
            drop(rooms);
            if handle.is_retired() || handle.status().is_some() || holds_calls {
                continue;
            }
            node.retire();
            tracing::info!(%name, url = %node.url, "a registered relay node went quiet: no longer listed");
        }
    }

    async fn refresh_regions(&self, store: &Store) {
        match store.regions().await {
            Ok(regions) => {
                // Placement is in the relays' terms: a region is the string a node registered with.
                let tree = regions
                    .into_iter()
                    .map(|r| (r.id.into_string(), r.parent_id.map(String::from)))
                    .collect();
                *self.inner.regions.write().unwrap_or_else(|e| e.into_inner()) = tree;
            }
            Err(error) => tracing::warn!(%error, "cannot read the regions for relay placement"),
        }
    }

    /// Every relay, in order (an index names one for good).
    pub fn entries(&self) -> Vec<Arc<RelayEntry>> {
        self.inner.relays.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The relay named `name` now (a node that moved is the last of its name).
    fn index_of(&self, name: &str) -> Option<usize> {
        self.inner.relays.read().unwrap_or_else(|e| e.into_inner()).iter().rposition(|r| r.name == name)
    }

    /// The name of relay `index`.
    pub fn name(&self, index: usize) -> Option<String> {
        self.inner.relays.read().unwrap_or_else(|e| e.into_inner()).get(index).map(|r| r.name.clone())
    }

    fn entry(&self, index: usize) -> Option<Arc<RelayEntry>> {
        self.inner.relays.read().unwrap_or_else(|e| e.into_inner()).get(index).cloned()
    }

    pub fn handle(&self, index: usize) -> Option<RelayHandle> {
        self.entry(index).map(|r| r.handle.clone())
    }

    /// Indexes of relay nodes as they stop answering.
    pub fn lost(&self) -> broadcast::Receiver<usize> {
        self.inner.lost.subscribe()
    }

    /// Places `room` (a new consultation's, of a terminal in `region`) on the
    /// best relay now, replacing any earlier placement: one that answers, is
    /// not draining and has room to spare; in `region`, else in the nearest
    /// region above it, else one that serves anywhere, else any other; then
    /// the least loaded.
    pub fn place(&self, room: &RoomId, region: Option<&str>) -> Result<usize, NoRelay> {
        self.place_as(room, region, true)
    }

    fn place_as(&self, room: &RoomId, region: Option<&str>, pinned: bool) -> Result<usize, NoRelay> {
        let chain = self.region_chain(region);
        let relays = self.entries();
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        // Not counted against the relay it is on now; kept there if nothing can take it.
        let was = rooms.remove(room);
        let best = Self::open_to_new_rooms(&relays, &rooms)
            .map(|(index, load)| {
                let distance = match &relays[index].region {
                    Some(r) => chain.iter().position(|c| c == r).unwrap_or(chain.len() + 1),
                    None => chain.len(),
                };
                (distance, load, index)
            })
            .min()
            .map(|(_, _, index)| index);
        let Some(best) = best else {
            if let Some(was) = was {
                // A consultation's room stays pinned, so that it is retried ([`Relays::stranded`]).
                rooms.insert(room.clone(), Placement { pinned: pinned || was.pinned, ..was });
            }
            return Err(NoRelay);
        };
        let joined = was.map_or(0, |p| p.joined);
        rooms.insert(room.clone(), Placement { relay: best, pinned, joined });
        Ok(best)
    }

    /// The relays that can take a new room (they answer, are not draining and
    /// are not full), each with its load as millionths of its capacity: the
    /// rooms placed on it here, or the rooms it reports, whichever is more.
    fn open_to_new_rooms<'a>(
        relays: &'a [Arc<RelayEntry>],
        rooms: &HashMap<RoomId, Placement>,
    ) -> impl Iterator<Item = (usize, u64)> + 'a {
        let mut placed = vec![0u64; relays.len()];
        for p in rooms.values() {
            placed[p.relay] += 1;
        }
        relays.iter().enumerate().filter_map(move |(index, relay)| {
            let status = relay.handle.status()?;
            let max = u64::from(status.max_rooms).max(1);
            let load = placed[index].max(status.rooms);
            (!status.draining && load < max && relay.handle.is_running())
                .then_some((index, load * 1_000_000 / max))
        })
    }

    /// The relay `room` is on, placing it (with no region) when it is on none:
    /// a room an operator's token names, or one whose relay was lost.
    pub fn relay_for(&self, room: &RoomId) -> Result<(usize, RelayHandle), NoRelay> {
        let index = match self.placement(room) {
            Some(index) => index,
            None => self.place_as(room, None, false)?,
        };
        Ok((index, self.handle(index).ok_or(NoRelay)?))
    }

    /// Places `room` on the relay named `name`, as another signaling node
    /// placed it (its room token says where); kept here only while
    /// participants of this server are in it, unless this server placed it.
    pub fn follow(&self, room: &RoomId, name: &str) -> Result<usize, NoRelay> {
        let index = self.index_of(name).ok_or(NoRelay)?;
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.entry(room.clone()).and_modify(|p| p.relay = index).or_insert(Placement {
            relay: index,
            pinned: false,
            joined: 0,
        });
        Ok(index)
    }

    /// Relays that do not answer but still hold consultations (nothing could
    /// take them when their relay went down): their calls should move as
    /// soon as some relay can take them.
    pub fn stranded(&self) -> Vec<usize> {
        let relays = self.entries();
        let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let mut stranded: Vec<usize> = rooms
            .values()
            .filter(|p| p.pinned && relays.get(p.relay).is_some_and(|r| !r.handle.is_running()))
            .map(|p| p.relay)
            .collect();
        stranded.sort_unstable();
        stranded.dedup();
        stranded
    }

    /// Where `room` is, if anywhere.
    pub fn placement(&self, room: &RoomId) -> Option<usize> {
        self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner()).get(room).map(|p| p.relay)
    }

    /// A participant of this server joined `room`.
    pub fn joined(&self, room: &RoomId) {
        if let Some(p) = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner()).get_mut(room) {
            p.joined += 1;
        }
    }

    /// A participant of this server left `room` (or the relay let it go): an
    /// operator's room that nobody here is in any more is forgotten.
    pub fn left(&self, room: &RoomId) {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = rooms.get_mut(room) {
            p.joined = p.joined.saturating_sub(1);
            if !p.pinned && p.joined == 0 {
                rooms.remove(room);
            }
        }
    }

    /// Opens `room` on the relay it is placed on.
    pub async fn open_room(&self, room: &RoomId) -> Result<(), SessionError> {
        let (_, relay) = self.relay_for(room).map_err(|e| SessionError::Refused(e.to_string()))?;
        relay.open_room(room).await
    }

    /// Closes `room` (everyone in it gets `rtc.closed`) and forgets it.
    pub async fn close_room(&self, room: &RoomId) -> Result<(), SessionError> {
        let index = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner()).remove(room).map(|p| p.relay);
        match index.and_then(|i| self.handle(i)) {
            // Never opened (nobody joined) is closed already.
            Some(relay) => match relay.close_room(room).await {
                Err(SessionError::NoSuchRoom) => Ok(()),
                result => result,
            },
            None => Ok(()),
        }
    }

    /// The terminal's region and the regions above it, nearest first.
    fn region_chain(&self, region: Option<&str>) -> Vec<String> {
        let tree = self.inner.regions.read().unwrap_or_else(|e| e.into_inner());
        let mut chain = Vec::new();
        let mut next = region.map(str::to_owned);
        while let Some(r) = next {
            if chain.contains(&r) {
                break; // a cycle would be a data error; never loop on it
            }
            next = tree.get(&r).cloned().flatten();
            chain.push(r);
        }
        chain
    }

    /// True when some relay can take a new room.
    pub fn can_place(&self) -> bool {
        let relays = self.entries();
        let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        Self::open_to_new_rooms(&relays, &rooms).next().is_some()
    }

    /// Stops the in-process relay, or stops talking to the nodes.
    pub async fn shutdown(&self) {
        for task in self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            task.abort();
        }
        for relay in self.entries() {
            relay.handle.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_relay::RelayConfig;

    async fn local(name: &str, region: Option<&str>, max_rooms: u32) -> RelayEntry {
        let config =
            RelayConfig { udp_listen: "127.0.0.1:0".parse().unwrap(), max_rooms, ..RelayConfig::default() };
        let handle = RelayHandle::Local(Relay::start(config).await.unwrap());
        RelayEntry { name: name.into(), region: region.map(str::to_owned), handle, registered: false }
    }

    /// Relays over `entries`, with a region tree: county ⊂ prefecture ⊂ province.
    fn relays(entries: Vec<RelayEntry>) -> Relays {
        let tree = [
            ("county", Some("prefecture")),
            ("prefecture", Some("province")),
            ("province", None),
            ("elsewhere", None),
        ]
        .into_iter()
        .map(|(id, parent)| (id.to_owned(), parent.map(str::to_owned)))
        .collect();
        Relays {
            inner: Arc::new(RelaysInner {
                relays: RwLock::new(entries.into_iter().map(Arc::new).collect()),
                rooms: Mutex::default(),
                regions: RwLock::new(tree),
                lost: broadcast::channel(4).0,
                tasks: Mutex::default(),
            }),
        }
    }

    fn name(relays: &Relays, index: usize) -> String {
        relays.name(index).unwrap()
    }

    #[tokio::test]
    async fn rooms_go_to_the_nearest_region_with_room_then_the_least_loaded() {
        let relays = relays(vec![
            local("other-region", Some("elsewhere"), 10).await,
            local("anywhere", None, 10).await,
            local("prefecture", Some("prefecture"), 10).await,
            local("county", Some("county"), 2).await,
        ]);
        // The terminal's own region first, until it is full.
        assert_eq!(name(&relays, relays.place(&"a".into(), Some("county")).unwrap()), "county");
        assert_eq!(name(&relays, relays.place(&"b".into(), Some("county")).unwrap()), "county");
        // Full: the region above.
        assert_eq!(name(&relays, relays.place(&"c".into(), Some("county")).unwrap()), "prefecture");
        // A terminal in a region no relay serves: one that serves anywhere.
        assert_eq!(name(&relays, relays.place(&"d".into(), Some("unknown")).unwrap()), "anywhere");
        // No region at all (an operator's room): anywhere, before other regions.
        assert_eq!(name(&relays, relays.place(&"e".into(), None).unwrap()), "anywhere");
        // Placing again replaces the earlier placement, and a closed room frees its place.
        relays.close_room(&"a".into()).await.unwrap();
        assert_eq!(relays.placement(&"a".into()), None);
        assert_eq!(name(&relays, relays.place(&"f".into(), Some("county")).unwrap()), "county");
        assert_eq!(relays.relay_for(&"f".into()).unwrap().0, relays.placement(&"f".into()).unwrap());
    }

    #[tokio::test]
    async fn an_operators_room_is_forgotten_when_its_last_participant_leaves_a_consultations_is_kept() {
        let relays = relays(vec![local("one", None, 10).await]);
        relays.relay_for(&"operator".into()).unwrap();
        relays.joined(&"operator".into());
        relays.joined(&"operator".into());
        relays.left(&"operator".into());
        assert!(relays.placement(&"operator".into()).is_some(), "one participant is still in it");
        relays.left(&"operator".into());
        assert_eq!(relays.placement(&"operator".into()), None, "no load left behind");
        relays.place(&"consultation".into(), None).unwrap();
        relays.joined(&"consultation".into());
        relays.left(&"consultation".into());
        assert!(relays.placement(&"consultation".into()).is_some(), "kept until the consultation ends");
        relays.close_room(&"consultation".into()).await.unwrap();
        assert_eq!(relays.placement(&"consultation".into()), None);
    }

    #[tokio::test]
    async fn draining_and_full_relays_take_no_new_room_and_equals_share_the_load() {
        let relays = relays(vec![
            local("one", None, 10).await,
            local("two", None, 10).await,
            local("full", None, 1).await,
        ]);
        let mut counts: HashMap<String, u32> = HashMap::new();
        for i in 0..6 {
            *counts
                .entry(name(&relays, relays.place(&format!("r{i}").into(), None).unwrap()).to_owned())
                .or_insert(0) += 1;
        }
        // "full" took one (it was emptiest at first), then the other two shared.
        assert_eq!(counts["full"], 1, "{counts:?}");
        assert!(counts["one"].abs_diff(counts["two"]) <= 1, "{counts:?}");
        let RelayHandle::Local(two) = &relays.entries()[1].handle else { unreachable!() };
        two.drain();
        for i in 6..10 {
            assert_eq!(name(&relays, relays.place(&format!("r{i}").into(), None).unwrap()), "one");
        }
        relays.open_room(&"r9".into()).await.unwrap();
        let RelayHandle::Local(one) = &relays.entries()[0].handle else { unreachable!() };
        one.drain();
        assert_eq!(relays.place(&"last".into(), None), Err(NoRelay));
        assert!(!relays.can_place());
        // A draining relay still opens a room it has (a participant rejoining), and no other.
        assert!(relays.open_room(&"r9".into()).await.is_ok());
        assert!(matches!(relays.open_room(&"r8".into()).await, Err(SessionError::Draining)));
    }

    #[tokio::test]
    async fn a_call_nothing_can_take_stays_on_its_dead_relay_and_is_listed_as_stranded() {
        let relays = relays(vec![local("one", None, 10).await, local("two", None, 10).await]);
        let on_one = relays.place(&"call".into(), None).unwrap();
        let RelayHandle::Local(other) = &relays.entries()[1 - on_one].handle else { unreachable!() };
        other.drain();
        relays.relay_for(&"operator".into()).unwrap();
        assert!(relays.stranded().is_empty());
        relays.entries()[on_one].handle.shutdown().await;
        // Nothing else can take it: it stays where it was, to move later.
        assert_eq!(relays.place(&"call".into(), None), Err(NoRelay));
        assert_eq!(relays.placement(&"call".into()), Some(on_one));
        assert_eq!(relays.stranded(), vec![on_one], "an operator's room does not count");
    }

    #[tokio::test]
    async fn a_call_placed_by_a_join_is_listed_as_stranded_once_it_cannot_move() {
        let relays = relays(vec![local("one", None, 10).await]);
        // Placed when a participant joined (placing it at the start had failed): not pinned.
        relays.relay_for(&"call".into()).unwrap();
        relays.entries()[0].handle.shutdown().await;
        assert!(relays.stranded().is_empty());
        // The move after the relay was lost fails: from now on it is a consultation's room.
        assert_eq!(relays.place(&"call".into(), None), Err(NoRelay));
        assert_eq!(relays.stranded(), vec![0]);
    }
}
