//! The job queue: one queue, `workflow-scheduler`, behind one trait, [`JobQueue`]. The worker,
//! the scheduler, the admin API and the plugins' `queue` capability use only the trait.
//!
//! [`bull::RedisQueue`] keeps it in BullMQ's own Redis layout, so the Node services and
//! dashboards of an existing deployment keep working against it (built on `bullmq-official`,
//! BullMQ's Rust port, which runs BullMQ's own Lua scripts).

pub mod bull;
pub mod embedded;
mod run;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::plugins::executor::Executor;
use crate::shutdown::Lifecycle;

/// The runbook's one queue.
pub const QUEUE_NAME: &str = "workflow-scheduler";
/// Attempts in all: the first run and the runbook's 3 retries.
pub const ATTEMPTS: u32 = 4;
/// Failed jobs kept for inspection (newest first).
pub const KEEP_FAILED: usize = 5000;
/// Completed jobs kept (newest first); older ones are trimmed as jobs complete.
pub const KEEP_COMPLETED: usize = 1000;
/// The states a job can be listed by.
pub const STATES: [&str; 7] =
    ["waiting", "active", "delayed", "prioritized", "completed", "failed", "waiting-children"];

/// Where the queue lives and how it retries.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub backend: crate::config::QueueBackend,
    pub redis_url: String,
    /// The embedded queue's SQLite file.
    pub path: std::path::PathBuf,
    /// BullMQ's key prefix (`bull` unless the deployment chose another).
    pub prefix: String,
    /// First retry delay; each further retry doubles it (5 s, 10 s, 20 s by default).
    pub retry_base_delay: Duration,
    /// How long a job's lock lasts without renewal (renewed at half of it). A worker that
    /// dies leaves its jobs to another worker's stalled check once this has passed.
    pub lock_duration: Duration,
    /// How often each worker checks for stalled jobs.
    pub stalled_interval: Duration,
}

/// What the worker needs besides the queue's location.
pub struct WorkerConfig {
    pub concurrency: usize,
    /// Shutdown waits this long for active jobs; a job still running then keeps its lock
    /// until it expires, and another worker's stalled check re-runs it.
    pub drain_timeout: Duration,
    /// Shown by bull-board and `CLIENT LIST` (`bull:<queue>:w:<name>`).
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("job queue: {0}")]
    Bullmq(#[from] bullmq::Error),
    #[error("job queue: Redis did not answer within {0:?}")]
    Unreachable(Duration),
    #[error("job queue: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    RedisUrl(#[from] crate::redis_conn::RedisUrlError),
    #[error("job queue: {0}")]
    Embedded(#[from] sqlx::Error),
    #[error("cannot open the embedded job queue at {} (QUEUE_PATH): {problem}", path.display())]
    File { path: std::path::PathBuf, problem: String },
    #[error("job scheduler: {0}")]
    Schedule(String),
}

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

/// A job scheduler: every occurrence of `pattern` (in `tz`) adds a job `job_name` with
/// `data`, with the deterministic id `repeat:<id>:<occurrence ms>`, so replicas sharing the
/// queue never add an occurrence twice.
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

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub counts: BTreeMap<&'static str, u64>,
    pub workers: usize,
    pub paused: bool,
}

/// A job as the admin API lists it; times in ms since the epoch.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub name: String,
    pub data: serde_json::Value,
    pub attempts_made: u32,
    pub failed_reason: Option<String>,
    pub returnvalue: Option<serde_json::Value>,
    pub timestamp: u64,
    pub processed_on: Option<u64>,
    pub finished_on: Option<u64>,
}

/// One job in full: its summary, options, state and failure traces (newest last).
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    #[serde(flatten)]
    pub summary: JobSummary,
    pub state: String,
    /// The job's options in BullMQ's shape (`attempts`, `backoff`, `delay`, …).
    pub opts: serde_json::Value,
    pub stacktrace: Vec<String>,
}

/// What retrying a job came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Retried {
    Retried,
    NotFound,
    /// Only failed jobs are retried; this is its state.
    NotFailed(String),
}

/// Jobs that finished in one hour, by outcome, as far as the queue still holds them.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct HourOfActivity {
    /// The hour's start, ms since the epoch.
    pub start: u64,
    pub completed: u64,
    pub failed: u64,
}

const HOUR_MS: u64 = 3_600_000;

/// The starts of the `hours` hours up to the one holding `now_ms`, oldest first.
fn hour_starts(now_ms: u64, hours: u32) -> Vec<u64> {
    let first = (now_ms / HOUR_MS + 1).saturating_sub(u64::from(hours)) * HOUR_MS;
    (0..u64::from(hours)).map(|h| first + h * HOUR_MS).collect()
}

/// The queue QUEUE_BACKEND selects: Redis, connected lazily (the host starts while Redis is
/// down), or the embedded queue's file, opened (and created) now.
pub async fn open(settings: &crate::config::Settings) -> Result<Arc<dyn JobQueue>, QueueError> {
    let queue = settings.queue();
    Ok(match queue.backend {
        crate::config::QueueBackend::Redis => {
            let redis =
                crate::redis_conn::Redis::connect_lazy(&queue.redis_url, settings.health_check_timeout)?;
            Arc::new(bull::RedisQueue::new(queue, redis))
        }
        crate::config::QueueBackend::Embedded => Arc::new(embedded::EmbeddedQueue::open(queue).await?),
    })
}

/// The queue as the rest of the host uses it.
#[async_trait::async_trait]
pub trait JobQueue: Send + Sync {
    /// Adds `job` with the runbook's options and returns its id (the existing job's id for a
    /// duplicate custom id).
    async fn enqueue(&self, job: NewJob) -> Result<String, QueueError>;
    async fn overview(&self) -> Result<Overview, QueueError>;
    /// Jobs in `state`, newest first, `per_page` from page `page` (from 1).
    async fn jobs(&self, state: &str, page: u32, per_page: u32) -> Result<Vec<JobSummary>, QueueError>;
    async fn job(&self, id: &str) -> Result<Option<JobDetail>, QueueError>;
    /// Moves a failed job back to waiting, its attempts counted afresh.
    async fn retry(&self, id: &str) -> Result<Retried, QueueError>;
    /// Removes a job that is not running; false if there is none (or it is running).
    async fn remove(&self, id: &str) -> Result<bool, QueueError>;
    /// Completed and failed jobs per hour for the `hours` hours up to the one holding
    /// `now_ms`, oldest first.
    async fn activity(&self, now_ms: u64, hours: u32) -> Result<Vec<HourOfActivity>, QueueError>;
    /// Every job scheduler on the queue (floh's and any other producer's).
    async fn schedules(&self) -> Result<Vec<StoredSchedule>, QueueError>;
    /// Creates the scheduler, or changes it to `schedule`.
    async fn upsert_schedule(&self, schedule: &Schedule) -> Result<(), QueueError>;
    async fn remove_schedule(&self, id: &str) -> Result<(), QueueError>;
    /// Whether the queue's store answers within `timeout`, for the health check.
    async fn ping(&self, timeout: Duration) -> Result<(), String>;
    /// How the health check names a store other than Redis (`embedded`).
    fn mode(&self) -> Option<&'static str> {
        None
    }
    /// Runs the worker as a task of `lifecycle` until shutdown, then drains it.
    fn spawn_worker(&self, lifecycle: &Lifecycle, config: WorkerConfig, executor: Arc<Executor>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hours_end_with_the_current_one() {
        let now = 10 * HOUR_MS + 1234;
        assert_eq!(hour_starts(now, 3), [8 * HOUR_MS, 9 * HOUR_MS, 10 * HOUR_MS]);
    }
}
