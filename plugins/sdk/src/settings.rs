//! Runtime settings (admin settings, falling back to the host's configuration).

use crate::{HostError, JobError};

/// The setting `key` as JSON text, if set or configured.
pub fn get(key: &str) -> Result<Option<String>, HostError> {
    crate::bindings::floh::plugin::settings::get(key)
}

/// The setting `key` as a positive integer; a value of another shape fails the job.
pub fn get_u32(key: &str) -> Result<Option<u32>, JobError> {
    match get(key)? {
        None => Ok(None),
        Some(text) => text.trim().trim_matches('"').parse().map(Some).map_err(|_| {
            JobError::Permanent(format!("setting `{key}` is {text}, expected a positive integer"))
        }),
    }
}
