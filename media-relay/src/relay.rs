//! The running relay.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::RelayConfig;
use crate::engine::{Command, Engine, Reply};
use crate::ids::RoomId;
use crate::room::Policy;
use crate::routes::Router;
use crate::session::{Answered, Call, Calls, Grant, NotForwarded, PeerEvent, SessionError};

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("invalid relay configuration: {0}")]
    Config(String),
    #[error("cannot bind the relay's UDP port {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a relay engine: {0}")]
    Engine(#[source] std::io::Error),
}

/// A snapshot of what the relay is doing, for `/healthz` and `/metrics`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RelayStatus {
    /// The UDP address media arrives on.
    pub udp_addr: SocketAddr,
    /// The address browsers are told to send media to.
    pub advertised_ip: IpAddr,
    pub rooms: u64,
    pub max_rooms: u32,
    pub participants: u64,
    pub datagrams_received: u64,
    pub bytes_received: u64,
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    pub keyframe_requests: u64,
    /// Datagrams from addresses no peer connection knows.
    pub datagrams_unrouted: u64,
    /// Datagrams the socket could not take (its buffer was full).
    pub send_drops: u64,
    /// Datagrams read but dropped because their engine was too far behind.
    #[serde(default)]
    pub input_drops: u64,
    /// Engines (each on a core of its own when the machine has them).
    #[serde(default)]
    pub engines: u32,
    /// Participants whose forwarded media their peer connection encrypts and
    /// sends, not the relay itself (it could not use their SRTP keys: an
    /// AES-256 profile, or keys that failed their check). Slower, not broken.
    #[serde(default)]
    pub forwarding_fallbacks: u64,
    /// Media packets the relay decrypted itself, not through a peer
    /// connection's pipeline (all but the first of each stream, normally).
    #[serde(default)]
    pub packets_received_directly: u64,
    /// Packets not forwarded, by reason ([`crate::session::NotForwarded`]): one
    /// count per receiver that did not get a media packet, except
    /// `refused_track` (one per packet of a refused track, for nobody) and
    /// `send_buffer_full` (one per datagram of any kind, as `send_drops`).
    #[serde(default)]
    pub not_forwarded: BTreeMap<String, u64>,
    /// Draining ([`Relay::drain`]): no new rooms; the open ones finish.
    #[serde(default)]
    pub draining: bool,
}

/// One engine's counts (each engine its own, so that counting a packet never
/// waits for another core's cache line); [`Relay::status`] adds them up.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Counters {
    pub(crate) participants_joined: AtomicU64,
    pub(crate) participants_left: AtomicU64,
    pub(crate) datagrams_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) packets_forwarded: AtomicU64,
    pub(crate) bytes_forwarded: AtomicU64,
    pub(crate) keyframe_requests: AtomicU64,
    pub(crate) datagrams_unrouted: AtomicU64,
    pub(crate) send_drops: AtomicU64,
    pub(crate) input_drops: AtomicU64,
    pub(crate) forwarding_fallbacks: AtomicU64,
    pub(crate) packets_received_directly: AtomicU64,
    pub(crate) not_forwarded: [AtomicU64; NotForwarded::ALL.len()],
}

impl Counters {
    pub(crate) fn not_forwarded(&self, reason: NotForwarded, packets: u64) {
        self.not_forwarded[reason.index()].fetch_add(packets, Ordering::Relaxed);
    }
}

/// Commands queued to an engine before callers wait.
const COMMAND_QUEUE: usize = 1024;

/// A running relay. Cheap to clone; the engines stop when
/// [`Relay::shutdown`] is called or the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RelayConfig,
    udp_addr: SocketAddr,
    /// Rooms open, over all engines (the limit is the relay's).
    open_rooms: Arc<AtomicU64>,
    /// Each engine's.
    counters: Vec<Arc<Counters>>,
    /// One queue per engine; a room's commands go to the engine it lives on
    /// ([`crate::routes::engine_of`]).
    commands: Vec<mpsc::Sender<Command>>,
    stop: watch::Sender<bool>,
    /// The engines.
    engines: std::sync::Mutex<Vec<EngineThread>>,
    draining: std::sync::atomic::AtomicBool,
}

impl Relay {
    /// Validates the configuration, binds the UDP port and starts the
    /// engines and the socket's reader.
    pub async fn start(config: RelayConfig) -> Result<Self, RelayError> {
        config.validate().map_err(RelayError::Config)?;
        let engines = config.engine_count();
        let bind_error = |source| RelayError::Bind { addr: config.udp_listen, source };
        let sockets = crate::udp::bind(config.udp_listen, engines).map_err(bind_error)?;
        let udp_addr = sockets[0].local_addr().map_err(bind_error)?;
        let advertised = SocketAddr::new(config.public_ip.unwrap_or(udp_addr.ip()), udp_addr.port());
        let policy = Policy {
            max_participants: config.max_participants_per_room as usize,
            max_tracks_per_participant: config.max_tracks_per_participant as usize,
            ..Policy::default()
        };
        let open_rooms = Arc::new(AtomicU64::new(0));
        let limits = crate::engine::Limits {
            max_rooms: config.max_rooms as usize,
            open_rooms: Arc::clone(&open_rooms),
            consent_timeout: std::time::Duration::from_secs(config.consent_timeout_secs),
        };
        let router = Arc::new(Router::default());
        let (stop, stopped) = watch::channel(false);
        let (handoffs, handed): (Vec<_>, Vec<_>) =
            (0..engines).map(|_| mpsc::channel(crate::routes::HANDOFF_QUEUE)).unzip();
        let (mut commands, mut threads, mut counters) = (Vec::new(), Vec::new(), Vec::new());
        for ((index, socket), handed) in sockets.into_iter().enumerate().zip(handed) {
            let local_addr = socket.local_addr().map_err(bind_error)?;
            let engine_counters = Arc::new(Counters::default());
            counters.push(Arc::clone(&engine_counters));
            let engine = Engine::new(
                index,
                local_addr,
                Arc::clone(&router),
                handoffs.clone(),
                advertised,
                limits.clone(),
                policy.clone(),
                engine_counters,
            );
            let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
            let stopped = stopped.clone();
            let thread = EngineThread::spawn(
                index,
                move |socket| engine.run(socket, command_rx, handed, stopped),
                socket,
            )
            .map_err(RelayError::Engine)?;
            threads.push(thread);
            commands.push(command_tx);
        }
        tracing::info!(%udp_addr, %advertised, engines, "media relay listening");
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                udp_addr,
                open_rooms,
                counters,
                commands,
                stop,
                engines: std::sync::Mutex::new(threads),
                draining: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The UDP address media arrives on (with the real port when 0 was asked).
    pub fn udp_addr(&self) -> SocketAddr {
        self.inner.udp_addr
    }

    pub fn status(&self) -> RelayStatus {
        let engines = &self.inner.counters;
        let total = |count: fn(&Counters) -> &AtomicU64| -> u64 {
            engines.iter().map(|c| count(c).load(Ordering::Relaxed)).sum()
        };
        let joined = total(|c| &c.participants_joined);
        let left = total(|c| &c.participants_left);
        RelayStatus {
            udp_addr: self.inner.udp_addr,
            advertised_ip: self.inner.config.public_ip.unwrap_or(self.inner.udp_addr.ip()),
            rooms: self.inner.open_rooms.load(Ordering::Relaxed),
            max_rooms: self.inner.config.max_rooms,
            participants: joined.saturating_sub(left),
            datagrams_received: total(|c| &c.datagrams_received),
            bytes_received: total(|c| &c.bytes_received),
            packets_forwarded: total(|c| &c.packets_forwarded),
            bytes_forwarded: total(|c| &c.bytes_forwarded),
            keyframe_requests: total(|c| &c.keyframe_requests),
            datagrams_unrouted: total(|c| &c.datagrams_unrouted),
            send_drops: total(|c| &c.send_drops),
            input_drops: total(|c| &c.input_drops),
            engines: self.inner.commands.len() as u32,
            forwarding_fallbacks: total(|c| &c.forwarding_fallbacks),
            packets_received_directly: total(|c| &c.packets_received_directly),
            not_forwarded: NotForwarded::ALL
                .iter()
                .map(|r| {
                    let count =
                        engines.iter().map(|c| c.not_forwarded[r.index()].load(Ordering::Relaxed)).sum();
                    (r.as_str().to_owned(), count)
                })
                .collect(),
            draining: self.is_draining(),
        }
    }

    /// From now on no new room opens here; the rooms already open go on (and
    /// their participants may rejoin them) until they close. Signaling places
    /// new rooms on other relays when it sees `draining` in the status.
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// True while every engine runs.
    pub fn is_running(&self) -> bool {
        // The std mutex guards only the join handles and is never held across an await.
        match self.inner.engines.lock() {
            Ok(engines) => !engines.is_empty() && engines.iter().all(|e| !e.thread.is_finished()),
            Err(_) => false,
        }
    }

    /// Joins a participant to an open room with what its room token grants.
    /// The relay's first offer arrives on `events` as [`PeerEvent::Offer`];
    /// everything else the relay has to say to this participant follows there.
    pub async fn join(&self, grant: Grant, events: mpsc::Sender<PeerEvent>) -> Result<(), SessionError> {
        let room = grant.room.clone();
        self.ask(&room, |reply| Command::Join { grant, events, reply }).await
    }

    /// Asks the engine `room` lives on.
    async fn ask<T>(
        &self,
        room: &RoomId,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, SessionError> {
        let engines = &self.inner.commands;
        let engine = &engines[crate::routes::engine_of(room, engines.len())];
        let (reply, answer) = oneshot::channel();
        engine.send(command(reply)).await.map_err(|_| SessionError::Stopped)?;
        answer.await.map_err(|_| SessionError::Stopped)?
    }

    /// Closes every peer connection and waits for the engines to end.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let engines = match self.inner.engines.lock() {
            Ok(mut engines) => std::mem::take(&mut *engines),
            Err(_) => Vec::new(),
        };
        for engine in engines {
            // Its sender goes when the thread's runtime ends, done or not.
            let _ = engine.ended.await;
        }
        tracing::info!("media relay stopped");
    }
}

/// An engine on a thread of its own, with a single-threaded runtime: its
/// socket's readiness, its timers and its work stay on one core, and no
/// other task wakes or takes its thread.
#[derive(Debug)]
struct EngineThread {
    thread: std::thread::JoinHandle<()>,
    ended: oneshot::Receiver<()>,
}

impl EngineThread {
    fn spawn<F, R>(index: usize, run: R, socket: std::net::UdpSocket) -> std::io::Result<EngineThread>
    where
        R: FnOnce(tokio::net::UdpSocket) -> F + Send + 'static,
        F: std::future::Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // Registered with this runtime's reactor, so made here, in it.
        let socket = {
            let _in = runtime.enter();
            tokio::net::UdpSocket::from_std(socket)?
        };
        let (done, ended) = oneshot::channel();
        let thread = std::thread::Builder::new().name(format!("relay-engine-{index}")).spawn(move || {
            runtime.block_on(run(socket));
            drop(runtime);
            let _ = done.send(());
        })?;
        Ok(EngineThread { thread, ended })
    }
}

impl Calls for Relay {
    /// Draining, an `open_room` opens no room that is not open already.
    fn call(&self, call: Call) -> impl std::future::Future<Output = Result<Answered, SessionError>> + Send {
        let new_rooms = !self.is_draining();
        let room = call.room().clone();
        async move { self.ask(&room, move |reply| Command::Call { call, new_rooms, reply }).await }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::*;

    fn loopback_config() -> RelayConfig {
        RelayConfig { udp_listen: "127.0.0.1:0".parse().unwrap(), ..RelayConfig::default() }
    }

    #[tokio::test]
    async fn starts_counts_and_stops() {
        let relay = Relay::start(loopback_config()).await.unwrap();
        assert!(relay.is_running());
        assert_ne!(relay.udp_addr().port(), 0);
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"hello", relay.udp_addr()).await.unwrap();
        for _ in 0..100 {
            if relay.status().datagrams_received == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(relay.status().datagrams_received, 1);
        assert_eq!(relay.status().bytes_received, 5);
        relay.shutdown().await;
        assert!(!relay.is_running());
    }

    #[tokio::test]
    async fn occupied_port_is_a_clear_error() {
        let first = Relay::start(loopback_config()).await.unwrap();
        let config = RelayConfig { udp_listen: first.udp_addr(), ..RelayConfig::default() };
        let error = Relay::start(config).await.unwrap_err();
        assert!(error.to_string().contains(&first.udp_addr().to_string()), "{error}");
    }
}
