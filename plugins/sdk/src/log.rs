//! Structured logging into the host's log and `system_log`.

pub use crate::bindings::floh::plugin::log::Level;
use crate::bindings::floh::plugin::log::write;

/// Writes `message` with `fields` at `level`.
pub fn with_fields(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> =
        fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    write(level, message, &fields);
}

pub fn debug(message: &str) {
    write(Level::Debug, message, &[]);
}

pub fn info(message: &str) {
    write(Level::Info, message, &[]);
}

pub fn warn(message: &str) {
    write(Level::Warn, message, &[]);
}

pub fn error(message: &str) {
    write(Level::Error, message, &[]);
}
