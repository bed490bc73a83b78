//! Relay configuration.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// How a relay binds and advertises itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// The one UDP address every participant's media arrives on.
    pub udp_listen: SocketAddr,
    /// The address to advertise to browsers when the relay sits behind 1:1 NAT.
    /// When absent, the bound address is advertised.
    pub public_ip: Option<IpAddr>,
    /// The most rooms (consultations) this relay carries at once.
    pub max_rooms: u32,
    /// The most participants in one room.
    pub max_participants_per_room: u32,
    /// The most tracks one participant may publish (a camera, a microphone,
    /// perhaps a document camera).
    pub max_tracks_per_participant: u32,
    /// Seconds without anything from a participant (media, RTCP or an ICE
    /// consent check) before its consent expires (RFC 7675 says 30): only then
    /// does the relay stop sending to it and call its connection down.
    pub consent_timeout_secs: u64,
    /// Engines: each carries its own rooms and their media, on a core of its
    /// own when there are enough. 0: one per core the relay may use.
    pub engines: u32,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            udp_listen: SocketAddr::from(([127, 0, 0, 1], 7900)),
            public_ip: None,
            max_rooms: 500,
            max_participants_per_room: 6,
            max_tracks_per_participant: 4,
            consent_timeout_secs: 30,
            engines: 0,
        }
    }
}

/// More engines than this would be more threads than any relay machine has cores.
const MAX_ENGINES: u32 = 256;

impl RelayConfig {
    /// How many engines to run: `engines`, or one per core the process may use.
    pub fn engine_count(&self) -> usize {
        match self.engines {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n as usize,
        }
    }

    /// Checks the values that can be wrong; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_rooms == 0 {
            return Err("relay.max_rooms must be at least 1".into());
        }
        if self.max_participants_per_room < 2 {
            return Err("relay.max_participants_per_room must be at least 2".into());
        }
        if self.max_tracks_per_participant == 0 {
            return Err("relay.max_tracks_per_participant must be at least 1".into());
        }
        if self.engines > MAX_ENGINES {
            return Err(format!("relay.engines must be at most {MAX_ENGINES} (0: one per core)"));
        }
        if !(5..=300).contains(&self.consent_timeout_secs) {
            return Err("relay.consent_timeout_secs must be from 5 to 300".into());
        }
        if self.udp_listen.ip().is_unspecified() && self.public_ip.is_none() {
            return Err(format!(
                "relay.udp_listen {} listens on every address: set relay.public_ip to the one browsers reach",
                self.udp_listen
            ));
        }
        if let Some(ip) = self.public_ip
            && ip.is_unspecified()
        {
            return Err(format!("relay.public_ip {ip} is not an address browsers can reach"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(RelayConfig::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_impossible_limits() {
        let config = RelayConfig { max_participants_per_room: 1, ..RelayConfig::default() };
        assert!(config.validate().unwrap_err().contains("max_participants_per_room"));
        let config = RelayConfig { consent_timeout_secs: 2, ..RelayConfig::default() };
        assert!(config.validate().unwrap_err().contains("consent_timeout_secs"));
        let config = RelayConfig { max_rooms: 0, ..RelayConfig::default() };
        assert!(config.validate().unwrap_err().contains("max_rooms"));
        let config = RelayConfig { public_ip: Some("0.0.0.0".parse().unwrap()), ..RelayConfig::default() };
        assert!(config.validate().unwrap_err().contains("public_ip"));
        // Every address, nothing to advertise: browsers would be told 0.0.0.0.
        let config = RelayConfig { udp_listen: "0.0.0.0:7900".parse().unwrap(), ..RelayConfig::default() };
        assert!(config.validate().unwrap_err().contains("relay.public_ip"));
        let config = RelayConfig { public_ip: Some("203.0.113.7".parse().unwrap()), ..config };
        assert_eq!(config.validate(), Ok(()));
    }
}
