//! `floh audit verify`.

use std::path::PathBuf;

use crate::audit::Signer;
use crate::audit::store::Store;
use crate::audit::verify::{self, VerifyError};
use crate::config::{CheckpointStore, Settings};
use crate::database;

/// Verifies the audit log and the checkpoints in the configured store, or in the folder
/// `path`. Prints the summary and returns true, or prints the first problem and returns false;
/// an unreachable database or store is an error.
pub async fn verify(settings: &Settings, path: Option<PathBuf>) -> anyhow::Result<bool> {
    let pool = database::connect_lazy(&settings.database)?;
    let store = match path {
        Some(dir) => Store::new(&CheckpointStore::File(dir)),
        None => Store::new(&settings.audit.store),
    };
    let signer = Signer::new(settings.audit.signing_key.expose());
    match verify::verify(&pool, &store, &signer).await {
        Ok(summary) => {
            println!("{summary}");
            Ok(true)
        }
        Err(VerifyError::Tampered(problem)) => {
            println!("audit verification FAILED: {problem}");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
