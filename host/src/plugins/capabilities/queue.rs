use std::time::Duration;

use super::HostState;
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::queue::Host;
use crate::plugins::bindings::floh::plugin::types::HostError;
use crate::queue::NewJob;

impl Host for HostState {
    async fn enqueue(
        &mut self,
        name: String,
        data: String,
        delay_ms: Option<u64>,
        job_id: Option<String>,
    ) -> Result<String, HostError> {
        let job = self.granted(Capability::Queue)?;
        if name.trim().is_empty() {
            return Err(HostError::Invalid("a job needs a name (its job type)".to_owned()));
        }
        let data = serde_json::from_str(&data)
            .map_err(|e| HostError::Invalid(format!("job data must be JSON text: {e}")))?;
        let new = NewJob { name, data, delay: delay_ms.map(Duration::from_millis), job_id };
        job.services.queue.enqueue(new).await.map_err(|e| HostError::Unavailable(e.to_string()))
    }
}
