//! Enqueuing: the one producer behind `floh jobs add`, the admin API and the plugins' `queue`
//! capability, so every job gets the runbook's options.

use std::time::Duration;

use bullmq::types::{BackoffStrategy, RemoveOnFinish};
use bullmq::{JobOptions, Queue, QueueOptions};
use tokio::sync::OnceCell;

use super::{ATTEMPTS, KEEP_COMPLETED, KEEP_FAILED, QUEUE_NAME, QueueError, QueueSettings};

/// How long connecting to Redis may take before an operation gives up (and the next tries
/// again).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
    pub(super) settings: QueueSettings,
    queue: OnceCell<Queue>,
}

impl Producer {
    pub fn new(settings: QueueSettings) -> Self {
        Self { settings, queue: OnceCell::new() }
    }

    pub(super) async fn queue(&self) -> Result<&Queue, QueueError> {
        self.queue
            .get_or_try_init(|| async {
                let options = QueueOptions {
                    connection: super::worker::connection(&self.settings),
                    prefix: self.settings.prefix.clone(),
                    default_job_options: default_job_options(&self.settings),
                    ..QueueOptions::default()
                };
                match tokio::time::timeout(CONNECT_TIMEOUT, Queue::with_options(QUEUE_NAME, options)).await {
                    Ok(connected) => connected.map_err(QueueError::from),
                    Err(_) => Err(QueueError::Unreachable(CONNECT_TIMEOUT)),
                }
            })
            .await
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

/// A BullMQ job scheduler: every occurrence of `pattern` (in `tz`) adds a job `job_name`
/// with `data`, with the deterministic id `repeat:<id>:<occurrence ms>`, so replicas sharing
/// Redis never add an occurrence twice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Schedule {
    pub id: String,
    pub job_name: String,
    pub pattern: String,
    pub tz: String,
    pub data: serde_json::Value,
}

/// A scheduler as stored, with its next occurrence.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredSchedule {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// Next occurrence, ms since the epoch.
    pub next: Option<u64>,
}

impl Producer {
    /// Every job scheduler on the queue (floh's and any other producer's).
    pub async fn schedules(&self) -> Result<Vec<StoredSchedule>, QueueError> {
        let stored = self.queue().await?.get_job_schedulers(0, -1, true).await?;
        Ok(stored
            .into_iter()
            .map(|s| StoredSchedule {
                schedule: Schedule {
                    id: s.key,
                    job_name: s.name,
                    pattern: s.pattern.unwrap_or_default(),
                    tz: s.tz.unwrap_or_else(|| "UTC".to_owned()),
                    data: s.data.unwrap_or(serde_json::Value::Object(Default::default())),
                },
                next: s.next,
            })
            .collect())
    }

    /// Creates the scheduler, or changes it to `schedule`.
    pub async fn upsert_schedule(&self, schedule: &Schedule) -> Result<(), QueueError> {
        let repeat = bullmq::job_scheduler::RepeatOptions {
            pattern: Some(schedule.pattern.clone()),
            tz: Some(schedule.tz.clone()),
            ..Default::default()
        };
        self.queue()
            .await?
            .upsert_job_scheduler(
                &schedule.id,
                repeat,
                Some(&schedule.job_name),
                Some(schedule.data.clone()),
                Some(default_job_options(&self.settings)),
            )
            .await?;
        Ok(())
    }

    pub async fn remove_schedule(&self, id: &str) -> Result<(), QueueError> {
        self.queue().await?.remove_job_scheduler(id).await?;
        Ok(())
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
