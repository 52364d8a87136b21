//! The host's clock: plugins take "now" from here so tests can move time.

use crate::Timestamp;

/// Now, in milliseconds since the Unix epoch (UTC).
pub fn now() -> Timestamp {
    crate::bindings::floh::plugin::clock::now()
}

/// `minutes` before `at`.
pub fn minutes_before(at: Timestamp, minutes: u32) -> Timestamp {
    at - i64::from(minutes) * 60_000
}

/// `days` before `at`.
pub fn days_before(at: Timestamp, days: u32) -> Timestamp {
    at - i64::from(days) * 86_400_000
}
