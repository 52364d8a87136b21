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

/// `at` as RFC 3339 in UTC with milliseconds, e.g. `2026-12-04T06:00:00.000Z`, for outcomes
/// and audit details.
pub fn rfc3339(at: Timestamp) -> String {
    match chrono::DateTime::from_timestamp_millis(at) {
        Some(at) => at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => at.to_string(),
    }
}
