//! Enqueuing: the one producer behind `floh jobs add`, the admin API and the plugins' `queue`
//! capability, so every job gets the runbook's options.

use std::time::Duration;

use bullmq::types::{BackoffStrategy, RemoveOnFinish};
use bullmq::{JobOptions, Queue, QueueOptions};
use tokio::sync::OnceCell;

use super::{ATTEMPTS, KEEP_COMPLETED, KEEP_FAILED, QUEUE_NAME, QueueError, QueueSettings};

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub name: String,
    pub data: serde_json::Value,
    /// Run no earlier than this from now.
    pub delay: Option<Duration>,
    /// A custom id; adding a job whose id exists already leaves that job alone.
    pub job_id: Option<String>,
}

/// Adds jobs to `workflow-scheduler`. Connects on first use, so the host starts while Redis
/// is down.
pub struct Producer {
    settings: QueueSettings,
    queue: OnceCell<Queue>,
}

impl Producer {
    pub fn new(settings: QueueSettings) -> Self {
        Self { settings, queue: OnceCell::new() }
    }

    async fn queue(&self) -> Result<&Queue, QueueError> {
        self.queue
            .get_or_try_init(|| async {
                let options = QueueOptions {
                    connection: super::worker::connection(&self.settings),
                    prefix: self.settings.prefix.clone(),
                    default_job_options: default_job_options(&self.settings),
                    ..QueueOptions::default()
                };
                Queue::with_options(QUEUE_NAME, options).await
            })
            .await
            .map_err(QueueError::from)
    }

    /// Adds `job` and returns its id (the existing job's id for a duplicate custom id).
    pub async fn enqueue(&self, job: NewJob) -> Result<String, QueueError> {
        let queue = self.queue().await?;
        let mut options = default_job_options(&self.settings);
        options.delay = job.delay.map(|d| d.as_millis() as u64);
        options.job_id = job.job_id;
        let added = queue.add(&job.name, job.data).options(options).await?;
        Ok(added.id().to_owned())
    }
}

/// The runbook's policy: 4 attempts with exponential backoff from 5 s, the newest 5000
/// failures kept, completed jobs trimmed to the newest 1000.
pub fn default_job_options(settings: &QueueSettings) -> JobOptions {
    JobOptions {
        attempts: Some(ATTEMPTS),
        backoff: Some(BackoffStrategy::Exponential(settings.retry_base_delay.as_millis() as u64)),
        remove_on_fail: Some(RemoveOnFinish::Count(KEEP_FAILED)),
        remove_on_complete: Some(RemoveOnFinish::Count(KEEP_COMPLETED)),
        ..JobOptions::default()
    }
}
