use super::{HostState, db};
use crate::audit::checkpoint::StoreError;
use crate::audit::{self, AuditError, AuditEvent};
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::audit::{Event, Host, Published, Signature};
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

    async fn key_id(&mut self) -> Result<String, HostError> {
        Ok(self.granted(Capability::Audit)?.services.signer.key_id())
    }

    async fn publish_checkpoint(&mut self, name: String, document: String) -> Result<Published, HostError> {
        let job = self.granted(Capability::Audit)?;
        let services = &job.services;
        let published =
            services.checkpoints.publish(&name, &document, &services.signer).await.map_err(|e| match e {
                StoreError::BadName(_) => HostError::Invalid(e.to_string()),
                StoreError::Io { .. } | StoreError::Remote(_) => HostError::Unavailable(e.to_string()),
            })?;
        Ok(Published {
            store: published.store.to_owned(),
            location: published.location,
            document: published.document,
        })
    }
}
