//! Signed tokens (JWT, EdDSA over Ed25519).
//!
//! Four kinds, kept apart by the `typ` claim so none can stand in for another:
//! `access` (an account's API and WebSocket calls, at most 15 minutes),
//! `refresh` (one use, rotates), `device` (a terminal's long-lived credential)
//! and `room` (joining one media room). Every token names the key that signed
//! it in its header's `kid`; all unretired keys verify, the newest signs, so a
//! key can rotate without logging anyone out. The algorithm is pinned, and
//! `exp`, `iat`, `iss`, `aud` and `sub` are required and checked.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthConfig;
use crate::ids::RoomId;
use crate::store::{SigningKeyRow, Store, StoreError};
use crate::unix_now;

/// Seconds of clock skew tolerated between servers.
pub const LEEWAY_SECS: u64 = 30;

/// How often keys are read again, so that a rotation or retirement made with
/// `cloudlaw keys` (or on another node) takes effect without a restart.
pub const KEY_RELOAD: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Access,
    Refresh,
    Device,
    Room,
}

/// What a room token allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomGrant {
    pub room: RoomId,
    /// Media kinds the holder may send: "audio", "video".
    pub publish: Vec<String>,
    /// The relay node the room is placed on (by name), when the node that
    /// issued the token placed it: another signaling node that the holder is
    /// connected to joins the room there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The account id (access, refresh, room) or terminal id (device, room).
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub typ: TokenKind,
    /// Unique per token; for refresh tokens, the server-side row's id.
    pub jti: String,
    /// The session (access, refresh), the credential (device) or the room (room).
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomGrant>,
}

/// Why a token was refused. Callers answer all of these with 401; the
/// distinction is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("token is not a {0:?} token")]
    WrongKind(TokenKind),
    #[error("invalid token: {0}")]
    Invalid(String),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create a signing key: {0}")]
    Generate(String),
}

struct KeyRing {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    /// The raw public keys, for relay nodes that check room tokens themselves.
    public: Vec<(String, Vec<u8>)>,
    loaded_at: Instant,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("signing_kid", &self.signing_kid).finish_non_exhaustive()
    }
}

/// Issues and verifies tokens. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AuthConfig,
    store: Store,
    keys: RwLock<KeyRing>,
}

/// Creates a new signing key and stores it; it becomes the newest.
pub async fn create_signing_key(store: &Store) -> Result<SigningKeyRow, KeyError> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let der = key.to_pkcs8_der().map_err(|e| KeyError::Generate(e.to_string()))?;
    let row = SigningKeyRow {
        kid: hex::encode(rand::random::<[u8; 8]>()),
        private_key: der.as_bytes().to_vec(),
        public_key: key.verifying_key().to_bytes().to_vec(),
        created_at: unix_now(),
    };
    store.insert_signing_key(&row).await?;
    Ok(row)
}

async fn load_ring(store: &Store) -> Result<KeyRing, KeyError> {
    let mut rows = store.signing_keys().await?;
    if rows.is_empty() {
        create_signing_key(store).await?;
        rows = store.signing_keys().await?;
    }
    let newest = rows.first().ok_or_else(|| KeyError::Generate("no key after creating one".into()))?;
    Ok(KeyRing {
        signing_kid: newest.kid.clone(),
        signing: EncodingKey::from_ed_der(&newest.private_key),
        verifying: rows.iter().map(|r| (r.kid.clone(), DecodingKey::from_ed_der(&r.public_key))).collect(),
        public: rows.iter().map(|r| (r.kid.clone(), r.public_key.clone())).collect(),
        loaded_at: Instant::now(),
    })
}

impl Tokens {
    /// Loads the signing keys, creating the first one on a new database.
    pub async fn load(store: Store, config: AuthConfig) -> Result<Tokens, KeyError> {
        let ring = load_ring(&store).await?;
        Ok(Tokens { inner: Arc::new(Inner { config, store, keys: RwLock::new(ring) }) })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// Every unretired key's id and raw Ed25519 public key.
    pub fn public_keys(&self) -> Vec<(String, Vec<u8>)> {
        self.inner.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).public.clone()
    }

    /// Signs claims of `kind` for `sub` in session `sid`, valid for `ttl`.
    pub fn issue(
        &self,
        kind: TokenKind,
        sub: &str,
        sid: &str,
        ttl: Duration,
        room: Option<RoomGrant>,
    ) -> (String, Claims) {
        let now = unix_now();
        let claims = Claims {
            iss: self.inner.config.issuer.clone(),
            aud: self.inner.config.audience.clone(),
            sub: sub.to_owned(),
            exp: now + ttl.as_secs() as i64,
            iat: now,
            nbf: None,
            typ: kind,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: sid.to_owned(),
            room,
        };
        (self.sign(&claims), claims)
    }

    /// Signs arbitrary claims with the current key (tests use it to forge
    /// tokens that are well signed but wrong in some other way).
    pub fn sign(&self, claims: &Claims) -> String {
        let keys = self.inner.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.signing_kid.clone());
        // Signing with a well-formed Ed25519 key cannot fail.
        jsonwebtoken::encode(&header, claims, &keys.signing).unwrap_or_default()
    }

    /// Verifies a token of the expected kind and returns its claims.
    pub async fn verify(&self, token: &str, expected: TokenKind) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let kid = header.kid.ok_or_else(|| TokenError::Invalid("no key id".into()))?;
        if !self.knows_kid(&kid) || self.keys_older_than(KEY_RELOAD) {
            self.reload_keys().await;
        }
        let claims = {
            let keys = self.inner.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let key = keys.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
            jsonwebtoken::decode::<Claims>(token, key, &self.validation()).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })?
        }
        .claims;
        if claims.typ != expected {
            return Err(TokenError::WrongKind(expected));
        }
        if claims.iat > unix_now() + LEEWAY_SECS as i64 {
            return Err(TokenError::Invalid("issued in the future".into()));
        }
        Ok(claims)
    }

    fn validation(&self) -> Validation {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[&self.inner.config.issuer]);
        validation.set_audience(&[&self.inner.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation
    }

    fn keys_older_than(&self, age: Duration) -> bool {
        self.inner.keys.read().map(|k| k.loaded_at.elapsed() > age).unwrap_or(true)
    }

    fn knows_kid(&self, kid: &str) -> bool {
        self.inner.keys.read().map(|k| k.verifying.contains_key(kid)).unwrap_or(false)
    }

    /// Another node may have rotated keys: reload, but at most every few seconds
    /// so that tokens with made-up key ids cannot make every request hit the database.
    async fn reload_keys(&self) {
        let recent =
            self.inner.keys.read().map(|k| k.loaded_at.elapsed() < Duration::from_secs(5)).unwrap_or(true);
        if recent {
            return;
        }
        match load_ring(&self.inner.store).await {
            Ok(ring) => {
                if let Ok(mut keys) = self.inner.keys.write() {
                    *keys = ring;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot reload signing keys"),
        }
    }
}
