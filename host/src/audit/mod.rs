//! The audit log: append-only rows chained by SHA-256, and the ed25519 key that signs for it.

pub mod checkpoint;
pub mod s3;
pub mod siem;
pub mod store;
pub mod verify;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

use crate::database::{Either, Tx};

pub use floh_checkpoint::GENESIS_HASH;

/// One event, as a plugin or the host reports it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    /// JSON text.
    pub details: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit details must be JSON: {0}")]
    Details(#[from] serde_json::Error),
    #[error("audit log: {0}")]
    Database(#[from] sqlx::Error),
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of a row: SHA-256 over the JSON array of its fields, in column order.
pub fn entry_hash(seq: i64, occurred_at: DateTime<Utc>, event: &AuditEvent, prev_hash: &str) -> String {
    let canonical = serde_json::json!([
        seq,
        occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event.actor,
        event.action,
        event.target,
        event.reason,
        event.details,
        prev_hash,
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

/// Appends `event` at `at` inside the caller's transaction and returns its sequence number.
/// Appends are serialised, so concurrent jobs extend one chain: by a transaction-scoped
/// advisory lock on PostgreSQL, by the write lock every SQLite transaction here holds.
pub async fn append(tx: &mut Tx, event: &AuditEvent, at: DateTime<Utc>) -> Result<i64, AuditError> {
    serde_json::from_str::<serde_json::Value>(&event.details)?;
    // Millisecond precision, so the hash recomputed from the stored row matches.
    let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
    if let Either::Postgres(tx) = tx {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('floh.audit_log'))").execute(&mut **tx).await?;
    }
    crate::on_db!(tx, tx => {
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut **tx)
                .await?;
        let (seq, prev_hash) = last.map_or((1, GENESIS_HASH.to_owned()), |(seq, hash)| (seq + 1, hash));
        let hash = entry_hash(seq, at, event, &prev_hash);
        sqlx::query(
            "INSERT INTO audit_log (seq, id, occurred_at, actor, action, target, reason, details, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(seq)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(at)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.target)
        .bind(&event.reason)
        .bind(&event.details)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
        Ok(seq)
    })
}

/// The host's audit signing key. Plugins ask it to sign; the key never leaves the host.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    pub fn new(seed: &[u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(seed) }
    }

    /// The public key, hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Names the key: the first 16 hex digits of the SHA-256 of the public key.
    pub fn key_id(&self) -> String {
        sha256_hex(self.key.verifying_key().as_bytes())[..16].to_owned()
    }

    pub fn sign(&self, payload: &[u8]) -> [u8; 64] {
        self.key.sign(payload).to_bytes()
    }

    /// Whether `signature` is this key's signature of `payload`.
    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|signature| self.key.verifying_key().verify_strict(payload, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_depend_on_every_field() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let event = AuditEvent {
            actor: "system:test".into(),
            action: "thing.done".into(),
            target: "thing:1".into(),
            reason: "because".into(),
            details: "{}".into(),
        };
        let base = entry_hash(1, at, &event, GENESIS_HASH);
        assert_eq!(base.len(), 64);
        assert_ne!(base, entry_hash(2, at, &event, GENESIS_HASH));
        assert_ne!(
            base,
            entry_hash(1, at, &AuditEvent { reason: "other".into(), ..event.clone() }, GENESIS_HASH)
        );
        assert_ne!(base, entry_hash(1, at, &event, &base));
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        let signer = Signer::new(&[7; 32]);
        let signature = ed25519_dalek::Signature::from_bytes(&signer.sign(b"checkpoint"));
        let public = signer.key.verifying_key();
        assert!(public.verify_strict(b"checkpoint", &signature).is_ok());
        assert!(public.verify_strict(b"tampered", &signature).is_err());
        assert_eq!(signer.key_id().len(), 16);
    }
}
