use super::HostState;
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::queue::Host;
use crate::plugins::bindings::floh::plugin::types::HostError;

impl Host for HostState {
    async fn enqueue(
        &mut self,
        _name: String,
        _data: String,
        _delay_ms: Option<u64>,
        _job_id: Option<String>,
    ) -> Result<String, HostError> {
        self.granted(Capability::Queue)?;
        Err(HostError::Unavailable("this host has no job queue connected to plugins yet".to_owned()))
    }
}
