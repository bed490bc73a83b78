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

pub async fn hash_blocking(secret: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash(&secret).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

pub async fn verify_blocking(secret: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify(&secret, &phc)).await.unwrap_or(false)
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
