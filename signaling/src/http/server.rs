//! The HTTP/1.1 server loop: accepting connections, with the limits that keep
//! a stranger from holding them open.
//!
//! `axum::serve` sets no timer, so a connection that never sends a request,
//! or trickles its headers (slowloris), stayed open for ever. Here:
//! - a request's headers must be complete within [`HttpConfig::header_timeout_secs`]
//!   of the server being ready for them: when the connection opens, and again
//!   when the previous response has gone. So the same bound closes a silent
//!   connection, a slow one, and a keep-alive connection idle between requests;
//! - one client address holds at most [`HttpConfig::max_connections_per_address`]
//!   connections at once (trusted proxies excepted: everyone comes through
//!   them); past that a new connection is closed at once and counted.
//!
//! An upgraded connection (a WebSocket) is the WebSocket's to time out.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// How connections are held (`[http]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a client has to send a request's headers, counted from when the
    /// connection opens or the previous response ends (so also how long a
    /// keep-alive connection may sit idle). Between 1 and 300.
    pub header_timeout_secs: u64,
    /// Connections one client address may hold at once; 0 for no limit.
    /// Addresses in `trusted_proxies` are not limited.
    pub max_connections_per_address: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { header_timeout_secs: 10, max_connections_per_address: 256 }
    }
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One open connection's place in [`PerAddress`]; frees it when dropped.
struct Held {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<PerAddress>, ip: IpAddr, limit: usize) -> Option<Held> {
        let mut open = table.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(ip).or_default();
        if limit > 0 && *count >= limit {
            return None;
        }
        *count += 1;
        Some(Held { table: Arc::clone(table), ip })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open
/// requests finish (connections close after their current response) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &HttpConfig,
    trusted_proxies: &[IpAddr],
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let header_timeout = Duration::from_secs(config.header_timeout_secs.clamp(1, 300));
    let limit = config.max_connections_per_address;
    let table = Arc::new(PerAddress::default());
    // Every connection's task holds a receiver; when all are gone, all are closed.
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let held = if trusted_proxies.contains(&peer.ip()) {
            None
        } else {
            match PerAddress::take(&table, peer.ip(), limit) {
                Some(held) => Some(held),
                None => {
                    crate::metrics::CONNECTIONS_REFUSED.inc();
                    tracing::debug!(%peer, "too many connections from one address; closed");
                    drop(stream);
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let mut stopping = stop_rx.clone();
        tokio::spawn(async move {
            let _held = held;
            let service = TowerToHyperService::new(service);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let mut connection =
                pin!(builder.serve_connection(TokioIo::new(stream), service).with_upgrades());
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, "connection ended");
                    }
                    return;
                }
                _ = stopping.changed() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(());
    drop(stop_rx);
    stop_tx.closed().await;
}
