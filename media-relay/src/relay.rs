//! The running relay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::RelayConfig;

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
}

/// A snapshot of what the relay is doing, for `/healthz` and `/metrics`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RelayStatus {
    /// The UDP address media arrives on.
    pub udp_addr: SocketAddr,
    /// The address browsers are told to send media to.
    pub advertised_ip: IpAddr,
    pub rooms: u64,
    pub max_rooms: u32,
    pub datagrams_received: u64,
    pub bytes_received: u64,
}

#[derive(Debug, Default)]
struct Counters {
    rooms: AtomicU64,
    datagrams_received: AtomicU64,
    bytes_received: AtomicU64,
}

/// A running relay. Cheap to clone; the UDP task stops when [`Relay::shutdown`]
/// is called or the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RelayConfig,
    udp_addr: SocketAddr,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Relay {
    /// Validates the configuration, binds the UDP port and starts receiving.
    pub async fn start(config: RelayConfig) -> Result<Self, RelayError> {
        config.validate().map_err(RelayError::Config)?;
        let socket = UdpSocket::bind(config.udp_listen)
            .await
            .map_err(|source| RelayError::Bind { addr: config.udp_listen, source })?;
        let udp_addr =
            socket.local_addr().map_err(|source| RelayError::Bind { addr: config.udp_listen, source })?;
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(receive_loop(socket, Arc::clone(&counters), stopped));
        tracing::info!(%udp_addr, "media relay listening");
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                udp_addr,
                counters,
                stop,
                task: std::sync::Mutex::new(Some(task)),
            }),
        })
    }

    /// The UDP address media arrives on (with the real port when 0 was asked).
    pub fn udp_addr(&self) -> SocketAddr {
        self.inner.udp_addr
    }

    pub fn status(&self) -> RelayStatus {
        let c = &self.inner.counters;
        RelayStatus {
            udp_addr: self.inner.udp_addr,
            advertised_ip: self.inner.config.public_ip.unwrap_or(self.inner.udp_addr.ip()),
            rooms: c.rooms.load(Ordering::Relaxed),
            max_rooms: self.inner.config.max_rooms,
            datagrams_received: c.datagrams_received.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// True while the receive task runs.
    pub fn is_running(&self) -> bool {
        // The std mutex guards only the join handle and is never held across an await.
        match self.inner.task.lock() {
            Ok(task) => task.as_ref().is_some_and(|t| !t.is_finished()),
            Err(_) => false,
        }
    }

    /// Stops receiving and waits for the receive task to end.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let task = match self.inner.task.lock() {
            Ok(mut task) => task.take(),
            Err(_) => None,
        };
        if let Some(task) = task {
            let _ = task.await;
        }
        tracing::info!("media relay stopped");
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn receive_loop(socket: UdpSocket, counters: Arc<Counters>, mut stopped: watch::Receiver<bool>) {
    // Large enough for any datagram; media packets are below the path MTU.
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, _from)) => {
                    counters.datagrams_received.fetch_add(1, Ordering::Relaxed);
                    counters.bytes_received.fetch_add(len as u64, Ordering::Relaxed);
                }
                // ICMP port-unreachable and friends surface here on some systems;
                // they concern one peer, never the relay.
                Err(error) => tracing::debug!(%error, "relay receive error"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
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
