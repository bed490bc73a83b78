//! `media-relay`: a standalone relay node.
//!
//! Thin on purpose: everything lives in the library (`media_relay::node`). This
//! binary parses flags, starts the node, and stops it (draining) on SIGINT or
//! SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use media_relay::RelayConfig;
use media_relay::node::{self, NodeConfig, RegisterAs};

// Each forwarded packet takes a few short-lived buffers (decrypted, encrypted,
// its header's extensions); mimalloc's per-thread pages make that cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Engines, each carrying its own rooms on a core: 0, one per core the
    /// node may use (`taskset` or a container's CPU limit counts).
    #[arg(long, env = "MEDIA_RELAY_ENGINES", default_value_t = RelayConfig::default().engines)]
    engines: u32,
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
    if !args.register_at.is_empty() && (args.name.is_none() || args.control_token.is_none()) {
        anyhow::bail!("--register-at needs --name and --control-token");
    }
    let config = NodeConfig {
        relay: RelayConfig {
            udp_listen: args.udp,
            public_ip: args.public_ip,
            max_rooms: args.max_rooms,
            max_participants_per_room: args.max_participants_per_room,
            engines: args.engines,
            ..RelayConfig::default()
        },
        control_token: args.control_token,
        drain: std::time::Duration::from_secs(args.drain_secs),
        register: args.name.filter(|_| !args.register_at.is_empty()).map(|name| {
            (args.register_at, RegisterAs { name, region_id: args.region, control_url: args.control_url })
        }),
    };
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.http))?;
    let node = node::start(config, listener).await?;
    node.serve(shutdown_signal).await?;
    Ok(())
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
