//! `floh audit verify`: recomputes the audit_log hash chain and checks every published
//! checkpoint against it, its signature and its predecessor.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::checkpoint::{Document, Record, StoreError, Verify};
use super::store::Store;
use super::{AuditEvent, GENESIS_HASH, Signer, entry_hash};
use crate::database::Db;
use crate::on_db;

/// Rows read per query while walking the chain.
const PAGE: i64 = 5000;

/// What a verification that found nothing wrong covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub entries: i64,
    pub checkpoints: usize,
    /// The last checkpoint's record.
    pub last_checkpoint: Option<Record>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit log intact: {} entries (seq 1..{})", self.entries, self.entries)?;
        match &self.last_checkpoint {
            Some(last) => write!(
                f,
                "; {} checkpoints verified, the last covering seq {}..{} signed by key {}; {} entries since",
                self.checkpoints,
                last.first_seq,
                last.last_seq,
                last.key_id,
                self.entries - last.last_seq
            ),
            None => write!(f, "; no checkpoint yet"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log or a checkpoint is not what it claims: the first problem found.
    #[error("{0}")]
    Tampered(String),
    #[error("cannot read the audit log: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn tampered(message: String) -> VerifyError {
    VerifyError::Tampered(message)
}

type Row = (i64, DateTime<Utc>, String, String, String, String, String, String, String);

pub async fn verify(db: &Db, store: &Store, signer: &Signer) -> Result<Summary, VerifyError> {
    let records = published_records(db, store, signer).await?;
    let wanted: BTreeMap<i64, &Record> = records.iter().map(|r| (r.last_seq, r)).collect();
    let (entries, hashes) = walk_chain(db, &wanted).await?;
    for record in &records {
        match hashes.get(&record.last_seq) {
            Some(hash) if *hash == record.last_hash => {}
            Some(_) => {
                return Err(tampered(format!(
                    "checkpoint {}: audit_log seq {} no longer has the hash it signed (rows replaced)",
                    super::checkpoint::name(record.last_seq),
                    record.last_seq
                )));
            }
            None => {
                return Err(tampered(format!(
                    "checkpoint {} covers seq {}..{}, but audit_log ends at seq {entries} (rows deleted)",
                    super::checkpoint::name(record.last_seq),
                    record.first_seq,
                    record.last_seq
                )));
            }
        }
    }
    Ok(Summary { entries, checkpoints: records.len(), last_checkpoint: records.last().cloned() })
}

/// The checkpoints in the store, each verified and linked to the one before, and matching
/// the `audit_checkpoints` table one for one.
async fn published_records(db: &Db, store: &Store, signer: &Signer) -> Result<Vec<Record>, VerifyError> {
    let mut recorded: BTreeMap<i64, String> =
        on_db!(db, pool => sqlx::query_as("SELECT last_seq, record_hash FROM audit_checkpoints").fetch_all(pool).await)?
            .into_iter()
            .collect();
    let mut records: Vec<Record> = Vec::new();
    let mut previous_hash = GENESIS_HASH.to_owned();
    // A store that cannot be read back (a SIEM) is checked through the table's copies.
    let documents = match store.documents().await? {
        Some(documents) => documents,
        None => table_documents(db).await?,
    };
    for (name, text) in documents {
        let bad = |why: String| tampered(format!("checkpoint {name}: {why}"));
        let document = Document::parse(&text).map_err(|e| bad(e.to_string()))?;
        let record = document.verify(signer).map_err(|e| bad(e.to_string()))?;
        let expected_first = records.last().map_or(1, |r| r.last_seq + 1);
        if record.prev_checkpoint_hash != previous_hash {
            return Err(bad("does not link to the checkpoint before it (one is missing or replaced)".into()));
        }
        if record.first_seq != expected_first || record.count != record.last_seq - record.first_seq + 1 {
            return Err(bad(format!(
                "covers seq {}..{} ({} entries); expected to start at seq {expected_first}",
                record.first_seq, record.last_seq, record.count
            )));
        }
        match recorded.remove(&record.last_seq) {
            Some(hash) if hash == document.record_hash => {}
            Some(_) => return Err(bad("differs from the audit_checkpoints row for the same range".into())),
            None => return Err(bad("has no audit_checkpoints row (planted?)".into())),
        }
        previous_hash = document.record_hash;
        records.push(record);
    }
    if let Some((last_seq, _)) = recorded.into_iter().next() {
        return Err(tampered(format!(
            "checkpoint {} is in audit_checkpoints but missing from the store {}",
            super::checkpoint::name(last_seq),
            store.describe()
        )));
    }
    Ok(records)
}

/// Walks audit_log in sequence, checking each row's hash and link; returns the number of
/// rows and the hashes at the sequence numbers in `wanted`.
async fn walk_chain(
    db: &Db,
    wanted: &BTreeMap<i64, &Record>,
) -> Result<(i64, BTreeMap<i64, String>), VerifyError> {
    let mut hashes = BTreeMap::new();
    let (mut seq, mut hash) = (0i64, GENESIS_HASH.to_owned());
    loop {
        let rows: Vec<Row> = on_db!(db, pool => {
            sqlx::query_as(
                "SELECT seq, occurred_at, actor, action, target, reason, details, prev_hash, hash
                 FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(seq)
            .bind(PAGE)
            .fetch_all(pool)
            .await
        })?;
        let page = rows.len();
        for (row_seq, occurred_at, actor, action, target, reason, details, prev_hash, row_hash) in rows {
            if row_seq != seq + 1 {
                return Err(tampered(format!(
                    "audit_log seq {row_seq} follows seq {seq}: seq {}..{} are missing (deleted)",
                    seq + 1,
                    row_seq - 1
                )));
            }
            if prev_hash != hash {
                return Err(tampered(format!(
                    "audit_log seq {row_seq}: prev_hash is not the hash of seq {seq} (rows reordered or replaced)"
                )));
            }
            let event = AuditEvent { actor, action, target, reason, details };
            if entry_hash(row_seq, occurred_at, &event, &prev_hash) != row_hash {
                return Err(tampered(format!(
                    "audit_log seq {row_seq}: the row does not match its hash (edited)"
                )));
            }
            if wanted.contains_key(&row_seq) {
                hashes.insert(row_seq, row_hash.clone());
            }
            (seq, hash) = (row_seq, row_hash);
        }
        if page < PAGE as usize {
            return Ok((seq, hashes));
        }
    }
}

/// The documents as `audit_checkpoints` keeps them.
async fn table_documents(db: &Db) -> Result<Vec<(String, String)>, VerifyError> {
    let rows: Vec<(i64, String, String, String, String)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT last_seq, record, record_hash, key_id, signature FROM audit_checkpoints ORDER BY last_seq",
        )
        .fetch_all(pool)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|(last_seq, record, record_hash, key_id, signature)| {
            let document = Document { record, record_hash, key_id, signature };
            (
                super::checkpoint::name(last_seq),
                serde_json::to_string(&document).expect("documents serialise"),
            )
        })
        .collect())
}
