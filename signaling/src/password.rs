//! Argon2id hashing for passwords, and fingerprints for high-entropy secrets.
//!
//! The `argon2` crate's defaults are Argon2id at OWASP's minimum cost: about
//! 19 MiB of memory and tens of milliseconds of a core per hash. In async code
//! callers use [`hash_blocking`] and [`verify_blocking`], which hand the work to
//! a few dedicated threads ([`WORKERS`]), each with its own Argon2 memory,
//! allocated once and reused for every hash. A burst of logins queues for them
//! (at most [`QUEUE_WAIT`], then [`Busy`]) instead of taking more memory.
//!
//! Why not the blocking pool: there each hash ran on whichever of up to 512
//! threads was free, and glibc gives threads their own arenas; the freed
//! 19 MiB buffers stayed in those arenas, and forty failed logins grew the
//! resident set by half a gigabyte that never came back (issue #19). With a
//! fixed set of threads reusing one buffer each, memory stays at
//! `WORKERS x 19 MiB` whatever the allocator does; BENCHMARKS.md has the
//! figures.

use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Hashes a secret into a PHC string (algorithm, parameters, salt and hash),
/// on the calling thread with memory of its own.
pub fn hash(secret: &str) -> Result<String, String> {
    hash_with(secret, &mut Vec::new())
}

/// True when `secret` matches the PHC string, on the calling thread. A
/// malformed stored hash is a mismatch.
pub fn verify(secret: &str, phc: &str) -> bool {
    verify_with(secret, phc, &mut Vec::new())
}

/// `blocks` is grown to what the parameters need and kept for the next call.
fn hash_with(secret: &str, blocks: &mut Vec<Block>) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let context = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let output = compute(&context, secret, salt_bytes, Params::DEFAULT_OUTPUT_LEN, blocks)
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

fn verify_with(secret: &str, phc: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Ok(algorithm), Some(expected), Some(salt)) =
        (Algorithm::try_from(parsed.algorithm), parsed.hash, parsed.salt)
    else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    // Parameters far above the defaults would make one login cost gigabytes.
    if params.m_cost() > 16 * Params::DEFAULT_M_COST {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else { return false };
    let context = Argon2::new(algorithm, version, params);
    // `Output`'s equality is constant-time.
    compute(&context, secret, salt_bytes, expected.len(), blocks).is_ok_and(|computed| computed == expected)
}

/// Argon2 of `secret` into an output of `len` bytes, in `blocks` (grown when short).
fn compute(
    context: &Argon2<'_>,
    secret: &str,
    salt: &[u8],
    len: usize,
    blocks: &mut Vec<Block>,
) -> argon2::password_hash::Result<Output> {
    let blocks = memory(blocks, context.params());
    Output::init_with(len, |out| {
        context.hash_password_into_with_memory(secret.as_bytes(), salt, out, &mut *blocks)?;
        Ok(())
    })
}

/// The first `params.block_count()` blocks of `blocks`, grown when short.
fn memory<'a>(blocks: &'a mut Vec<Block>, params: &Params) -> &'a mut [Block] {
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, Block::default());
    }
    &mut blocks[..needed]
}

/// How many hashes run at once: one per core, at most two. Two answer over a
/// hundred logins a second, far more than people sign in, and keep the
/// memory for hashing under 40 MiB on any machine.
pub static WORKERS: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 2));
/// How long a hash may wait for a worker before the server says it is busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// The server is too busy hashing to take this one now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The worker threads and the queue to them. A job is handed over only with
/// a permit, so it never waits in the channel: it waits (bounded) for the permit.
struct Pool {
    jobs: mpsc::Sender<Job>,
    permits: tokio::sync::Semaphore,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..*WORKERS {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
            let mut blocks = Vec::new();
            loop {
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(poisoned) => poisoned.into_inner().recv(),
                };
                let Ok(job) = job else { return };
                job(&mut blocks);
            }
        });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start a password hashing thread");
        }
    }
    Pool { jobs, permits: tokio::sync::Semaphore::new(*WORKERS) }
});

async fn on_a_worker<T: Send + 'static>(
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, Busy> {
    let pool = &*POOL;
    let _permit = tokio::time::timeout(QUEUE_WAIT, pool.permits.acquire())
        .await
        .map_err(|_| Busy)?
        .map_err(|_| Busy)?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |blocks| {
        let _ = reply.send(work(blocks));
    });
    pool.jobs.send(job).map_err(|_| Busy)?;
    answer.await.map_err(|_| Busy)
}

/// Why a hash on a worker was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("hashing failed: {0}")]
    Failed(String),
}

/// Hashes on a hashing worker, at most [`WORKERS`] at once.
pub async fn hash_blocking(secret: String) -> Result<String, HashError> {
    on_a_worker(move |blocks| hash_with(&secret, blocks)).await?.map_err(HashError::Failed)
}

/// Verifies on a hashing worker, at most [`WORKERS`] at once.
pub async fn verify_blocking(secret: String, phc: String) -> Result<bool, Busy> {
    on_a_worker(move |blocks| verify_with(&secret, &phc, blocks)).await
}

/// A password hash at the default cost that matches nothing anyone types, so
/// that a login for an unknown username costs as much as one for a known
/// username. Its hash part is random bytes, not the hash of anything: no
/// password verifies against it, and checking one costs a full Argon2 run.
pub const MATCHES_NOTHING: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtdXNlci1zYWx0$Zi8U9jgcydQPK8M0t3AvjC7Dhp1cwBKtkPljTTDnsbk";

/// SHA-256 of a high-entropy secret (enrollment codes, refresh token ids), in
/// hex. Unlike a password hash it is deterministic, so the row can be found by it.
pub fn fingerprint(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Writes a secret out whole: configuration is serialized only to be read back
/// (the defaults and flags layered under the file and environment).
pub(crate) fn serialize_secret_opt<S: serde::Serializer>(
    value: &Option<secrecy::SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(secret) => s.serialize_some(secrecy::ExposeSecret::expose_secret(secret)),
        None => s.serialize_none(),
    }
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

    #[test]
    fn reused_memory_gives_the_same_answers() {
        let mut blocks = Vec::new();
        let a = hash_with("first", &mut blocks).unwrap();
        assert_eq!(blocks.len(), Params::default().block_count());
        let b = hash_with("second", &mut blocks).unwrap();
        assert!(verify_with("first", &a, &mut blocks) && verify_with("second", &b, &mut blocks));
        assert!(!verify_with("second", &a, &mut blocks));
        // Hashes made the crate's own way (as stored before) still verify.
        use argon2::password_hash::PasswordHasher;
        let theirs =
            Argon2::default().hash_password(b"old", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert!(verify_with("old", &theirs, &mut blocks));
        assert!(!verify_with("new", &theirs, &mut blocks));
    }

    #[test]
    fn the_stand_in_hash_has_the_default_cost() {
        let parsed = PasswordHash::new(MATCHES_NOTHING).unwrap();
        assert_eq!(Params::try_from(&parsed).unwrap().m_cost(), Params::DEFAULT_M_COST);
        assert!(parsed.hash.is_some());
        assert!(!verify("", MATCHES_NOTHING) && !verify("demo-pass", MATCHES_NOTHING));
    }

    #[tokio::test]
    async fn the_workers_hash_and_verify() {
        let stored = hash_blocking("on a worker".into()).await.unwrap();
        assert!(verify_blocking("on a worker".into(), stored.clone()).await.unwrap());
        assert!(!verify_blocking("not it".into(), stored).await.unwrap());
    }
}
