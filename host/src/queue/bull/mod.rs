//! The queue on Redis, in BullMQ's layout: adding jobs with the runbook's options, job
//! schedulers, and looking into the queue for operators.

mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bullmq::types::{BackoffStrategy, JobState, RemoveOnFinish, RetryOptions};
use bullmq::{Job, JobOptions, Queue, QueueKeys, QueueOptions};
use tokio::sync::OnceCell;

use super::{
    ATTEMPTS, HourOfActivity, JobDetail, JobQueue, JobSummary, KEEP_COMPLETED, KEEP_FAILED, NewJob, Overview,
    QUEUE_NAME, QueueError, QueueSettings, Retried, Schedule, StoredSchedule, WorkerConfig, hour_starts,
};
use crate::plugins::executor::Executor;
use crate::redis_conn::Redis;
use crate::shutdown::Lifecycle;

/// How long connecting to Redis may take before an operation gives up (and the next tries
/// again).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `workflow-scheduler` on Redis. Connects on first use, so the host starts while Redis is
/// down.
pub struct RedisQueue {
    settings: QueueSettings,
    queue: OnceCell<Queue>,
    /// For what bullmq-official leaves out: failure traces, finished jobs per hour, PING.
    redis: Redis,
}

impl RedisQueue {
    pub fn new(settings: QueueSettings, redis: Redis) -> Self {
        Self { settings, queue: OnceCell::new(), redis }
    }

    async fn queue(&self) -> Result<&Queue, QueueError> {
        self.queue
            .get_or_try_init(|| async {
                let options = QueueOptions {
                    connection: worker::connection(&self.settings),
                    prefix: self.settings.prefix.clone(),
                    default_job_options: default_job_options(&self.settings),
                    ..QueueOptions::default()
                };
                match tokio::time::timeout(CONNECT_TIMEOUT, Queue::with_options(QUEUE_NAME, options)).await {
                    Ok(connected) => connected.map_err(QueueError::Bullmq),
                    Err(_) => Err(QueueError::Unreachable(CONNECT_TIMEOUT)),
                }
            })
            .await
    }

    fn keys(&self) -> QueueKeys {
        QueueKeys::new(QUEUE_NAME, Some(&self.settings.prefix))
    }
}

#[async_trait::async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(&self, job: NewJob) -> Result<String, QueueError> {
        let queue = self.queue().await?;
        let mut options = default_job_options(&self.settings);
        options.delay = job.delay.map(|d| d.as_millis() as u64);
        options.job_id = job.job_id;
        let added = queue.add(&job.name, job.data).options(options).await?;
        Ok(added.id().to_owned())
    }

    async fn overview(&self) -> Result<Overview, QueueError> {
        let queue = self.queue().await?;
        let counts = queue.get_job_counts().await?;
        let counts = BTreeMap::from([
            ("waiting", counts.waiting),
            ("active", counts.active),
            ("delayed", counts.delayed),
            ("prioritized", counts.prioritized),
            ("completed", counts.completed),
            ("failed", counts.failed),
            ("waiting-children", counts.waiting_children),
        ]);
        Ok(Overview { counts, workers: queue.get_workers_count().await?, paused: queue.is_paused().await? })
    }

    async fn jobs(&self, state: &str, page: u32, per_page: u32) -> Result<Vec<JobSummary>, QueueError> {
        let start = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let jobs =
            self.queue().await?.get_jobs(&[state], start, start + i64::from(per_page) - 1, false).await?;
        Ok(jobs.iter().map(summary).collect())
    }

    async fn job(&self, id: &str) -> Result<Option<JobDetail>, QueueError> {
        let queue = self.queue().await?;
        // The hash and the state are two reads; a job that finishes between them would show
        // as completed without its result, so read until the state is the same on both sides.
        let mut state = queue.get_job_state(id).await?;
        let job = loop {
            let Some(job) = queue.get_job(id).await? else {
                return Ok(None);
            };
            let after = queue.get_job_state(id).await?;
            if after == state {
                break job;
            }
            state = after;
        };
        // floh's worker keeps the failure traces in the job hash (see worker.rs).
        let traces: Option<String> = redis::cmd("HGET")
            .arg(self.keys().job_key(id))
            .arg("stacktrace")
            .query_async(&mut self.redis.connection())
            .await
            .unwrap_or(None);
        Ok(Some(JobDetail {
            summary: summary(&job),
            state: state.to_string(),
            opts: serde_json::to_value(job.opts()).unwrap_or_default(),
            stacktrace: traces.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
        }))
    }

    async fn retry(&self, id: &str) -> Result<Retried, QueueError> {
        let queue = self.queue().await?;
        let Some(mut job) = queue.get_job(id).await? else {
            return Ok(Retried::NotFound);
        };
        match queue.get_job_state(id).await? {
            JobState::Failed => {}
            other => return Ok(Retried::NotFailed(other.to_string())),
        }
        let options = RetryOptions { reset_attempts_made: true, reset_attempts_started: true };
        job.retry("failed", Some(options)).await?;
        Ok(Retried::Retried)
    }

    async fn remove(&self, id: &str) -> Result<bool, QueueError> {
        let queue = self.queue().await?;
        // The removal script reports success for an id that does not exist.
        if queue.get_job(id).await?.is_none() {
            return Ok(false);
        }
        Ok(queue.remove(id).await?)
    }

    /// The finished sets are scored by finish time, so each hour is a `ZCOUNT`; jobs already
    /// trimmed by the retention counts are not in them.
    async fn activity(&self, now_ms: u64, hours: u32) -> Result<Vec<HourOfActivity>, QueueError> {
        let keys = self.keys();
        let starts = hour_starts(now_ms, hours);
        let mut pipe = redis::pipe();
        for start in &starts {
            let last = start + super::HOUR_MS - 1;
            pipe.zcount(keys.completed(), start, last).zcount(keys.failed(), start, last);
        }
        let counts: Vec<u64> = pipe.query_async(&mut self.redis.connection()).await?;
        Ok(starts
            .iter()
            .zip(counts.chunks(2))
            .map(|(&start, pair)| HourOfActivity { start, completed: pair[0], failed: pair[1] })
            .collect())
    }

    async fn schedules(&self) -> Result<Vec<StoredSchedule>, QueueError> {
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

    async fn upsert_schedule(&self, schedule: &Schedule) -> Result<(), QueueError> {
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

    async fn remove_schedule(&self, id: &str) -> Result<(), QueueError> {
        self.queue().await?.remove_job_scheduler(id).await?;
        Ok(())
    }

    async fn ping(&self, timeout: Duration) -> Result<(), String> {
        self.redis.ping(timeout).await
    }

    fn spawn_worker(&self, lifecycle: &Lifecycle, config: WorkerConfig, executor: Arc<Executor>) {
        worker::spawn(lifecycle, self.settings.clone(), config, executor, self.redis.clone());
    }
}

/// The runbook's policy: 4 attempts with exponential backoff from 5 s, the newest 5000
/// failures kept, completed jobs trimmed to the newest 1000.
fn default_job_options(settings: &QueueSettings) -> JobOptions {
    JobOptions {
        attempts: Some(ATTEMPTS),
        backoff: Some(BackoffStrategy::Exponential(settings.retry_base_delay.as_millis() as u64)),
        remove_on_fail: Some(RemoveOnFinish::Count(KEEP_FAILED)),
        remove_on_complete: Some(RemoveOnFinish::Count(KEEP_COMPLETED)),
        ..JobOptions::default()
    }
}

fn summary(job: &Job) -> JobSummary {
    JobSummary {
        id: job.id().to_owned(),
        name: job.name().to_owned(),
        data: job.data().clone(),
        attempts_made: job.attempts_made(),
        failed_reason: Some(job.failed_reason().to_owned()).filter(|r| !r.is_empty()),
        returnvalue: serde_json::from_str(job.returnvalue()).ok(),
        timestamp: job.timestamp(),
        processed_on: job.processed_on(),
        finished_on: job.finished_on(),
    }
}
