use super::{HostState, db};
use crate::audit::{self, AuditError, AuditEvent};
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::audit::{Event, Host, Signature};
use crate::plugins::bindings::floh::plugin::types::HostError;

impl Host for HostState {
    async fn append(&mut self, event: Event) -> Result<i64, HostError> {
        let job = self.granted(Capability::Audit)?;
        let now = job.services.clock.now();
        let event = AuditEvent {
            actor: event.actor,
            action: event.action,
            target: event.target,
            reason: event.reason,
            details: event.details,
        };
        // In the job's transaction: the event commits exactly when the change it records does.
        let transaction = job.transaction().await?;
        audit::append(transaction, &event, now).await.map_err(|e| match e {
            AuditError::Details(e) => HostError::Invalid(format!("details must be JSON text: {e}")),
            AuditError::Database(e) => db::host_error(e),
        })
    }

    async fn sign(&mut self, payload: Vec<u8>) -> Result<Signature, HostError> {
        let job = self.granted(Capability::Audit)?;
        let signer = &job.services.signer;
        Ok(Signature { key_id: signer.key_id(), signature: signer.sign(&payload).to_vec() })
    }
}
