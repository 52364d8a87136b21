//! The audit log: governance-relevant changes, hash-chained by the host, and the host's
//! signing key (which never enters the plugin).

use crate::HostError;
use crate::bindings::floh::plugin::audit as host;
pub use crate::bindings::floh::plugin::audit::{Event, Published, Signature};

impl Event {
    /// An event with no details; `actor` is e.g. `system:role-expiry-check`.
    pub fn new(actor: &str, action: &str, target: &str, reason: &str) -> Self {
        Self {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            reason: reason.to_owned(),
            details: "{}".to_owned(),
        }
    }

    /// Attaches `details` (a JSON object describing the change).
    pub fn details(mut self, details: &serde_json::Value) -> Self {
        self.details = details.to_string();
        self
    }
}

/// Appends `event` in the job's transaction: it commits exactly when the change it records
/// does. Returns its sequence number.
pub fn append(event: &Event) -> Result<i64, HostError> {
    host::append(event)
}

/// Signs `payload` with the host's audit key.
pub fn sign(payload: &[u8]) -> Result<Signature, HostError> {
    host::sign(payload)
}

/// The id of the key [`sign`] signs with.
pub fn key_id() -> Result<String, HostError> {
    host::key_id()
}

/// Publishes a checkpoint document to the host's checkpoint store as `name`; see
/// [`Published`] for what comes back.
pub fn publish_checkpoint(name: &str, document: &str) -> Result<Published, HostError> {
    host::publish_checkpoint(name, document)
}
