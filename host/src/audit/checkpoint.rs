//! Signed audit checkpoints: checking the format (defined in `floh-checkpoint`, which the
//! audit-checkpoint plugin writes with), and the store they are published to.

use std::path::{Path, PathBuf};

pub use floh_checkpoint::{Document, Record, name};

use super::{Signer, sha256_hex};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("not a checkpoint document: {0}")]
    Malformed(String),
    #[error("recordHash does not match the record")]
    HashMismatch,
    #[error("signed by key {0}, not by this host's key {1}")]
    UnknownKey(String, String),
    #[error("the signature does not verify (forged or altered)")]
    BadSignature,
}

/// Reading and checking a published document.
pub trait Verify: Sized {
    fn parse(text: &str) -> Result<Self, DocumentError>;
    /// The record, after checking the hash, the key and the signature.
    fn verify(&self, signer: &Signer) -> Result<Record, DocumentError>;
}

impl Verify for Document {
    fn parse(text: &str) -> Result<Self, DocumentError> {
        serde_json::from_str(text).map_err(|e| DocumentError::Malformed(e.to_string()))
    }

    fn verify(&self, signer: &Signer) -> Result<Record, DocumentError> {
        if sha256_hex(self.record.as_bytes()) != self.record_hash {
            return Err(DocumentError::HashMismatch);
        }
        if self.key_id != signer.key_id() {
            return Err(DocumentError::UnknownKey(self.key_id.clone(), signer.key_id()));
        }
        let signature = hex_bytes(&self.signature).ok_or(DocumentError::BadSignature)?;
        if !signer.verifies(self.record.as_bytes(), &signature) {
            return Err(DocumentError::BadSignature);
        }
        let record: Record = serde_json::from_str(&self.record)
            .map_err(|e| DocumentError::Malformed(format!("record: {e}")))?;
        if record.key_id != self.key_id {
            return Err(DocumentError::Malformed("the record names another key than the document".into()));
        }
        Ok(record)
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("checkpoint name {0:?}: expected lower-case letters, digits and `-`, ending in .json")]
    BadName(String),
    #[error("checkpoint store {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The S3 endpoint or the SIEM collector failed.
    #[error("checkpoint store: {0}")]
    Remote(String),
}

/// Refuses names that are not `[a-z0-9-]+.json` (no paths), or that would shadow a public key.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let valid = name.strip_suffix(".json").is_some_and(|stem| {
        !stem.is_empty() && stem.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if valid && !name.starts_with("public-key-") { Ok(()) } else { Err(StoreError::BadName(name.to_owned())) }
}

/// Where a document went, and the document the store holds under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub store: &'static str,
    pub location: String,
    pub document: String,
}

/// AUDIT_CHECKPOINT_STORE=file: one file per checkpoint in a folder, with the public key
/// (`public-key-<key id>.json`) beside them.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `document` as `name` (checked with [`check_name`] by the caller), atomically and
    /// never over an existing file: a name that exists keeps its content, which is returned.
    pub async fn publish(
        &self,
        name: &str,
        document: &str,
        signer: &Signer,
    ) -> Result<Published, StoreError> {
        self.write_once(&format!("public-key-{}.json", signer.key_id()), &public_key_json(signer)).await?;
        let stored = self.write_once(name, document).await?;
        let path = self.dir.join(name);
        Ok(Published { store: "file", location: path.display().to_string(), document: stored })
    }

    /// Creates `name` with `content` unless it exists; returns what the file holds.
    async fn write_once(&self, name: &str, content: &str) -> Result<String, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let path = self.dir.join(name);
        tokio::fs::create_dir_all(&self.dir).await.map_err(io(&self.dir))?;
        // A complete temporary file, then a hard link to the final name: the link is atomic
        // and fails if the name exists, so a document is never half-written or replaced.
        let temporary = self.dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
        tokio::fs::write(&temporary, content).await.map_err(io(&temporary))?;
        let linked = tokio::fs::hard_link(&temporary, &path).await;
        let _ = tokio::fs::remove_file(&temporary).await;
        match linked {
            Ok(()) => Ok(content.to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                tokio::fs::read_to_string(&path).await.map_err(io(&path))
            }
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Every checkpoint document in the folder, by file name (which orders them by sequence).
    pub async fn documents(&self) -> Result<Vec<(String, String)>, StoreError> {
        let io = |source| StoreError::Io { path: self.dir.clone(), source };
        let mut names = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("checkpoint-") && name.ends_with(".json") {
                names.push(name);
            }
        }
        names.sort();
        let mut documents = Vec::with_capacity(names.len());
        for name in names {
            let path = self.dir.join(&name);
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|source| StoreError::Io { path: path.clone(), source })?;
            documents.push((name, text));
        }
        Ok(documents)
    }
}

/// The public key as published: `{"keyId", "algorithm": "ed25519", "publicKey": hex}`.
pub fn public_key(signer: &Signer) -> serde_json::Value {
    serde_json::json!({ "keyId": signer.key_id(), "algorithm": "ed25519", "publicKey": signer.public_key_hex() })
}

pub(super) fn public_key_json(signer: &Signer) -> String {
    format!("{:#}\n", public_key(signer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(signer: &Signer, record: &str) -> Document {
        Document {
            record: record.to_owned(),
            record_hash: sha256_hex(record.as_bytes()),
            key_id: signer.key_id(),
            signature: hex::encode(signer.sign(record.as_bytes())),
        }
    }

    #[test]
    fn documents_verify_only_unaltered_and_signed_by_this_key() {
        let signer = Signer::new(&[3; 32]);
        let record = Record {
            version: floh_checkpoint::VERSION,
            first_seq: 1,
            last_seq: 2,
            count: 2,
            last_hash: "ab".into(),
            prev_checkpoint_hash: super::super::GENESIS_HASH.into(),
            created_at: "2026-12-04T00:00:00.000Z".into(),
            key_id: signer.key_id(),
        };
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(document(&signer, &text).verify(&signer), Ok(record));

        let mut altered = document(&signer, &text);
        altered.record = text.replace("\"count\":2", "\"count\":3");
        assert_eq!(altered.verify(&signer), Err(DocumentError::HashMismatch));
        altered.record_hash = sha256_hex(altered.record.as_bytes());
        assert_eq!(altered.verify(&signer), Err(DocumentError::BadSignature));

        let other = Signer::new(&[4; 32]);
        assert!(matches!(document(&other, &text).verify(&signer), Err(DocumentError::UnknownKey(..))));
    }

    #[tokio::test]
    async fn a_published_name_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("checkpoints"));
        let signer = Signer::new(&[3; 32]);
        let first = store.publish(&name(7), "{\"a\":1}", &signer).await.unwrap();
        assert_eq!(first.document, "{\"a\":1}");
        let again = store.publish(&name(7), "{\"a\":2}", &signer).await.unwrap();
        assert_eq!(again.document, "{\"a\":1}", "the stored document wins");
        assert_eq!(store.documents().await.unwrap(), [(name(7), "{\"a\":1}".to_owned())]);
        let key = std::fs::read_to_string(store.dir().join(format!("public-key-{}.json", signer.key_id())))
            .unwrap();
        assert!(key.contains(&signer.public_key_hex()));
        for bad in ["../x.json", "public-key-x.json", "Checkpoint.json", "x.txt"] {
            assert!(matches!(check_name(bad), Err(StoreError::BadName(_))), "{bad}");
        }
    }
}
