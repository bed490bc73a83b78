//! Configuration: one typed struct, from defaults, a TOML file, environment
//! variables and command-line flags (later ones win), validated before anything
//! starts. `config.example.toml` at the repository root documents every key.
//!
//! Environment variables are `CLOUDLAW_<KEY>`, with `__` between nested keys
//! (`CLOUDLAW_LOG__FORMAT=json`, `CLOUDLAW_RELAY__UDP_LISTEN=0.0.0.0:7900`).
//! `DATABASE_URL` is also read, as most operators expect.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use media_relay::RelayConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use crate::auth::AuthConfig;
pub use crate::relay::{RelayNodeConfig, RelayRegistrationConfig};
pub use crate::telemetry::{LogConfig, LogFormat};

/// Everything the server needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP and WebSocket listen address. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the embedded SQLite database and other state live.
    pub data_dir: PathBuf,
    /// A database URL; when absent, SQLite at `<data_dir>/cloudlaw.db`.
    #[serde(serialize_with = "crate::password::serialize_secret_opt")]
    pub database_url: Option<SecretString>,
    /// Seed the demo accounts, region, terminal and duty hours.
    pub demo: bool,
    /// Allow `demo` on an address other than loopback. The demo passwords are
    /// public, so this must be asked for explicitly.
    pub allow_public_demo: bool,
    pub log: LogConfig,
    pub http: crate::http::server::HttpConfig,
    pub auth: AuthConfig,
    pub audit: crate::checkpoints::AuditConfig,
    pub schedule: crate::schedule::ScheduleConfig,
    pub live: crate::live::LiveConfig,
    pub relay: RelayConfig,
    pub relay_node: RelayNodeConfig,
    /// More standalone relay nodes (`[[relay_nodes]]`): each consultation's
    /// room goes to a healthy one in or near its terminal's region.
    pub relay_nodes: Vec<RelayNodeConfig>,
    /// Relay nodes that register themselves (`media-relay --register-at`).
    pub relay_registration: RelayRegistrationConfig,
    pub turn: crate::turn::TurnConfig,
    pub web: crate::web::WebConfig,
    /// Reverse proxies (TLS termination) whose `X-Forwarded-For` names the
    /// client: its address then counts for the limits on guessing and goes
    /// into the audit log. Connections from anywhere else are taken as they come.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The hotline's SIP gateway (`[phone]`), off by default.
    pub phone: crate::phone::PhoneConfig,
    pub retention: crate::retention::RetentionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            demo: false,
            allow_public_demo: false,
            log: LogConfig::default(),
            http: crate::http::server::HttpConfig::default(),
            audit: crate::checkpoints::AuditConfig::default(),
            auth: AuthConfig::default(),
            schedule: Default::default(),
            live: Default::default(),
            relay: RelayConfig::default(),
            relay_node: RelayNodeConfig::default(),
            relay_nodes: Vec::new(),
            relay_registration: RelayRegistrationConfig::default(),
            turn: crate::turn::TurnConfig::default(),
            web: crate::web::WebConfig::default(),
            trusted_proxies: Vec::new(),
            phone: crate::phone::PhoneConfig::default(),
            retention: crate::retention::RetentionConfig::default(),
        }
    }
}

impl<'a> From<&'a Config> for crate::store::Location<'a> {
    fn from(config: &'a Config) -> Self {
        crate::store::Location { database_url: config.database_url.as_ref(), data_dir: &config.data_dir }
    }
}

/// Values given on the command line; `None` leaves the file or environment value.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub demo: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_public_demo: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogOverrides>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogOverrides {
    pub format: LogFormat,
}

/// A configuration problem, in one line that names the file, key or value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads defaults, then `file` (which must exist when given), then the
    /// environment, then `overrides`; then validates.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        // CLOUDLAW_CONFIG names the file itself (a flag's environment form), not a key.
        Self::load_from(file, overrides, Env::prefixed("CLOUDLAW_").ignore(&["config"]).split("__"))
    }

    fn load_from(file: Option<&Path>, overrides: &Overrides, env: Env) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!("config file {}: not found", path.display())));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // DATABASE_URL first so that CLOUDLAW_DATABASE_URL, being more specific, wins.
        figment = figment.merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database_url".into()));
        figment = figment.merge(env);
        figment = figment.merge(Serialized::defaults(overrides));
        let config: Config = figment.extract().map_err(|e| ConfigError(describe_figment_error(e, file)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what can be checked without touching the disk or the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.demo && !self.listen.ip().is_loopback() && !self.allow_public_demo {
            return Err(ConfigError(format!(
                "--demo creates accounts whose passwords are public, so it listens only on loopback; \
                 {} is not loopback (add --allow-public-demo if you really mean it)",
                self.listen
            )));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError("data_dir must not be empty".into()));
        }
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !url.starts_with("sqlite:") && !crate::store::is_postgres_url(url) {
                // Only the scheme is shown: URLs carry passwords.
                let scheme = url.split(':').next().unwrap_or_default();
                return Err(ConfigError(format!(
                    "database_url: unsupported scheme {scheme:?}; use sqlite: or postgres:// URLs"
                )));
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            return Err(ConfigError(format!(
                "log.filter {:?} is not a valid tracing filter",
                self.log.filter
            )));
        }
        self.auth.validate().map_err(ConfigError)?;
        self.schedule.validate().map_err(ConfigError)?;
        self.live.validate().map_err(ConfigError)?;
        self.retention.validate().map_err(ConfigError)?;
        self.relay.validate().map_err(ConfigError)?;
        self.turn.validate().map_err(ConfigError)?;
        self.phone.validate(&self.live.languages).map_err(ConfigError)?;
        match (&self.relay_node.control_url, &self.relay_node.control_token) {
            (None, None) => {}
            (Some(_), Some(_)) => self.relay_node.validate("relay_node").map_err(ConfigError)?,
            _ => return Err(ConfigError("relay_node needs both control_url and control_token".into())),
        }
        for (i, node) in self.relay_nodes.iter().enumerate() {
            node.validate(&format!("relay_nodes[{i}]")).map_err(ConfigError)?;
        }
        if self.relay_registration.token.as_ref().is_some_and(|t| t.expose_secret().len() < 16) {
            return Err(ConfigError("relay_registration.token must be at least 16 characters".into()));
        }
        let mut names = std::collections::HashSet::new();
        for node in self.relay_node_list() {
            if !names.insert(node.display_name()) {
                return Err(ConfigError(format!("two relay nodes are named {:?}", node.display_name())));
            }
        }
        Ok(())
    }

    /// True when signaling uses standalone relay nodes (listed, or
    /// registering themselves) rather than the relay in its own process.
    pub fn uses_relay_nodes(&self) -> bool {
        !self.relay_node_list().is_empty() || self.relay_registration.token.is_some()
    }

    /// Every standalone relay node configured: `relay_node` (when set) and
    /// `relay_nodes`. Empty (and no registration): the relay runs in this process.
    pub fn relay_node_list(&self) -> Vec<RelayNodeConfig> {
        let single = self.relay_node.control_url.is_some().then(|| self.relay_node.clone());
        single.into_iter().chain(self.relay_nodes.iter().cloned()).collect()
    }
}

fn describe_figment_error(error: figment::Error, file: Option<&Path>) -> String {
    let mut parts = Vec::new();
    for e in error {
        let key = e.path.join(".");
        let source = match &e.metadata {
            Some(meta) => {
                meta.source.as_ref().map(|s| s.to_string()).unwrap_or_else(|| meta.name.to_string())
            }
            None => file.map(|p| p.display().to_string()).unwrap_or_else(|| "configuration".into()),
        };
        // TOML syntax errors span several lines with a source excerpt; keep the words.
        let what = e
            .kind
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains('|'))
            .collect::<Vec<_>>()
            .join(": ");
        if key.is_empty() {
            parts.push(format!("{source}: {what}"))
        } else {
            parts.push(format!("{source}: {key}: {what}"))
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_env() -> Env {
        Env::prefixed("CLOUDLAW_TEST_UNUSED_PREFIX_")
    }

    #[test]
    fn example_file_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.example.toml");
        let config = Config::load_from(Some(&example), &Overrides::default(), no_env()).unwrap();
        let defaults = Config::default();
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(config.data_dir, defaults.data_dir);
        assert_eq!(config.log, defaults.log);
        assert_eq!(config.relay, defaults.relay);
        assert_eq!(config.auth, defaults.auth);
        assert_eq!(config.schedule, defaults.schedule);
        assert_eq!(config.demo, defaults.demo);
        assert_eq!(serde_json::to_value(&config.phone).ok(), serde_json::to_value(&defaults.phone).ok());
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load_from(None, &Overrides::default(), no_env()).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap());
        assert!(!config.demo);
    }

    #[test]
    fn file_then_overrides() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\n[log]\nformat = \"json\"")
            .unwrap();
        let overrides = Overrides { listen: Some("127.0.0.1:0".parse().unwrap()), ..Default::default() };
        let config = Config::load_from(Some(file.path()), &overrides, no_env()).unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn malformed_and_unknown_keys_are_named() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "listen = \"not an address\"").unwrap();
        let error = Config::load_from(Some(file.path()), &Overrides::default(), no_env()).unwrap_err();
        assert!(error.to_string().contains("listen"), "{error}");

        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "lisen = \"127.0.0.1:1\"").unwrap();
        let error = Config::load_from(Some(file.path()), &Overrides::default(), no_env()).unwrap_err();
        assert!(error.to_string().contains("lisen"), "{error}");

        let missing = Path::new("/nonexistent/cloudlaw.toml");
        let error = Config::load_from(Some(missing), &Overrides::default(), no_env()).unwrap_err();
        assert!(error.to_string().contains("not found"), "{error}");
    }

    #[test]
    fn demo_refuses_public_address_unless_allowed() {
        let mut overrides =
            Overrides { listen: Some("0.0.0.0:8080".parse().unwrap()), demo: true, ..Default::default() };
        let error = Config::load_from(None, &overrides, no_env()).unwrap_err();
        assert!(error.to_string().contains("--allow-public-demo"), "{error}");
        overrides.allow_public_demo = true;
        assert!(Config::load_from(None, &overrides, no_env()).is_ok());
        overrides.listen = Some("[::1]:8080".parse().unwrap());
        overrides.allow_public_demo = false;
        assert!(Config::load_from(None, &overrides, no_env()).is_ok());
    }

    #[test]
    fn database_url_is_never_echoed() {
        let overrides =
            Overrides { database_url: Some("mysql://admin:hunter2@db/x".into()), ..Default::default() };
        let error = Config::load_from(None, &overrides, no_env()).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.to_string().contains("mysql"), "{error}");
        let config = Config { database_url: Some("sqlite:/x?password=hunter2".into()), ..Config::default() };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn sqlite_and_postgres_urls_are_accepted() {
        for url in ["sqlite:/srv/cloudlaw.db", "postgres://cloudlaw@db/cloudlaw", "postgresql://db/cloudlaw"]
        {
            let overrides = Overrides { database_url: Some(url.into()), ..Default::default() };
            assert!(Config::load_from(None, &overrides, no_env()).is_ok(), "{url}");
        }
    }
}
