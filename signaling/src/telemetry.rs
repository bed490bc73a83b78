//! Logging: readable lines by default, one JSON object per line on request.
//! `RUST_LOG` overrides the configured filter.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How the server logs (`[log]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `signaling=debug,info`. `RUST_LOG`
    /// overrides it when set. By default `info`, the WebRTC crates `warn`
    /// ([`media_relay::DEFAULT_LOG_FILTER`]).
    pub filter: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, filter: media_relay::DEFAULT_LOG_FILTER.into() }
    }
}

/// Installs the global subscriber. Calling it twice (as tests may) is harmless.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}
