//! Anchoring the audit log outside the database.
//!
//! The log's hash chain finds a row edited, removed or inserted in the middle,
//! but not rows cut from its end, nor a chain recomputed after an edit: the
//! hashes are plain SHA-256, which anyone who can write the database can
//! recompute. So every [`AuditConfig::checkpoint_secs`] (when rows were
//! added) and at shutdown, the newest row's sequence number and hash are
//! signed with the deployment's audit key (Ed25519, in [`AuditConfig::key_file`],
//! never in the database) and appended to [`AuditConfig::checkpoint_file`],
//! one JSON object a line, and logged. `cloudlaw audit verify` and `serve`'s
//! start check then need every checkpointed row to be there with the
//! checkpointed hash: cutting rows the last checkpoint covers, or rewriting
//! any of them, is found. What was appended after the last checkpoint is
//! protected only by the chain: at most `checkpoint_secs` of it.
//!
//! Line format (PROTOCOL.md): `{"seq":N,"hash":"hex","at":unix,"key":"hex","sig":"hex"}`,
//! the signature over `cloudlaw-audit-checkpoint\n{seq}\n{hash}\n{at}`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::store::{AuditProblem, Store, StoreError};

/// Where the audit log is anchored (`[audit]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The signing key (32 bytes, hex), created on first start when missing,
    /// readable only by its owner. None: `<data_dir>/audit-key`.
    pub key_file: Option<PathBuf>,
    /// Where checkpoints are appended. None: `<data_dir>/audit-checkpoints.jsonl`.
    pub checkpoint_file: Option<PathBuf>,
    /// Seconds between checkpoints (taken only when rows were added), 1 to 3600.
    pub checkpoint_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { key_file: None, checkpoint_file: None, checkpoint_secs: 60 }
    }
}

impl AuditConfig {
    pub fn key_path(&self, data_dir: &Path) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| data_dir.join("audit-key"))
    }

    pub fn checkpoint_path(&self, data_dir: &Path) -> PathBuf {
        self.checkpoint_file.clone().unwrap_or_else(|| data_dir.join("audit-checkpoints.jsonl"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("audit key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("audit checkpoints {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One signed checkpoint, as a line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    /// The signer's public key, hex; checked against the deployment's key.
    pub key: String,
    pub sig: String,
}

fn signed_text(seq: i64, hash: &str, at: i64) -> String {
    format!("cloudlaw-audit-checkpoint\n{seq}\n{hash}\n{at}")
}

/// The deployment's audit key: loads `path`, or creates it (mode 0600).
pub fn load_or_create_key(path: &Path) -> Result<SigningKey, CheckpointError> {
    let fail = |reason: String| CheckpointError::Key { path: path.to_owned(), reason };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|e| fail(format!("not hex: {e}")))?;
            let bytes: [u8; 32] = bytes.try_into().map_err(|_| fail("not 32 bytes".into()))?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(|e| fail(e.to_string()))?;
            file.write_all(hex::encode(key.to_bytes()).as_bytes()).map_err(|e| fail(e.to_string()))?;
            file.sync_all().map_err(|e| fail(e.to_string()))?;
            tracing::info!(path = %path.display(), "created the audit key");
            Ok(key)
        }
        Err(error) => Err(fail(error.to_string())),
    }
}

/// The key's public half, for checking checkpoints without the power to make them.
pub fn public_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// Signs `(seq, hash)` now.
pub fn sign(key: &SigningKey, seq: i64, hash: &str) -> Checkpoint {
    let at = crate::unix_now();
    let sig = key.sign(signed_text(seq, hash, at).as_bytes());
    Checkpoint { seq, hash: hash.to_owned(), at, key: public_hex(key), sig: hex::encode(sig.to_bytes()) }
}

/// Appends one checkpoint line and syncs it to disk.
pub fn append(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let fail = |reason: String| CheckpointError::File { path: path.to_owned(), reason };
    let line = serde_json::to_string(checkpoint).map_err(|e| fail(e.to_string()))?;
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| fail(e.to_string()))?;
    file.write_all(format!("{line}\n").as_bytes()).map_err(|e| fail(e.to_string()))?;
    file.sync_data().map_err(|e| fail(e.to_string()))
}

/// Every checkpoint in the file (none when it does not exist), checked
/// against `key`: a line that does not parse, is signed by another key, or
/// whose signature fails is an [`AuditProblem::ForgedCheckpoint`]; sequence
/// numbers must not go down.
pub fn read(
    path: &Path,
    key: &VerifyingKey,
) -> Result<Result<Vec<Checkpoint>, AuditProblem>, CheckpointError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(Vec::new())),
        Err(error) => return Err(CheckpointError::File { path: path.to_owned(), reason: error.to_string() }),
    };
    let ours = hex::encode(key.to_bytes());
    let mut out: Vec<Checkpoint> = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let forged = AuditProblem::ForgedCheckpoint { line: index + 1 };
        let Ok(checkpoint) = serde_json::from_str::<Checkpoint>(line) else { return Ok(Err(forged)) };
        let signature = hex::decode(&checkpoint.sig).ok().and_then(|b| Signature::from_slice(&b).ok());
        let genuine = checkpoint.key == ours
            && signature.is_some_and(|s| {
                key.verify(signed_text(checkpoint.seq, &checkpoint.hash, checkpoint.at).as_bytes(), &s)
                    .is_ok()
            });
        if !genuine || out.last().is_some_and(|last| checkpoint.seq < last.seq) {
            return Ok(Err(forged));
        }
        out.push(checkpoint);
    }
    Ok(Ok(out))
}

/// Checks the database against checkpoints: each checkpointed row must be
/// there with the checkpointed hash. Only the newest is needed for the
/// chain's older rows (the chain links them to it), but each is cheap.
pub async fn check_rows(
    store: &Store,
    checkpoints: &[Checkpoint],
) -> Result<Result<(), AuditProblem>, StoreError> {
    let newest = store.audit_head().await?.map_or(0, |(seq, _)| seq);
    for checkpoint in checkpoints.iter().rev() {
        if checkpoint.seq > newest {
            return Ok(Err(AuditProblem::Truncated { checkpointed: checkpoint.seq, newest }));
        }
        let row = store.audit_rows(checkpoint.seq - 1, 1).await?.pop();
        if row.is_none_or(|row| row.seq != checkpoint.seq || row.hash != checkpoint.hash) {
            return Ok(Err(AuditProblem::Rewritten { seq: checkpoint.seq }));
        }
    }
    Ok(Ok(()))
}

/// What `cloudlaw audit verify` does: the whole chain, then the checkpoints.
/// `Ok(Ok((rows, checkpoints)))` when all holds.
pub async fn verify_all(
    store: &Store,
    key: &VerifyingKey,
    file: &Path,
) -> Result<Result<(i64, usize), AuditProblem>, CheckpointError> {
    let rows = match store.verify_audit().await? {
        Ok(rows) => rows,
        Err(problem) => return Ok(Err(problem)),
    };
    let checkpoints = match read(file, key)? {
        Ok(checkpoints) => checkpoints,
        Err(problem) => return Ok(Err(problem)),
    };
    Ok(check_rows(store, &checkpoints).await?.map(|()| (rows, checkpoints.len())))
}

/// `serve`'s start check: the checkpoints, and the chain from the newest
/// checkpoint to the end (the whole chain is `cloudlaw audit verify`'s).
/// Returns the newest checkpoint's seq (0 for none).
async fn check_tail(
    store: &Store,
    key: &VerifyingKey,
    file: &Path,
) -> Result<Result<i64, AuditProblem>, CheckpointError> {
    let checkpoints = match read(file, key)? {
        Ok(checkpoints) => checkpoints,
        Err(problem) => return Ok(Err(problem)),
    };
    if let Err(problem) = check_rows(store, &checkpoints).await? {
        return Ok(Err(problem));
    }
    let from = checkpoints.last().map(|c| (c.seq, c.hash.clone()));
    let last = from.as_ref().map_or(0, |(seq, _)| *seq);
    Ok(store.verify_audit_from(from).await?.map(|_| last))
}

/// Loads (or creates) the audit key and checks the log (an error in the log
/// and the `cloudlaw_audit_chain_broken` metric when it fails; the server
/// still starts), then checkpoints it every `checkpoint_secs` until `stop`,
/// and once more then. An unreadable key stops the start.
pub async fn start(
    store: Store,
    config: &AuditConfig,
    data_dir: &Path,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, CheckpointError> {
    let key = load_or_create_key(&config.key_path(data_dir))?;
    let file = config.checkpoint_path(data_dir);
    let last = match check_tail(&store, &key.verifying_key(), &file).await? {
        Ok(last) => {
            crate::metrics::AUDIT_BROKEN.set(0);
            last
        }
        Err(problem) => {
            crate::metrics::AUDIT_BROKEN.set(1);
            tracing::error!(
                %problem,
                file = %file.display(),
                "THE AUDIT LOG HAS BEEN TAMPERED WITH: run `cloudlaw audit verify`, and restore it from a backup"
            );
            0
        }
    };
    let every = Duration::from_secs(config.checkpoint_secs.clamp(1, 3600));
    Ok(tokio::spawn(checkpoint_until(store, key, file, last, every, stop)))
}

async fn checkpoint_until(
    store: Store,
    key: SigningKey,
    file: PathBuf,
    mut last: i64,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = std::pin::pin!(stop);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = &mut stop => true,
        };
        match store.audit_head().await {
            Ok(Some((seq, hash))) if seq > last => {
                let checkpoint = sign(&key, seq, &hash);
                match append(&file, &checkpoint) {
                    Ok(()) => {
                        tracing::info!(seq, hash = %hash, sig = %checkpoint.sig, "audit checkpoint");
                        last = seq;
                    }
                    Err(error) => tracing::error!(%error, "cannot write an audit checkpoint"),
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the audit log's head for a checkpoint"),
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditEntry, testing};

    #[tokio::test]
    async fn checkpoints_find_a_cut_tail_and_a_recomputed_chain() {
        let (store, dir) = testing::store().await;
        let key = load_or_create_key(&dir.path().join("audit-key")).unwrap();
        assert_eq!(
            load_or_create_key(&dir.path().join("audit-key")).unwrap().to_bytes(),
            key.to_bytes(),
            "kept"
        );
        let file = dir.path().join("checkpoints.jsonl");
        for i in 0..5 {
            store.append_audit(&AuditEntry::system(&format!("a{i}"))).await.unwrap();
        }
        let (seq, hash) = store.audit_head().await.unwrap().unwrap();
        append(&file, &sign(&key, seq, &hash)).unwrap();
        let public = key.verifying_key();
        assert_eq!(verify_all(&store, &public, &file).await.unwrap(), Ok((5, 1)));
        assert_eq!(check_tail(&store, &public, &file).await.unwrap(), Ok(5));

        // A checkpoint signed by another key, or edited, is refused.
        let other = SigningKey::from_bytes(&[7; 32]);
        let forged_file = dir.path().join("forged.jsonl");
        append(&forged_file, &sign(&other, seq, &hash)).unwrap();
        assert_eq!(read(&forged_file, &public).unwrap(), Err(AuditProblem::ForgedCheckpoint { line: 1 }));
        let mut edited = sign(&key, seq, &hash);
        edited.seq = 2;
        let edited_file = dir.path().join("edited.jsonl");
        append(&edited_file, &edited).unwrap();
        assert_eq!(read(&edited_file, &public).unwrap(), Err(AuditProblem::ForgedCheckpoint { line: 1 }));

        // Someone who can write the database cuts the last two rows: the chain alone says intact.
        crate::store::testing::drop_audit_guards(&store).await;
        crate::store::testing::execute(&store, "DELETE FROM audit_log WHERE seq > 3").await;
        assert_eq!(store.verify_audit().await.unwrap(), Ok(3), "the chain cannot tell");
        assert_eq!(
            verify_all(&store, &public, &file).await.unwrap(),
            Err(AuditProblem::Truncated { checkpointed: 5, newest: 3 })
        );
        assert!(check_tail(&store, &public, &file).await.unwrap().is_err());
    }
}
