//! Argon2id hashing for passwords, and fingerprints for high-entropy secrets.
//!
//! The `argon2` crate's defaults are Argon2id at OWASP's minimum cost. Hashing is
//! CPU-bound (tens of milliseconds), so callers in async code use
//! [`hash_blocking`] and [`verify_blocking`], which run on the blocking pool.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

/// Hashes a secret into a PHC string (algorithm, parameters, salt and hash).
pub fn hash(secret: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(secret.as_bytes(), &salt)?.to_string())
}

/// True when `secret` matches the PHC string. A malformed stored hash is a mismatch.
pub fn verify(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Argon2 runs at most this many at once: each uses about 19 MiB and a core,
/// so a burst of logins queues here instead of exhausting memory and threads.
const CONCURRENT_HASHES: usize = 4;
/// How long a hash may wait for its turn before the server says it is busy.
const HASH_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_HASHES);

/// The server is too busy hashing to take this one now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

async fn on_the_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Busy> {
    let _permit = tokio::time::timeout(HASH_QUEUE_WAIT, HASHING.acquire())
        .await
        .map_err(|_| Busy)?
        .map_err(|_| Busy)?;
    tokio::task::spawn_blocking(work).await.map_err(|_| Busy)
}

pub async fn hash_blocking(secret: String) -> Result<String, String> {
    on_the_blocking_pool(move || hash(&secret).map_err(|e| e.to_string())).await.map_err(|e| e.to_string())?
}

/// Verifies on the blocking pool, at most [`CONCURRENT_HASHES`] at once.
pub async fn verify_blocking(secret: String, phc: String) -> Result<bool, Busy> {
    on_the_blocking_pool(move || verify(&secret, &phc)).await
}

/// SHA-256 of a high-entropy secret (enrollment codes, refresh token ids), in
/// hex. Unlike a password hash it is deterministic, so the row can be found by it.
pub fn fingerprint(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash("demo-pass").unwrap();
        let b = hash("demo-pass").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salts differ");
        assert!(verify("demo-pass", &a));
        assert!(!verify("demo-pas", &a));
        assert!(!verify("demo-pass", "not a hash"));
    }
}
