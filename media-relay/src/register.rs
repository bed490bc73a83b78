//! A standalone node telling signaling that it exists: its name, the region
//! it serves and where its control channel is. Signaling stores this and, on
//! every signaling node, connects to the control channel, from which it reads
//! the node's capacity and load (`status`) as for a configured node.
//!
//! The node registers at start and again every [`EVERY`]; signaling forgets a
//! registration it has not heard again for a minute (a node it already uses
//! stays in use while it answers). The bearer token is the node's control
//! token, which signaling's `relay_registration.token` must equal.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often a node registers again.
pub const EVERY: Duration = Duration::from_secs(10);
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What a node says of itself: `POST /api/relays/register` on signaling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Unique among the deployment's relays: `/healthz` and room tokens name it.
    pub name: String,
    /// The region (id) it serves first; none: anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    /// Where signaling reaches its control channel, e.g. `ws://10.0.0.5:7901/control`.
    pub control_url: String,
}

/// Registers with the first signaling server of `servers` (base URLs, such
/// as `http://10.0.0.11:8080`) that accepts, now and every [`EVERY`], until
/// the task is dropped. Failures are logged, and tried again.
pub async fn run(servers: Vec<String>, registration: Registration, token: String) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => return tracing::error!(%error, "cannot make an HTTP client to register"),
    };
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut registered = false;
    loop {
        every.tick().await;
        let mut failures = Vec::new();
        let mut accepted = None;
        for server in &servers {
            match once(&client, server, &registration, &token).await {
                Ok(()) => {
                    accepted = Some(server);
                    break;
                }
                Err(reason) => failures.push(format!("{server}: {reason}")),
            }
        }
        match accepted {
            Some(server) if !registered => {
                tracing::info!(%server, name = %registration.name, "registered with signaling");
                registered = true;
            }
            Some(_) => {}
            None => {
                tracing::warn!(failures = %failures.join("; "), "cannot register with signaling");
                registered = false;
            }
        }
    }
}

async fn once(
    client: &reqwest::Client,
    server: &str,
    registration: &Registration,
    token: &str,
) -> Result<(), String> {
    let url = format!("{}/api/relays/register", server.trim_end_matches('/'));
    let response =
        client.post(url).bearer_auth(token).json(registration).send().await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(format!("{status}: {}", body.chars().take(200).collect::<String>()))
}
