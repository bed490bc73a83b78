//! The hotline: callers on an ordinary telephone reach the same lawyers.
//!
//! A hotline switch or a carrier's SIP trunk transfers a caller to us
//! ([`sip`]: SIP over UDP and TCP, from configured peers only). What was
//! dialled picks the language, topic and region ([`PhoneConfig::routes`]),
//! or a keypad menu asks. The call then takes a *phone line*, a terminal of
//! channel `phone` in that region, and becomes one more resident: its
//! [`client`] speaks the kiosk's WebSocket protocol to this very server, so it
//! waits in the same queue by the same rules. While it waits it hears hold
//! audio; when a lawyer accepts, its [`bridge`] joins the room as a WebRTC
//! participant, and [`call`] carries sound both ways, every 20 ms: the
//! caller's voice as Opus into the room, the room's other voices decoded,
//! mixed and sent back in the phone's codec ([`rtp`], [`audio`]).

pub mod audio;
pub mod bridge;
pub mod call;
pub mod client;
pub mod lines;
pub mod rtp;
pub mod sdp;
pub mod sip;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::ids::RegionId;

/// `[phone]`: off unless `enabled`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneConfig {
    pub enabled: bool,
    /// SIP over UDP and TCP, on the same address and port.
    pub sip_listen: SocketAddr,
    /// The address calls' RTP is sent from and advertised in SDP (the
    /// unspecified address means the SIP listener's).
    pub media_ip: Option<IpAddr>,
    /// The UDP ports calls' RTP may use, `[first, last]` (one a call), for
    /// the firewall; `[0, 0]`: any the system gives.
    pub rtp_ports: [u16; 2],
    /// Who may send calls: addresses or CIDR blocks (`10.1.0.0/16`). Nobody
    /// else gets past `403`.
    pub peers: Vec<String>,
    /// Digest credentials peers must also present (RFC 8760, MD5 and SHA-256),
    /// when set.
    pub username: Option<String>,
    #[serde(skip_serializing)]
    pub password: Option<SecretString>,
    pub realm: String,
    /// Calls at once; more get `486 Busy Here`.
    pub max_calls: usize,
    /// INVITEs a second from one peer before `503` (a flood guard).
    pub invites_per_second: u32,
    /// What the hold music is: a WAV file, or the built-in chime.
    pub hold_audio: Option<PathBuf>,
    /// Recorded prompts: `<dir>/<language>/<prompt>.wav` (DEPLOYMENT.md lists them).
    pub prompts_dir: PathBuf,
    /// Where a caller nobody can serve is transferred (a SIP URI of the
    /// hotline's own queue); without it they hear so and the call ends.
    pub fallback: Option<String>,
    /// A caller whose call sends no RTP for this long is hung up.
    pub media_timeout_secs: u64,
    /// What the dialled number (the Request-URI's user part) means.
    pub routes: Vec<Route>,
    /// Calling back: the trunk (`host:port`) a lawyer's callback is sent to
    /// as `sip:<number>@<trunk>`; unset, nobody is called back and no number
    /// is kept.
    pub outbound_trunk: Option<String>,
    /// Only numbers starting with one of these may be called back.
    pub outbound_prefixes: Vec<String>,
    /// A caller's number is kept this many days for a callback, then deleted.
    pub callback_days: u32,
}

/// One dialled number: `language` and `topic` are codes, or `ask` for the menu.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub number: String,
    pub language: String,
    pub topic: String,
    pub region: RegionId,
}

pub use crate::live::Asked;

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            enabled: false,
            sip_listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            media_ip: None,
            rtp_ports: [0, 0],
            peers: vec!["127.0.0.1".into()],
            username: None,
            password: None,
            realm: "cloudlaw".into(),
            max_calls: 30,
            invites_per_second: 20,
            hold_audio: None,
            prompts_dir: PathBuf::from("prompts"),
            fallback: None,
            media_timeout_secs: 30,
            routes: Vec::new(),
            outbound_trunk: None,
            outbound_prefixes: Vec::new(),
            callback_days: 30,
        }
    }
}

/// `ask` in a route: the keypad menu asks the caller.
pub const ASK: &str = "ask";

impl PhoneConfig {
    /// Start-up checks that need no I/O.
    pub fn validate(&self, languages: &[String]) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        for peer in &self.peers {
            parse_block(peer).map_err(|e| format!("phone.peers: {e}"))?;
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("phone.username and phone.password go together".into());
        }
        let [first, last] = self.rtp_ports;
        if (first == 0) != (last == 0) || first > last {
            return Err("phone.rtp_ports: [first, last], both 0 for any".into());
        }
        if first != 0 && usize::from(last - first) + 1 < self.max_calls {
            return Err("phone.rtp_ports: at least phone.max_calls ports".into());
        }
        if self.max_calls == 0 {
            return Err("phone.max_calls: at least 1".into());
        }
        if self.routes.is_empty() {
            return Err("phone.routes: at least one number".into());
        }
        for route in &self.routes {
            if route.number.is_empty() || route.number.len() > 64 {
                return Err(format!("phone.routes: number {:?}: 1 to 64 characters", route.number));
            }
            if route.language != ASK && !languages.contains(&route.language) {
                return Err(format!(
                    "phone.routes {}: language {:?} is neither `ask` nor one of live.languages",
                    route.number, route.language
                ));
            }
            if route.topic != ASK && crate::domain::Topic::from_code(&route.topic).is_none() {
                return Err(format!(
                    "phone.routes {}: topic {:?} is neither `ask` nor a topic",
                    route.number, route.topic
                ));
            }
        }
        if let Some(trunk) = &self.outbound_trunk {
            let ok =
                !trunk.is_empty() && trunk.chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c));
            if !ok {
                return Err("phone.outbound_trunk: host:port".into());
            }
            if !(1..=366).contains(&self.callback_days) {
                return Err("phone.callback_days: 1 to 366".into());
            }
            if self.outbound_prefixes.is_empty() {
                return Err("phone.outbound_prefixes: at least one, with phone.outbound_trunk".into());
            }
        }
        if self
            .outbound_prefixes
            .iter()
            .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit() || c == '+'))
        {
            return Err("phone.outbound_prefixes: digits (and +)".into());
        }
        if let Some(fallback) = &self.fallback
            && !fallback.starts_with("sip:")
        {
            return Err("phone.fallback: a sip: URI".into());
        }
        Ok(())
    }

    pub fn route(&self, number: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.number == number)
    }

    /// Whether `ip` is one of the configured peers.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.peers.iter().filter_map(|p| parse_block(p).ok()).any(|(net, bits)| in_block(ip, net, bits))
    }
}

/// `a.b.c.d`, `a.b.c.d/n`, or the IPv6 forms.
fn parse_block(text: &str) -> Result<(IpAddr, u8), String> {
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (text, None),
    };
    let ip: IpAddr =
        address.trim().parse().map_err(|_| format!("{text:?} is not an address or CIDR block"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(bits) => {
            bits.trim().parse::<u8>().ok().filter(|b| *b <= max).ok_or(format!("{text:?}: bad prefix"))?
        }
        None => max,
    };
    Ok((ip, bits))
}

fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl PhoneConfig {
    /// Whether lawyers may call callers back.
    pub fn calls_back(&self) -> bool {
        self.enabled && self.outbound_trunk.is_some()
    }

    /// Whether `number` may be called: digits (a leading +), and one of the allowed prefixes.
    pub fn may_call(&self, number: &str) -> bool {
        let digits = number.strip_prefix('+').unwrap_or(number);
        (3..=20).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && self.outbound_prefixes.iter().any(|p| number.starts_with(p.as_str()))
    }
}

/// A number as people may see it: a mobile number's first three and last
/// four digits (`138****5678`, as Chinese services show them); anything
/// shorter (a landline) only its last two.
pub fn mask_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
    let n = digits.len();
    if n >= 11 {
        let head: String = digits[..3].iter().collect();
        let tail: String = digits[n - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if n >= 3 {
        let tail: String = digits[n - 2..].iter().collect();
        format!("{}{tail}", "*".repeat(n - 2))
    } else {
        "****".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbers_with_an_allowed_prefix_may_be_called() {
        let config = PhoneConfig {
            enabled: true,
            outbound_trunk: Some("10.0.0.20:5060".into()),
            outbound_prefixes: vec!["13".into(), "+8613".into()],
            ..PhoneConfig::default()
        };
        assert!(config.calls_back());
        assert!(config.may_call("13812345678"));
        assert!(config.may_call("+8613812345678"));
        assert!(!config.may_call("110"), "an emergency number is not a callback");
        assert!(!config.may_call("14812345678"));
        assert!(!config.may_call("13812345678@evil"));
        assert!(!config.may_call("13"));
        assert!(!PhoneConfig::default().calls_back());
    }

    #[test]
    fn numbers_are_masked() {
        assert_eq!(mask_number("13812345678"), "138****5678");
        assert_eq!(mask_number("+8613812345678"), "+86****5678");
        assert_eq!(mask_number("sip-user"), "****");
        assert_eq!(mask_number("12348"), "***48");
        assert_eq!(mask_number("87654321"), "******21", "a landline shows little");
    }

    #[test]
    fn peers_are_addresses_or_blocks() {
        let config = PhoneConfig {
            peers: vec!["127.0.0.1".into(), "10.1.0.0/16".into(), "::1".into()],
            ..PhoneConfig::default()
        };
        assert!(config.allows("127.0.0.1".parse().unwrap()));
        assert!(!config.allows("127.0.0.2".parse().unwrap()));
        assert!(config.allows("10.1.200.3".parse().unwrap()));
        assert!(!config.allows("10.2.0.1".parse().unwrap()));
        assert!(config.allows("::1".parse().unwrap()));
        assert!(config.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(parse_block("10.0.0.0/33").is_err());
        assert!(parse_block("example.org").is_err());
    }

    #[test]
    fn routes_are_checked_against_the_deployments_languages() {
        let languages = vec!["bo".to_owned(), "zh".to_owned()];
        let route = |language: &str, topic: &str| Route {
            number: "bo-land".into(),
            language: language.into(),
            topic: topic.into(),
            region: "r".into(),
        };
        let config = |routes| PhoneConfig { enabled: true, routes, ..PhoneConfig::default() };
        assert!(config(vec![route("bo", "land")]).validate(&languages).is_ok());
        assert!(config(vec![route("ask", "ask")]).validate(&languages).is_ok());
        assert!(config(vec![route("fr", "land")]).validate(&languages).is_err());
        assert!(config(vec![route("bo", "taxes")]).validate(&languages).is_err());
        assert!(config(vec![]).validate(&languages).is_err());
        assert!(PhoneConfig::default().validate(&languages).is_ok(), "off: nothing to check");
    }
}
