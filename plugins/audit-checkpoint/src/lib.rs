//! audit-checkpoint: signs a checkpoint over the audit_log entries since the last one.
//!
//! The record names the entries (first and last seq, count), the hash of the last one, the
//! previous checkpoint's record hash and the signing key; the host signs it and publishes the
//! document to its checkpoint store (AUDIT_CHECKPOINT_STORE); the `audit_checkpoints` row is
//! written from what the store holds, so a retried run settles on the published document. No
//! new entries, no checkpoint. `floh audit verify` checks them all.

use floh_checkpoint::{Document, GENESIS_HASH, Record};
use floh_plugin_sdk::{Capability, Job, JobError, Outcome, Plugin, PluginInfo, audit, clock, db, log};
use serde_json::json;
use sha2::{Digest, Sha256};

struct AuditCheckpoint;

impl Plugin for AuditCheckpoint {
    fn describe() -> PluginInfo {
        PluginInfo::new("audit-checkpoint", env!("CARGO_PKG_VERSION"), "Signs audit log checkpoints")
            .schedule("0 */6 * * *")
            .needs(&[Capability::Db, Capability::Audit])
    }

    fn run(_job: Job) -> Result<Outcome, JobError> {
        let last = db::query(
            "SELECT last_seq, record_hash FROM audit_checkpoints ORDER BY last_seq DESC LIMIT 1",
            &[],
        )?;
        let (after, prev_checkpoint_hash) = match last.iter().next() {
            Some(row) => (
                row.required("last_seq", db::Row::integer)?,
                row.required("record_hash", db::Row::text)?.to_owned(),
            ),
            None => (0, GENESIS_HASH.to_owned()),
        };
        let span = db::query(
            "SELECT count(*) AS count, max(seq) AS last_seq FROM audit_log WHERE seq > $1",
            &[after.into()],
        )?;
        let span = span.iter().next().ok_or_else(|| JobError::Permanent("count returned no row".into()))?;
        let Some(last_seq) = span.integer("last_seq")? else {
            log::info("no audit entries since the last checkpoint; none written");
            return floh_plugin_sdk::outcome(&json!({ "checkpoint": null, "afterSeq": after }));
        };
        let last_hash = db::query("SELECT hash FROM audit_log WHERE seq = $1", &[last_seq.into()])?;
        let last_hash =
            last_hash.iter().next().ok_or_else(|| JobError::Retryable("the last entry vanished".into()))?;
        let record = Record {
            version: floh_checkpoint::VERSION,
            first_seq: after + 1,
            last_seq,
            count: span.required("count", db::Row::integer)?,
            last_hash: last_hash.required("hash", db::Row::text)?.to_owned(),
            prev_checkpoint_hash,
            created_at: clock::rfc3339(clock::now()),
            key_id: audit::key_id()?,
        };
        let record = serde_json::to_string(&record).map_err(|e| JobError::Permanent(e.to_string()))?;
        let signature = audit::sign(record.as_bytes())?;
        let document = Document {
            record_hash: hex(&Sha256::digest(record.as_bytes())),
            key_id: signature.key_id,
            signature: hex(&signature.signature),
            record,
        };
        let document = serde_json::to_string(&document).map_err(|e| JobError::Permanent(e.to_string()))?;
        let published = audit::publish_checkpoint(&floh_checkpoint::name(last_seq), &document)?;

        // What the store holds is what counts.
        let stored: Document = serde_json::from_str(&published.document)
            .map_err(|e| JobError::Permanent(format!("the store holds a malformed checkpoint: {e}")))?;
        let record: Record = serde_json::from_str(&stored.record).map_err(|e| {
            JobError::Permanent(format!("the store holds a malformed checkpoint record: {e}"))
        })?;
        db::execute(
            "INSERT INTO audit_checkpoints (id, first_seq, last_seq, entry_count, last_hash, prev_checkpoint_hash,
                                            record, record_hash, key_id, signature, store, location, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (last_seq) DO NOTHING",
            &[
                format!("checkpoint-{}", record.last_seq).into(),
                record.first_seq.into(),
                record.last_seq.into(),
                record.count.into(),
                record.last_hash.as_str().into(),
                record.prev_checkpoint_hash.as_str().into(),
                stored.record.as_str().into(),
                stored.record_hash.as_str().into(),
                stored.key_id.as_str().into(),
                stored.signature.as_str().into(),
                published.store.as_str().into(),
                published.location.as_str().into(),
                db::at(clock::now()),
            ],
        )?;
        log::with_fields(
            log::Level::Info,
            "audit checkpoint signed",
            &[
                ("first_seq", &record.first_seq.to_string()),
                ("last_seq", &record.last_seq.to_string()),
                ("location", &published.location),
            ],
        );
        floh_plugin_sdk::outcome(&json!({
            "checkpoint": {
                "firstSeq": record.first_seq,
                "lastSeq": record.last_seq,
                "count": record.count,
                "recordHash": stored.record_hash,
                "location": published.location,
            }
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

floh_plugin_sdk::export!(AuditCheckpoint);
