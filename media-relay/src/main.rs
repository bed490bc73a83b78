//! `media-relay`: a standalone relay node.
//!
//! Thin on purpose: everything lives in the library. This binary parses flags,
//! starts the relay, answers `GET /healthz` on a small HTTP port, and stops on
//! SIGINT or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use clap::Parser;
use media_relay::{Relay, RelayConfig};

/// A Cloud Law Office media relay node.
#[derive(Debug, Parser)]
#[command(name = "media-relay", version)]
struct Args {
    /// UDP address for all participants' media.
    #[arg(long, env = "MEDIA_RELAY_UDP", default_value = "0.0.0.0:7900")]
    udp: SocketAddr,
    /// Address to advertise to browsers behind 1:1 NAT.
    #[arg(long, env = "MEDIA_RELAY_PUBLIC_IP")]
    public_ip: Option<IpAddr>,
    /// HTTP address for `/healthz`.
    #[arg(long, env = "MEDIA_RELAY_HTTP", default_value = "127.0.0.1:7901")]
    http: SocketAddr,
    /// The most rooms this node carries at once.
    #[arg(long, default_value_t = RelayConfig::default().max_rooms)]
    max_rooms: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
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
        ..RelayConfig::default()
    };
    let relay = Relay::start(config).await?;
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.http))?;
    tracing::info!(http = %listener.local_addr()?, "media relay node ready");
    let app = Router::new().route("/healthz", get(healthz)).with_state(relay.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    relay.shutdown().await;
    Ok(())
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
