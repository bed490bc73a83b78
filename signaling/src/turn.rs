//! TURN for networks that block UDP: a TURN server (coturn, in its "TURN REST
//! API" mode with `use-auth-secret`) relays a browser's media over TCP or TLS
//! to the relay's UDP port. Signaling hands each participant short-lived
//! credentials derived from the secret it shares with the TURN server:
//! username `<expiry unix time>:<participant>`, password
//! `base64(HMAC-SHA1(secret, username))`. Nothing is stored; the TURN server
//! checks the expiry and the MAC.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// `[turn]` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// TURN URLs handed to browsers, e.g. `turns:turn.example.org:443?transport=tcp`.
    /// Empty: no TURN.
    pub urls: Vec<String>,
    /// The TURN server's `static-auth-secret`.
    #[serde(serialize_with = "crate::password::serialize_secret_opt")]
    pub secret: Option<SecretString>,
    /// How long handed-out credentials stay valid (a call that outlasts them
    /// keeps its allocation; only new allocations need fresh ones).
    pub ttl_secs: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self { urls: Vec::new(), secret: None, ttl_secs: 4 * 3600 }
    }
}

impl TurnConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.urls.is_empty() {
            return Ok(());
        }
        if self.secret.as_ref().is_none_or(|s| s.expose_secret().len() < 16) {
            return Err(
                "turn.urls needs turn.secret (the TURN server's static-auth-secret, 16 characters or more)"
                    .into(),
            );
        }
        if let Some(url) = self.urls.iter().find(|u| !(u.starts_with("turn:") || u.starts_with("turns:"))) {
            return Err(format!("turn.urls: {url:?} is not a turn: or turns: URL"));
        }
        if !(60..=7 * 24 * 3600).contains(&self.ttl_secs) {
            return Err("turn.ttl_secs must be between 60 and 604800".into());
        }
        Ok(())
    }
}

/// An entry of a browser's `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// The TURN server entry for `participant` at `now`, when TURN is configured.
pub fn ice_server(config: &TurnConfig, participant: &str, now: i64) -> Option<IceServer> {
    let secret = config.secret.as_ref()?;
    if config.urls.is_empty() {
        return None;
    }
    let username = format!("{}:{participant}", now + config.ttl_secs as i64);
    Some(IceServer {
        urls: config.urls.clone(),
        credential: credential(secret.expose_secret(), &username),
        username,
    })
}

fn credential(secret: &str, username: &str) -> String {
    use base64::Engine as _;
    // HMAC accepts a key of any length.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TurnConfig {
        TurnConfig {
            urls: vec!["turn:127.0.0.1:3478?transport=tcp".into()],
            secret: Some(SecretString::from("north-of-the-river-2026".to_owned())),
            ttl_secs: 3600,
        }
    }

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        let server = ice_server(&config(), "lawyer-1", 1_800_000_000).unwrap();
        assert_eq!(server.username, "1800003600:lawyer-1");
        // base64(HMAC-SHA1("north-of-the-river-2026", "1800003600:lawyer-1")), computed independently.
        assert_eq!(server.credential, "yOQCP3/DXwoWYXp+SQafLEbDHBc=");
        assert_eq!(server.urls, config().urls);
    }

    #[test]
    fn no_turn_without_urls_and_bad_settings_are_named() {
        assert_eq!(ice_server(&TurnConfig::default(), "x", 0), None);
        assert_eq!(TurnConfig::default().validate(), Ok(()));
        assert!(TurnConfig { secret: None, ..config() }.validate().unwrap_err().contains("turn.secret"));
        let bad_url = TurnConfig { urls: vec!["http://x".into()], ..config() };
        assert!(bad_url.validate().unwrap_err().contains("not a turn"));
        assert!(TurnConfig { ttl_secs: 5, ..config() }.validate().unwrap_err().contains("ttl_secs"));
        assert_eq!(config().validate(), Ok(()));
    }
}
