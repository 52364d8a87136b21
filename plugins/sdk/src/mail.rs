//! Mail through the host's SMTP server (SMTP_URL, from MAIL_FROM); the credentials stay in
//! the host.

use crate::HostError;
pub use crate::bindings::floh::plugin::mail::{Attachment, Message, send};

/// Sends a plain-text message without attachments.
pub fn send_text(to: &[&str], subject: &str, body: &str) -> Result<(), HostError> {
    send(&Message {
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        subject: subject.to_owned(),
        body: body.to_owned(),
        attachments: Vec::new(),
    })
}
