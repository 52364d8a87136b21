use super::HostState;
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::clock::Host;

impl Host for HostState {
    async fn now(&mut self) -> i64 {
        match self.granted(Capability::Clock) {
            Ok(job) => job.services.clock.now().timestamp_millis(),
            // Only reachable from describe(); the system time is harmless there.
            Err(_) => chrono::Utc::now().timestamp_millis(),
        }
    }
}
