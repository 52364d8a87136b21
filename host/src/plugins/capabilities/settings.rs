use super::{HostState, db};
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::settings::Host;
use crate::plugins::bindings::floh::plugin::types::HostError;

impl Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<String>, HostError> {
        let job = self.granted(Capability::Settings)?;
        job.services.settings.get(&key).await.map_err(db::host_error)
    }
}
