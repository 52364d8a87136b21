use super::HostState;
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::mail::{Host, Message};
use crate::plugins::bindings::floh::plugin::types::HostError;

impl Host for HostState {
    async fn send(&mut self, _message: Message) -> Result<(), HostError> {
        self.granted(Capability::Mail)?;
        Err(HostError::Unavailable("this host cannot send mail from plugins yet".to_owned()))
    }
}
