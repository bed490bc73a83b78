//! Who is calling, and what they may do.
//!
//! - [`tokens`]: issuing and verifying signed tokens.
//! - [`limiter`]: counting failed attempts per account and per address.
//! - [`Principal`]: the authenticated caller of a request or WebSocket, found by
//!   [`authenticate`] from a bearer token and checked against the database on
//!   every use (a revoked session, a deactivated account or a revoked terminal
//!   stops working at once, not when its token expires).

pub mod limiter;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};

use crate::domain::Role;
use crate::ids::{AccountId, RegionId, TerminalId};
use crate::store::{AccountRecord, Store, StoreError, TerminalRecord};
use crate::unix_now;
use limiter::FailureLimiter;
use tokens::{TokenKind, Tokens};

/// Why a caller is turned away (the HTTP layer maps it to 401 or 403).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No valid credential.
    #[error("not authenticated")]
    Unauthenticated,
    /// A valid caller, not allowed this.
    #[error("not allowed")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tokens, sessions and the limits on guessing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `iss` of every token this deployment issues and accepts.
    pub issuer: String,
    /// `aud` of every token this deployment issues and accepts.
    pub audience: String,
    /// Access token lifetime, at most 900 (15 minutes).
    pub access_ttl_secs: u64,
    /// How long a login lasts without signing in again (refresh tokens).
    pub session_ttl_secs: u64,
    /// How long a terminal's enrollment code stays usable.
    pub enrollment_code_ttl_secs: u64,
    /// How long a terminal's device credential lasts.
    pub device_ttl_secs: u64,
    /// The window over which failed attempts are counted.
    pub failure_window_secs: u64,
    /// Failed logins per account within the window before further tries are refused.
    pub max_failed_logins_per_account: u32,
    /// Failed logins or enrollments per client address within the window.
    pub max_failures_per_address: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "cloudlaw".into(),
            audience: "cloudlaw".into(),
            access_ttl_secs: 600,
            session_ttl_secs: 30 * 24 * 3600,
            enrollment_code_ttl_secs: 7 * 24 * 3600,
            device_ttl_secs: 365 * 24 * 3600,
            failure_window_secs: 900,
            max_failed_logins_per_account: 10,
            max_failures_per_address: 50,
        }
    }
}

impl AuthConfig {
    /// Why these values cannot be used, if they cannot.
    pub fn validate(&self) -> Result<(), String> {
        if !(30..=900).contains(&self.access_ttl_secs) {
            return Err("auth.access_ttl_secs must be between 30 and 900 (15 minutes)".into());
        }
        if self.session_ttl_secs < self.access_ttl_secs {
            return Err("auth.session_ttl_secs must be at least auth.access_ttl_secs".into());
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err("auth.issuer and auth.audience must not be empty".into());
        }
        for (name, value) in [
            ("auth.enrollment_code_ttl_secs", self.enrollment_code_ttl_secs),
            ("auth.device_ttl_secs", self.device_ttl_secs),
            ("auth.failure_window_secs", self.failure_window_secs),
            ("auth.max_failed_logins_per_account", u64::from(self.max_failed_logins_per_account)),
            ("auth.max_failures_per_address", u64::from(self.max_failures_per_address)),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// The limiters of one process.
#[derive(Debug)]
pub struct Limits {
    pub logins_per_account: FailureLimiter,
    pub failures_per_address: FailureLimiter,
    /// Where failures (and an account's successful login) go for the other
    /// signaling nodes, when there are any.
    others: crate::outbox::ToOthers<SharedOutcome>,
}

/// Which limiter a failure counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limiter {
    Account,
    Address,
}

/// What became of an attempt, for a limiter's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It failed: it counts against the key.
    Failed,
    /// A login succeeded: the key's failures no longer count.
    Cleared,
}

/// A failed login or enrollment, or a login that cleared an account's
/// failures, as told to the other signaling nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedOutcome {
    pub limiter: Limiter,
    pub key: String,
    pub outcome: Outcome,
}

impl Limits {
    pub fn new(config: &AuthConfig) -> Arc<Limits> {
        let window = Duration::from_secs(config.failure_window_secs);
        Arc::new(Limits {
            logins_per_account: FailureLimiter::new(window, config.max_failed_logins_per_account),
            failures_per_address: FailureLimiter::new(window, config.max_failures_per_address),
            others: Default::default(),
        })
    }

    fn limiter(&self, limiter: Limiter) -> &FailureLimiter {
        match limiter {
            Limiter::Account => &self.logins_per_account,
            Limiter::Address => &self.failures_per_address,
        }
    }

    fn share(&self, limiter: Limiter, key: &str, outcome: Outcome) {
        self.others.send(SharedOutcome { limiter, key: key.to_owned(), outcome });
    }

    /// An attempt counted here failed: the other signaling nodes (if any)
    /// count it too, so a limit holds across them.
    pub fn failed(&self, limiter: Limiter, key: &str) {
        self.share(limiter, key, Outcome::Failed);
    }

    /// `key`'s failures no longer count, here or on the other nodes.
    pub fn clear(&self, limiter: Limiter, key: &str) {
        self.limiter(limiter).clear(key);
        self.share(limiter, key, Outcome::Cleared);
    }

    /// Outcomes from now on also go to `others` (the cluster link).
    pub fn share_outcomes(&self, others: tokio::sync::mpsc::UnboundedSender<SharedOutcome>) {
        self.others.connect(others);
    }

    /// Another node's outcome.
    pub fn apply(&self, shared: &SharedOutcome) {
        let limiter = self.limiter(shared.limiter);
        match shared.outcome {
            Outcome::Failed => limiter.failed_elsewhere(&shared.key, std::time::Instant::now()),
            Outcome::Cleared => limiter.clear(&shared.key),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    Account { account: AccountRecord, session_id: String },
    Terminal { terminal: TerminalRecord },
}

impl Principal {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match self {
            Principal::Account { account, .. } => format!("account:{}", account.id),
            Principal::Terminal { terminal } => format!("terminal:{}", terminal.id),
        }
    }

    /// The account, or `Forbidden` for a terminal.
    pub fn account(&self) -> Result<&AccountRecord, AuthError> {
        match self {
            Principal::Account { account, .. } => Ok(account),
            Principal::Terminal { .. } => Err(AuthError::Forbidden),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Account { account, .. } if account.has_role(Role::Admin))
    }

    /// Admins may act on every region; coordinators on theirs.
    pub fn manages_region(&self, region_id: &RegionId) -> bool {
        match self {
            Principal::Account { account, .. } => {
                account.has_role(Role::Admin)
                    || (account.has_role(Role::Coordinator) && account.regions.contains(region_id))
            }
            Principal::Terminal { .. } => false,
        }
    }

    /// `Forbidden` unless the caller manages the region. A region that does
    /// not exist is forbidden too, so its id cannot be probed.
    pub fn require_region(&self, region_id: &RegionId) -> Result<(), AuthError> {
        if self.manages_region(region_id) { Ok(()) } else { Err(AuthError::Forbidden) }
    }

    /// Whether the caller may act on a volunteer (a lawyer or interpreter)
    /// who serves in teams posted to `volunteer_regions`: admins on anyone;
    /// coordinators on those who serve one of their regions, or who serve
    /// none yet (just created, to be placed). Someone who serves only other
    /// regions is another coordinator's.
    pub fn manages_volunteer(&self, volunteer_regions: &[RegionId]) -> bool {
        match self {
            Principal::Account { account, .. } => {
                account.has_role(Role::Admin)
                    || (account.has_role(Role::Coordinator)
                        && (volunteer_regions.is_empty()
                            || volunteer_regions.iter().any(|r| account.regions.contains(r))))
            }
            Principal::Terminal { .. } => false,
        }
    }

    /// `Forbidden` unless the caller is an account with one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<&AccountRecord, AuthError> {
        let account = self.account()?;
        if roles.iter().any(|r| account.has_role(*r)) { Ok(account) } else { Err(AuthError::Forbidden) }
    }
}

/// Finds the caller from a bearer token: an account's access token or a
/// terminal's device credential. Anything else, or anything no longer valid
/// in the database, is `Unauthenticated`.
pub async fn authenticate(tokens: &Tokens, store: &Store, token: &str) -> Result<Principal, AuthError> {
    use AuthError::Unauthenticated;
    // The kind is in the payload, but only a verified payload may be trusted:
    // try access first (the common case), then device.
    let claims = match tokens.verify(token, TokenKind::Access).await {
        Ok(claims) => claims,
        Err(tokens::TokenError::WrongKind(_)) => {
            tokens.verify(token, TokenKind::Device).await.map_err(|e| unauthenticated(&e))?
        }
        Err(error) => return Err(unauthenticated(&error)),
    };
    match claims.typ {
        TokenKind::Access => {
            let session = store.session_state(&claims.sid).await?.ok_or(Unauthenticated)?;
            if !session.is_live(unix_now()) || session.account_id != claims.sub {
                return Err(Unauthenticated);
            }
            let account =
                store.account(&AccountId::from(claims.sub.as_str())).await?.ok_or(Unauthenticated)?;
            Ok(Principal::Account { account, session_id: claims.sid })
        }
        TokenKind::Device => {
            let terminal =
                store.terminal(&TerminalId::from(claims.sub.as_str())).await?.ok_or(Unauthenticated)?;
            if terminal.revoked_at.is_some() || terminal.credential_id.as_deref() != Some(claims.sid.as_str())
            {
                return Err(Unauthenticated);
            }
            Ok(Principal::Terminal { terminal })
        }
        _ => Err(Unauthenticated),
    }
}

fn unauthenticated(error: &tokens::TokenError) -> AuthError {
    tracing::debug!(%error, "token refused");
    AuthError::Unauthenticated
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The client's address, as the limits on guessing count it and the audit
/// log records it: the connection's peer, or, when the peer is one of
/// `trusted_proxies`, the address its `X-Forwarded-For` names ([`client_ip`];
/// read from a request by `http`'s extractor).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

/// The client behind a chain of trusted proxies: walking `X-Forwarded-For`
/// from the right (the entry the nearest proxy added), the first address that
/// is not a trusted proxy. A client can write anything into the header, so
/// nothing left of that address is believed; an unreadable entry ends the walk.
pub fn client_ip<'a>(
    peer: std::net::IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded.flat_map(|header| header.split(',')).map(str::trim).collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.parse::<std::net::IpAddr>() else { break };
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod client_ip_tests {
    use super::client_ip;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy = ip("127.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        // Straight from a client: the header is the client's own words, ignored.
        assert_eq!(client_ip(ip("198.51.100.7"), ["203.0.113.9"].into_iter(), &trusted), ip("198.51.100.7"));
        // Through the proxy: the address it saw.
        assert_eq!(client_ip(proxy, ["203.0.113.9"].into_iter(), &trusted), ip("203.0.113.9"));
        // A client's forged entry on the left is not believed; two trusted hops are walked.
        assert_eq!(
            client_ip(proxy, ["1.2.3.4, 203.0.113.9, 10.0.0.2"].into_iter(), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(proxy, ["1.2.3.4", "203.0.113.9"].into_iter(), &trusted), ip("203.0.113.9"));
        // No header, or garbage: the proxy itself.
        assert_eq!(client_ip(proxy, std::iter::empty(), &trusted), proxy);
        assert_eq!(client_ip(proxy, ["not an address"].into_iter(), &trusted), proxy);
        // Nothing trusted (the default): the peer, whatever the header says.
        assert_eq!(client_ip(proxy, ["203.0.113.9"].into_iter(), &[]), proxy);
    }
}
