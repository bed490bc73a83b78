//! `media-relay`: a standalone relay node.
//!
//! Thin on purpose: everything lives in the library. This binary parses flags,
//! starts the relay, serves `GET /healthz` and the control channel
//! (`GET /control`, see `media_relay::control`) on a small HTTP port, and stops
//! on SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use clap::Parser;
use media_relay::control::{self, ControlState};
use media_relay::{Relay, RelayConfig};

/// A Cloud Law Office media relay node.
#[derive(Debug, Parser)]
#[command(name = "media-relay", version)]
struct Args {
    /// UDP address for all participants' media.
    #[arg(long, env = "MEDIA_RELAY_UDP", default_value = "0.0.0.0:7900")]
    udp: SocketAddr,
    /// Address to advertise to browsers: required with the default 0.0.0.0, and
    /// behind 1:1 NAT.
    #[arg(long, env = "MEDIA_RELAY_PUBLIC_IP")]
    public_ip: Option<IpAddr>,
    /// HTTP address for `/healthz` and the control channel (`/control`).
    #[arg(long, env = "MEDIA_RELAY_HTTP", default_value = "127.0.0.1:7901")]
    http: SocketAddr,
    /// The most rooms this node carries at once.
    #[arg(long, default_value_t = RelayConfig::default().max_rooms)]
    max_rooms: u32,
    /// The most participants in one room.
    #[arg(long, default_value_t = RelayConfig::default().max_participants_per_room)]
    max_participants_per_room: u32,
    /// The bearer token signaling presents on the control channel. Without it
    /// the control channel is off (the node only reports health).
    #[arg(long, env = "MEDIA_RELAY_CONTROL_TOKEN", hide_env_values = true)]
    control_token: Option<String>,
    /// On SIGTERM or Ctrl-C the node drains: it opens no new rooms (signaling
    /// places them elsewhere) and waits, at most this many seconds, for its
    /// rooms to close before it stops. A second signal stops it at once.
    #[arg(long, env = "MEDIA_RELAY_DRAIN_SECS", default_value_t = 900)]
    drain_secs: u64,
    /// Register with signaling at this base URL (e.g. http://10.0.0.11:8080;
    /// comma-separated or repeated for several signaling nodes: the first that
    /// answers takes it), every 10 s: signaling then uses this node without a
    /// `[[relay_nodes]]` entry. Needs --name and --control-token (signaling's
    /// `relay_registration.token`).
    #[arg(long = "register-at", env = "MEDIA_RELAY_REGISTER_AT", value_delimiter = ',')]
    register_at: Vec<String>,
    /// This node's name, unique among the deployment's relays (for registering).
    #[arg(long, env = "MEDIA_RELAY_NAME")]
    name: Option<String>,
    /// The region (id) this node serves first (for registering).
    #[arg(long, env = "MEDIA_RELAY_REGION")]
    region: Option<String>,
    /// Where signaling reaches this node's control channel (for registering;
    /// default: ws://<the --http address>/control).
    #[arg(long, env = "MEDIA_RELAY_CONTROL_URL")]
    control_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs go to standard error (systemd's journal takes both), coloured only
    // on a terminal.
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| media_relay::DEFAULT_LOG_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("media-relay: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = RelayConfig {
        udp_listen: args.udp,
        public_ip: args.public_ip,
        max_rooms: args.max_rooms,
        max_participants_per_room: args.max_participants_per_room,
        ..RelayConfig::default()
    };
    if args.control_token.as_deref().is_some_and(|t| t.len() < 16) {
        anyhow::bail!("the control token must be at least 16 characters");
    }
    if !args.register_at.is_empty() && (args.name.is_none() || args.control_token.is_none()) {
        anyhow::bail!("--register-at needs --name and --control-token");
    }
    let relay = Relay::start(config).await?;
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.http))?;
    let http = listener.local_addr()?;
    tracing::info!(%http, "media relay node ready");
    let _registering = match (&args.name, &args.control_token) {
        (Some(name), Some(token)) if !args.register_at.is_empty() => {
            let control_url = match &args.control_url {
                Some(url) => url.clone(),
                None if http.ip().is_unspecified() => {
                    anyhow::bail!("listening on {http}: give --control-url, the address signaling reaches")
                }
                None => format!("ws://{http}/control"),
            };
            let registration = media_relay::register::Registration {
                name: name.clone(),
                region_id: args.region.clone(),
                control_url,
            };
            Some(AbortOnDrop(tokio::spawn(media_relay::register::run(
                args.register_at.clone(),
                registration,
                token.clone(),
            ))))
        }
        _ => None,
    };
    let control = ControlState { relay: relay.clone(), secret: args.control_token.map(Arc::from) };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .with_state(relay.clone())
        .merge(Router::new().route("/control", get(control::upgrade)).with_state(control));
    let draining = relay.clone();
    let drain_for = std::time::Duration::from_secs(args.drain_secs);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            drain(&draining, drain_for).await;
        })
        .await?;
    relay.shutdown().await;
    Ok(())
}

/// Stops a task when dropped (the registration stops with the node).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Stops taking new rooms and waits for the open ones to close (or `limit`, or
/// another signal).
async fn drain(relay: &Relay, limit: std::time::Duration) {
    relay.drain();
    let rooms = relay.status().rooms;
    tracing::info!(
        rooms,
        limit_secs = limit.as_secs(),
        "draining: no new rooms; waiting for the open ones to close"
    );
    let empty = async {
        while relay.status().rooms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        _ = empty => tracing::info!("drained: no rooms left"),
        _ = tokio::time::sleep(limit) => tracing::warn!(rooms = relay.status().rooms, "drain time is up; stopping with rooms open"),
        _ = shutdown_signal() => tracing::warn!(rooms = relay.status().rooms, "second signal; stopping with rooms open"),
    }
}

async fn healthz(State(relay): State<Relay>) -> (StatusCode, Json<serde_json::Value>) {
    let status = relay.status();
    let code = if relay.is_running() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        code,
        Json(
            serde_json::json!({ "status": if code.is_success() { "ok" } else { "stopped" }, "relay": status }),
        ),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
