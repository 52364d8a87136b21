use super::HostState;
use crate::mail::{MailError, Outgoing, OutgoingAttachment};
use crate::plugins::Capability;
use crate::plugins::bindings::floh::plugin::mail::{Host, Message};
use crate::plugins::bindings::floh::plugin::types::HostError;

impl Host for HostState {
    async fn send(&mut self, message: Message) -> Result<(), HostError> {
        let job = self.granted(Capability::Mail)?;
        let Some(mailer) = &job.services.mailer else {
            return Err(HostError::Invalid("this host sends no mail: set SMTP_URL and MAIL_FROM".to_owned()));
        };
        let outgoing = Outgoing {
            to: message.to,
            subject: message.subject,
            body: message.body,
            attachments: message
                .attachments
                .into_iter()
                .map(|a| OutgoingAttachment {
                    filename: a.filename,
                    content_type: a.content_type,
                    content: a.content,
                })
                .collect(),
        };
        let recipients = outgoing.to.len();
        mailer.send(outgoing).await.map_err(|e| match e {
            MailError::Invalid(_) | MailError::Rejected(_) => HostError::Invalid(e.to_string()),
            MailError::Unavailable(_) => HostError::Unavailable(e.to_string()),
        })?;
        tracing::info!(plugin = %job.plugin, job_id = %job.job_id, recipients, "mail sent");
        Ok(())
    }
}
