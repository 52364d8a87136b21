//! The checkpoint store AUDIT_CHECKPOINT_STORE names: a folder, an S3 bucket or a SIEM.

use super::Signer;
use super::checkpoint::{FileStore, Published, StoreError, public_key_json};
use super::s3::S3Client;
use super::siem::SiemClient;
use crate::config::CheckpointStore;

#[derive(Debug, Clone)]
pub enum Store {
    File(FileStore),
    S3(S3Client),
    Siem(SiemClient),
}

impl Store {
    pub fn new(settings: &CheckpointStore) -> Self {
        match settings {
            CheckpointStore::File(dir) => Store::File(FileStore::new(dir.clone())),
            CheckpointStore::S3(s3) => Store::S3(S3Client::new(s3.clone())),
            CheckpointStore::Siem(url) => Store::Siem(SiemClient::new(url.clone())),
        }
    }

    /// Where the store is, for people.
    pub fn describe(&self) -> String {
        match self {
            Store::File(files) => files.dir().display().to_string(),
            Store::S3(s3) => s3.describe(),
            Store::Siem(siem) => siem.describe(),
        }
    }

    /// Publishes `document` as `name`, never replacing what a readable store holds under it.
    pub async fn publish(
        &self,
        name: &str,
        document: &str,
        signer: &Signer,
    ) -> Result<Published, StoreError> {
        super::checkpoint::check_name(name)?;
        let remote = |e: &dyn std::fmt::Display| StoreError::Remote(e.to_string());
        match self {
            Store::File(files) => files.publish(name, document, signer).await,
            Store::S3(s3) => {
                let key_name = s3.key(&format!("public-key-{}.json", signer.key_id()));
                s3.put_new(&key_name, &public_key_json(signer)).await.map_err(|e| remote(&e))?;
                let key = s3.key(name);
                let stored = match s3.get(&key).await.map_err(|e| remote(&e))? {
                    Some(existing) => existing,
                    None if s3.put_new(&key, document).await.map_err(|e| remote(&e))? => document.to_owned(),
                    None => {
                        s3.get(&key).await.map_err(|e| remote(&e))?.unwrap_or_else(|| document.to_owned())
                    }
                };
                Ok(Published { store: "s3", location: format!("{}{name}", s3.describe()), document: stored })
            }
            Store::Siem(siem) => {
                siem.send(name, document)
                    .await
                    .map_err(|e| StoreError::Remote(format!("{}: {e}", siem.describe())))?;
                Ok(Published { store: "siem", location: siem.describe(), document: document.to_owned() })
            }
        }
    }

    /// Every checkpoint document, by name in sequence order; `None` for a store that cannot be
    /// read back (a SIEM).
    pub async fn documents(&self) -> Result<Option<Vec<(String, String)>>, StoreError> {
        match self {
            Store::File(files) => files.documents().await.map(Some),
            Store::S3(s3) => {
                let remote = |e: super::s3::S3Error| StoreError::Remote(e.to_string());
                let mut names: Vec<String> = s3
                    .list()
                    .await
                    .map_err(remote)?
                    .into_iter()
                    .filter_map(|key| key.rsplit('/').next().map(str::to_owned))
                    .filter(|name| name.starts_with("checkpoint-") && name.ends_with(".json"))
                    .collect();
                names.sort();
                let mut documents = Vec::new();
                for name in names {
                    let text = s3.get(&s3.key(&name)).await.map_err(remote)?.unwrap_or_default();
                    documents.push((name, text));
                }
                Ok(Some(documents))
            }
            Store::Siem(_) => Ok(None),
        }
    }
}
