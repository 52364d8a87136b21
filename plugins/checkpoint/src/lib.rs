//! The signed audit checkpoint format, in one place for both sides: the audit-checkpoint
//! plugin writes it, the host (`floh audit verify`) checks it.
//!
//! A checkpoint document is JSON:
//!
//! ```json
//! {"record": "<record JSON, as text>", "recordHash": "<sha256 of record, hex>",
//!  "keyId": "…", "signature": "<ed25519 over record, hex>"}
//! ```
//!
//! and the record it signs is
//! `{"version":1,"firstSeq":…,"lastSeq":…,"count":…,"lastHash":"…","prevCheckpointHash":"…",
//! "createdAt":"…","keyId":"…"}`: audit_log rows firstSeq..lastSeq, the hash of the last,
//! and the previous checkpoint's recordHash (the genesis hash for the first). The record is
//! signed as the text serde writes for [`Record`], fields in this order.

use serde::{Deserialize, Serialize};

/// The `prev_hash` of the first audit_log row, and the `prevCheckpointHash` of the first
/// checkpoint.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The record format written now.
pub const VERSION: u32 = 1;

/// The signed part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub version: u32,
    pub first_seq: i64,
    pub last_seq: i64,
    pub count: i64,
    pub last_hash: String,
    pub prev_checkpoint_hash: String,
    pub created_at: String,
    pub key_id: String,
}

/// A checkpoint as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// The record's JSON text, exactly as signed.
    pub record: String,
    pub record_hash: String,
    pub key_id: String,
    /// Hex.
    pub signature: String,
}

/// The name a checkpoint is published under: `checkpoint-<last seq, 12 digits>.json`, so
/// names sort in sequence.
pub fn name(last_seq: i64) -> String {
    format!("checkpoint-{last_seq:012}.json")
}
