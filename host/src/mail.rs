//! Outgoing mail through SMTP_URL, sent from MAIL_FROM. The SMTP credentials stay here: plugins
//! hand over a message, never a connection.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::MailSettings;

/// Most recipients one message may have.
pub const MAX_RECIPIENTS: usize = 100;

/// A message as a plugin or the host writes it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub to: Vec<String>,
    pub subject: String,
    /// Plain text.
    pub body: String,
    pub attachments: Vec<OutgoingAttachment>,
}

#[derive(Debug, Clone)]
pub struct OutgoingAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message itself is wrong: retrying cannot help.
    #[error("{0}")]
    Invalid(String),
    /// The server refused it for good (a 5xx answer, e.g. an unknown mailbox).
    #[error("the mail server refused the message: {0}")]
    Rejected(String),
    /// The server could not be reached or answered "try later".
    #[error("cannot send mail now: {0}")]
    Unavailable(String),
}

/// SMTP_URL's transport (pooled connections) and the sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Prepares the transport without connecting. The configuration validated both values the
    /// same way (`parse::smtp_url`, `parse::mailbox`), so an error here names what changed.
    pub fn new(settings: &MailSettings) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose())
            .map_err(|e| format!("SMTP_URL: {e}"))?
            .build();
        let from = settings.from.parse().map_err(|e| format!("MAIL_FROM: {e}"))?;
        Ok(Self { transport, from })
    }

    pub async fn send(&self, message: Outgoing) -> Result<(), MailError> {
        let email = self.compose(message)?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Rejected(e.to_string())),
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }

    fn compose(&self, message: Outgoing) -> Result<lettre::Message, MailError> {
        if message.to.is_empty() || message.to.len() > MAX_RECIPIENTS {
            return Err(MailError::Invalid(format!("a message needs 1-{MAX_RECIPIENTS} recipients")));
        }
        let mut builder = lettre::Message::builder().from(self.from.clone()).subject(message.subject);
        for to in &message.to {
            let mailbox: Mailbox =
                to.parse().map_err(|e| MailError::Invalid(format!("recipient {to:?}: {e}")))?;
            builder = builder.to(mailbox);
        }
        let text = SinglePart::plain(message.body);
        let built = if message.attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for attachment in message.attachments {
                let content_type = ContentType::parse(&attachment.content_type).map_err(|e| {
                    MailError::Invalid(format!(
                        "attachment {:?} has content type {:?}: {e}",
                        attachment.filename, attachment.content_type
                    ))
                })?;
                parts = parts
                    .singlepart(Attachment::new(attachment.filename).body(attachment.content, content_type));
            }
            builder.multipart(parts)
        };
        built.map_err(|e| MailError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn mailer() -> Mailer {
        let settings = MailSettings {
            smtp_url: Secret::new("smtp://127.0.0.1:2525".into()),
            from: "floh@example.com".into(),
        };
        Mailer::new(&settings).unwrap()
    }

    fn message(to: &[&str]) -> Outgoing {
        Outgoing {
            to: to.iter().map(|s| s.to_string()).collect(),
            subject: "s".into(),
            body: "b".into(),
            attachments: Vec::new(),
        }
    }

    #[tokio::test]
    async fn bad_messages_are_invalid_before_any_connection() {
        let mailer = mailer();
        for (message, why) in [
            (message(&[]), "a message needs 1-100 recipients"),
            (message(&["not an address"]), "recipient \"not an address\""),
        ] {
            match mailer.compose(message) {
                Err(MailError::Invalid(reason)) => assert!(reason.starts_with(why), "{reason}"),
                other => panic!("expected invalid, got {other:?}"),
            }
        }
        let mut bad_type = message(&["a@example.com"]);
        bad_type.attachments.push(OutgoingAttachment {
            filename: "r.csv".into(),
            content_type: "not a type".into(),
            content: Vec::new(),
        });
        assert!(matches!(mailer.compose(bad_type), Err(MailError::Invalid(_))));
    }
}
