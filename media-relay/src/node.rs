//! A standalone relay node: the relay, `GET /healthz` and the control channel
//! (`GET /control`, see [`crate::control`]) on one small HTTP port, the
//! registration with signaling when asked, and the drain on the way out.
//! The `media-relay` binary parses its flags into a [`NodeConfig`] and calls
//! [`start`] then [`Node::serve`]; tests and benchmarks start nodes the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use tokio::net::TcpListener;

use crate::control::{self, ControlState};
use crate::register::Registration;
use crate::{Relay, RelayConfig, RelayError};

/// Everything a node is given.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub relay: RelayConfig,
    /// The bearer token signaling presents on `/control` (at least 16
    /// characters); without it the control channel is off.
    pub control_token: Option<String>,
    /// How long a stopping node waits for its rooms to close.
    pub drain: Duration,
    /// Signaling servers to register with (the first that answers), and
    /// what to say. Needs `control_token`.
    pub register: Option<(Vec<String>, RegisterAs)>,
}

/// What a node registers as; `control_url` defaults to `ws://<http>/control`.
#[derive(Debug, Clone, Default)]
pub struct RegisterAs {
    pub name: String,
    pub region_id: Option<String>,
    pub control_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("the control token must be at least 16 characters")]
    ShortToken,
    #[error("registering needs a control token")]
    RegisterWithoutToken,
    #[error("listening on {0}: give a control URL, the address signaling reaches")]
    NoControlUrl(SocketAddr),
    #[error(transparent)]
    Relay(#[from] RelayError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A started node: its relay runs and its registration (if any) has begun;
/// HTTP is answered once [`Node::serve`] runs.
pub struct Node {
    pub relay: Relay,
    /// Where `/healthz` and `/control` are served.
    pub http: SocketAddr,
    listener: TcpListener,
    app: Router,
    drain: Duration,
    registering: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("http", &self.http).finish_non_exhaustive()
    }
}

/// Starts the relay and, when configured, the registration; HTTP on `listener`.
pub async fn start(config: NodeConfig, listener: TcpListener) -> Result<Node, NodeError> {
    if config.control_token.as_deref().is_some_and(|t| t.len() < 16) {
        return Err(NodeError::ShortToken);
    }
    let http = listener.local_addr()?;
    let registration = match (&config.register, &config.control_token) {
        (Some(_), None) => return Err(NodeError::RegisterWithoutToken),
        (Some((servers, who)), Some(token)) => {
            let control_url = match &who.control_url {
                Some(url) => url.clone(),
                None if http.ip().is_unspecified() => return Err(NodeError::NoControlUrl(http)),
                None => format!("ws://{http}/control"),
            };
            let registration =
                Registration { name: who.name.clone(), region_id: who.region_id.clone(), control_url };
            Some((servers.clone(), registration, token.clone()))
        }
        (None, _) => None,
    };
    let relay = Relay::start(config.relay).await?;
    let registering = registration.map(|(servers, registration, token)| {
        tokio::spawn(crate::register::run(servers, registration, token))
    });
    Ok(Node {
        app: router(relay.clone(), config.control_token.map(Arc::from)),
        relay,
        http,
        listener,
        drain: config.drain,
        registering,
    })
}

/// `/healthz`, and `/control` when there is a token.
pub fn router(relay: Relay, control_token: Option<Arc<str>>) -> Router {
    let control = ControlState { relay: relay.clone(), secret: control_token };
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(relay)
        .merge(Router::new().route("/control", get(control::upgrade)).with_state(control))
}

impl Node {
    /// Serves until `stop()` completes, then drains: no new rooms, and a wait
    /// (at most the configured drain time, or until `stop()` completes again)
    /// for the open ones to close. Then the relay stops.
    pub async fn serve<F, S>(self, stop: S) -> Result<(), NodeError>
    where
        S: Fn() -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let Node { relay, listener, app, drain, registering, .. } = self;
        let draining = relay.clone();
        let first = stop();
        let second = stop();
        tracing::info!(http = %listener.local_addr()?, "media relay node ready");
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                first.await;
                drain_rooms(&draining, drain, second).await;
            })
            .await;
        if let Some(task) = registering {
            task.abort();
        }
        relay.shutdown().await;
        Ok(served?)
    }
}

/// Stops taking new rooms and waits for the open ones to close (or `limit`, or `cut`).
async fn drain_rooms(relay: &Relay, limit: Duration, cut: impl Future<Output = ()>) {
    relay.drain();
    let rooms = relay.status().rooms;
    tracing::info!(
        rooms,
        limit_secs = limit.as_secs(),
        "draining: no new rooms; waiting for the open ones to close"
    );
    let empty = async {
        while relay.status().rooms > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        _ = empty => tracing::info!("drained: no rooms left"),
        _ = tokio::time::sleep(limit) => tracing::warn!(rooms = relay.status().rooms, "drain time is up; stopping with rooms open"),
        _ = cut => tracing::warn!(rooms = relay.status().rooms, "second signal; stopping with rooms open"),
    }
}

async fn healthz(State(relay): State<Relay>) -> (StatusCode, Json<serde_json::Value>) {
    let status = relay.status();
    let code = if relay.is_running() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body =
        serde_json::json!({ "status": if code.is_success() { "ok" } else { "stopped" }, "relay": status });
    (code, Json(body))
}
